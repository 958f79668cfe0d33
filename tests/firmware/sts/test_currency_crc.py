"""The currency (class 0 subclasses 4..7) CRC rule is a meter setting, ``[sts] currency_crc``.

No public vector settles CRC_C (the 264 public 531-1 tokens hold no currency token), so the rule is chosen in
the meter's configuration: the plain CRC by default, the "append-01" reading on request. Vending and the meter
must agree; a token vended under one rule is a CRC error under the other, and only currency tokens differ."""

from datetime import datetime
from decimal import Decimal

import pytest

from bijli.firmware.errors import ConfigError
from bijli.firmware.sts import vend as v
from bijli.firmware.sts.codec import TransferFields, open_block, split_token, parse_digits
from bijli.firmware.sts.ciphers import cipher_for
from bijli.firmware.sts.config import StsConfig
from bijli.firmware.sts.crc import CrcCVariant, crc16
from bijli.firmware.sts.decoder import decode
from bijli.firmware.sts.errors import DecoderStateError
from bijli.firmware.sts.inspector import inspect_token
from bijli.firmware.sts.results import TokenResultCode as R
from bijli.firmware.sts.state import DecoderState

WHEN = datetime(2026, 11, 1, 10, 0)


def test_the_default_is_the_plain_rule():
    cfg = StsConfig.from_table({})
    assert cfg.currency_crc is CrcCVariant.SAME_AS_CRC16 and cfg.initial_state().currency_crc is cfg.currency_crc
    key = cfg.vend_key()
    token = v.vend_credit(key, Decimal("12.34"), subclass=4, time=WHEN, rnd=3)
    # the plain rule from first principles: CRC-16 of the 7 bytes class..amount, byte-swapped
    plain = cipher_for(key.ea, key.key).decrypt(split_token(parse_digits(token.digits))[1])
    head = (0 << 48) | (plain >> 16)
    c = crc16(head.to_bytes(7, "big"))
    assert plain & 0xFFFF == ((c & 0xFF) << 8) | (c >> 8)


@pytest.mark.parametrize("rule", list(CrcCVariant))
def test_a_meter_set_to_a_rule_takes_currency_tokens_vended_under_it_only(rule):
    cfg = StsConfig.from_table({"currency_crc": rule.value})
    other = next(r for r in CrcCVariant if r is not rule)
    key = cfg.vend_key()
    state = cfg.initial_state()
    for sub in range(4, 8):
        good = v.vend_credit(key, Decimal("5"), subclass=sub, time=WHEN.replace(minute=sub), rnd=1, currency_crc=rule)
        bad = v.vend_credit(key, Decimal("5"), subclass=sub, time=WHEN.replace(minute=sub), rnd=1, currency_crc=other)
        assert good.digits != bad.digits
        assert decode(state, bad.digits, WHEN)[0].code is R.CRC_ERROR
        result, state = decode(state, good.digits, WHEN)
        assert result.code is R.ACCEPT and result.effect.kind.is_currency
        assert inspect_token(key, good.digits, rule).crc_ok and not inspect_token(key, good.digits, other).crc_ok
    # unit tokens and class 2 tokens do not depend on the rule
    for sub in range(4):
        a = v.vend_credit(key, Decimal("5"), subclass=sub, time=WHEN, rnd=1, currency_crc=rule)
        b = v.vend_credit(key, Decimal("5"), subclass=sub, time=WHEN, rnd=1, currency_crc=other)
        assert a.digits == b.digits


def test_the_setting_survives_the_saved_state_and_old_states_take_the_default():
    state = StsConfig.from_table({"currency_crc": "append-01"}).initial_state()
    assert DecoderState.from_dict(state.to_dict()).currency_crc is CrcCVariant.APPEND_01
    old = state.to_dict()
    del old["currency_crc"]
    assert DecoderState.from_dict(old).currency_crc is CrcCVariant.SAME_AS_CRC16
    with pytest.raises(DecoderStateError):
        DecoderState.from_dict({**old, "currency_crc": "crc32"})


@pytest.mark.parametrize("bad", ["crc32", 1, "", None])
def test_a_bad_setting_is_refused_and_names_the_key(bad):
    with pytest.raises(ConfigError) as e:
        StsConfig.from_table({"currency_crc": bad})
    assert e.value.key == "sts.currency_crc" and "crc16" in str(e.value) and "append-01" in str(e.value)


def test_open_block_reads_the_rule():
    key = StsConfig.from_table({}).vend_key()
    t = v.vend_credit(key, Decimal("1"), subclass=4, time=WHEN, rnd=0, currency_crc=CrcCVariant.APPEND_01)
    plain = cipher_for(key.ea, key.key).decrypt(split_token(parse_digits(t.digits))[1])
    assert open_block(0, plain, CrcCVariant.APPEND_01)[2] and not open_block(0, plain)[2]
    assert TransferFields.unpack(open_block(0, plain)[1]).tid == t.tid
