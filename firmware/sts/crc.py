"""CRC-16 of an STS token data block (IEC 62055-41, as publicly described).

The CRC covers the 50 bits class..amount (or class..data for other layouts),
left-padded with 6 zero bits to 7 bytes, most significant byte first; polynomial
x^16+x^15+x^2+1 processed LSB-first (reflected constant 0xA001), initial value
0xFFFF, no final xor, and the result byte-swapped before it goes into the block.
Checked against the ``crc16`` vectors in tests/firmware/sts/data/vectors.json.

Currency transfers (class 0, subclasses 4..7) use a variant the standard calls
CRC_C (IEC 62055-41 6.3.7 names it; its definition is not public). No public
vector settles it: the 264 public 531-1 CTSA tokens hold no currency token. So the
rule is a documented meter setting, ``[sts] currency_crc`` (:class:`CrcCVariant`):
``"crc16"``, the plain rule above (the default), or ``"append-01"``, one public
description's reading (the 7 data bytes and one extra 0x01 byte). The vending side
and the meter must use the same setting; every function that seals or opens a
block takes it explicitly.
"""

from __future__ import annotations

from enum import Enum


class CrcCVariant(Enum):
    """How currency tokens (class 0, subclasses 4..7) are checksummed: the
    ``[sts] currency_crc`` setting."""

    SAME_AS_CRC16 = "crc16"  # the plain rule, as every other token (default)
    APPEND_01 = "append-01"  # one public description: data bytes + b"\x01"


#: the currency CRC rule when a meter's configuration names none
DEFAULT_CURRENCY_CRC = CrcCVariant.SAME_AS_CRC16

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


def block_crc(head50: int, token_class: int, subclass: int,
              currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> int:  # fmt: skip
    """The 16-bit CRC field for the 50-bit ``class..data`` head of a token block;
    ``currency_crc`` is the meter's rule for currency subclasses 4..7."""
    data = head50.to_bytes(7, "big")
    if token_class == 0 and subclass in CURRENCY_SUBCLASSES:
        if currency_crc is CrcCVariant.APPEND_01:
            data += b"\x01"
    c = crc16(data)
    return ((c & 0xFF) << 8) | (c >> 8)
