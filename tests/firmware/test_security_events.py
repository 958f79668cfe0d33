"""The security log and its rate limit (issue 14 item 4), and the lockout record kept in the
meter's memory (item 5), on a real meter and a real sqlite state directory."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bijli.dlms.lockout import Lockout, LockoutPolicy, LockoutRecord
from bijli.firmware.cosem.associations import LOCKOUT_KEY, lockout
from bijli.firmware.errors import StorageError
from bijli.firmware.events import (SECURITY_SOURCES, SECURITY_WINDOW, EventCode, LogKind, OTHER_SOURCES,
                                   SecurityEvents)
from bijli.firmware.meter import Meter
from bijli.firmware.profiles import ProfileError
from bijli.firmware.records import from_record, to_record
from bijli.firmware.storage import Storage
from bijli.tools.node import config as config_mod

T0 = datetime(2024, 6, 10, 10, 0)


@pytest.fixture
def meter(tmp_path):
    storage = Storage.open(tmp_path / "state")
    yield Meter(config_mod.load(None).meter, storage, T0)
    storage.close()


def test_the_first_of_a_window_is_logged_and_the_rest_counted():
    agg = SecurityEvents()
    rows = [agg.take(EventCode.AUTHENTICATION_FAILURE, "client SAP 32 tcp 10.0.0.1", "wrong LLS password",
                     T0 + timedelta(seconds=n)) for n in range(50)]
    assert rows[0] == [(EventCode.AUTHENTICATION_FAILURE, "client SAP 32 tcp 10.0.0.1: wrong LLS password")]
    assert all(r == [] for r in rows[1:]) and agg.counting == 49
    assert agg.due(T0 + SECURITY_WINDOW - timedelta(seconds=1)) == []
    ((code, detail),) = agg.due(T0 + SECURITY_WINDOW)
    assert code is EventCode.SECURITY_EVENTS_REPEATED
    assert detail == ("49 more 351 from client SAP 32 tcp 10.0.0.1, 2024-06-10T10:00:01 to 2024-06-10T10:00:49; "
                      "last: wrong LLS password")
    assert agg.counting == 0
    # the next one opens a new window, logged at once
    assert agg.take(EventCode.AUTHENTICATION_FAILURE, "client SAP 32 tcp 10.0.0.1", "x", T0 + SECURITY_WINDOW) != []


def test_sources_are_told_apart_up_to_a_limit_and_the_clock_set_back_ends_a_window():
    agg = SecurityEvents()
    logged = []
    for n in range(SECURITY_SOURCES + 5):
        for _ in range(3):
            logged += agg.take(EventCode.AUTHENTICATION_FAILURE, f"peer {n}", "bad", T0)
    assert len(logged) == SECURITY_SOURCES + 1  # one each, then one for all further sources
    assert logged[-1][1].startswith(OTHER_SOURCES)
    rows = agg.due(T0 - timedelta(hours=1))  # the clock went back: every window ends
    assert len(rows) == SECURITY_SOURCES + 1 and agg.counting == 0
    assert any(d.startswith(f"14 more 351 from {OTHER_SOURCES}") for _, d in rows)  # 5 sources x 3 less the first
    with pytest.raises(ProfileError):
        SecurityEvents(window=timedelta(0))


def test_the_meter_keeps_security_rows_out_of_the_tamper_log_and_writes_once_per_window(meter):
    meter.record_event(EventCode.MAGNET, tamper=True)
    commits = meter.storage.commit  # the monotonic commit counter of the state database
    for _ in range(300):
        meter.log_security(EventCode.AUTHENTICATION_FAILURE, "wrong LLS password", "client SAP 32 tcp 10.0.0.9")
    assert meter.storage.commit == commits + 1  # one write for 300 events
    assert [e.code for e in meter.events.events(meter.storage, LogKind.OTHER)] == [EventCode.MAGNET]
    assert [e.code for e in meter.events.events(meter.storage, LogKind.SECURITY)] == [EventCode.AUTHENTICATION_FAILURE]
    meter.shutdown()  # a clean stop logs the tally still open
    security = meter.events.events(meter.storage, LogKind.SECURITY)
    assert [e.code for e in security] == [EventCode.AUTHENTICATION_FAILURE, EventCode.SECURITY_EVENTS_REPEATED]
    assert security[1].detail.startswith("299 more 351 from client SAP 32 tcp 10.0.0.9")


def test_old_security_rows_in_the_other_log_still_read(meter):
    with meter.storage.transaction() as tx:
        meter.events.profiles[LogKind.OTHER].capture(tx, T0, {"event_code": 231, "detail": "client SAP 32: x",
                                                              "voltage": None, "current": None,
                                                              "power_factor": None, "active_import": None})
    (old,) = meter.events.events(meter.storage, LogKind.OTHER)
    assert old.code is EventCode.RETIRED_AUTHENTICATION_FAILURE


def test_the_lockout_record_is_kept_in_the_meter_and_read_back(meter):
    table = lockout(meter, now=50.0)
    for _ in range(3):
        table.failed("tcp 10.0.0.66", 32, 50.0)
    stored = meter.storage.get(LOCKOUT_KEY)
    assert from_record(LockoutRecord, stored) == table.snapshot(50.0)
    again = lockout(meter, now=9.0)  # after a restart: another monotonic clock
    assert again.waiting("tcp 10.0.0.66", 32, 9.0) == pytest.approx(5.0)
    assert again.policy == LockoutPolicy(allowance=meter.config.dlms.lockout_after,
                                         max_delay=meter.config.dlms.lockout_minutes * 60.0)


@pytest.mark.parametrize("bad", [{}, {"peers": "x", "alarms": []},
                                 {"peers": [{"peer": "p", "client_sap": 32, "state": 2, "failures": -4,
                                             "strikes": 1, "wait_s": 5.0, "idle_s": 0.0}], "alarms": []}])
def test_a_damaged_lockout_record_stops_with_a_storage_error(meter, bad):
    meter.keep_setting(LOCKOUT_KEY, bad)
    with pytest.raises(StorageError):
        lockout(meter, now=0.0)


def test_the_record_is_plain_data():
    table = Lockout()
    table.failed("tcp 10.0.0.1", 48, 0.0)
    record = to_record(table.snapshot(1.0))
    assert record == {"peers": [{"peer": "tcp 10.0.0.1", "client_sap": 48, "state": 1, "failures": 1, "strikes": 0,
                                 "wait_s": 0.0, "idle_s": 1.0}],
                      "alarms": [{"client_sap": 48, "failures": 1, "window_age_s": 1.0, "alarm_left_s": 0.0}]}
