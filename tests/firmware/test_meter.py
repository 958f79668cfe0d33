"""The whole firmware on a real sqlite file: consumption billed to the account,
friendly credit over a holiday weekend, reconnection on recharge, tokens exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.firmware.events import EventCode
from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.storage import Storage
from bijli.firmware.sts.vend import vend_credit
from bijli.hal.samples import SyntheticSource

CONFIG = MeterConfig.from_dict({})
KEY = CONFIG.sts.vend_key()


def token(amount: str, when: datetime) -> str:
    return vend_credit(KEY, Decimal(amount), subclass=4, time=when).digits


class Rig:
    """A meter on a real state directory with a synthetic load behind its relay."""

    def __init__(self, state, start: datetime, config: MeterConfig = CONFIG):
        self.source = SyntheticSource(sample_rate=config.metrology.sample_rate)
        self.amps = 0.0
        self.storage = Storage.open(state)
        self.meter = Meter(config, self.storage, start, on_relay=self._relay)

    def _relay(self, closed: bool) -> None:
        self.source.set_load(self.amps if closed else 0.0)
        if hasattr(self, "meter"):
            self.meter.on_samples(self.source.read_block(self.source.sample_rate // 5), self.meter.now)

    def load(self, amps: float) -> None:
        self.amps = amps
        self._relay(self.meter.relay.output_state)

    def at(self, when: datetime) -> dict:
        self.meter.advance_to(when)
        return self.meter.status()


def test_holiday_weekend_keeps_supply_on_until_11_on_the_next_working_day_then_recharge_reconnects(tmp_path):
    # Friday 14 June 2024, 17:00; Monday 17 June 2024 is a holiday (Bakrid) in the demo config
    rig = Rig(tmp_path, datetime(2024, 6, 14, 17, 0))
    assert rig.meter.enter_token(token("20", datetime(2024, 6, 14, 16, 0))).word == "accepted"
    rig.load(10)
    friday_night = rig.at(datetime(2024, 6, 14, 23, 0))
    assert Decimal(friday_night["credit"]) < 0, "credit ran out on Friday evening"
    assert friday_night["relay"] == "connected" and friday_night["friendly_now"]
    for when in (datetime(2024, 6, 15, 12), datetime(2024, 6, 16, 12), datetime(2024, 6, 17, 12),
                 datetime(2024, 6, 18, 10, 59)):
        status = rig.at(when)
        assert status["relay"] == "connected", when
        assert status["power_w"] > 2000
    cut = rig.at(datetime(2024, 6, 18, 11, 0))
    assert cut["relay"] != "connected" and cut["power_w"] == 0.0
    debt = Decimal(cut["debt"])
    assert debt > 800  # about 88 hours at 2.3 kW

    # cut stays cut: the evening's friendly hours do not reconnect without credit
    assert rig.at(datetime(2024, 6, 18, 18, 0))["relay"] != "connected"

    outcome = rig.meter.enter_token(token("2000", datetime(2024, 6, 18, 17, 0)))
    assert outcome.word == "accepted"
    # STS amounts are exponent/mantissa coded and rounded up in the customer's favour
    assert Decimal("2000") <= outcome.credit_added < Decimal("2001")
    after = rig.meter.status()
    assert after["relay"] == "connected", "a recharge reconnects at once: no second visit"
    assert after["power_w"] > 2000
    # the debt was recovered first, exactly
    assert Decimal(after["credit"]) == outcome.credit_added - debt
    assert Decimal(after["credit"]) == Decimal(after["total_recharged"]) - Decimal(after["total_charged"])


def test_a_month_of_consumption_is_billed_to_the_paisa(tmp_path):
    # 4000 samples/s puts exactly 80 samples in a 50 Hz cycle, so the synthetic load
    # measures as exactly 1150 W and the month's energy is exact to the Wh
    cfg = MeterConfig.from_dict({"metrology": {"sample_rate": 4000}})
    rig = Rig(tmp_path, datetime(2024, 6, 1, 0, 0), cfg)
    rig.meter.enter_token(token("9000", datetime(2024, 5, 31, 23, 0)))
    rig.load(5)  # 230 V x 5 A = 1150 W
    rig.at(datetime(2024, 7, 1, 0, 0, 1))
    (bill,) = rig.meter.profiles.billing.rows(rig.storage)
    cols = rig.meter.profiles.billing.column_names
    row = dict(zip(cols, bill))
    # 30 days x 24 h x 1.15 kW = 828 kWh, by the demo telescopic slabs:
    #   100 kWh x 4.50 = 450.00; 100 x 5.50 = 550.00; 200 x 7.00 = 1400.00; 428 x 8.00 = 3424.00
    #   fixed charge 30 days x 1.50 = 45.00; duty 6 % of 5869.00 = 352.14
    assert row["active_import"] == 828000
    assert row["billed_amount"] == Decimal("6221.14")
    assert row["billing_date"] == datetime(2024, 7, 1)


def test_state_survives_a_restart_and_a_used_token_stays_used(tmp_path):
    start = datetime(2024, 6, 3, 12, 0)  # a Monday, outside friendly hours
    t = token("500", start - timedelta(hours=1))
    rig = Rig(tmp_path, start)
    assert rig.meter.enter_token(t).word == "accepted"
    rig.load(10)
    before = rig.at(start + timedelta(hours=2))
    rig.meter.shutdown()
    rig.storage.close()

    again = Rig(tmp_path, start + timedelta(hours=2))
    status = again.meter.status()
    assert status["credit"] == before["credit"]
    assert status["energy_import_kwh"] == before["energy_import_kwh"]
    assert again.meter.enter_token(t).word == "used"
    assert Decimal(again.meter.status()["total_recharged"]) == Decimal("500.04")  # 500 rounded up by STS


def test_overflow_keeps_the_token_unused(tmp_path):
    cfg = MeterConfig.from_dict({"prepaid": {"max_balance": "1000"}})
    rig = Rig(tmp_path, datetime(2024, 6, 3, 12, 0), cfg)
    big = token("1500", datetime(2024, 6, 3, 11, 0))
    assert rig.meter.enter_token(big).word == "overflow"
    assert rig.meter.status()["total_recharged"] == "0"
    small = token("900", datetime(2024, 6, 3, 11, 1))
    assert rig.meter.enter_token(small).word == "accepted"


def test_kwh_token_on_a_currency_meter_is_a_function_error_and_changes_nothing(tmp_path):
    rig = Rig(tmp_path, datetime(2024, 6, 3, 12, 0))
    kwh = vend_credit(KEY, Decimal("10"), subclass=0, time=datetime(2024, 6, 3, 11, 0)).digits
    assert rig.meter.enter_token(kwh).word == "function_error"
    assert rig.meter.status()["credit"] == "0"


@pytest.mark.parametrize("mode, expect_after_recharge", [(6, "connected"), (4, "ready")])
def test_recharge_reconnects_at_once_or_on_one_button_press(tmp_path, mode, expect_after_recharge):
    cfg = MeterConfig.from_dict({"relay": {"control_mode": mode}})
    start = datetime(2024, 6, 3, 12, 0)  # Monday noon, not friendly
    rig = Rig(tmp_path, start, cfg)
    rig.load(10)
    assert rig.at(start + timedelta(minutes=1))["relay"] == "ready"  # no credit: cut
    rig.meter.enter_token(token("100", start))
    assert rig.meter.status()["relay"] == expect_after_recharge
    if expect_after_recharge == "ready":
        assert rig.meter.press_button() == "connected"


def test_a_token_from_an_unknown_source_is_refused_and_changes_nothing(tmp_path):
    from bijli.firmware.errors import CommandError
    from bijli.firmware.meter import TokenSource

    rig = Rig(tmp_path, datetime(2024, 6, 14, 16, 0))
    t = token("20", datetime(2024, 6, 14, 16, 0))
    with pytest.raises(CommandError, match="no token source"):
        rig.meter.enter_token(t, "carrier pigeon")
    assert rig.meter.last_token is None and rig.meter.status()["credit"] == "0"
    outcome = rig.meter.enter_token(t, "keypad")
    assert outcome.source is TokenSource.KEYPAD and outcome.accepted
    assert any("via keypad" in str(e.detail) for e in rig.meter.recent_events(5))


def _memory(storage: Storage) -> tuple[dict, list]:
    """Everything a meter's memory holds: its state records and every profile row."""
    kv = dict(storage._db.execute("SELECT key, value FROM kv"))
    rows = list(storage._db.execute("SELECT profile, seq, time, value FROM rows ORDER BY profile, seq"))
    return kv, rows


