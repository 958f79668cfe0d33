"""Digits, class-bit transposition, amount, CRC and TID arithmetic."""

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.firmware.errors import TokenError
from bijli.firmware.sts import crc
from bijli.firmware.sts.amount import MAX_AMOUNT, decode_amount, encode_amount, encode_amount_down
from bijli.firmware.sts.codec import (
    KeySection1, KeySection2, KeySectionMid, TestFields, TransferFields, format_digits, group_digits,
    join_token, open_block, parse_digits, seal_block, split_token,
)
from bijli.firmware.sts.errors import VendError
from bijli.firmware.sts.tid import datetime_from_tid, ken_of, next_base, tid_from_datetime

ALL_VALUES = sorted({decode_amount(f) for f in range(1 << 16)})


def test_amount_table_edges():
    assert decode_amount(0) == 0 and decode_amount(0x3FFF) == 16383
    assert decode_amount(1 << 14) == 16384
    assert decode_amount(0xFFFF) == MAX_AMOUNT == 18_201_624
    assert encode_amount(16383) == 0x3FFF
    assert encode_amount(16384) == 1 << 14
    assert encode_amount(16385) == (1 << 14) | 1  # rounds up to 16394
    assert decode_amount(encode_amount(180_215)) == 180_224  # gap between ranges rounds up
    with pytest.raises(VendError):
        encode_amount(MAX_AMOUNT + 1)
    with pytest.raises(VendError):
        encode_amount(-1)


@given(st.integers(0, MAX_AMOUNT))
def test_amount_rounds_up_to_the_nearest_representable(value):
    field = encode_amount(value)
    got = decode_amount(field)
    assert got >= value
    # nothing representable lies in [value, got)
    import bisect
    assert ALL_VALUES[bisect.bisect_left(ALL_VALUES, value)] == got
    # smallest exponent that fits
    assert field >> 14 == min(e for e in range(4) if any(decode_amount((e << 14) | m) >= value for m in (0x3FFF,)))


@given(st.integers(0, MAX_AMOUNT))
def test_amount_down_is_the_largest_representable_not_above(value):
    import bisect
    got = decode_amount(encode_amount_down(value))
    assert got <= value and ALL_VALUES[bisect.bisect_right(ALL_VALUES, value) - 1] == got


def test_amount_down_edges():
    assert decode_amount(encode_amount_down(50_000)) == 49_994  # INR 500 at 0.01: 499.94, not 500.04
    assert decode_amount(encode_amount_down(180_223)) == 180_214  # the gap between ranges rounds down
    assert encode_amount_down(MAX_AMOUNT) == 0xFFFF and encode_amount_down(0) == 0
    for bad in (-1, MAX_AMOUNT + 1, 1.5, True):
        with pytest.raises(VendError):
            encode_amount_down(bad)


@given(st.integers(0, 0xFFFF))
def test_amount_field_roundtrip_when_exact(field):
    value = decode_amount(field)
    assert decode_amount(encode_amount(value)) == value


@given(st.integers(0, (1 << 66) - 1))
def test_digits_and_transposition_roundtrip(n):
    digits = format_digits(n)
    assert len(digits) == 20 and parse_digits(digits) == n
    assert parse_digits(group_digits(digits)) == n
    cls, block = split_token(n)
    assert join_token(cls, block) == n
    assert cls == (n >> 27) & 3


@pytest.mark.parametrize("bad", ["", "1234", "7" * 21, "1234567890123456789a", "99999999999999999999",
                                 "１２３４５６７８９０１２３４５６７８９０", None, 12345])
def test_bad_digits_are_token_errors(bad):
    with pytest.raises(TokenError):
        parse_digits(bad)


def test_exactly_one_crc_in_65536_passes():
    """Decryption is a bijection, so a random token is a random block; for any head
    exactly one CRC field value is accepted: acceptance probability 2^-16."""
    for token_class, subclass, data in ((0, 0, 0x5123456789A), (2, 3, 0xFFFFFFFFFFF), (1, 0, 0), (0, 4, 77)):
        good = sum(open_block(token_class, (subclass << 60) | (data << 16) | c)[2] for c in range(1 << 16))
        assert good == 1


def test_crc_c_switch_changes_only_currency():
    head = (0 << 48) | (4 << 44) | 12345
    a = crc.block_crc(head, 0, 4, crc.CrcCVariant.APPEND_01)
    b = crc.block_crc(head, 0, 4, crc.CrcCVariant.SAME_AS_CRC16)
    assert a != b
    assert b == crc.block_crc((0 << 48) | (4 << 44) | 12345, 0, 0)  # same bytes, same CRC16
    head0 = 12345
    assert crc.block_crc(head0, 0, 0, crc.CrcCVariant.APPEND_01) == crc.block_crc(head0, 0, 0, crc.CrcCVariant.SAME_AS_CRC16)


@given(st.integers(0, 15), st.integers(0, (1 << 44) - 1), st.sampled_from([0, 1, 2]))
def test_seal_open_roundtrip(subclass, data, token_class):
    block = seal_block(token_class, subclass, data)
    assert open_block(token_class, block) == (subclass, data, True)


def test_layouts_roundtrip_and_range():
    f = TransferFields(15, (1 << 24) - 1, 0xFFFF)
    assert TransferFields.unpack(f.pack()) == f
    assert TestFields.unpack(1, TestFields(1, (1 << 28) - 1, 0xFFFF).pack()) == TestFields(1, (1 << 28) - 1, 0xFFFF)
    s1 = KeySection1(0xA, 3, 1, 0, 2, 0xDEADBEEF)
    assert KeySection1.unpack(s1.pack()) == s1
    s2 = KeySection2(5, 99, 0x12345678)
    assert KeySection2.unpack(s2.pack()) == s2
    s3 = KeySectionMid(0x456, 0xCAFEBABE)
    assert KeySectionMid.unpack(s3.pack()) == s3
    with pytest.raises(VendError):
        TransferFields(16, 0, 0).pack()
    with pytest.raises(VendError):
        TestFields(0, 1 << 36, 0).pack()


def test_tid_and_base_dates():
    assert tid_from_datetime(datetime(1993, 1, 1), 1993) == 0
    # 1993 rolls over 2^24 minutes later: 24 Nov 2024 20:16 is already out of range
    assert datetime_from_tid((1 << 24) - 1, 1993) == datetime(2024, 11, 24, 20, 15)
    with pytest.raises(VendError):
        tid_from_datetime(datetime(2024, 11, 24, 20, 16), 1993)
    with pytest.raises(VendError):
        tid_from_datetime(datetime(2013, 12, 31, 23, 59), 2014)
    assert tid_from_datetime(datetime(2026, 11, 1, 10, 0, 59), 2014) == tid_from_datetime(datetime(2026, 11, 1, 10), 2014)
    assert datetime_from_tid(tid_from_datetime(datetime(2040, 5, 6, 7, 8), 2035), 2035) == datetime(2040, 5, 6, 7, 8)
    assert next_base(1993) == 2014 and next_base(2014) == 2035 and next_base(2035) is None
    assert ken_of(0xAB1234) == 0xAB
    with pytest.raises(VendError):
        tid_from_datetime(datetime(2020, 1, 1), 2000)
