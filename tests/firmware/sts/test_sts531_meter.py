"""The public 128-bit key changes on a whole meter (firmware/meter.py): a kWh meter holding the 531-1 0.04
key takes the four public sections of CTSA19 steps 1-4 (step 4 moves it to SGC 123461, carried as a binary
number in sections 3 and 4) and then the public credit for the new key, which the old key refused."""

import json
from datetime import datetime
from decimal import Decimal

import pytest

from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.storage import Storage

from .vectors import DATA

KEY_CHANGES = [k for k in json.loads((DATA / "sts531-vectors.json").read_text())["key_changes"]
               if k["id"].startswith("531-1 0.04 CTSA19")]


def _config(k: dict) -> MeterConfig:
    sts = {"vending_key": k["vk"], "pan": k["pan"], "sgc": k["sgc"], "ti": k["ti"], "krn": k["krn"], "kt": k["kt"],
           "ea": k["ea"], "dkga": k["dkga"], "base": k["base"]}
    return MeterConfig.from_dict({"prepaid": {"unit": "kWh"}, "sts": sts})


@pytest.mark.parametrize("kc", KEY_CHANGES, ids=[k["id"] for k in KEY_CHANGES])
def test_a_meter_takes_the_public_key_change_and_the_credit_for_the_new_key(kc, tmp_path):
    assert len(kc["sections"]) == 4 and "credit_after" in kc
    storage = Storage.open(tmp_path / "state")
    try:
        meter = Meter(_config(kc["current"]), storage, datetime(2004, 4, 1, 10, 30))
        assert meter.enter_token(kc["credit_after"]).word == "crc_error"  # not for the old key
        words = [meter.enter_token(s["token"]) for s in kc["sections"]]
        assert [w.word for w in words] == ["accepted"] * 4, [w.message for w in words]
        assert words[2].message == "key change section 3 of 4 (3 of 4 held)"
        assert meter.sts.key.sgc == kc["new"]["sgc"] and meter.sts.key.krn == kc["new"]["krn"]
        credit = meter.enter_token(kc["credit_after"])
        assert credit.word == "accepted" and credit.credit_added == Decimal("0.1"), credit.message
    finally:
        storage.close()
