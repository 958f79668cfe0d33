"""DLMS codec benchmark: the figures the issue sets for the meter's hot paths.

A-XDR of a day of 15-minute load profile rows and the server's commonest exchange:
decode a 13-byte GetRequestNormal and encode a GetResponseNormal carrying a
double-long-unsigned register value. The target is 100,000 of those per second
on one core. The HDLC frame row comes from tools.bench_hdlc, which tools.bench
lists beside this module in the "dlms" area, so it is not repeated here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bijli.dlms import apdu, axdr
from bijli.dlms.obis import Obis
from bijli.tools.commands.bench import BenchResult, rate

GET_TARGET = 100_000
_GET_REQUEST = apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2)).encode()


def _load_profile(rows: int = 96) -> axdr.Array:
    """One day of 15-minute rows: {date-time as octet-string, 6 double-long-unsigned}."""
    start = datetime(2024, 1, 1)
    out = []
    for i in range(rows):
        stamp = axdr.CosemDateTime.from_datetime(start + timedelta(minutes=15 * i), deviation=-330).encode()
        out.append(axdr.Structure((axdr.OctetString(stamp), *(axdr.DoubleLongUnsigned(i * 7 + k) for k in range(6)))))
    return axdr.Array(tuple(out))


def _axdr_rows_per_second() -> float:
    profile = _load_profile()
    n = len(profile.value)

    def once() -> None:
        axdr.decode(axdr.encode(profile))

    return rate(once, batch=10) * n


def _get_decode() -> None:
    apdu.decode(_GET_REQUEST)


def _get_and_respond() -> None:
    # what dlms.server does for a register read: decode, then the response built by hand
    req = apdu.decode(_GET_REQUEST)
    b"\xc4\x01" + bytes((req.invoke_id, 0)) + axdr.encode(axdr.DoubleLongUnsigned(123_456_789))


def _get_and_respond_dataclass() -> None:
    req = apdu.decode(_GET_REQUEST)
    apdu.GetResponseNormal(req.invoke_id, axdr.DoubleLongUnsigned(123_456_789)).encode()


def bench() -> list[BenchResult]:
    rows = [BenchResult("A-XDR encode+decode of a 96-row load profile buffer", _axdr_rows_per_second(), "rows/s")]
    rows.append(BenchResult("GET-request decode", rate(_get_decode, batch=1000), "requests/s", GET_TARGET))
    rows.append(BenchResult("GET-request decode + register response encode", rate(_get_and_respond, batch=1000),
                            "per s", GET_TARGET))
    rows.append(BenchResult("GET-request decode + GetResponseNormal.encode()", rate(_get_and_respond_dataclass,
                                                                                   batch=1000), "per s", GET_TARGET))
    return rows


if __name__ == "__main__":
    from bijli.tools.commands.bench import format_rows

    print(format_rows(bench()))
