"""The four payment classes tell one story (issue 11 item 12).

Account (IC 111), the token and emergency Credits (IC 112), the consumption Charge
(IC 113) and the Token gateway (IC 115) are read over DLMS as a consumer goes from
credit, through emergency credit, into friendly-credit debt. At every step the
Blue Book's relations hold: available_credit is what the credits in use hold (never
negative), aggregated_debt is the Charge's total_amount_remaining, the credit in use
is the one whose status says so, a spent credit says exhausted, the emergency credit
is invokable exactly when it says selectable, and each charge taken shows as the
Charge's last collection.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from bijli.dlms import axdr
from bijli.dlms.cosem.payment import CreditConfigurationBit, CreditStatus, CreditStatusBit
from bijli.dlms.errors import ServiceError
from bijli.dlms.obis import Obis
from bijli.firmware.cosem import catalogue
from bijli.firmware.sts.vend import vend_credit
from bijli.hal.samples import SyntheticSource
from tests.firmware.cosem.test_billing import _feed
from tests.firmware.cosem.test_object_list import Rig

START = datetime(2024, 6, 10, 12, 0)  # a Monday; friendly hours from 17:30 keep the supply on into debt


def _bit(bits: axdr.BitString, n: int) -> bool:
    return bits.value[n] == "1"


def _read(c) -> dict:
    acct = {i: c.get(111, catalogue.ACCOUNT, i) for i in (3, 4, 5, 8, 9, 10)}
    credits = {ln: {i: c.get(112, ln, i) for i in (2, 7, 8)} for ln in (catalogue.TOKEN_CREDIT,
                                                                          catalogue.EMERGENCY_CREDIT)}
    charge = {i: c.get(113, catalogue.CONSUMPTION_CHARGE, i) for i in (10, 11, 12)}
    return {"account": acct, "credits": credits, "charge": charge}


def _check(s: dict) -> str:
    """The Blue Book relations between the classes; returns the state's name."""
    acct, credits, charge = s["account"], s["credits"], s["charge"]
    available, debt = acct[5].value, acct[8].value
    refs = [Obis_of(x) for x in acct[9].value]
    assert refs == [catalogue.TOKEN_CREDIT, catalogue.EMERGENCY_CREDIT]
    assert [Obis_of(x) for x in acct[10].value] == [catalogue.CONSUMPTION_CHARGE]
    assert available >= 0 and debt >= 0 and not (available > 0 and debt > 0)
    assert debt == charge[12].value, "aggregated_debt is the Charge's total_amount_remaining"
    in_use = [ln for ln, cr in credits.items() if cr[8].value in (CreditStatus.IN_USE, CreditStatus.SELECTED_INVOKED)]
    assert available == sum(credits[ln][2].value for ln in in_use), "available_credit sums the credits in use"
    current = refs[acct[3].value - 1]
    token, emergency = credits[catalogue.TOKEN_CREDIT], credits[catalogue.EMERGENCY_CREDIT]
    assert (token[8].value == CreditStatus.EXHAUSTED) == (token[2].value == 0)
    if emergency[8].value in (CreditStatus.IN_USE, CreditStatus.EXHAUSTED):
        assert current == catalogue.EMERGENCY_CREDIT
    else:
        assert current == catalogue.TOKEN_CREDIT
    status = acct[4]
    assert _bit(status, CreditStatusBit.IN_CREDIT) == (available > 0) != _bit(status, CreditStatusBit.OUT_OF_CREDIT)
    assert _bit(status, CreditStatusBit.NEXT_CREDIT_SELECTABLE) == (emergency[8].value == CreditStatus.SELECTABLE)
    assert _bit(token[7], CreditConfigurationBit.TOKENS) and not _bit(emergency[7], CreditConfigurationBit.TOKENS)
    assert _bit(emergency[7], CreditConfigurationBit.CONFIRMATION_REQUIRED)
    assert _bit(emergency[7], CreditConfigurationBit.PAID_BACK)
    if debt > 0:
        return "debt"
    if current == catalogue.EMERGENCY_CREDIT:
        return "emergency"
    return "credit"


def Obis_of(v) -> Obis:
    return Obis(*v.value)


def test_account_credits_and_charge_agree_in_credit_in_emergency_credit_and_in_debt(tmp_path):
    rig = Rig(tmp_path, {"tariff": {"kind": "flat", "flat_rate": "6", "duty_percent": "0",
                                    "fixed_charge_per_day": "0"}})
    rig.meter.set_time(START)
    c = rig.client(48)
    rig.meter.enter_token(vend_credit(rig.cfg.sts.vend_key(), Decimal("100"), subclass=4, time=START).digits)
    _feed(rig, SyntheticSource(sample_rate=rig.cfg.metrology.sample_rate, voltage=230.0, current=10.0, pf=1.0),
          START)
    seen, invoked, refused = [], False, 0
    last_collection = None
    t = START
    while t < START + timedelta(hours=14):
        t += timedelta(minutes=10)
        rig.meter.advance_to(t)
        s = _read(c)
        seen.append(_check(s))
        collected = s["charge"][10]
        assert collected != last_collection, "each charge taken is the Charge's last collection"
        assert s["charge"][11].value > 0
        last_collection = collected
        status = s["credits"][catalogue.EMERGENCY_CREDIT][8].value
        if not invoked:
            # invokable exactly when it says selectable
            try:
                c.action(112, catalogue.EMERGENCY_CREDIT, 3, axdr.Enum(CreditStatus.SELECTED_INVOKED))
            except ServiceError:
                assert status != CreditStatus.SELECTABLE
                refused += 1
            else:
                assert status == CreditStatus.SELECTABLE
                invoked = True
                after = _read(c)
                assert after["credits"][catalogue.EMERGENCY_CREDIT][8].value == CreditStatus.SELECTED_INVOKED
                _check(after)
    assert invoked and refused
    assert {"credit", "emergency", "debt"} <= set(seen), seen
    assert seen.index("credit") < seen.index("emergency") < seen.index("debt")
