"""CRC-16 of an STS token data block (IEC 62055-41, as publicly described).

The CRC covers the 50 bits class..amount (or class..data for other layouts),
left-padded with 6 zero bits to 7 bytes, most significant byte first; polynomial
x^16+x^15+x^2+1 processed LSB-first (reflected constant 0xA001), initial value
0xFFFF, no final xor, and the result byte-swapped before it goes into the block.
Checked against the ``crc16`` vector in shared/sts/vectors.json.

Currency transfers (class 0, subclasses 4..7) use a variant, CRC_C.
UNVERIFIED: one public description says CRC_C is the same computation with one
extra 0x01 byte appended to the 7 data bytes. No vector confirms it, so the rule
sits behind the named switch :data:`CRC_C_VARIANT`; vending and decoding both read
it, so our own tokens always round-trip whichever variant is chosen.
"""

from __future__ import annotations

from enum import Enum


class CrcCVariant(Enum):
    """How currency tokens (class 0, subclasses 4..7) are checksummed."""

    APPEND_01 = "append-01"  # UNVERIFIED public description: data bytes + b"\x01"
    SAME_AS_CRC16 = "crc16"  # treat currency like every other token


#: UNVERIFIED switch: the CRC_C rule used for currency subclasses 4..7.
CRC_C_VARIANT = CrcCVariant.APPEND_01

CURRENCY_SUBCLASSES = frozenset({4, 5, 6, 7})


def _table() -> tuple[int, ...]:
    out = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        out.append(c)
    return tuple(out)


_TABLE = _table()


def crc16(data: bytes) -> int:
    """The reflected CRC-16 (0xA001, init 0xFFFF) of ``data``, not yet byte-swapped."""
    c = 0xFFFF
    t = _TABLE
    for b in data:
        c = (c >> 8) ^ t[(c ^ b) & 0xFF]
    return c


def block_crc(head50: int, token_class: int, subclass: int, variant: CrcCVariant | None = None) -> int:
    """The 16-bit CRC field for the 50-bit ``class..data`` head of a token block.

    ``variant`` overrides :data:`CRC_C_VARIANT` for currency tokens (tests use it).
    """
    data = head50.to_bytes(7, "big")
    if token_class == 0 and subclass in CURRENCY_SUBCLASSES:
        if (variant or CRC_C_VARIANT) is CrcCVariant.APPEND_01:
            data += b"\x01"
    c = crc16(data)
    return ((c & 0xFF) << 8) | (c >> 8)
