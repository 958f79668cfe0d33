"""The small part of BER (ITU-T X.690) that ACSE APDUs use: tag, definite length, value.

ACSE (AARQ/AARE/RLRQ/RLRE, IEC 62056-5-3 clause 9.4 / ISO 8650) is BER-encoded
while everything inside xDLMS is A-XDR. Only single-byte tags occur there, so a
TLV reader over the one bounded reader (:mod:`dlms.reader`) is enough. Lengths are checked against the bytes present:
strict clients reject an AARE whose inner lengths are off by one, so the writer
always computes them and the reader never guesses.
"""

from __future__ import annotations

from bijli.dlms.axdr import encode_length
from bijli.dlms.errors import BerError
from bijli.dlms.reader import Reader


def length(n: int) -> bytes:
    """BER definite length: the same octets A-XDR uses, limited to what an ACSE APDU can need."""
    if n >= 0x10000:
        raise BerError(f"BER length {n} too large")
    return encode_length(n)


def tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + length(len(value)) + value


def read_tlvs(buf: bytes) -> list[tuple[int, bytes]]:
    """Split ``buf`` into consecutive (tag, value) pairs; the whole buffer must be used."""
    return Reader(buf, 0, BerError).ber_tlvs()


def read_one(buf: bytes, expected_tag: int) -> bytes:
    """The value of a buffer holding exactly one TLV with ``expected_tag``."""
    tlvs = read_tlvs(buf)
    if len(tlvs) != 1 or tlvs[0][0] != expected_tag:
        raise BerError(f"expected one element with tag 0x{expected_tag:02x}")
    return tlvs[0][1]


def integer(value: bytes) -> int:
    if not value or len(value) > 4:
        raise BerError("bad BER INTEGER length")
    return int.from_bytes(value, "big", signed=True)


def encode_integer(value: int) -> bytes:
    n = max(1, (value.bit_length() + 8) // 8)
    return tlv(0x02, value.to_bytes(n, "big", signed=True))
