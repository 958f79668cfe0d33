"""Time-of-day tariffs programmed over DLMS (issue 11 item 10).

The utility association writes the passive calendar (Activity calendar attributes 6-9)
and its prices (Charge update_unit_charge), then activates it (activate_passive_calendar
or attribute 10); from then on energy costs what the new calendar says at each hour.
The meter reader may read but not write; a calendar that does not hold together is
refused and changes nothing; a programmed tariff survives a restart.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.dlms import axdr
from bijli.dlms.cosem.payment import ChargeTableElement, UnitCharge
from bijli.dlms.cosem.schedule import DayProfile, DayProfileAction, SeasonProfile, WeekProfile
from bijli.dlms.errors import ServiceError
from bijli.firmware.cosem import catalogue
from bijli.firmware.sts.vend import vend_credit
from bijli.hal.samples import SyntheticSource
from tests.firmware.cosem.test_billing import _feed
from tests.firmware.cosem.test_object_list import Rig

START = datetime(2024, 6, 10, 9, 0)
CAL = catalogue.ACTIVITY_CALENDAR


def _calendar(selector_at_18: int = 2):
    seasons = axdr.Array((SeasonProfile(b"S1", axdr.CosemDateTime(axdr.CosemDate(None, 1, 1, None),
                                                                  axdr.CosemTime(0, 0, 0, 0), None, None),
                                        b"week").to_data(),))
    weeks = axdr.Array((WeekProfile(b"week", (1, 1, 1, 1, 1, 1, 1)).to_data(),))
    days = axdr.Array((DayProfile(1, (
        DayProfileAction(axdr.CosemTime(0, 0, 0, 0), catalogue.TARIFFICATION_SCRIPT_TABLE, 1),
        DayProfileAction(axdr.CosemTime(18, 0, 0, 0), catalogue.TARIFFICATION_SCRIPT_TABLE, selector_at_18),
    )).to_data(),))
    return seasons, weeks, days


PRICES = UnitCharge(3, -2, 3, catalogue.ACTIVE_IMPORT, 2,
                    (ChargeTableElement(b"offpeak", 300), ChargeTableElement(b"peak", 1200))).to_data()


def _program(c, selector_at_18: int = 2) -> None:
    seasons, weeks, days = _calendar(selector_at_18)
    c.action(113, catalogue.CONSUMPTION_CHARGE, 1, PRICES)  # update_unit_charge: the passive prices
    c.set(20, CAL, 6, axdr.OctetString(b"tod-2024"))
    c.set(20, CAL, 7, seasons)
    c.set(20, CAL, 8, weeks)
    c.set(20, CAL, 9, days)


def _cost_of_an_hour(rig, start: datetime) -> Decimal:
    rig.meter.advance_to(start)
    before = rig.meter.account.total_charged
    rig.meter.advance_to(start + timedelta(hours=1))
    return rig.meter.account.total_charged - before


@pytest.fixture
def loaded(tmp_path):
    rig = Rig(tmp_path, {"tariff": {"kind": "flat", "flat_rate": "6", "duty_percent": "0",
                                    "fixed_charge_per_day": "0"}})
    rig.meter.set_time(START)
    rig.meter.enter_token(vend_credit(rig.cfg.sts.vend_key(), Decimal("5000"), subclass=4, time=START).digits)
    _feed(rig, SyntheticSource(sample_rate=rig.cfg.metrology.sample_rate, voltage=230.0, current=10.0, pf=1.0),
          START)
    return rig


def test_a_tod_calendar_written_and_activated_over_dlms_changes_what_energy_costs(loaded, tmp_path):
    rig = loaded
    flat = _cost_of_an_hour(rig, datetime(2024, 6, 10, 10, 0))
    kwh = flat / 6
    assert kwh == pytest.approx(Decimal("2.3"), abs=Decimal("0.01"))
    c = rig.client(48)
    _program(c)
    assert c.get(20, CAL, 6) == axdr.OctetString(b"tod-2024")
    assert c.get(20, CAL, 2) != axdr.OctetString(b"tod")  # nothing changed before activation
    assert _cost_of_an_hour(rig, datetime(2024, 6, 10, 12, 0)) == pytest.approx(flat, abs=Decimal("0.02"))
    c.action(20, CAL, 1, axdr.Integer(0))  # activate_passive_calendar
    assert c.get(20, CAL, 2) == axdr.OctetString(b"tod")
    assert c.get(20, CAL, 5).value == _calendar()[2].value  # the active day profiles are the written ones
    offpeak = _cost_of_an_hour(rig, datetime(2024, 6, 10, 14, 0))
    peak = _cost_of_an_hour(rig, datetime(2024, 6, 10, 19, 0))
    assert offpeak == pytest.approx(kwh * 3, abs=Decimal("0.02"))
    assert peak == pytest.approx(kwh * 12, abs=Decimal("0.02"))
    # the programmed tariff is kept: a restarted meter prices the peak hour the same way
    again = Rig(tmp_path)
    assert again.meter.config.tariff.active.kind.value == "tod"
    assert again.client(32).get(20, CAL, 5).value == _calendar()[2].value


def test_an_activation_time_written_to_attribute_10_switches_the_tariff_then(loaded):
    rig = loaded
    c = rig.client(48)
    _program(c)
    when = datetime(2024, 6, 10, 18, 30)
    c.set(20, CAL, 10, axdr.OctetString(axdr.CosemDateTime.from_datetime(when, clock_status=None).encode()))
    assert axdr.CosemDateTime.decode(c.get(20, CAL, 10).value).to_datetime() == when
    flat = _cost_of_an_hour(rig, datetime(2024, 6, 10, 17, 0))  # before the activation: still flat
    peak = _cost_of_an_hour(rig, datetime(2024, 6, 10, 19, 0))
    assert peak == pytest.approx(flat * 2, abs=Decimal("0.02"))  # 12 against 6 per kWh


def test_the_reader_cannot_program_and_an_inconsistent_calendar_changes_nothing(loaded):
    rig = loaded
    reader = rig.client(32)
    with pytest.raises(ServiceError):
        reader.set(20, CAL, 6, axdr.OctetString(b"x"))
    with pytest.raises(ServiceError):
        reader.action(20, CAL, 1, axdr.Integer(0))
    c = rig.client(48)
    _program(c, selector_at_18=3)  # the price table has two rows: selector 3 names none
    before = rig.meter.config.tariff
    with pytest.raises(ServiceError):
        c.action(20, CAL, 1, axdr.Integer(0))
    assert rig.meter.config.tariff == before
