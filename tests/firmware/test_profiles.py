"""Profiles, selective access, capture schedules and event logs on real sqlite storage."""

import itertools
import time as _time
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.firmware.errors import ConfigError
from bijli.firmware.events import SNAPSHOT, Event, EventCode, EventLog, LogKind
from bijli.firmware.profiles import (
    BILLING,
    BLOCK_LOAD,
    CLOCK,
    DAILY_LOAD,
    BlockAverager,
    CaptureObject,
    ColumnKind,
    EntryRange,
    MonthlySchedule,
    PeriodicSchedule,
    Profile,
    ProfileConfig,
    ProfileError,
    ProfileSet,
    ValueRange,
    block_load_values,
    cumulative_values,
)
from bijli.firmware.storage import Storage
from bijli.firmware.tiers import TierRegisters

T0 = datetime(2024, 1, 1, 0, 0)
_names = itertools.count()


@pytest.fixture
def storage(tmp_path):
    s = Storage.open(tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def shared_storage(tmp_path_factory):
    """One database for Hypothesis examples; each example uses a fresh profile name."""
    s = Storage.open(tmp_path_factory.mktemp("hyp"))
    yield s
    s.close()


def simple(capacity, name=None):
    return Profile(name or f"p{next(_names)}", "0.0.99.128.0.255",
                   (CLOCK, CaptureObject("n", 1, "0.0.96.128.0.255")), capacity)


# ------------------------------------------------------------------ FIFO


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity=st.integers(1, 12), k=st.integers(0, 15))
def test_fifo_drops_the_oldest_and_keeps_order(shared_storage, capacity, k):
    p = simple(capacity)
    with shared_storage.transaction() as tx:
        for n in range(capacity + k):
            p.capture(tx, T0 + timedelta(minutes=n), {"n": n})
    assert p.entries_in_use(shared_storage) == capacity
    assert p.rows(shared_storage) == [[T0 + timedelta(minutes=n), n] for n in range(k, capacity + k)]


def test_reset_and_entries_in_use(storage):
    p = simple(5)
    with storage.transaction() as tx:
        for n in range(3):
            p.capture(tx, T0 + timedelta(minutes=n), [T0 + timedelta(minutes=n), n])
    assert p.entries_in_use(storage) == 3
    with storage.transaction() as tx:
        p.reset(tx)
    assert p.entries_in_use(storage) == 0 and p.rows(storage) == []
    with storage.transaction() as tx:
        p.capture(tx, T0, {"n": 9})
    assert p.rows(storage, EntryRange()) == [[T0, 9]]


def test_capture_rejects_bad_rows(storage):
    p = simple(5)
    with storage.transaction() as tx:
        with pytest.raises(ProfileError):
            p.capture(tx, T0, {"n": 1, "bogus": 2})
        with pytest.raises(ProfileError):
            p.capture(tx, T0, {})
        with pytest.raises(ProfileError):
            p.capture(tx, T0, [T0])
    with pytest.raises(ConfigError):
        Profile("x", "0.0.0.0.0.0", (CLOCK, CLOCK), 3)
    with pytest.raises(ConfigError):
        simple(0)


def test_non_rollover_keeps_the_first(storage):
    p = Profile("nr", "0.0.99.98.5.255", (CLOCK, CaptureObject("n", 1, "0.0.96.11.5.255")), 2, rollover=False)
    with storage.transaction() as tx:
        assert p.capture(tx, T0, {"n": 1}, storage) == 1
        assert p.capture(tx, T0 + timedelta(1), {"n": 2}, storage) == 2
        assert p.capture(tx, T0 + timedelta(2), {"n": 3}, storage) is None
        with pytest.raises(ProfileError):
            p.capture(tx, T0, {"n": 4})  # cannot tell how full it is without storage
    assert [r[1] for r in p.rows(storage)] == [1, 2]


