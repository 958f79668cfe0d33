"""Time going backwards (issue 15 item 4): a clock set back, or a meter started again at
an earlier time, is logged with the IEC 62056 clock-adjusted pair (old date/time stamped
before, new date/time stamped after) beside IS 15959's 151; until the clock passes the
latest time the meter has lived its Clock status says "doubtful" and no profile captures,
so every profile keeps strictly increasing capture times."""

from __future__ import annotations

from datetime import datetime, timedelta

from bijli.firmware.events import EventCode, LogKind
from bijli.firmware.meter import CLOCK_STATUS_DOUBTFUL, CLOCK_STATUS_OK, Meter, saved_time
from bijli.firmware.profiles import BLOCK_LOAD, DAILY_LOAD
from bijli.firmware.storage import Storage
from tests.firmware.test_meter import CONFIG, Rig, token

START = datetime(2024, 6, 3, 10, 0)  # a Monday, no holiday, supply on


def _transaction_log(meter: Meter):
    return meter.events.events(meter.storage, LogKind.TRANSACTION)


def _capture_times(meter: Meter, name: str) -> list[datetime]:
    return [r.time for r in meter.storage.rows(name)]


def _strictly_increasing(times: list[datetime]) -> bool:
    return all(a < b for a, b in zip(times, times[1:]))


def test_a_clock_set_back_is_logged_with_the_old_and_the_new_time(tmp_path):
    rig = Rig(tmp_path, START)
    rig.meter.advance_to(START + timedelta(hours=3))
    rig.meter.set_time(START + timedelta(hours=1))
    log = _transaction_log(rig.meter)
    old, new, rtc = log[-3:]
    assert (old.code, old.time) == (EventCode.CLOCK_ADJUSTED_OLD, START + timedelta(hours=3))
    assert (new.code, new.time) == (EventCode.CLOCK_ADJUSTED_NEW, START + timedelta(hours=1))
    assert (rtc.code, rtc.time) == (EventCode.RTC_SET, START + timedelta(hours=1))
    assert "back 2:00:00" in old.detail and old.detail == new.detail
    # both in the transaction log, IS 15959's 151-200 block
    assert EventCode.CLOCK_ADJUSTED_OLD.log is EventCode.CLOCK_ADJUSTED_NEW.log is LogKind.TRANSACTION


def test_a_clock_set_forward_is_logged_the_same_way(tmp_path):
    rig = Rig(tmp_path, START)
    rig.meter.set_time(START + timedelta(days=2))
    old, new, _ = _transaction_log(rig.meter)[-3:]
    assert (old.code, old.time) == (EventCode.CLOCK_ADJUSTED_OLD, START)
    assert (new.code, new.time) == (EventCode.CLOCK_ADJUSTED_NEW, START + timedelta(days=2))
    assert "forward 2 days" in new.detail
    assert rig.meter.clock_status == CLOCK_STATUS_OK  # new time, nothing stamped there yet


def test_after_a_set_back_profiles_keep_increasing_capture_times_and_the_clock_is_doubtful(tmp_path):
    rig = Rig(tmp_path, START)
    assert rig.meter.enter_token(token("5000", START)).word == "accepted"  # supply on throughout
    rig.load(10)
    lived = START + timedelta(days=1, hours=2)  # across a midnight: a daily row too
    rig.meter.advance_to(lived)
    assert rig.meter.clock_status == CLOCK_STATUS_OK
    blocks_before = len(_capture_times(rig.meter, BLOCK_LOAD))
    rig.meter.set_time(START + timedelta(hours=20))  # six hours back
    assert rig.meter.clock_status == CLOCK_STATUS_DOUBTFUL
    energy_before = rig.meter.energy.active_import_wh

    rig.meter.advance_to(lived - timedelta(seconds=1))
    assert rig.meter.clock_status == CLOCK_STATUS_DOUBTFUL  # still short of the mark
    rig.meter.advance_to(lived)  # the re-lived stretch: no capture at an instant already stamped
    assert len(_capture_times(rig.meter, BLOCK_LOAD)) == blocks_before
    rig.meter.advance_to(lived + timedelta(hours=1))
    assert rig.meter.clock_status == CLOCK_STATUS_OK
    assert len(_capture_times(rig.meter, BLOCK_LOAD)) == blocks_before + 4

    for name in (BLOCK_LOAD, DAILY_LOAD):
        times = _capture_times(rig.meter, name)
        assert _strictly_increasing(times), (name, times)
    # the energy of the re-lived hours is metered (registers and account) ...
    assert rig.meter.energy.active_import_wh - energy_before > 7 * 2000
    # ... but no block row carries more than its own quarter hour (about 575 Wh at 10 A)
    rows = rig.meter.profiles.block_load.rows(rig.meter.storage)
    col = rig.meter.profiles.block_load.column_index("active_import")
    assert max(r[col] for r in rows) < 700
    # nor did the re-lived stretch raise the maximum demand above one block's
    assert rig.meter.progress.md_w < 2800


def test_the_doubtful_window_survives_a_restart(tmp_path):
    rig = Rig(tmp_path, START)
    rig.meter.advance_to(START + timedelta(hours=5))
    rig.meter.set_time(START + timedelta(hours=1))
    rig.meter.shutdown()
    rig.storage.close()
    storage = Storage.open(tmp_path)
    try:
        meter = Meter(CONFIG, storage, START + timedelta(hours=1))
        assert meter.clock_status == CLOCK_STATUS_DOUBTFUL
        blocks = len(_capture_times(meter, BLOCK_LOAD))
        meter.advance_to(START + timedelta(hours=5))
        assert len(_capture_times(meter, BLOCK_LOAD)) == blocks
    finally:
        storage.close()


def test_a_restart_at_an_earlier_time_is_a_logged_clock_adjustment(tmp_path):
    rig = Rig(tmp_path, START)
    rig.meter.advance_to(START + timedelta(days=3))
    rig.meter.shutdown()
    rig.storage.close()
    storage = Storage.open(tmp_path)
    try:
        assert saved_time(storage) == START + timedelta(days=3)
        meter = Meter(CONFIG, storage, START)  # the meter comes back three days earlier
        old, new, _ = _transaction_log(meter)[-3:]
        assert (old.code, old.time) == (EventCode.CLOCK_ADJUSTED_OLD, START + timedelta(days=3))
        assert (new.code, new.time) == (EventCode.CLOCK_ADJUSTED_NEW, START)
        power = [e.code for e in meter.events.events(storage, LogKind.POWER)]
        assert power[-2:] == [EventCode.POWER_FAIL, EventCode.POWER_RESTORED]
        assert meter.clock_status == CLOCK_STATUS_DOUBTFUL
    finally:
        storage.close()


def test_a_restart_later_is_a_power_failure_not_an_adjustment(tmp_path):
    rig = Rig(tmp_path, START)
    rig.meter.shutdown()
    rig.storage.close()
    storage = Storage.open(tmp_path)
    try:
        meter = Meter(CONFIG, storage, START + timedelta(hours=2))
        codes = [e.code for e in _transaction_log(meter)]
        assert EventCode.CLOCK_ADJUSTED_OLD not in codes
        assert meter.clock_status == CLOCK_STATUS_OK
    finally:
        storage.close()
