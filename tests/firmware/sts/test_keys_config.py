"""PAN forms and Luhn digits, CONTROLBlock, key derivation errors, and the [sts] config table."""

import pytest

from bijli.firmware.errors import ConfigError
from bijli.firmware.sts.config import DEMO, StsConfig
from bijli.firmware.sts.errors import KeyMaterialError
from bijli.firmware.sts.keys import KeyType, Pan, VendingKeyMaterial, control_block, dkga04, luhn_digit

from .vectors import vectors


def test_luhn():
    assert luhn_digit("7992739871") == "3"  # the textbook example
    assert luhn_digit("60072700000000000") == "9"


def test_pan_forms():
    p = Pan.build("12", "34567890")
    assert p.iin == "600727" and p.manufacturer_code == "12" and len(p.digits) == 18
    assert p.pan_block() == int("00727" + p.iain, 16)
    q = Pan.build("1234", "00000042", iin="0000")
    assert q.iin == "0000" and q.manufacturer_code == "1234" and len(q.iain) == 13
    assert q.pan_block() == int("000" + q.iain, 16)
    assert Pan(q.digits) == q


@pytest.mark.parametrize("bad", [
    "600727000000000008",  # PAN Luhn digit wrong
    "600727000000000109",  # IAIN Luhn digit wrong (and PAN digit fixed below)
    "123456000000000009",  # unknown IIN
    "60072700000000000",  # 17 digits
    "60072700000000000x",
])
def test_pan_rejects(bad):
    if bad == "600727000000000109":
        bad = bad[:17] + luhn_digit(bad[:17])  # only the IAIN digit is wrong now
    with pytest.raises(KeyMaterialError):
        Pan(bad)


def test_control_block_and_key_checks():
    assert control_block(2, "123456", "01", 1) == 0x2123456011FFFFFF
    with pytest.raises(KeyMaterialError):
        control_block(4, "123456", "01", 1)
    with pytest.raises(KeyMaterialError):
        control_block(2, "12345", "01", 1)
    with pytest.raises(KeyMaterialError):
        VendingKeyMaterial(bytes(8), Pan("600727000000000009"), "123456", "01", 1, 2, "11", "02", 1993)
    with pytest.raises(KeyMaterialError):
        dkga04(bytes(20), Pan("600727000000000009"), "123456", "01", 1, 2, "11", 2000)
    assert KeyType(1) is KeyType.DDTK


def test_demo_defaults_from_empty_table():
    cfg = StsConfig.from_table({})
    v = vectors()["dkga04"][0]
    assert cfg.vending is not None and cfg.vending.base == 2014 and cfg.decoder_key.ea == "11"
    assert cfg.vending.vk.hex().upper() == DEMO["vending_key"]
    # same material as the vector except the base date: the key must differ from it
    assert cfg.decoder_key.key.hex() != v["decoder_key"]
    at_1993 = StsConfig.from_table({"base": 1993})
    assert at_1993.decoder_key.key.hex() == v["decoder_key"]
    s = cfg.initial_state()
    assert (s.tid_window, s.lockout_after, s.lockout_minutes, s.manufacturer_code) == (100, 5, 30, 0)


def test_decoder_key_form():
    cfg = StsConfig.from_table({"decoder_key": "E653341F9D5BF36F", "sgc": "123456", "base": 1993,
                                "tid_window": 10, "lockout_after": 0})
    assert cfg.vending is None and cfg.decoder_key.ea == "07" and cfg.decoder_key.key.hex() == "e653341f9d5bf36f"
    assert cfg.initial_state().tid_window == 10 and cfg.vend_key() == cfg.decoder_key


@pytest.mark.parametrize("table,key", [
    ({"ea": "08"}, "sts.ea"),
    ({"pan": "600727000000000008"}, "sts.pan"),
    ({"dkga": "03"}, "sts.dkga"),
    ({"dkga": "02"}, "sts.dkga"),  # with the demo EA11
    ({"dkga": "02", "ea": "07"}, "sts.vending_key"),  # 160-bit VK for DES
    ({"base": 2000}, "sts.base"),
    ({"sgc": "12"}, "sts.sgc"),
    ({"ti": "1x"}, "sts.ti"),
    ({"krn": 0}, "sts.krn"),
    ({"kt": 7}, "sts.kt"),
    ({"tid_window": 0}, "sts.tid_window"),
    ({"lockout_after": "5"}, "sts.lockout_after"),
    ({"vending_key": "XYZ"}, "sts.vending_key"),
    ({"decoder_key": "00"}, "sts.decoder_key"),
    ({"decoder_key": "00" * 8, "ea": "11"}, "sts.decoder_key"),
    ({"decoder_key": "00" * 8, "pan": "600727000000000009"}, "sts.pan"),
    ({"colour": "red"}, "sts.colour"),
])
def test_bad_values_name_the_key(table, key):
    with pytest.raises(ConfigError) as e:
        StsConfig.from_table(table)
    assert e.value.key == key
