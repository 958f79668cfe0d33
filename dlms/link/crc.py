"""The HDLC frame check sequence: CRC-16/X.25 as IEC 62056-46 (clause 6.4.5, from
ISO/IEC 13239) prescribes for both the HCS and the FCS of frame format type 3.

Polynomial x^16 + x^12 + x^5 + 1 processed least significant bit first (0x8408
reflected), initial value 0xFFFF, ones' complement of the result, sent low byte
first. :func:`fcs16` is the hot path: it runs the non-reflected CCITT CRC that
``binascii.crc_hqx`` computes in C over bit-reversed bytes and reverses the
result, which is the same function as the reflected CRC and several times faster
than a Python table loop. :func:`fcs16_table` is the plain table-driven form,
kept as the readable definition the tests compare the fast one against.

The frame paths that run once per frame use the same CRC in two further forms,
so that neither a check nor an append needs a slice or a second pass: the CRC
*state* (:func:`reflected_state`, the ``crc_hqx`` register over bit-reversed
bytes, which can be continued over more bytes), and the *residue*: the state over
a block followed by its own FCS is always :data:`RESIDUE`, whatever the block
(ISO/IEC 13239's "good FCS" value 0xF0B8, seen bit-reversed), so a received
header or frame is checked by one ``crc_hqx`` over it, check bytes included.
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


#: the reflected-state CRC of any block followed by its own two FCS bytes
RESIDUE = 0x1D0F
#: byte value -> the same byte with its bits in the opposite order (``bytes.translate`` table)
REVERSED = _REVERSED
#: one half of a final state -> its FCS byte on the line (reversed, complemented); the
#: state's high half gives the first (low) byte
FCS_BYTE = bytes(_REVERSED[b] ^ 0xFF for b in range(256))


def reflected_state(data: bytes | bytearray | memoryview, state: int = 0xFFFF) -> int:
    """The CRC register after ``data`` (continuing from ``state``): what :func:`fcs16`
    finishes into the check value, kept open so that more bytes can follow."""
    return crc_hqx(bytes(data).translate(_REVERSED), state)


def fcs_from_state(state: int) -> bytes:
    """The two check bytes, as they go on the line, for a block whose state is ``state``."""
    return bytes((FCS_BYTE[state >> 8], FCS_BYTE[state & 0xFF]))


def fcs16_table(data: bytes | bytearray | memoryview) -> int:
    """The same CRC, byte by byte through a 256-entry table."""
    crc = 0xFFFF
    for b in bytes(data):
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFF


def fcs_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The two check bytes as they follow ``data`` on the line."""
    return fcs16(data).to_bytes(2, "little")
