"""A step writes only the state records it changed (issue 12), and memory still holds them all.

:meth:`firmware.meter.Meter._put_state` skips a record that is still the object last
written. That is only right if every record memory holds is, after every step, exactly
what a step writing all of them would have written: a Hypothesis test drives random
steps (tokens, time, load changes, the button, a clock set back, a tariff programmed, an event, a
limit, a resume from the meter's RAM as a fleet does, a restart) into a meter on a real
``meter.db`` and a real shard, and after each (and a save, when the step left time
metered in RAM only) compares every record on disk with the
meter's RAM converted afresh. A token writes a handful of the thirteen records, counted
on sqlite's own change counter.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.firmware.events import EventCode
from bijli.firmware.sts.decoder import TokenResultCode
from bijli.hal.samples import SyntheticSource
from bijli.firmware.meter import _STATE_KEYS, Meter
from bijli.firmware.shard import ShardStore
from bijli.firmware.storage import Storage, dumps, loads
from tests.firmware.test_meter import CONFIG, token

START = datetime(2024, 6, 3, 12, 0)


def on_disk(meter: Meter) -> dict:
    return {key: meter.storage.get(key) for key in _STATE_KEYS}


def in_ram(meter: Meter) -> dict:
    """Every state record as a step writing all of them writes it, read back as stored."""
    state = meter._state(copied=False)
    out = {}
    for key, value in zip(_STATE_KEYS, state):
        if key == "clock_high_water":
            record = value.isoformat()
        elif key == "energy":
            record = asdict(value)
        else:
            record = value.to_dict()
        out[key] = loads(dumps(record))
    return out


OPS = st.lists(st.one_of(
    st.tuples(st.just("token"), st.integers(1, 50)),
    st.tuples(st.just("advance"), st.integers(1, 3 * 3600)),
    st.tuples(st.just("load"), st.sampled_from([0.0, 2.5, 12.0])),
    st.tuples(st.just("button")),
    st.tuples(st.just("set_back"), st.integers(60, 7200)),
    st.tuples(st.just("tariff"), st.sampled_from(["4.25", "9.99"])),
    st.tuples(st.just("event")),
    st.tuples(st.just("limit"), st.sampled_from([None, 1500.0])),
    st.tuples(st.just("resume")),
    st.tuples(st.just("restart")),
), min_size=1, max_size=12)


def _drive(meter: Meter, storage, ops, tmp_tokens: list) -> None:
    source = SyntheticSource(sample_rate=CONFIG.metrology.sample_rate)
    for op in ops:
        kind = op[0]
        if kind == "token":
            tmp_tokens.append(len(tmp_tokens))
            meter.enter_token(token(str(op[1]), START - timedelta(hours=2, minutes=len(tmp_tokens))))
        elif kind == "advance":
            meter.advance_to(meter.now + timedelta(seconds=op[1]))
        elif kind == "load":
            source.set_load(op[1])
            meter.on_samples(source.read_block(source.sample_rate // 5), meter.now)
        elif kind == "button":
            meter.press_button()
        elif kind == "set_back":
            meter.set_time(meter.now - timedelta(seconds=op[1]))
        elif kind == "tariff":
            meter.program_tariff(replace(meter.config.tariff.active, flat_rate=Decimal(op[1])), meter.now)
        elif kind == "event":
            meter.record_event(EventCode.COVER_OPEN, tamper=True)
        elif kind == "limit":
            meter.set_load_limit(op[1])
        elif kind == "resume":
            meter = Meter.resume(CONFIG, storage, pickle.loads(pickle.dumps(meter.volatile())))
        elif kind == "restart":
            meter = Meter(CONFIG, storage, meter.now)
        if meter.unsaved():  # time metered since the last commit: RAM is ahead until the next
            meter.save()
        assert on_disk(meter) == in_ram(meter), op


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, sharded=st.booleans())
def test_memory_holds_every_state_record_as_a_full_write_would(tmp_path_factory, ops, sharded):
    tmp = tmp_path_factory.mktemp("writes")
    if sharded:
        shard = ShardStore.open(tmp / "s.db")
        storage = shard.memory(7)
    else:
        shard, storage = None, Storage.open(tmp)
    try:
        meter = Meter(CONFIG, storage, START)
        assert on_disk(meter) == in_ram(meter)
        _drive(meter, storage, ops, [])
    finally:
        (shard or storage).close()


def test_a_token_writes_only_the_records_it_changes(tmp_path):
    storage = Storage.open(tmp_path)
    meter = Meter(CONFIG, storage, START)
    db = storage._db
    before = db.total_changes
    assert meter.enter_token(token("25", START - timedelta(hours=1))).accepted
    written = db.total_changes - before
    # the account, the decoder state, progress; the event rows with their FIFO; the counter
    assert written < 10, written
    assert on_disk(meter) == in_ram(meter)
    restarted = Meter(CONFIG, Storage.open(tmp_path / "copy"), START)  # a meter writing all of them
    assert db.total_changes - before < restarted.storage._db.total_changes


def test_a_failed_commit_group_makes_its_meters_write_every_record_again(tmp_path):
    """A fleet's commit group that fails after a meter's step inside it was released undoes
    records the meter noted as written: its next step writes all of them, so memory never
    keeps a record older than the meter's RAM (here energy, which a token does not change)."""
    shard = ShardStore.open(tmp_path / "s.db")
    storage = shard.memory(3)
    meter = Meter(CONFIG, storage, START)
    source = SyntheticSource(sample_rate=CONFIG.metrology.sample_rate)
    assert meter.enter_token(token("50", START - timedelta(hours=1))).accepted
    source.set_load(10.0)
    meter.on_samples(source.read_block(source.sample_rate // 5), meter.now)
    try:
        with shard.group():
            meter.advance_to(START + timedelta(hours=2))  # energy measured and written in the group ...
            assert on_disk(meter) == in_ram(meter)
            raise OSError("the disk went away")  # ... which is then rolled back
    except OSError:
        pass
    assert on_disk(meter)["energy"] != in_ram(meter)["energy"]
    assert meter.enter_token(token("5", START - timedelta(minutes=30))).accepted
    assert on_disk(meter) == in_ram(meter)
    shard.close()


def test_a_step_failing_inside_a_commit_group_forgets_what_it_noted_as_written(tmp_path):
    """A step inside a fleet's commit group is a savepoint: when one of its writes fails
    (here sqlite refuses the decoder record a token writes after the account, as a full disk would), the
    savepoint is rolled back alone and the meter's RAM is put back, its note of what it
    has written (``Meter._written``) with it. Were the note kept, the same token entered
    again would leave the same account and the step would skip writing it: memory would
    keep the account from before the token that the meter answered as credited."""
    shard = ShardStore.open(tmp_path / "s.db")
    meter, other = Meter(CONFIG, shard.memory(3), START), Meter(CONFIG, shard.memory(4), START)
    credit = token("50", START - timedelta(hours=1))
    with shard.group():
        assert other.enter_token(token("20", START - timedelta(hours=1))).accepted
        shard._db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON main.kv "
                          "WHEN NEW.meter = 3 AND NEW.key = 'sts' "
                          "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        refused = meter.enter_token(credit)  # the account written in the savepoint, then the decoder refused
        assert refused.code is TokenResultCode.STORAGE_ERROR and meter.storage_fault is not None
        shard._db.execute("DROP TRIGGER temp.full")
        assert on_disk(meter) == in_ram(meter)  # nothing of the token, in RAM or on disk
        assert meter.enter_token(credit).accepted
        assert on_disk(meter) == in_ram(meter)
    shard.close()
    shard = ShardStore.open(tmp_path / "s.db")
    try:  # both meters' steps of the group committed, the other one's untouched by the failure
        assert Meter(CONFIG, shard.memory(3), START).account.total_recharged == Decimal("50")
        assert Meter(CONFIG, shard.memory(4), START).account.total_recharged == Decimal("20")
    finally:
        shard.close()


def stored_texts(shard: ShardStore, index: int) -> dict:
    rows = shard._db.execute("SELECT key, value FROM kv WHERE meter = ?", (index,)).fetchall()
    return {key: text for key, text in rows if key in _STATE_KEYS}


def test_meters_born_alike_write_their_first_records_as_their_own_text(tmp_path):
    """A first start writes thirteen records, most of them the very texts the meter born
    before it wrote (meter._first_text reuses those). What is stored is still, to the
    character, the meter's own records encoded: for meters born alike, for one born at
    another time, and after a token."""
    shard = ShardStore.open(tmp_path / "s.db")
    later = START + timedelta(hours=5, minutes=7)
    meters = {i: Meter(CONFIG, shard.memory(i), START if i < 3 else later) for i in range(4)}
    assert meters[1].enter_token(token("25", START - timedelta(hours=1))).accepted
    for i, meter in meters.items():
        own = {}
        for key, value in zip(_STATE_KEYS, meter._state(copied=False)):
            if key == "clock_high_water":
                own[key] = dumps(value.isoformat())
            else:
                own[key] = dumps(asdict(value) if key == "energy" else value.to_dict())
        assert stored_texts(shard, i) == own, i
    assert stored_texts(shard, 0) == stored_texts(shard, 2) != stored_texts(shard, 3)


def test_a_record_equal_to_one_written_before_but_written_differently_keeps_its_own_text():
    """1.0 and 1.00 are equal Decimals with different texts: the reused text is only
    ever one that is the very same (meter._same_value), never one merely equal."""
    from dataclasses import dataclass

    from bijli.firmware import meter as meter_mod

    @dataclass(frozen=True)
    class Record:
        amount: Decimal
        day: object

        def to_dict(self):
            return {"amount": self.amount, "day": self.day}

    key = "test-first-text"
    try:
        one = meter_mod._first_text(key, Record(Decimal("1.0"), START.date()))
        same = meter_mod._first_text(key, Record(Decimal("1.0"), START.date()))
        finer = meter_mod._first_text(key, Record(Decimal("1.00"), START.date()))
        as_time = meter_mod._first_text(key, Record(Decimal("1.0"), START))
        assert one == same == dumps({"amount": Decimal("1.0"), "day": START.date()})
        assert finer == dumps({"amount": Decimal("1.00"), "day": START.date()}) != one
        assert as_time == dumps({"amount": Decimal("1.0"), "day": START}) != one
    finally:
        meter_mod._FIRST_TEXTS.pop(key, None)
