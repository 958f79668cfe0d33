"""The walk settles only where something can change (firmware/meter.py ``_settle_due``):
a meter that skips the settle at captures must do exactly what one that settles at every
step does, and the account must be charged the same whether it is charged once or 96 times.

The reference is the same firmware with ``Meter.SETTLE_EVERY_STEP`` set (every step of a
walk settles, as before settles were skipped); Hypothesis drives both with one random
schedule of loads, tokens, load limits, emergency credit, button presses and jumps of
simulated time across friendly hours, a holiday, billing and time-of-day edges, and every
status, event and profile row must agree. What may differ, and is left out on purpose:
*when* the account last took a charge and how much that one was (``balance_time``, the
last collection time and amount): settling less often takes fewer, larger charges of the
same total.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings, strategies as st

from bijli.firmware.meter import Meter, MeterConfig, Stops, _mwh
from bijli.firmware.metrology import SteadyLoad
from bijli.firmware.shard import ShardStore
from bijli.firmware.storage import Storage
from bijli.firmware.sts.vend import vend_credit
from bijli.hal.samples import SyntheticSource


class EverySettle(Meter):
    """The reference walk: a settle at every step."""

    SETTLE_EVERY_STEP = True


class Counted(Meter):
    """The meter as it is, noting the meter time of every settle."""

    def _settle(self, tx, **kw):
        self.__dict__.setdefault("settles", []).append(self.now)
        return super()._settle(tx, **kw)


CONFIGS = {
    "demo slabs": {},
    "tod, emergency auto, debt limit": {
        "tariff": {"kind": "tod"},
        "prepaid": {"emergency_auto": True, "max_debt": "40", "low_credit_1": "60", "low_credit_2": "30"},
        "profiles": {"block_load_period": 1800}},
    "flat, postpaid": {"tariff": {"kind": "flat"}, "prepaid": {"payment_mode": "postpaid"}},
    "kWh account": {"prepaid": {"unit": "kWh"}},
}
START = datetime(2024, 6, 14, 16, 0)  # a Friday before the Bakrid weekend (Monday 17 June a holiday)


class Rig:
    def __init__(self, cls: type[Meter], state, config: MeterConfig, storage=None):
        self.source = SyntheticSource(sample_rate=config.metrology.sample_rate)
        self.amps = 0.0
        self.storage = storage if storage is not None else Storage.open(state)
        self.meter = cls(config, self.storage, START, on_relay=self._relay)

    def _relay(self, closed: bool) -> None:
        self.source.set_load(self.amps if closed else 0.0)
        if hasattr(self, "meter"):
            self.meter.on_samples(self.source.read_block(self.source.sample_rate // 10), self.meter.now)

    def load(self, amps: float) -> None:
        self.amps = amps
        self._relay(self.meter.relay.output_state)


def _seen(rig: Rig) -> dict:
    """What the two walks must agree on after every operation."""
    m = rig.meter
    a = m.account
    rows = {p.name: [list(r) for r in p.rows(rig.storage)] for p in m.profiles.all if p.name != "instantaneous"}
    return {
        "status": m.status(),
        "account": (a.balance, a.total_charged, a.emergency_invoked, a.low_credit_1, a.low_credit_2,
                    a.out_of_credit, a.max_debt_exceeded),
        "relay": m.relay,
        "limiter": m.limiter,
        "tariff": m.tariff_state,
        "tiers": [round(x, 3) for x in m.tiers.active_wh],
        "charged": m.progress.charged_wh,
        "rows": rows,
        "recent": [(e.code, e.time, e.detail) for e in m.recent_events(10_000)],
    }


OPS = st.one_of(
    st.tuples(st.just("load"), st.sampled_from([0.0, 0.4, 3.0, 10.0, 24.0])),
    st.tuples(st.just("advance"), st.integers(1, 36 * 60)),  # minutes
    st.tuples(st.just("token"), st.sampled_from(["5", "20", "150"])),
    st.tuples(st.just("limit"), st.sampled_from([None, 1500.0, 4000.0])),
    st.tuples(st.just("emergency"), st.none()),
    st.tuples(st.just("button"), st.none()),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.sampled_from(sorted(CONFIGS)), ops=st.lists(OPS, min_size=1, max_size=8))
# low credit 2 crossed inside the last whole segment before a short walk's end: the step's
# own energy must count in whether it settles
@example(config="tod, emergency auto, debt limit", ops=[("load", 24.0), ("advance", 46)])
# the limiter opens the relay, which changes the load: the next step settles on the new one
@example(config="demo slabs", ops=[("emergency", None), ("load", 10.0), ("limit", 1500.0), ("advance", 31)])
def test_a_walk_that_skips_settles_does_what_one_that_settles_every_step_does(tmp_path_factory, config, ops):
    cfg = MeterConfig.from_dict(CONFIGS[config])
    key = cfg.sts.vend_key()
    root = tmp_path_factory.mktemp("settle")
    lean, every = Rig(Meter, root / "lean", cfg), Rig(EverySettle, root / "every", cfg)
    vended = 0
    for op, arg in ops:
        if op == "token":  # one token, entered into both
            digits = vend_credit(key, Decimal(arg), subclass=0 if cfg.prepaid.unit == "kWh" else 4,
                                 time=START - timedelta(days=1) + timedelta(minutes=vended)).digits
            vended += 1
        for rig in (lean, every):
            if op == "load":
                rig.load(arg)
            elif op == "advance":
                rig.meter.advance_to(rig.meter.now + timedelta(minutes=arg))
            elif op == "token":
                rig.meter.enter_token(digits)
            elif op == "limit":
                rig.meter.set_load_limit(arg)
            elif op == "emergency":
                rig.meter.invoke_emergency()
            else:
                rig.meter.press_button()
        assert _seen(lean) == _seen(every), (op, arg)
    lean.storage.close()
    every.storage.close()


def test_a_day_charged_once_is_a_day_charged_at_every_capture(tmp_path):
    """The account is charged whole mWh of the cumulative register, so one charge for a
    day is the 96 charges of its captures to the paisa, and the mWh the register holds
    beyond the last whole one wait for the next charge (none is lost or charged twice)."""
    cfg = MeterConfig.from_dict({})
    lean, every = Rig(Counted, tmp_path / "lean", cfg), Rig(EverySettle, tmp_path / "every", cfg)
    monday = datetime(2024, 6, 3, 12, 0)  # a working day: friendly only from 17:30 to 11:00
    for rig in (lean, every):
        rig.meter.set_time(monday)
        assert rig.meter.enter_token(vend_credit(cfg.sts.vend_key(), Decimal(5000), subclass=4,
                                                 time=monday - timedelta(hours=1)).digits).accepted
        rig.load(7.3)
    lean.meter.settles = []
    lean.meter.advance_to(monday + timedelta(days=1))
    every.meter.advance_to(monday + timedelta(days=1))
    # the first step after the load changed, the friendly evening's start and the next
    # morning's end, midnight, the walk's end: 5 settles for 96 captures
    assert lean.meter.settles == [monday + timedelta(minutes=15), datetime(2024, 6, 3, 17, 30),
                                  datetime(2024, 6, 4), datetime(2024, 6, 4, 11), monday + timedelta(days=1)]
    assert lean.meter.account.balance == every.meter.account.balance
    assert lean.meter.account.total_charged == every.meter.account.total_charged > 0
    assert lean.meter.tariff_state.lines == every.meter.tariff_state.lines
    e = lean.meter.metrology.energy.active_import_wh
    assert lean.meter.progress.charged_wh == _mwh(e) / 1000 and 0 <= e - lean.meter.progress.charged_wh < 0.001


class SlotLoads(Stops):
    """A household's slot schedule handed to one jump: at each stop the rig draws the next
    load, as a caller walking to each stop and drawing there does."""

    def __init__(self, rig: Rig, stops: list[tuple[datetime, float]]):
        self.rig, self.stops = rig, stops
        self.reached_at: list[datetime] = []

    def next_stop(self, after):
        return next((t for t, _ in self.stops if t > after), None)

    def reached(self, at):
        self.reached_at.append(at)
        self.rig.load(dict(self.stops)[at])


JUMPS = st.lists(st.tuples(st.lists(st.tuples(st.integers(1, 4 * 60), st.sampled_from([0.0, 0.4, 3.0, 10.0, 24.0])),
                                    max_size=6),
                           st.integers(1, 4 * 60), st.sampled_from([None, "5", "20"])),
                 min_size=1, max_size=4)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.sampled_from(sorted(CONFIGS)), jumps=JUMPS)
# a 15-minute household day across the friendly evening: every slot a stop of one jump
@example(config="demo slabs", jumps=[([(15, 3.0), (15, 10.0), (15, 0.4), (15, 24.0)], 15, "20")])
def test_a_jump_with_load_stops_is_the_walks_to_each_stop(tmp_path_factory, config, jumps):
    """One jump handed a load schedule (``advance_to(end, stops)``: the fleet engine's
    household catch-up) does what walking to each stop and drawing its load there does
    (a single meter stepped slot by slot): every status, event, profile row and the
    account whole, the last charge included (the same settles, at the same instants)."""
    cfg = MeterConfig.from_dict(CONFIGS[config])
    key = cfg.sts.vend_key()
    root = tmp_path_factory.mktemp("stops")
    walks, jump = Rig(Meter, root / "walks", cfg), Rig(Meter, root / "jump", cfg)
    for n, (loads, tail, token) in enumerate(jumps):
        if token is not None:
            digits = vend_credit(key, Decimal(token), subclass=0 if cfg.prepaid.unit == "kWh" else 4,
                                 time=START - timedelta(days=1) + timedelta(minutes=n)).digits
            for rig in (walks, jump):
                rig.meter.enter_token(digits)
        at, stops = walks.meter.now, []
        for minutes, amps in loads:
            at += timedelta(minutes=minutes)
            stops.append((at, amps))
        end = at + timedelta(minutes=tail)
        for t, amps in stops:
            walks.meter.advance_to(t)
            walks.load(amps)
        walks.meter.advance_to(end)
        schedule = SlotLoads(jump, stops)
        jump.meter.advance_to(end, schedule)
        assert schedule.reached_at == [t for t, _ in stops]
        assert _seen(jump) == _seen(walks)
        assert jump.meter.account == walks.meter.account
        assert jump.meter.billing_progress == walks.meter.billing_progress
        assert jump.meter.progress == walks.meter.progress
    walks.storage.close()
    jump.storage.close()


class ShardRig(Rig):
    """A rig whose meter lives on a fleet's shard database (meter ``index`` of it) and
    takes each load on as a steady block measured apart, as a fleet's MeterNode does
    (a relay put back by a failed jump then draws the very measurement it had)."""

    def __init__(self, cls: type[Meter], shard: ShardStore, index: int, config: MeterConfig):
        super().__init__(cls, None, config, storage=shard.memory(index))

    def _relay(self, closed: bool) -> None:
        self.source.set_load(self.amps if closed else 0.0)
        if hasattr(self, "meter"):
            n = self.source.sample_rate // 10
            self.meter.on_steady(SteadyLoad.measure(self.meter.config.metrology, self.source.steady_block(n)))
            self.source.restart(n)


class FailingOnce(SlotLoads):
    """Slot loads whose jump fails to commit once (sqlite refuses the meter's state record,
    as a full disk would), the trigger dropped when the jump puts the loads back."""

    def __init__(self, rig: Rig, stops, shard: ShardStore):
        super().__init__(rig, stops)
        self.shard, self.restored = shard, 0

    def keep(self):
        return self.rig.amps

    def restore(self, kept) -> None:
        self.restored += 1
        self.rig.amps = kept
        self.rig.source.set_load(kept if self.rig.meter.relay.output_state else 0.0)
        self.shard._db.execute("DROP TRIGGER temp.full")


def test_a_jump_with_stops_whose_commit_fails_is_walked_again_from_its_loads(tmp_path):
    """Inside a fleet's commit group, a jump with load stops whose savepoint fails is put
    back whole, the loads drawn on the way with it (Stops.restore), and walked again: it
    ends where walking to each stop ends."""
    cfg = MeterConfig.from_dict({})
    shard = ShardStore.open(tmp_path / "s.db")
    walks, jump = ShardRig(Meter, shard, 4, cfg), ShardRig(Meter, shard, 3, cfg)
    at, stops = START, []
    for minutes, amps in [(15, 3.0), (15, 10.0), (20, 0.4), (15, 24.0)]:
        at += timedelta(minutes=minutes)
        stops.append((at, amps))
    end = at + timedelta(minutes=15)
    with shard.group():
        for rig in (walks, jump):
            rig.load(5.0)
        for t, amps in stops:
            walks.meter.advance_to(t)
            walks.load(amps)
        walks.meter.advance_to(end)
        shard._db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON main.kv "
                          "WHEN NEW.meter = 3 AND NEW.key = 'progress' "
                          "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        schedule = FailingOnce(jump, stops, shard)
        jump.meter.advance_to(end, schedule)
        assert schedule.restored == 1
        assert schedule.reached_at == [t for t, _ in stops] * 2  # walked once, put back, walked again
    assert jump.meter.storage_fault is None
    assert _seen(jump) == _seen(walks)
    assert jump.meter.account == walks.meter.account and jump.meter.progress == walks.meter.progress
    shard.close()
