"""The time-of-day registers over DLMS (issue 11 item 16): energy and MD per tariff zone.

IS 15959 bills time of day from the cumulative kWh and kVAh of each tariff zone
(1.0.1.8.1-8.255, 1.0.9.8.1-8.255) and the billing period's MD kW and MD kVA of each
zone (1.0.1.6.1-8.255, 1.0.9.6.1-8.255, with when), captured in the billing profile.
A calendar written and activated over DLMS decides the zones: its script selector n
is zone n. The zones always add up to the totals, the MD of a zone is the highest
block demand that began in it, and the billing date resets the zones' MD (not their
energy). Also here: IS 15959's durations and tamper count (0.0.94.91.x).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bijli.dlms import axdr
from bijli.dlms.cosem.payment import ChargeTableElement, UnitCharge
from bijli.dlms.cosem.schedule import DayProfile, DayProfileAction
from bijli.dlms.cosem.values import date_time_octets
from bijli.dlms.errors import ServiceError
from bijli.firmware.cosem import catalogue
from bijli.firmware.events import EventCode
from bijli.hal.samples import SyntheticSource
from tests.firmware.cosem.test_billing import _feed
from tests.firmware.cosem.test_object_list import Rig
from tests.firmware.cosem.test_tod_programming import CAL, _program, loaded  # noqa: F401 - the fixture

EVENING = datetime(2024, 6, 10, 18, 0)  # the programmed calendar's peak (selector 2) starts here


def _energies(c, totals, tiers) -> tuple[int, list[int]]:
    return c.get(3, totals, 2).value, [c.get(3, obis, 2).value for obis in tiers]


NOT_SPECIFIED = date_time_octets(None)


def _when(octets: axdr.Data) -> datetime:
    return axdr.CosemDateTime.decode(octets.value).to_datetime()


def _source(rig, amps: float) -> SyntheticSource:
    return SyntheticSource(sample_rate=rig.cfg.metrology.sample_rate, voltage=230.0, current=amps, pf=0.8)


def test_two_tiers_get_their_energy_and_demand_and_add_up_to_the_totals(loaded, tmp_path):  # noqa: F811
    rig = loaded  # 10 A at PF 1 from 09:00, flat tariff: one zone
    c = rig.client(48)
    rig.meter.advance_to(datetime(2024, 6, 10, 10, 0))
    total, zones = _energies(c, catalogue.ACTIVE_IMPORT, catalogue.ACTIVE_IMPORT_TIERS)
    assert zones[0] == total == pytest.approx(2300, abs=5) and zones[1:] == [0] * 7  # flat: all in tier 1
    _program(c)  # off-peak from 00:00 (selector 1), peak from 18:00 (selector 2)
    c.action(20, CAL, 1, axdr.Integer(0))
    rig.meter.advance_to(EVENING)
    _feed(rig, _source(rig, 20.0), EVENING + timedelta(seconds=2))  # 3680 W, 4600 VA in the peak
    rig.meter.advance_to(EVENING + timedelta(hours=3))
    total, zones = _energies(c, catalogue.ACTIVE_IMPORT, catalogue.ACTIVE_IMPORT_TIERS)
    assert zones[0] == pytest.approx(9 * 2300, abs=30)  # 09:00-18:00 at 2300 W
    assert zones[1] == pytest.approx(3 * 3680, abs=30)  # 18:00-21:00 at 3680 W
    assert zones[2:] == [0] * 6
    assert sum(zones) == pytest.approx(total, abs=len(zones))  # each zone rounds to the Wh on its own
    vah, vah_zones = _energies(c, catalogue.APPARENT_IMPORT, catalogue.APPARENT_IMPORT_TIERS)
    assert vah_zones[1] == pytest.approx(3 * 4600, abs=30)
    assert sum(vah_zones) == pytest.approx(vah, abs=len(vah_zones))
    # the maximum demand of each zone and when it occurred; the total MD is the highest of them
    md = [c.get(4, obis, 2).value for obis in catalogue.MD_ACTIVE_IMPORT_TIERS]
    assert md[0] == pytest.approx(2300, abs=10) and md[1] == pytest.approx(3680, abs=10) and md[2:] == [0] * 6
    assert c.get(4, catalogue.MD_ACTIVE_IMPORT, 2).value == md[1]
    assert c.get(4, catalogue.MD_APPARENT_IMPORT_TIERS[1], 2).value == pytest.approx(4600, abs=10)
    assert EVENING < _when(c.get(4, catalogue.MD_ACTIVE_IMPORT_TIERS[1], 5)) <= EVENING + timedelta(hours=3)
    assert _when(c.get(4, catalogue.MD_ACTIVE_IMPORT_TIERS[0], 5)) <= EVENING
    assert c.get(4, catalogue.MD_ACTIVE_IMPORT_TIERS[2], 5) == NOT_SPECIFIED
    # the zones are non-volatile: a restarted meter shows the same
    again = Rig(tmp_path, start=EVENING + timedelta(hours=4))
    assert _energies(again.client(32), catalogue.ACTIVE_IMPORT, catalogue.ACTIVE_IMPORT_TIERS)[1] == zones


def test_the_billing_profile_captures_the_zones_and_the_billing_date_resets_their_demand(loaded):  # noqa: F811
    rig = loaded
    c = rig.client(48)
    _program(c)
    c.action(20, CAL, 1, axdr.Integer(0))
    rig.meter.advance_to(EVENING)
    _feed(rig, _source(rig, 20.0), EVENING + timedelta(seconds=2))
    rig.meter.advance_to(datetime(2024, 7, 1, 0, 5))  # billing day 1: the period closed at 00:00
    (row,) = c.get(7, catalogue.BILLING_PROFILE, 2).value
    cells = dict(zip([col.name for col in rig.meter.profiles.billing.capture_objects], row.value))
    kwh = [cells[f"active_import_tz{t}"].value for t in range(1, 9)]
    assert sum(kwh) == pytest.approx(cells["active_import"].value, abs=8) and kwh[0] > 0 and kwh[1] > 0
    kvah = [cells[f"apparent_import_tz{t}"].value for t in range(1, 9)]
    assert sum(kvah) == pytest.approx(cells["apparent_import"].value, abs=8)
    assert cells["md_active_import_tz1"].value == pytest.approx(3680, abs=10)  # the 20 A nights count off-peak
    assert cells["md_active_import_tz2"].value == pytest.approx(3680, abs=10)
    assert cells["md_apparent_import_tz2"].value == pytest.approx(4600, abs=10)
    peak_at = _when(cells["md_active_import_tz2_time"])
    assert peak_at.hour >= 18 and peak_at.date() < datetime(2024, 7, 1).date()
    assert cells["md_active_import_tz3"].value == 0 and cells["md_active_import_tz3_time"] == NOT_SPECIFIED
    assert cells["period_power_on"].value == pytest.approx((datetime(2024, 7, 1) - datetime(2024, 6, 10, 9)) /
                                                           timedelta(minutes=1), abs=1)
    # the billing profile's columns are where the object list says, with their scalers
    (scalers,) = c.get(7, catalogue.BILLING_SCALERS, 2).value
    assert len(scalers.value) == len(c.get(7, catalogue.BILLING_SCALERS, 3).value)
    # a new period: the zones' demand starts again, their energy goes on
    assert [c.get(4, obis, 2).value for obis in catalogue.MD_ACTIVE_IMPORT_TIERS] == [0] * 8
    assert c.get(3, catalogue.ACTIVE_IMPORT_TIERS[0], 2).value >= kwh[0]
    assert c.get(3, catalogue.PERIOD_POWER_ON_DURATION, 2).value == 5


def test_durations_and_the_tamper_count(tmp_path):
    start = datetime(2024, 6, 10, 0, 0)
    rig = Rig(tmp_path, start=start)
    rig.meter.advance_to(start + timedelta(days=1))
    c = rig.client(32)
    assert c.get(3, catalogue.POWER_ON_DURATION, 2) == axdr.DoubleLongUnsigned(1440)
    assert c.get(3, catalogue.POWER_ON_DURATION, 3) == axdr.Structure((axdr.Integer(0), axdr.Enum(6)))  # minutes
    assert c.get(3, catalogue.POWER_FAIL_DURATION, 2).value == 0
    rig.meter.record_event(EventCode.MAGNET, tamper=True)
    rig.meter.record_event(EventCode.MAGNET_RESTORED)  # a restoration is no new tamper
    rig.meter.record_event(EventCode.COVER_OPEN, tamper=True)
    assert c.get(1, catalogue.TAMPER_COUNT, 2) == axdr.DoubleLongUnsigned(2)
    rig.meter.shutdown()
    rig.storage.close()
    # off for two and a half hours
    again = Rig(tmp_path, start=start + timedelta(days=1, hours=2, minutes=30))
    again.meter.advance_to(start + timedelta(days=1, hours=3))
    c = again.client(32)
    assert c.get(3, catalogue.POWER_FAIL_DURATION, 2).value == 150
    assert c.get(3, catalogue.POWER_ON_DURATION, 2).value == 1440 + 30
    assert c.get(1, catalogue.TAMPER_COUNT, 2).value == 2


def test_a_calendar_with_more_zones_than_registers_is_refused_and_changes_nothing(loaded):  # noqa: F811
    rig = loaded
    c = rig.client(48)
    _program(c)
    nine = UnitCharge(3, -2, 3, catalogue.ACTIVE_IMPORT, 2,
                      tuple(ChargeTableElement(f"z{i}".encode(), 100 * i) for i in range(1, 10))).to_data()
    c.action(113, catalogue.CONSUMPTION_CHARGE, 1, nine)
    c.set(20, CAL, 9, axdr.Array((DayProfile(1, tuple(
        DayProfileAction(axdr.CosemTime(h, 0, 0, 0), catalogue.TARIFFICATION_SCRIPT_TABLE, h + 1)
        for h in range(9))).to_data(),)))
    before = rig.meter.config.tariff
    with pytest.raises(ServiceError):
        c.action(20, CAL, 1, axdr.Integer(0))
    assert rig.meter.config.tariff == before
