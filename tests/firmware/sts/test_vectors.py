"""Every vector in tests/firmware/sts/data/vectors.json, in both directions, through the library."""

from datetime import datetime

import pytest

from bijli.firmware.sts.ciphers import cipher_for
from bijli.firmware.sts.ciphers.misty1 import Misty1
from bijli.firmware.sts.ciphers.misty1_sboxes import S7, S9
from bijli.firmware.sts.codec import TestFields, TransferFields, open_block, seal_block, split_token, parse_digits
from bijli.firmware.sts.crc import block_crc
from bijli.firmware.sts.decoder import decode
from bijli.firmware.sts.inspector import inspect_token
from bijli.firmware.sts.keys import Pan, VendingKeyMaterial, dkga02, dkga04
from bijli.firmware.sts.results import CreditKind, TestRequest, TokenResultCode
from bijli.firmware.sts.state import DecoderState
from bijli.firmware.sts.tid import datetime_from_tid, tid_from_datetime
from bijli.firmware.sts.vend import vend_test, vend_transfer

from .vectors import sboxes, vectors

V = vectors()


def test_embedded_sboxes_match_the_fact_file():
    s = sboxes()
    assert list(S7) == s["S7"] and list(S9) == s["S9"]


@pytest.mark.parametrize("v", V["crc16"])
def test_crc16(v):
    head = (v["class"] << 48) | (v["subclass"] << 44) | (v["rnd"] << 40) | (v["tid"] << 16) | v["amount_field"]
    crc = block_crc(head, v["class"], v["subclass"])
    assert crc == int(v["crc"], 16)
    data = TransferFields(v["rnd"], v["tid"], v["amount_field"]).pack()
    block = seal_block(v["class"], v["subclass"], data)
    assert block & 0xFFFF == int(v["crc"], 16)
    assert open_block(v["class"], block) == (v["subclass"], data, True)
    assert open_block(v["class"], block ^ 1)[2] is False


@pytest.mark.parametrize("v", V["misty1"])
def test_misty1_both_directions(v):
    m = Misty1(bytes.fromhex(v["key"]))
    assert m.encrypt(int(v["plain"], 16)) == int(v["cipher"], 16)
    assert m.decrypt(int(v["cipher"], 16)) == int(v["plain"], 16)


def test_des_known_answer():
    # FIPS 81 / classic "Now is t" example: single DES, ECB
    des = cipher_for("09", bytes.fromhex("0123456789abcdef"))
    assert des.encrypt(0x4E6F772069732074) == 0x3FA40E8A984D4815
    assert des.decrypt(0x3FA40E8A984D4815) == 0x4E6F772069732074


@pytest.mark.parametrize("v", V["dkga02"])
def test_dkga02(v):
    key = dkga02(bytes.fromhex(v["vk"]), Pan(v["pan"]), v["sgc"], v["ti"], v["krn"], v["kt"])
    assert key.hex().upper() == v["decoder_key"].upper()


@pytest.mark.parametrize("v", V["dkga04"])
def test_dkga04(v):
    key = dkga04(bytes.fromhex(v["vk"]), Pan(v["pan"]), v["sgc"], v["ti"], v["krn"], v["kt"], v["ea"], v["base"])
    assert len(key) * 8 == v["key_bits"]
    assert key.hex() == v["decoder_key"].lower()


def _key(v):
    return VendingKeyMaterial(bytes.fromhex(v["vk"]), Pan(v["pan"]), v["sgc"], v["ti"], v["krn"], v["kt"],
                              v["ea"], v["dkga"], v["base"]).decoder_key()


CREDIT = [v for v in V["tokens"] if v["class"] == 0]
TEST = [v for v in V["tokens"] if v["class"] == 1]


@pytest.mark.parametrize("v", CREDIT, ids=[v["what"] for v in CREDIT])
def test_credit_token_vend(v):
    key = _key(v)
    when = datetime.fromisoformat(v["time"])
    assert tid_from_datetime(when, v["base"]) == v["tid"]
    assert datetime_from_tid(v["tid"], v["base"]) == when
    tok = vend_transfer(key, v["class"], v["subclass"], v["amount_field"], time=when, rnd=v["rnd"])
    assert tok.digits == v["token"]


@pytest.mark.parametrize("v", CREDIT, ids=[v["what"] for v in CREDIT])
def test_credit_token_decode(v):
    key = _key(v)
    info = inspect_token(key, v["token"])
    assert (info.token_class, info.subclass, info.rnd, info.tid, info.amount_field, info.crc_ok) == (
        v["class"], v["subclass"], v["rnd"], v["tid"], v["amount_field"], True)
    assert info.time == datetime.fromisoformat(v["time"])
    result, state = decode(DecoderState(key), v["token"], datetime(2004, 3, 2))
    assert result.code is TokenResultCode.ACCEPT and result.word == "accepted"
    assert result.tid == v["tid"] and result.effect.kind is CreditKind.ELECTRICITY
    assert result.effect.amount_field == v["amount_field"]
    assert state.tids == (v["tid"],)


@pytest.mark.parametrize("v", TEST, ids=[v["what"] for v in TEST])
def test_class1_token_both_directions(v):
    control, mfr = int(v["control"], 16), int(v["mfr"], 16)
    assert vend_test(control, mfr, v["subclass"]).digits == v["token"]
    cls, block = split_token(parse_digits(v["token"]))
    sub, data, ok = open_block(cls, block)
    assert (cls, sub, ok) == (1, v["subclass"], True)
    assert TestFields.unpack(sub, data) == TestFields(v["subclass"], control, mfr)
    # any key: class 1 is not encrypted
    key = _key(CREDIT[0])
    result, _ = decode(DecoderState(key, manufacturer_code=mfr), v["token"], datetime(2026, 11, 1))
    assert result.code is TokenResultCode.ACCEPT
    assert result.effect.control == control
    assert TestRequest.LOAD_SWITCH_TEST in result.effect.requests
