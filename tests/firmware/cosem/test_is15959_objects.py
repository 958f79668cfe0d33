"""The IS 15959-2 single-phase objects issue 11 item 16 found misplaced or missing.

A single-phase meter's voltage and phase current are IEC 62056-6-1's "any phase"
quantities 1.0.12.7.0.255 and 1.0.11.7.0.255 (not L1's 32.7 / 31.7); the number of
available billing periods is 0.0.0.1.1.255; the demand integration period and the
load profiles' recording intervals are 1.0.0.8.0/4/5.255. Codes as listed by the
OBIS table gurux-dlms ships (OBISCodes.txt, the IEC 62056-6-1 general codes).
"""

from __future__ import annotations

from datetime import timedelta

from bijli.dlms import axdr
from bijli.dlms.obis import Obis
from bijli.firmware.cosem import catalogue
from tests.firmware.cosem.test_object_list import START, Rig


def test_the_single_phase_quantities_sit_where_is_15959_lists_them(tmp_path):
    rig = Rig(tmp_path)
    rig.meter.advance_to(START + timedelta(days=1))
    c = rig.client(32)
    names = {e.logical_name for e in c.object_list()}
    assert {Obis.parse("1.0.12.7.0.255"), Obis.parse("1.0.11.7.0.255")} <= names
    assert not {Obis.parse("1.0.32.7.0.255"), Obis.parse("1.0.31.7.0.255")} & names
    assert c.get(3, catalogue.VOLTAGE, 3) == axdr.Structure((axdr.Integer(-2), axdr.Enum(35)))  # 10^-2 V
    assert c.get(3, catalogue.PHASE_CURRENT, 3) == axdr.Structure((axdr.Integer(-2), axdr.Enum(33)))
    assert c.get(3, catalogue.DEMAND_INTEGRATION_PERIOD, 2) == axdr.DoubleLongUnsigned(900)
    assert c.get(3, catalogue.BLOCK_LOAD_CAPTURE_PERIOD, 2) == axdr.DoubleLongUnsigned(900)
    assert c.get(3, catalogue.DAILY_LOAD_CAPTURE_PERIOD, 2) == axdr.DoubleLongUnsigned(86400)
    assert c.get(3, catalogue.AVAILABLE_BILLING_PERIODS, 2) == axdr.Unsigned(0)
    rig.meter.advance_to(START.replace(month=7, day=1) + timedelta(minutes=5))  # the billing date passes
    assert c.get(3, catalogue.AVAILABLE_BILLING_PERIODS, 2) == axdr.Unsigned(1)


def test_billing_programming_and_power_failure_counters_count_for_the_meters_life(tmp_path):
    rig = Rig(tmp_path)
    c = rig.client(48)
    assert [c.get(1, obis, 2).value for obis in (catalogue.BILLING_COUNT, catalogue.PROGRAMMING_COUNT,
                                                 catalogue.POWER_FAILURES)] == [0, 0, 0]
    rig.meter.advance_to(START.replace(month=8, day=1) + timedelta(minutes=5))  # two billing dates
    c.set(22, catalogue.BILLING_SCHEDULE, 4, axdr.Array((axdr.Structure((
        axdr.OctetString(axdr.CosemTime(0, 0, 0, 0).encode()),
        axdr.OctetString(axdr.CosemDate(None, None, 5, None).encode()))),)))  # a programming event
    # the meter was off and comes back later (a restart at an earlier time would be a clock
    # set back, itself a programming event): one power failure
    again = Rig(tmp_path, clock_writable=True, start=START.replace(month=8, day=1) + timedelta(hours=1))
    c = again.client(48)
    assert [c.get(1, obis, 2).value for obis in (catalogue.BILLING_COUNT, catalogue.PROGRAMMING_COUNT,
                                                 catalogue.POWER_FAILURES)] == [2, 1, 1]
