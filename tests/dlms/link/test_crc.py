"""CRC-16/X.25 (IEC 62056-46 HCS/FCS): the fast form equals the definition."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.link.crc import fcs16, fcs16_table, fcs_bytes


def bitwise_x25(data: bytes) -> int:
    """Straight from the definition, one bit at a time (independent of dlms.link.crc)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_check_value():
    # the catalogued check value of CRC-16/X.25 (CRC-16/IBM-SDLC)
    assert fcs16(b"123456789") == 0x906E
    assert fcs16_table(b"123456789") == 0x906E


def test_classic_snrm_fcs_on_the_wire():
    assert fcs_bytes(bytes.fromhex("A007032193")) == bytes.fromhex("0F01")


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fast_equals_table_equals_bitwise(data):
    assert fcs16(data) == fcs16_table(data) == bitwise_x25(data)