def test_a_jump_is_one_commit_and_leaves_what_the_step_by_step_walk_leaves(tmp_path):
    """A jump of simulated time is one commit group (one fsync, one seal); inside a group
    opened around it already (as a fleet opens one) the meter commits each step as a
    savepoint instead. Both must leave the same memory, rows and records alike, and the
    same meter: the credit running out on a friendly Friday evening, the cut at 11:00 on
    Tuesday, a jump ending 30 s after a capture (between two saves), a recharge."""
    start = datetime(2024, 6, 14, 17, 0)
    grouped, stepped = Rig(tmp_path / "grouped", start), Rig(tmp_path / "stepped", start)
    first, recharge = token("20", start - timedelta(hours=1)), token("2000", datetime(2024, 6, 18, 10))
    for rig in (grouped, stepped):
        assert rig.meter.enter_token(first).accepted
        rig.load(10)
    for when in (datetime(2024, 6, 15, 12), datetime(2024, 6, 18, 11, 0, 30), datetime(2024, 6, 18, 17, 0, 30)):
        commits = grouped.storage.commit
        a = grouped.at(when)
        assert grouped.storage.commit == commits + 1, "one commit for the whole jump"
        with stepped.storage.group():
            b = stepped.meter.advance_to(when) or stepped.meter.status()
        assert a == b
        assert _memory(grouped.storage) == _memory(stepped.storage)
        assert grouped.meter.volatile().keys() == stepped.meter.volatile().keys()
        assert grouped.meter.progress == stepped.meter.progress and grouped.meter._last_save == stepped.meter._last_save
        if when.day == 18 and when.hour == 11:
            assert a["relay"] != "connected"
            for rig in (grouped, stepped):
                assert rig.meter.enter_token(recharge).accepted
    assert grouped.meter.status()["relay"] == "connected"


