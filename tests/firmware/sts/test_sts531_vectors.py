"""Every public STS 531-1 compliance (CTSA) token in data/sts531-vectors.json (and the 90 tokens of an
implementation's own public sweep, data/nectar-sweep-vectors.json), both ways, through the library.

Vend: the same key material, time, RND and request give the same 20 digits. Decode: a meter holding that key
accepts the token and reports the fields it was vended with. Key changes: the sections vend to the quoted digits;
a meter fed them (in order and reversed) moves to the new key, and the credit quoted for the new key is accepted.
The file's "source" names where the vectors come from (the facts only were transcribed)."""

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.firmware.sts import vend as v
from bijli.firmware.sts.amount import decode_amount
from bijli.firmware.sts.decoder import decode
from bijli.firmware.sts.errors import KeyMaterialError, VendError
from bijli.firmware.sts.keys import KEN_NEVER, Pan, VendingKeyMaterial
from bijli.firmware.sts.results import (
    ClearCredit, ClearTamper, CreditKind, CreditTransfer, KeyChanged, KeyChangeSection, SetMaxPowerLimit,
    SetPhaseUnbalanceLimit, TestDisplay, TokenResultCode as R,
)
from bijli.firmware.sts.state import DecoderState

from .vectors import DATA

V = json.loads((DATA / "sts531-vectors.json").read_text())
SWEEP = json.loads((DATA / "nectar-sweep-vectors.json").read_text())  # an implementation's own, not 531-1
TRANSFERS, TESTS, KEY_CHANGES = V["transfers"] + SWEEP["transfers"], V["tests"], V["key_changes"]


def material(k: dict, **override) -> VendingKeyMaterial:
    k = {**k, **override}
    return VendingKeyMaterial(bytes.fromhex(k["vk"]), Pan(k["pan"]), k["sgc"], k["ti"], k["krn"], k["kt"], k["ea"],
                              k["dkga"], k["base"], k.get("ken", KEN_NEVER))


def when(t: str) -> datetime:
    return datetime.fromisoformat(t)


def test_the_file_names_its_source_and_holds_every_quoted_token():
    assert "github.com/NectarAPI/tokens-service" in V["source"]["repository"] and len(V["source"]["commit"]) == 40
    tokens = [t["token"] for t in V["transfers"] + TESTS] + [s["token"] for k in KEY_CHANGES for s in k["sections"]]
    assert len(tokens) == 264 and all(len(t) == 20 and t.isdigit() for t in tokens)
    assert SWEEP["source"]["commit"] == V["source"]["commit"] and len(SWEEP["transfers"]) == 90
    ids = {t["id"].split()[2] for t in V["transfers"] + TESTS + KEY_CHANGES}
    assert {"CTSA05", "CTSA11", "CTSA19"} <= ids


# --- class 0 and class 2 transfer-layout tokens --------------------------------------------------------------


def _whole_steps(t) -> bool:
    """A credit request that is a whole number of the kind's 0.1 steps (every 531-1 request is)."""
    return t["class"] != 0 or (Decimal(t["requested"]) * 10) % 1 == 0


def _vend_request(key, t):
    """The token the library vends for the request as the source states it (amount rounded up, as 531-1 does)."""
    cls, sub, at, rnd = t["class"], t["subclass"], when(t["time"]), t["rnd"]
    if cls == 0:
        return v.vend_credit(key, Decimal(t["requested"]), subclass=sub, time=at, rnd=rnd)
    if sub == 0:
        return v.vend_power_limit(key, int(t["requested"]), time=at, rnd=rnd)
    if sub == 6:
        return v.vend_phase_unbalance_limit(key, int(t["requested"]), time=at, rnd=rnd)
    if sub == 1:
        return v.vend_clear_credit(key, t["amount_field"], time=at, rnd=rnd)
    if sub == 5:
        return v.vend_clear_tamper(key, time=at, rnd=rnd)
    raise AssertionError(f"no vend request for class {cls} subclass {sub}")


@pytest.mark.parametrize("t", TRANSFERS, ids=[f"{t['id']} {t['token']}" for t in TRANSFERS])
def test_transfer_vends_to_the_same_digits(t):
    key = material(t["key"]).decoder_key()
    raw = v.vend_transfer(key, t["class"], t["subclass"], t["amount_field"], time=when(t["time"]), rnd=t["rnd"])
    assert raw.digits == t["token"]
    asked = _vend_request(key, t)
    if _whole_steps(t):
        assert (asked.digits, asked.amount_field) == (t["token"], t["amount_field"])
    else:  # the sweep rounds a part-step request to the nearest step; bijli rounds it up, never below the request
        assert asked.amount_field in (t["amount_field"], t["amount_field"] + 1)
        assert decode_amount(asked.amount_field) >= Decimal(t["requested"]) * 10


EFFECT = {(0, s): CreditTransfer for s in range(8)} | {
    (2, 0): SetMaxPowerLimit, (2, 1): ClearCredit, (2, 5): ClearTamper, (2, 6): SetPhaseUnbalanceLimit}


