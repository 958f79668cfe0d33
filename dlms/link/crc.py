"""The HDLC frame check sequence: CRC-16/X.25 as IEC 62056-46 (clause 6.4.5, from
ISO/IEC 13239) prescribes for both the HCS and the FCS of frame format type 3.

Polynomial x^16 + x^12 + x^5 + 1 processed least significant bit first (0x8408
reflected), initial value 0xFFFF, ones' complement of the result, sent low byte
first. :func:`fcs16` is the hot path: it runs the non-reflected CCITT CRC that
``binascii.crc_hqx`` computes in C over bit-reversed bytes and reverses the
result, which is the same function as the reflected CRC and several times faster
than a Python table loop. :func:`fcs16_table` is the plain table-driven form,
kept as the readable definition the tests compare the fast one against.
"""

from __future__ import annotations

from binascii import crc_hqx

_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _table() -> list[int]:
    rows = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        rows.append(crc)
    return rows


_TABLE = _table()


def fcs16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 of ``data`` (the value; put it on the wire little-endian)."""
    crc = crc_hqx(bytes(data).translate(_REVERSED), 0xFFFF)
    return ((_REVERSED[crc & 0xFF] << 8) | _REVERSED[crc >> 8]) ^ 0xFFFF


def fcs16_table(data: bytes | bytearray | memoryview) -> int:
    """The same CRC, byte by byte through a 256-entry table."""
    crc = 0xFFFF
    for b in bytes(data):
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFF


def fcs_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The two check bytes as they follow ``data`` on the line."""
    return fcs16(data).to_bytes(2, "little")