def test_a_steps_copy_of_the_meters_records_is_a_deep_copy(tmp_path):
    """Meter._keep copies the mutable records with _copy_record, not copy.deepcopy: the
    copy must equal deepcopy's and share no mutable object with the meter's RAM."""
    import copy
    import dataclasses

    from bijli.firmware.meter import _copy_record

    rig = Rig(tmp_path, datetime(2024, 6, 14, 17, 0))
    rig.load(12.0)
    rig.meter.enter_token(token("20", datetime(2024, 6, 14, 16, 0)))
    rig.at(datetime(2024, 6, 15, 9, 7))  # captures, a midnight, a running block
    rig.meter.log_security(EventCode.AUTHENTICATION_FAILURE, "bad AARQ", "client SAP 48")

    def mutable_ids(v, seen):
        if isinstance(v, (list, dict)) or (dataclasses.is_dataclass(v) and not v.__dataclass_params__.frozen):
            seen.add(id(v))
        items = v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else (
            vars(v).values() if dataclasses.is_dataclass(v) else ())
        for x in items:
            mutable_ids(x, seen)
        return seen

    records = [v for v in vars(rig.meter).values()
               if dataclasses.is_dataclass(v) and not type(v).__dataclass_params__.frozen]
    assert len(records) >= 5  # progress, counters, durations, billing progress, security events
    for v in records:
        kept = _copy_record(v)
        assert kept == copy.deepcopy(v) and kept is not v
        assert not mutable_ids(kept, set()) & mutable_ids(v, set())