@pytest.mark.parametrize("t", TRANSFERS, ids=[f"{t['id']} {t['token']}" for t in TRANSFERS])
def test_transfer_decodes_on_a_meter_with_that_key(t):
    key = material(t["key"]).decoder_key()
    result, state = decode(DecoderState(key), t["token"], when(t["time"]) + timedelta(hours=1))
    assert result.code is R.ACCEPT, result
    assert (result.token_class, result.subclass, result.tid) == (t["class"], t["subclass"], state.tids[0])
    assert isinstance(result.effect, EFFECT[t["class"], t["subclass"]])
    if t["class"] == 0:
        assert result.effect.kind is CreditKind(t["subclass"]) and result.effect.amount_field == t["amount_field"]
        if _whole_steps(t):
            assert result.effect.value >= Decimal(t["requested"])  # never less than asked for
    # the same token twice: used
    assert decode(state, t["token"], when(t["time"]) + timedelta(hours=2))[0].code is R.USED


# --- class 1: initiate meter test/display -----------------------------------------------------------------


@pytest.mark.parametrize("t", TESTS, ids=[f"{t['id']} {t['token']}" for t in TESTS])
def test_class1_both_ways(t):
    control = int(t["control"], 16)
    assert v.vend_test(control, t["mfr"], t["subclass"]).digits == t["token"]
    any_key = material(TRANSFERS[0]["key"]).decoder_key()  # class 1 is not meter specific
    result, _ = decode(DecoderState(any_key, manufacturer_code=t["mfr"]), t["token"], datetime(2026, 11, 1))
    assert result.code is R.ACCEPT and result.subclass == t["subclass"]
    assert isinstance(result.effect, TestDisplay) and result.effect.control == control


# --- class 2 key change: 2 sections (64-bit keys) or 4 (128-bit) ------------------------------------------


def _new_key(kc):
    n = kc["new"]
    return material(n, ken=n["ken"]).decoder_key()


@pytest.mark.parametrize("kc", KEY_CHANGES, ids=[k["id"] for k in KEY_CHANGES])
def test_key_change_sections_vend_to_the_same_digits(kc):
    current = material(kc["current"]).decoder_key()
    vended = {t.subclass: t.digits for t in v.vend_key_change(current, _new_key(kc), rollover=kc["rollover"])}
    assert len(vended) == (4 if len(current.key) == 16 else 2)
    for s in kc["sections"]:
        assert vended[s["subclass"]] == s["token"], f"section subclass {s['subclass']}"


@pytest.mark.parametrize("order", ["as quoted", "reversed"])
@pytest.mark.parametrize("kc", KEY_CHANGES, ids=[k["id"] for k in KEY_CHANGES])
def test_key_change_decodes_and_the_meter_takes_the_new_key(kc, order):
    current = material(kc["current"]).decoder_key()
    new = _new_key(kc)
    sections = kc["sections"] if order == "as quoted" else kc["sections"][::-1]
    now = datetime(2004, 4, 1, 12) if current.base == 1993 else datetime(current.base, 6, 1)
    state = DecoderState(current)
    for i, s in enumerate(sections):
        result, state = decode(state, s["token"], now)
        assert result.code is R.ACCEPT, (s, result)
        last = kc["complete"] and i == len(sections) - 1
        assert isinstance(result.effect, KeyChanged if last else KeyChangeSection), result.effect
    if not kc["complete"]:
        assert state.key == current and len(state.pending) == len(sections)
        return
    assert state.key == new
    assert (result.effect.sgc, result.effect.krn, result.effect.ti, result.effect.ken) == (
        kc["new"]["sgc"], kc["new"]["krn"], kc["new"]["ti"], kc["new"]["ken"])
    assert result.effect.rollover is kc["rollover"] and result.effect.base == kc["new"]["base"]
    if "credit_after" in kc:
        result, state = decode(state, kc["credit_after"], now)
        assert result.code is R.ACCEPT and isinstance(result.effect, CreditTransfer)
        if new.key != current.key:  # (0.02 CTSA19 step 1 changes only the KEN) the old key no longer takes it
            assert decode(DecoderState(current), kc["credit_after"], now)[0].code is R.CRC_ERROR


def test_128_bit_key_change_carries_the_sgc_as_a_binary_number():
    """531-1 0.04 CTSA19 step 4: SGC 123461 = 0x01E245, low 12 bits (0x245) in section 3, high 12 (0x01E) in 4."""
    from bijli.firmware.sts.inspector import inspect_token

    kc = next(k for k in KEY_CHANGES if k["id"] == "531-1 0.04 CTSA19 step4")
    current = material(kc["current"]).decoder_key()
    parts = {s["subclass"]: inspect_token(current, s["token"]).fields.sgc_part for s in kc["sections"] if s["subclass"] in (8, 9)}
    assert (parts[9] << 12) | parts[8] == 123461 == int(kc["new"]["sgc"])


# --- what the public tests expect to be refused -------------------------------------------------------------


def test_refusals():
    pan_case, ddtk = V["refusals"]
    with pytest.raises(KeyMaterialError):
        Pan(pan_case["pan"])
    key = material(ddtk["key"], ken=ddtk["ken"]).decoder_key()
    with pytest.raises(VendError, match="DDTK"):
        v.vend_credit(key, Decimal(ddtk["requested"]), time=when(ddtk["time"]), rnd=5)
    # and a meter holding a default key refuses credit vended for it anyway
    token = v.vend_transfer(key, 0, 0, 1, time=when(ddtk["time"]), rnd=5)
    assert decode(DecoderState(key), token.digits, when(ddtk["time"]))[0].code is R.KEY_TYPE_NOT_ALLOWED