def test_rows_survive_close_and_reopen(tmp_path):
    ps = ProfileSet.standard()
    billing_row = {
        "average_power_factor": Decimal("0.97"),
        **{n: Decimal(i) for i, n in enumerate(["active_import", "active_export", "reactive_lag",
                                                "reactive_lead", "apparent_import", "apparent_export"])},
        "md_active_import": 3.25, "md_active_import_time": datetime(2024, 1, 17, 19, 30),
        "md_apparent_import": 3.5, "md_apparent_import_time": datetime(2024, 1, 17, 19, 30),
        # the time-of-day columns: one tier with energy and a maximum demand, the rest empty
        **TierRegisters.starting_at(0.0, 0.0).add_energy(5.0, 6.0, [(2, 1.0)])
        .note_demand(2, 3.25, 3.5, datetime(2024, 1, 17, 19, 30)).billing_values(),
        "period_power_on": 44640,
        "billed_amount": Decimal("812.40"), "balance_amount": Decimal("-3.10"),
    }
    s = Storage.open(tmp_path)
    with s.transaction() as tx:
        ps.billing.capture(tx, datetime(2024, 2, 1), billing_row)
        ps.daily_load.capture(tx, datetime(2024, 2, 1), cumulative_values({n: 1.5 for n in billing_row
                                                                           if n.startswith(("active", "re", "app"))}))
    before = (ps.billing.rows(s), ps.daily_load.rows(s))
    s.close()
    assert (tmp_path / "meter.db").is_file()
    s = Storage.open(tmp_path)
    after = (ps.billing.rows(s), ps.daily_load.rows(s))
    s.close()
    assert after == before
    assert after[0][0][0] == datetime(2024, 2, 1)
    assert after[0][0][-2] == Decimal("812.40") and isinstance(after[0][0][-2], Decimal)
    cells = dict(zip(ps.billing.column_names, after[0][0]))
    assert (cells["active_import_tz2"], cells["apparent_import_tz2"], cells["md_active_import_tz2_time"]) == (
        5, 6, datetime(2024, 1, 17, 19, 30))
    assert cells["md_active_import_tz1_time"] is None and cells["period_power_on"] == 44640


# ------------------------------------------------------------------ selective access


def clock_third():
    """A profile whose clock is not the first column, with a second date-time column."""
    return Profile(
        f"ct{next(_names)}", "0.0.99.128.1.255",
        (
            CaptureObject("energy", 3, "1.0.1.8.0.255"),
            CaptureObject("md_time", 4, "1.0.1.6.0.255", 5, kind=ColumnKind.TIME),
            CLOCK,
            CaptureObject("n", 1, "0.0.96.128.0.255"),
        ),
        capacity=50,
    )


def fill_clock_third(storage, p, count=10):
    with storage.transaction() as tx:
        for n in range(count):
            now = T0 + timedelta(hours=n)
            # md_time runs backwards so a range on it cannot pass by reading the clock
            p.capture(tx, now, {"energy": n * 10, "md_time": T0 - timedelta(days=n), "n": n})


def test_range_on_clock_that_is_not_the_first_column(storage):
    p = clock_third()
    fill_clock_third(storage, p)
    clock_col = p.find_column(8, "0.0.1.0.0.255", 2)
    assert clock_col == 2
    got = p.rows(storage, ValueRange(clock_col, T0 + timedelta(hours=3), T0 + timedelta(hours=5)))
    assert [r[3] for r in got] == [3, 4, 5]
    got = p.rows(storage, ValueRange("clock", T0 + timedelta(hours=3, minutes=1), T0 + timedelta(hours=5),
                                          selected_values=("n", "clock")))
    assert got == [[4, T0 + timedelta(hours=4)], [5, T0 + timedelta(hours=5)]]
    assert p.rows(storage, ValueRange("clock", T0 + timedelta(days=5), T0 + timedelta(days=6))) == []


def test_range_on_another_time_column_and_a_value_column(storage):
    p = clock_third()
    fill_clock_third(storage, p)
    got = p.rows(storage, ValueRange(p.find_column(4, "1.0.1.6.0.255", 5),
                                          T0 - timedelta(days=4), T0 - timedelta(days=2), ("n",)))
    assert got == [[2], [3], [4]]
    assert p.rows(storage, ValueRange("energy", 25, 50, ("n",))) == [[3], [4], [5]]
    with pytest.raises(ProfileError):
        p.rows(storage, ValueRange("md_time", 1, 2))  # datetime vs int
    with pytest.raises(ProfileError):
        p.rows(storage, ValueRange("clock", 1, 2))
    with pytest.raises(ProfileError):
        p.rows(storage, ValueRange("nope", T0, T0))
    with pytest.raises(ProfileError):
        p.find_column(3, "1.0.2.8.0.255", 2)


