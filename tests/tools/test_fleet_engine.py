"""The fleet engine's meters are bijli meters: the differential test and the cache.

One random schedule of loads, tokens, clock steps and reads is driven into a single
:class:`MeterNode` on its own sqlite file, stepped eagerly as ``bijli meter`` steps,
and into meter 0 of a :class:`FleetEngine` on a shard database, advanced lazily and
evicted from the cache (dehydrated to its compact record) between operations. Every
status, every register read through the COSEM objects and the event log agree.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.firmware.errors import CommandError, ConfigError
from bijli.firmware.shard import ShardStore
from bijli.firmware.tariff import EnergyKind
from bijli.firmware.sts.vend import vend_credit
from bijli.hal.clock import RealClock, SimClock
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node import config
from bijli.tools.fleet.console import ShardConsole
from bijli.tools.node.fleet import Fleet, member_config
from bijli.tools.node.meter_node import ClockView, MeterNode, open_samples

START = datetime(2024, 6, 14, 17, 0)  # Friday 14 June 2024, 17:00: the seed's Bakrid weekend begins
BASE = config.load(None)

# what a head-end reads: energy, credit, relay state, clock, the last block-load row count, the
# phase and neutral currents
READS = [("1.0.1.8.0.255", 2), ("0.0.19.10.0.255", 2), ("0.0.96.3.10.255", 2), ("0.0.1.0.0.255", 2),
         ("1.0.99.1.0.255", 7), ("0.0.99.98.2.255", 7), ("1.0.11.7.0.255", 2), ("1.0.91.7.0.255", 2)]

operation = st.one_of(
    st.tuples(st.just("load"), st.sampled_from([0.0, 0.4, 2.5, 7.0, 31.0]), st.sampled_from([1.0, 0.85, -0.9])),
    st.tuples(st.just("token"), st.sampled_from(["1", "12.5", "40", "250"])),
    st.tuples(st.just("earth"), st.sampled_from([0.0, 0.3, 1.5, -2.0])),
    st.tuples(st.just("step"), st.sampled_from([7, 60, 600, 900, 1799, 3600, 5 * 3600, 26 * 3600])),
    st.tuples(st.just("read")),
    st.tuples(st.just("button")),
)
# a head-end programs a flat tariff (IC 20's passive calendar, activated now or later): the
# fleet meter must keep pricing at it after every eviction (Meter.resume applies it)
programming = st.tuples(st.just("tariff"), st.sampled_from(["2.75", "9.50"]), st.sampled_from([0, 1200, 4 * 3600]))


def observe_all(node: MeterNode) -> dict:
    return {"status": node.meter.status(), "reads": [node.get(obis, attr) for obis, attr in READS],
            "events": [(e.code, e.time, e.detail) for e in node.meter.recent_events(50)],
            "last_token": node.meter.last_token}


class Twins:
    """The single meter and the fleet meter, fed the same operations."""

    def __init__(self, root):
        self.cfg = member_config(BASE, 0)
        self.single_clock = SimClock(START, rate=0)
        self.single = MeterNode(self.cfg, root / "single", ClockView(self.single_clock),
                                open_samples(self.cfg, seed=0))
        self.store = ShardStore.open(root / "shard" / "fleet.db")
        self.engine = FleetEngine(BASE, [0, 1], self.store, SimClock(START, rate=0), cache_size=1)
        self.tokens = 0

    def fleet(self, op):
        """Run ``op`` on fleet meter 0, then observe meter 1 so that meter 0 is dehydrated."""
        with self.engine.observe(0) as node:
            out = op(node)
        with self.engine.observe(1):
            pass
        assert self.engine.hydrated == 1
        return out

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "step":  # nobody looks: the fleet meter stays dormant until the next operation
            self.single.step(op[1])
            self.engine.step(op[1])
            return
        if kind == "load":
            amps, pf = op[1], op[2]
            act = lambda node: node.set_load(amps, abs(pf), pf > 0, None)  # noqa: E731
        elif kind == "token":
            when = START - timedelta(hours=3) + timedelta(minutes=self.tokens)
            self.tokens += 1
            digits = vend_credit(self.cfg.meter.sts.vend_key(), Decimal(op[1]), subclass=4, time=when).digits
            act = lambda node: node.execute(f"token {digits}").text  # noqa: E731
        elif kind == "earth":
            act = lambda node: node.execute(f"earth {op[1]}").text  # noqa: E731
        elif kind == "button":
            act = lambda node: node.meter.press_button()  # noqa: E731
        elif kind == "tariff":
            def act(node):
                meter = node.meter
                flat = replace(meter.config.tariff.active, kind=EnergyKind.FLAT, flat_rate=Decimal(op[1]))
                meter.program_tariff(flat, meter.now + timedelta(seconds=op[2]))
                return meter.config.tariff
        else:
            act = observe_all
        assert act(self.single) == self.fleet(act), op
        assert observe_all(self.single) == self.fleet(observe_all), op

    def close(self) -> None:
        self.single.shutdown()
        self.engine.shutdown()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(operation, programming), min_size=1, max_size=8))
def test_a_fleet_meter_is_observably_the_single_meter(tmp_path_factory, ops):
    twins = Twins(tmp_path_factory.mktemp("twins"))
    try:
        for op in ops:
            twins.apply(op)
    finally:
        twins.close()


def test_the_seeds_evening_agrees_through_a_cut_and_a_recharge(tmp_path):
    """A fixed schedule through the weekend: load, out of credit after friendly time,
    a recharge, many evictions. Runs every time, whatever Hypothesis draws."""
    twins = Twins(tmp_path)
    try:
        for op in [("load", 7.0, 1.0), ("step", 7), ("step", 3600), ("read",), ("step", 26 * 3600), ("token", "12.5"),
                   ("step", 5 * 3600), ("step", 5 * 3600), ("read",), ("step", 3 * 26 * 3600), ("read",),
                   ("token", "250"), ("button",), ("step", 1799), ("read",)]:
            twins.apply(op)
    finally:
        twins.close()


def test_a_tariff_programmed_into_a_fleet_meter_prices_its_energy_after_every_eviction(tmp_path):
    """A tariff the head-end programmed (later, then at once) is the meter's own: an evicted
    fleet meter resumed on the shared configuration still prices at it, as the single one
    does, and the credit shows it."""
    twins = Twins(tmp_path)
    try:
        for op in [("token", "250"), ("load", 7.0, 1.0), ("tariff", "9.50", 1200), ("step", 600), ("read",),
                   ("step", 3600), ("read",), ("step", 26 * 3600), ("tariff", "2.75", 0), ("step", 5 * 3600),
                   ("read",)]:
            twins.apply(op)
        with twins.engine.observe(0) as node:
            assert node.meter.config.tariff.active.flat_rate == Decimal("2.75")
            assert node.meter.config.tariff.active.kind is EnergyKind.FLAT
    finally:
        twins.close()


class HouseholdTwins:
    """Meter 0 of a per-meter-file :class:`Fleet` with a household load profile, stepped
    slot by slot as ``bijli fleet`` steps, and meter 0 of an engine with the same profile,
    evicted between operations, driven through their fleet consoles."""

    def __init__(self, root, profile: str = "random"):
        self.cfg = member_config(BASE, 0)
        self.files = Fleet(BASE, 1, root / "files", SimClock(START, rate=0), load_profile=profile)
        self.engine = FleetEngine(BASE, [0, 1], ShardStore.open(root / "shard" / "fleet.db"), SimClock(START, rate=0),
                                  cache_size=1, load_profile=profile)
        self.console = ShardConsole(self.engine)
        self.tokens = 0

    def observed(self) -> tuple[dict, dict]:
        mine = observe_all(self.files.members[0].node)
        with self.engine.observe(0) as node:
            theirs = observe_all(node)
        with self.engine.observe(1):
            pass
        return mine, theirs

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "step":
            line = f"step {op[1]}s"
        elif kind == "load":
            line = f"meter 0 load {op[1]} {op[2]}"
        elif kind == "token":
            when = START - timedelta(hours=3) + timedelta(minutes=self.tokens)
            self.tokens += 1
            line = "meter 0 token " + vend_credit(self.cfg.meter.sts.vend_key(), Decimal(op[1]), subclass=4,
                                                  time=when).digits
        elif kind == "button":
            line = "meter 0 relay press"
        elif kind == "earth":
            line = f"meter 0 earth {op[1]}"
        elif kind == "read":
            line = "status --json"
        else:
            raise AssertionError(f"no console line for the operation {op!r}")
        mine, theirs = self.files.execute(line), self.console.execute(line)
        if kind == "read":  # the fleets' tables: the same but for the port and the meters' count
            mine = [{k: v for k, v in r.items() if k != "port"} for r in json.loads(mine.text)]
            theirs = [{k: v for k, v in r.items() if k != "port"} for r in json.loads(theirs.text)][:1]
        assert mine == theirs, op
        with self.engine.observe(1):
            pass
        mine, theirs = self.observed()
        assert mine == theirs, op

    def close(self) -> None:
        self.files.shutdown()
        self.engine.shutdown()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=6), profile=st.sampled_from(["random", "constant"]))
def test_a_fleet_meter_draws_its_household_load_as_the_per_file_fleet_does(tmp_path_factory, ops, profile):
    twins = HouseholdTwins(tmp_path_factory.mktemp("household"), profile)
    try:
        for op in ops:
            twins.apply(op)
    finally:
        twins.close()


def test_a_household_evening_agrees_slot_by_slot_through_a_cut_a_recharge_and_a_typed_load(tmp_path):
    twins = HouseholdTwins(tmp_path)
    try:
        for op in [("step", 7), ("token", "40"), ("step", 3600 + 7 * 60), ("read",), ("step", 26 * 3600),
                   ("token", "250"), ("step", 5 * 3600), ("load", 2.5, 1.0), ("step", 1799), ("read",)]:
            twins.apply(op)
        with twins.engine.observe(0) as node:
            assert node.meter.energy.active_import_wh > 1000  # the household drew through the evening
        assert twins.engine.load_profile_of(0) == "manual" and twins.engine.load_profile_of(1) == "random"
    finally:
        twins.close()


def test_the_cache_holds_at_most_its_size_and_never_a_pinned_meter(tmp_path):
    store = ShardStore.open(tmp_path / "fleet.db")
    engine = FleetEngine(BASE, range(5), store, SimClock(START, rate=0), cache_size=2)
    pinned = engine.pin(4)
    for i in range(4):
        with engine.observe(i):
            assert engine.hydrated <= 3
    assert engine.hydrated == 2 and engine._hydrated.get(4) is pinned
    engine.unpin(4)
    with engine.observe(0), engine.observe(1):
        pass
    assert 4 not in engine._hydrated and engine.dormant_bytes() > 0
    engine.shutdown()


def test_a_meter_is_born_at_the_fleets_start_however_late_it_is_first_observed(tmp_path):
    store = ShardStore.open(tmp_path / "fleet.db")
    engine = FleetEngine(BASE, range(3), store, SimClock(START, rate=0), cache_size=1)
    engine.step(3 * 3600)
    with engine.observe(2) as node:
        assert node.meter.now == START + timedelta(hours=3)
        assert node.meter.year_of_manufacture == 2024
        assert not [e for e in node.meter.recent_events(50) if e.code.name.startswith("POWER")]
    engine.shutdown()


def test_bad_input_is_refused_and_changes_nothing(tmp_path):
    store = ShardStore.open(tmp_path / "fleet.db")
    with pytest.raises(ConfigError):
        FleetEngine(BASE, range(2), store, SimClock(START, rate=0), cache_size=0)
    engine = FleetEngine(BASE, range(2), store, SimClock(START, rate=0))
    with pytest.raises(CommandError, match="not in this shard"):
        with engine.observe(7):
            pass
    with pytest.raises(CommandError):
        engine.step(0)
    assert engine.hydrated == 0 and store.meters() == []
    engine.shutdown()


def test_a_restarted_shard_is_a_power_cut_for_its_meters_and_keeps_their_credit(tmp_path):
    cfg = member_config(BASE, 1)
    engine = FleetEngine(BASE, range(2), ShardStore.open(tmp_path / "fleet.db"), SimClock(START, rate=0))
    digits = vend_credit(cfg.meter.sts.vend_key(), Decimal("40"), subclass=4, time=START - timedelta(hours=1)).digits
    with engine.observe(1) as node:
        assert "accept" in node.execute(f"token {digits}").text
        credit = node.meter.status()["credit"]
    engine.step(600)
    # the process dies here: nothing of its RAM survives, only the shard database
    engine.store.close()
    later = SimClock(START + timedelta(hours=2), rate=0)
    again = FleetEngine(BASE, range(2), ShardStore.open(tmp_path / "fleet.db"), later)
    with again.observe(1) as node:
        assert node.meter.status()["credit"] == credit
        assert "used" in node.execute(f"token {digits}").text  # not credited twice
        codes = [e.code.name for e in node.meter.recent_events(10)]
        assert "POWER_FAIL" in codes and "POWER_RESTORED" in codes
        assert node.meter.now == START + timedelta(hours=2)
    again.shutdown()


def test_marks_every_meter_has_passed_are_pruned_and_the_slowest_meter_still_catches_up(tmp_path):
    store = ShardStore.open(tmp_path / "fleet.db")
    engine = FleetEngine(BASE, range(3), store, SimClock(START, rate=0), cache_size=1)
    for _ in range(4):
        engine.step(900)
    with engine.observe(0), engine.observe(1):
        pass
    assert len(engine._marks) == 4  # meter 2 was never observed: it holds every mark
    for _ in range(3):
        engine.step(900)
    with engine.observe(2) as node:
        assert node.meter.now == START + timedelta(minutes=7 * 15)
    assert len(engine._marks) == 3 and engine._mark_base == 4  # meters 0 and 1 are at mark 4
    with engine.observe(0), engine.observe(1):
        pass
    assert engine._marks == [] and engine._mark_base == 7
    engine.step(1800)  # a capture: every meter still reaches it, each at its own observation
    for i in range(3):
        with engine.observe(i) as node:
            assert node.meter.now == START + timedelta(minutes=7 * 15 + 30)
            assert node.meter.storage.count(node.meter.profiles.block_load.name) >= 1
    assert engine._marks == [] and engine._mark_base == 8
    engine.shutdown()


def test_a_clean_stop_saves_only_the_dormant_meters_with_something_unsaved(tmp_path):
    engine = FleetEngine(BASE, range(40), ShardStore.open(tmp_path / "fleet.db"), SimClock(START, rate=0),
                         cache_size=1)
    for i in range(40):  # born at the start, committed there: nothing in RAM the shard lacks
        with engine.observe(i):
            pass
    with engine.observe(7) as node:
        node.set_load(9.0, 1.0, True, None)
    engine.step(600)
    with engine.observe(8):  # walked ten minutes and committed at their end (storage.save_interval_s 60)
        pass
    engine.step(30)  # half a minute: metered in RAM only
    with engine.observe(7) as node:
        kept = node.meter.energy.active_import_wh
        assert node.meter.unsaved() and kept > 300
    with engine.observe(8):
        pass
    assert engine._unsaved == {7} and engine.hydrated == 1  # meter 8 is the hydrated one; the rest committed
    engine.shutdown()
    later = SimClock(START + timedelta(hours=1), rate=0)
    again = FleetEngine(BASE, range(40), ShardStore.open(tmp_path / "fleet.db"), later, cache_size=1)
    with again.observe(7) as node:
        assert node.meter.energy.active_import_wh == kept  # the half minute in RAM was saved at the stop
        fail = [e.time for e in node.meter.recent_events(10) if e.code.name == "POWER_FAIL"]
        assert fail == [START + timedelta(seconds=630)]  # it stopped where it was last observed
    with again.observe(20) as node:  # never unsaved: its start-up commit stands, and it stopped there
        fail = [e.time for e in node.meter.recent_events(10) if e.code.name == "POWER_FAIL"]
        assert fail == [START]
    again.shutdown()


def test_on_a_real_clock_a_dormant_meter_at_a_measured_load_reads_no_samples(tmp_path):
    """What the meter last measured is kept in its dormant record (the settings of the source
    its measurements are of), so a storm's read-back, observing a meter whose load has not
    changed since its delivery, integrates the gap at the held measurements instead of
    measuring a block of samples (a tenth of a shard's CPU)."""
    wall = [START + timedelta(hours=1) - timedelta(minutes=330)]  # 18:00 IST: friendly hours, the supply held
    real = FleetEngine(BASE, [0, 1], ShardStore.open(tmp_path / "real.db"),
                       RealClock(330, source=lambda: wall[0]), cache_size=1)
    with real.observe(0) as node:
        node.set_load(10.0, 1.0, True, None)
        read, energy = node.source.samples_read, node.meter.energy.active_import_wh
    with real.observe(1):  # meter 0 goes dormant
        pass
    wall[0] += timedelta(minutes=3)
    with real.observe(0) as node:
        assert node.meter.relay.output_state  # no load change on the way (the relay's is measured)
        assert node.source.samples_read == read
        grown = node.meter.energy.active_import_wh - energy
        assert abs(grown - 230 * 10.0 * 3 / 60) < 230 * 10.0 * 3 / 60 * 0.01
    real.shutdown()


def test_on_a_real_clock_a_dormant_meter_catches_up_in_one_jump(tmp_path):
    """A storm's read-back finds each meter an hour or more after its delivery, on the real
    clock. The catch-up is one jump to the last block, then that block measured: a meter
    left two hours reads what one stepped two hours on the simulated clock reads (here its
    credit runs out in the gap and it is cut there, at 575 Wh; a tick over the whole gap
    metered it all at the load first, 4,600 Wh, and cut it only at the end), and the
    catch-up is one commit (it was a commit per step of the walk, about one a capture)."""
    wall = [START - timedelta(minutes=330)]  # the host's UTC, whose IST is START
    real = FleetEngine(BASE, [0, 1], ShardStore.open(tmp_path / "real.db"),
                       RealClock(330, source=lambda: wall[0]), cache_size=1)
    sim = FleetEngine(BASE, [0, 1], ShardStore.open(tmp_path / "sim.db"), SimClock(START, rate=0), cache_size=1)
    for engine in (real, sim):
        with engine.observe(0) as node:
            node.set_load(10.0, 1.0, True, None)
        with engine.observe(1):  # meter 0 goes dormant
            pass
    commits = real.store.commit
    wall[0] += timedelta(hours=2)
    sim.step(2 * 3600)
    with real.observe(0) as a, sim.observe(0) as b:
        assert a.meter.now == b.meter.now == START + timedelta(hours=2)
        energy = [float(n.get("1.0.1.8.0.255", 2).split()[0]) for n in (a, b)]
        assert energy[0] > 0 and abs(energy[0] - energy[1]) <= 1, energy  # Wh: the last 0.1 s block
        assert a.get("0.0.19.10.0.255", 2) == b.get("0.0.19.10.0.255", 2)
        assert a.meter.status()["relay"] == b.meter.status()["relay"]
        assert len(a.meter.recent_events(50)) == len(b.meter.recent_events(50))
    assert real.store.commit - commits <= 2
    real.shutdown()
    sim.shutdown()
