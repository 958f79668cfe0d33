"""Billing over DLMS: the period's average power factor and maximum demand (issue 11 item 11).

IS 15959 bills the average power factor of the billing period as kWh / kVAh over the
period, and maximum demand in kW and in kVA (1.0.1.6.0.255, 1.0.9.6.0.255) from the
block demand. A consumer who draws at PF 0.8 for three days and nothing for the four
days before the billing date must be billed PF 0.800 (not the 1.000 of the idle
instant), and the kVA maximum demand of the loaded days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.dlms import axdr
from bijli.firmware.cosem import catalogue
from bijli.firmware.sts.vend import vend_credit
from bijli.hal.samples import SyntheticSource
from tests.firmware.cosem.test_object_list import Rig

START = datetime(2024, 6, 24, 0, 0)  # billing day 1: the period closes on 1 July 00:00


def _feed(rig, source, when):
    """Two seconds of samples ending at ``when`` (the metrology settles on the new load),
    which the meter then holds steady."""
    for i in range(9, -1, -1):
        rig.meter.on_samples(source.read_block(source.sample_rate // 5), when - timedelta(seconds=0.2 * i))


def test_billing_pf_is_kwh_over_kvah_of_the_period_and_md_kva_is_captured(tmp_path):
    rig = Rig(tmp_path, {"tariff": {"billing_day": 1}})
    rig.meter.set_time(START)
    rig.meter.enter_token(vend_credit(rig.cfg.sts.vend_key(), Decimal("5000"), subclass=4, time=START).digits)
    rate = rig.cfg.metrology.sample_rate
    loaded = SyntheticSource(sample_rate=rate, voltage=230.0, current=5.0, pf=0.8)
    idle = SyntheticSource(sample_rate=rate, voltage=230.0, current=0.0)
    _feed(rig, loaded, START)
    rig.meter.advance_to(START + timedelta(days=3))
    _feed(rig, idle, START + timedelta(days=3))
    c = rig.client(32)
    # before the billing date the running period's average already says 0.8, not the idle 1.0
    assert c.get(3, catalogue.BILLING_POWER_FACTOR, 2) == axdr.Long(800)
    rig.meter.advance_to(datetime(2024, 7, 1, 0, 5))
    (row,) = c.get(7, catalogue.BILLING_PROFILE, 2).value
    names = [col.name for col in rig.meter.profiles.billing.capture_objects]
    cells = dict(zip(names, row.value))
    assert cells["average_power_factor"] == axdr.Long(800)
    assert cells["md_active_import"].value == pytest.approx(920, abs=5)  # 230 V x 5 A x 0.8
    assert cells["md_apparent_import"].value == pytest.approx(1150, abs=5)  # 230 V x 5 A
    md_time = axdr.CosemDateTime.decode(cells["md_apparent_import_time"].value).to_datetime()
    assert START < md_time <= START + timedelta(days=3)
    # a new period opened: its demand registers start again and its power factor has no energy yet
    assert c.get(4, catalogue.MD_APPARENT_IMPORT, 2).value == 0
    assert c.get(3, catalogue.BILLING_POWER_FACTOR, 2) == axdr.Long(1000)