def test_range_on_billing_date(storage):
    ps = ProfileSet.standard()
    row = {c.name: 0 for c in ps.billing.capture_objects if c.kind is not ColumnKind.CAPTURE_TIME}
    with storage.transaction() as tx:
        for month in range(1, 13):
            ps.billing.capture(tx, datetime(2023, month, 1), row)
    got = ps.billing.rows(storage, ValueRange("billing_date", datetime(2023, 3, 1), datetime(2023, 5, 15),
                                                   ("billing_date",)))
    assert got == [[datetime(2023, 3, 1)], [datetime(2023, 4, 1)], [datetime(2023, 5, 1)]]


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(0, 12), capacity=st.integers(1, 8),
    from_entry=st.integers(1, 14), to_entry=st.integers(0, 14),
    from_col=st.integers(1, 5), to_col=st.integers(0, 5),
)
def test_entry_descriptor_against_slicing(shared_storage, n, capacity, from_entry, to_entry, from_col, to_col):
    p = clock_third()
    p = Profile(p.name, p.logical_name, p.capture_objects, capacity)
    with shared_storage.transaction() as tx:
        for k in range(n):
            p.capture(tx, T0 + timedelta(hours=k), {"energy": k, "md_time": T0, "n": k})
    kept = list(range(max(0, n - capacity), n))
    full = [[k, T0, T0 + timedelta(hours=k), k] for k in kept]
    # reference: entries 1-based, 0 = to the last; same for columns
    last_e = len(full) if to_entry == 0 else to_entry
    last_c = 4 if to_col == 0 else min(to_col, 4)
    expected = [] if from_col > last_c else [r[from_col - 1:last_c] for r in full[from_entry - 1:last_e]]
    assert p.rows(shared_storage, EntryRange(from_entry, to_entry, from_col, to_col)) == expected


def test_entry_descriptor_examples_and_errors(storage):
    p = clock_third()
    fill_clock_third(storage, p, 5)
    assert p.rows(storage, EntryRange(5, 0, 4, 4)) == [[4]]  # "the last entry"
    assert p.rows(storage, EntryRange(2, 3, 1, 1)) == [[10], [20]]
    assert p.rows(storage, EntryRange(4, 2)) == []
    with pytest.raises(ProfileError):
        p.rows(storage, EntryRange(0, 1))
    with pytest.raises(ProfileError):
        p.rows(storage, EntryRange(1, -1))


# ------------------------------------------------------------------ schedules

moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31))


@given(moments)
def test_block_load_boundaries_15_min(now):
    nxt = ProfileSet.standard().scheduler().schedules[BLOCK_LOAD].next_after(now)
    assert nxt > now and nxt - now <= timedelta(minutes=15)
    assert nxt.minute in (0, 15, 30, 45) and nxt.second == 0 and nxt.microsecond == 0


@given(moments)
def test_block_load_boundaries_30_min_and_daily(now):
    sched = ProfileSet.standard(ProfileConfig(block_load_period=1800)).scheduler()
    nxt = sched.schedules[BLOCK_LOAD].next_after(now)
    assert nxt > now and nxt - now <= timedelta(minutes=30) and nxt.minute in (0, 30) and nxt.second == 0
    day = sched.schedules[DAILY_LOAD].next_after(now)
    assert day == datetime.combine(now.date() + timedelta(days=1), time(0))


def test_next_capture_examples():
    sched = ProfileSet.standard().scheduler()
    c = sched.next_capture(datetime(2024, 3, 5, 10, 7, 12))
    assert c.time == datetime(2024, 3, 5, 10, 15) and c.profiles == (BLOCK_LOAD,)
    c = sched.next_capture(datetime(2024, 3, 5, 10, 15))  # on a boundary: the next one
    assert c.time == datetime(2024, 3, 5, 10, 30)
    c = sched.next_capture(datetime(2024, 3, 5, 23, 59, 59))
    assert c.time == datetime(2024, 3, 6) and set(c.profiles) == {BLOCK_LOAD, DAILY_LOAD}
    c = sched.next_capture(datetime(2024, 3, 31, 23, 45))
    assert c.time == datetime(2024, 4, 1) and set(c.profiles) == {BLOCK_LOAD, DAILY_LOAD, BILLING}
    assert PeriodicSchedule(7 * 60).next_after(datetime(2024, 1, 1, 23, 55)) == datetime(2024, 1, 2)


