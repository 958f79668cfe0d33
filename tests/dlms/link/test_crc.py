"""CRC-16/X.25 (IEC 62056-46 HCS/FCS): the fast form equals the definition, and the open
state and the residue the frame paths use agree with it."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.link.crc import RESIDUE, fcs16, fcs16_table, fcs_bytes, fcs_from_state, reflected_state


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


@settings(max_examples=200)
@given(st.binary(max_size=300), st.integers(0, 300))
def test_the_open_state_continues_and_closes_into_the_same_check_bytes(data, cut):
    # the state after a prefix, continued over the rest, is the state over the whole
    cut = min(cut, len(data))
    assert reflected_state(data[cut:], reflected_state(data[:cut])) == reflected_state(data)
    assert fcs_from_state(reflected_state(data)) == fcs_bytes(data) == bitwise_x25(data).to_bytes(2, "little")


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_a_block_followed_by_its_fcs_leaves_the_residue(data):
    assert reflected_state(data + fcs_bytes(data)) == RESIDUE


def test_a_damaged_block_does_not_leave_the_residue():
    block = bytes.fromhex("A007032193") + fcs_bytes(bytes.fromhex("A007032193"))
    for i in range(len(block)):
        for bit in range(8):
            damaged = bytearray(block)
            damaged[i] ^= 1 << bit
            assert reflected_state(damaged) != RESIDUE
