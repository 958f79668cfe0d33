"""`bijli bench sts`: STS token engine speed (issue targets: 20,000 decodes/s per
algorithm on one core; 250,000 tokens vended in under 30 s).

A decode here is the whole meter path of :func:`firmware.sts.decoder.decode`
(digits -> decrypt -> CRC -> TID memory -> result and new state) for an accepted
credit token against a state holding a full 100-TID window.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from bijli.firmware.sts.decoder import decode
from bijli.firmware.sts.keys import Pan, VendingKeyMaterial
from bijli.firmware.sts.state import DecoderState
from bijli.firmware.sts.vend import vend_credit

from bijli.tools.commands.bench import BenchResult, rate

_VK = {"02": bytes.fromhex("ABABABABABABABAB"), "04": bytes.fromhex("ABABABABABABABAB949494949494949401234567")}
_ALGORITHMS = (("EA07 STA", "07", "02"), ("EA09 DES", "09", "02"), ("EA11 MISTY1", "11", "04"))
_T0 = datetime(2026, 11, 1)
_NOW = datetime(2026, 11, 26)


def _key(ea: str, dkga: str):
    return VendingKeyMaterial(_VK[dkga], Pan("600727000000000009"), "123457", "01", 1, 2, ea, dkga, 2014).decoder_key()


def _decode_rate(ea: str, dkga: str) -> float:
    key = _key(ea, dkga)
    state = DecoderState(key)
    for i in range(100):
        state = decode(state, vend_credit(key, 1, time=_T0 + timedelta(minutes=i), rnd=0).digits, _NOW)[1]
    digits = vend_credit(key, 10, time=_T0 + timedelta(days=1), rnd=3).digits
    assert decode(state, digits, _NOW)[0].accepted
    return rate(lambda: decode(state, digits, _NOW), min_seconds=0.5, batch=200)


def vend_many(n: int, ea: str = "11", dkga: str = "04") -> float:
    """Seconds to vend ``n`` credit tokens with distinct TIDs."""
    key = _key(ea, dkga)
    start = time.perf_counter()
    step = timedelta(minutes=1)
    t = _T0
    for _ in range(n):
        vend_credit(key, 10, time=t, rnd=0)
        t += step
    return time.perf_counter() - start


def bench() -> list[BenchResult]:
    rows = [BenchResult(f"sts decode {name} (full meter path)", _decode_rate(ea, dkga), "decodes/s", 20_000)
            for name, ea, dkga in _ALGORITHMS]  # fmt: skip
    key = _key("11", "04")
    rows.append(BenchResult("sts vend EA11 credit", rate(lambda: vend_credit(key, 10, time=_T0, rnd=0)), "vends/s"))
    rows.append(BenchResult("sts vend 250,000 tokens EA11 (measured, not extrapolated)", vend_many(250_000), "s",
                            30, higher_is_better=False))  # fmt: skip
    return rows


if __name__ == "__main__":  # pragma: no cover
    from bijli.tools.commands.bench import format_rows

    print(format_rows(bench()))