@given(st.sampled_from([900, 1800]), st.lists(moments, min_size=1, max_size=30))
def test_a_scheduler_that_remembers_its_answers_answers_as_a_fresh_one(period, asked):
    """ProfileScheduler keeps each schedule's last answer for the walk's next question: any
    order of questions (forward, on a boundary, time set back) must get what a scheduler
    asked for the first time answers."""
    config = ProfileConfig(block_load_period=period)
    kept = ProfileSet.standard(config).scheduler()
    for now in sorted(asked)[: len(asked) // 2] + asked:  # a walk forward, then at random
        assert kept.next_capture(now) == ProfileSet.standard(config).scheduler().next_capture(now)


@given(st.integers(1, 31), st.integers(0, 23), moments)
def test_billing_on_the_configured_date(day, hour, now):
    s = MonthlySchedule(day, time(hour))
    nxt = s.next_after(now)
    assert now < nxt <= now + timedelta(days=32)
    last_day = (date(nxt.year + nxt.month // 12, nxt.month % 12 + 1, 1) - timedelta(days=1)).day
    assert nxt.day == min(day, last_day) and (nxt.hour, nxt.minute) == (hour, 0)


def test_billing_examples():
    assert MonthlySchedule().next_after(datetime(2024, 1, 15)) == datetime(2024, 2, 1)
    assert MonthlySchedule(5).next_after(datetime(2024, 1, 4, 23)) == datetime(2024, 1, 5)
    assert MonthlySchedule(31).next_after(datetime(2024, 2, 1)) == datetime(2024, 2, 29)
    assert MonthlySchedule(31).next_after(datetime(2024, 12, 31)) == datetime(2025, 1, 31)
    with pytest.raises(ConfigError):
        MonthlySchedule(0)
    with pytest.raises(ConfigError):
        ProfileSet.standard(ProfileConfig(block_load_period=600))
    with pytest.raises(ConfigError):
        ProfileSet.standard(ProfileConfig(billing_day=32))


def test_a_month_of_captures_is_cheap(storage):
    """January stepped boundary to boundary: 2976 blocks, 31 days, 1 bill, in seconds."""
    ps = ProfileSet.standard(ProfileConfig(billing_day=15))
    sched = ps.scheduler()
    start, end = datetime(2024, 1, 1), datetime(2024, 2, 1)
    t0 = _time.perf_counter()
    captures = sched.due(start, end)
    cum = {n: 0.0 for n in ("active_import", "active_export", "reactive_lag", "reactive_lead",
                            "apparent_import", "apparent_export")}
    billing_row = {c.name: 0 for c in ps.billing.capture_objects if c.kind is not ColumnKind.CAPTURE_TIME}
    with storage.transaction() as tx:
        for c in captures:
            prev = dict(cum)
            cum = {n: v + 0.25 for n, v in cum.items()}
            for name in c.profiles:
                if name == BLOCK_LOAD:
                    values = block_load_values(prev, cum, BlockAverager().add(230.0, 4.0, 900))
                    ps.block_load.capture(tx, c.time, values)
                elif name == DAILY_LOAD:
                    ps.daily_load.capture(tx, c.time, cumulative_values(cum))
                else:
                    ps.billing.capture(tx, c.time, billing_row)
    elapsed = _time.perf_counter() - t0
    assert len([c for c in captures if BLOCK_LOAD in c.profiles]) == 31 * 96
    assert ps.block_load.entries_in_use(storage) == 30 * 96  # capacity: 30 days, FIFO
    assert ps.daily_load.entries_in_use(storage) == 31
    assert [r[0] for r in ps.billing.rows(storage)] == [datetime(2024, 1, 15)]
    first = ps.block_load.rows(storage, EntryRange(1, 1))[0]
    assert first[0] == datetime(2024, 1, 2, 0, 15) and first[1] == 230.0 and first[3] == 0.25
    assert ps.daily_load.rows(storage)[-1][0] == datetime(2024, 2, 1)
    assert elapsed < 5.0, elapsed


def test_block_averager():
    a = BlockAverager().add(240, 5, 600).add(210, 2, 300).add(999, 99, 0)
    assert a.voltage == pytest.approx(230) and a.current == pytest.approx(4)
    assert BlockAverager.from_dict(a.to_dict()) == a
    assert BlockAverager().voltage == 0.0
    with pytest.raises(ProfileError):
        block_load_values({}, {}, a)


# ------------------------------------------------------------------ event logs

# IS 15959 style routing, as literal data: code -> OBIS of its log
EXPECTED_LOG = {
    1: "0.0.99.98.0.255", 7: "0.0.99.98.0.255", 10: "0.0.99.98.0.255",
    51: "0.0.99.98.1.255", 67: "0.0.99.98.1.255",
    101: "0.0.99.98.2.255", 102: "0.0.99.98.2.255",
    151: "0.0.99.98.3.255", 158: "0.0.99.98.3.255", 171: "0.0.99.98.3.255", 172: "0.0.99.98.3.255",
    173: "0.0.99.98.3.255",
    201: "0.0.99.98.4.255", 203: "0.0.99.98.4.255", 231: "0.0.99.98.4.255", 232: "0.0.99.98.4.255",
    251: "0.0.99.98.5.255",
    301: "0.0.99.98.6.255", 302: "0.0.99.98.6.255",
    # bijli's security log: what unauthenticated peers can cause never shares a FIFO with tamper rows
    351: "0.0.99.98.7.255", 352: "0.0.99.98.7.255", 354: "0.0.99.98.7.255",
}


def test_event_codes_route_to_the_right_logs(storage):
    log = EventLog()
    with storage.transaction() as tx:
        for i, code in enumerate(EXPECTED_LOG):
            log.record(tx, Event(code, T0 + timedelta(minutes=i), f"d{code}"), storage=storage)
    found = {}
    for kind, profile in log.profiles.items():
        for row in profile.rows(storage):
            found[row[1]] = profile.logical_name
            assert row[2] == f"d{row[1]}"
    assert found == EXPECTED_LOG


def test_every_code_is_in_its_block_of_50():
    blocks = [(1, 50), (51, 100), (101, 150), (151, 200), (201, 250), (251, 300), (301, 350), (351, 400)]
    for code in EventCode:
        lo, hi = blocks[code.log]
        assert lo <= code <= hi
        assert code.description


def test_event_values_and_snapshot(storage):
    log = EventLog({LogKind.TRANSACTION: 3})
    with storage.transaction() as tx:
        for n in range(5):
            log.record(tx, Event(EventCode.TOKEN_REJECTED, T0 + timedelta(minutes=n), f"used #{n}"),
                       {"voltage": 231.5, "active_import": Decimal("12.3")})
        with pytest.raises(ProfileError):
            log.record(tx, Event(EventCode.POWER_FAIL, T0), {"humidity": 9})
    events = log.events(storage, LogKind.TRANSACTION)
    assert [e.detail for e in events] == ["used #2", "used #3", "used #4"]  # FIFO, capacity 3
    assert events[0] == Event(EventCode.TOKEN_REJECTED, T0 + timedelta(minutes=2), "used #2")
    row = log.profiles[LogKind.TRANSACTION].rows(storage)[0]
    assert row[3:] == [231.5, None, None, Decimal("12.3")] and len(SNAPSHOT) == 4
    assert Event(302, T0).code is EventCode.LOAD_SWITCH_CONNECTED
    with pytest.raises(ProfileError):
        Event(999, T0)
    assert log.profile_for(251).logical_name == "0.0.99.98.5.255"


def test_cover_open_is_kept_forever(storage):
    log = EventLog()
    with storage.transaction() as tx:
        assert log.record(tx, Event(EventCode.COVER_OPEN, T0, "first"), storage=storage) is not None
        assert log.record(tx, Event(EventCode.COVER_OPEN, T0 + timedelta(days=1), "again"), storage=storage) is None
        with pytest.raises(ProfileError):
            log.record(tx, Event(EventCode.COVER_OPEN, T0))
    assert [e.detail for e in log.events(storage, LogKind.NON_ROLLOVER)] == ["first"]
