"""Hydrate, advance, dehydrate: a shard of meters with only the observed ones built.

A meter of the fleet is, to whoever observes it (a DLMS association, a console line,
a token, a bench read), a full :class:`~tools.node.meter_node.MeterNode`: the same
firmware :class:`~firmware.meter.Meter`, object list and DLMS server as ``bijli meter``,
on its own :class:`~firmware.shard.MeterMemory` in the shard's database. Between
observations it is *dormant*: its non-volatile memory is in the shard database and its
RAM (:meth:`Meter.volatile`, the sample source's phase, the load drawn and its earth current, its clock
setting, its invocation counters) is one compressed record in a dict
(:mod:`tools.fleet.dormant`: the shared configuration by reference). At most ``cache_size`` meters are
hydrated at once; the least recently observed one is dehydrated to make room (never
one that is pinned, e.g. with an association open).

Lazy advance that is still exact. A single meter on a simulated clock advances at
each ``step`` (:meth:`MeterNode.step`: ``advance_to`` the new time). Time is float
seconds and the firmware walks boundary by boundary from where it stands, so
``advance_to(a); advance_to(b)`` is not bit-for-bit ``advance_to(b)``. The engine
keeps the shared clock's step *marks* once for the whole fleet (a list of times, not
per meter) and, when a meter is observed, calls ``advance_to`` at every mark it has
not reached, in order: the very calls an eagerly stepped meter gets, paid only when
someone looks. A meter that has never been observed is born at the fleet's start time
(its first start, its year of manufacture) when it is first hydrated, then catches up.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import logging
import time
from collections import Counter, OrderedDict
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Callable, Iterator, Sequence

from bijli.firmware.cosem.associations import security_settings
from bijli.firmware.errors import CommandError, ConfigError, StorageError
from bijli.firmware.meter import Meter, Stops
from bijli.firmware.shard import ShardStore
from bijli.hal.clock import TimeSource
from bijli.tools.fleet import dormant
from bijli.tools.node import config as config_mod
from bijli.tools.node import household
from bijli.tools.node.fleet import FLEET_BLOCK_SECONDS, member_config
from bijli.tools.node.meter_node import STEP_SLICE_S, ClockView, MeterNode, open_samples

# On a real clock an observed meter meters the gap since it was last seen at steady load
# (MeterNode.tick: a fleet's synthetic sources are noise-free, and a load it has measured is
# not measured again). A block, when one is measured (a noisy source), is as short as a
# per-file fleet member's: a whole second of waveform per observation was a third of a
# shard's CPU in a storm.
_NODE = {"lazy_objects": True, "max_block_seconds": FLEET_BLOCK_SECONDS}
DEFAULT_CACHE = 64  # hydrated meters at most (~0.5 MB each): the rest are dormant records
ADVANCE_SLICE_S = 0.2  # real time of one commit group of a cooperative advance (a signal waits at most this)
_SLICE = timedelta(seconds=STEP_SLICE_S)  # a single meter's console step walks in slices of this

log = logging.getLogger(__name__)


class _Batch:
    """The open batch of an event-loop round (:meth:`FleetEngine.batched`): the meters whose
    requests stepped in it and the output held back until it commits, in order."""

    __slots__ = ("meters", "held")

    def __init__(self) -> None:
        self.meters: set[int] = set()
        self.held: list[tuple[object, bytes | None]] = []  # (connection, bytes to write, or None: close it)


class _Schedule(Stops):
    """A catch-up's stops (:meth:`FleetEngine._catch_up`): each mark, slot edge or slice end
    before the last mark, on the meter's clock; at each, with a load profile, the slot's
    load is drawn (:meth:`FleetEngine._follow`)."""

    def __init__(self, engine: "FleetEngine", index: int, node: MeterNode, stops: list[datetime],
                 profiled: bool):
        self.engine, self.index, self.node, self.stops, self.profiled = engine, index, node, stops, profiled

    def next_stop(self, after: datetime) -> datetime | None:
        i = bisect.bisect_right(self.stops, after)
        return self.stops[i] if i < len(self.stops) else None

    def reached(self, at: datetime) -> None:
        if self.profiled:
            self.engine._follow(self.index, self.node)

    def keep(self):
        return self.engine._slot.get(self.index), self.node.load_state()

    def restore(self, kept) -> None:
        slot, load = kept
        if slot is None:
            self.engine._slot.pop(self.index, None)
        else:
            self.engine._slot[self.index] = slot
        self.node.restore_load_state(load)


class FleetEngine:
    """The meters ``indices`` of one fleet, on one shard database and one shared clock."""

    def __init__(self, base: config_mod.Config, indices: Sequence[int], store: ShardStore, clock: TimeSource, *,
                 cache_size: int = DEFAULT_CACHE, load_profile: str | None = None):
        if cache_size < 1:
            raise ConfigError("cache_size", "at least one meter must fit in the cache of hydrated meters")
        if base.hal.samples != "synthetic":
            raise ConfigError("hal.samples", "fleet meters draw synthetic loads; use synthetic")
        self.base = base
        self.indices = tuple(indices)
        self._known = frozenset(self.indices)
        self.store = store
        self.clock = clock
        self.cache_size = cache_size
        if load_profile is not None:
            household.profile(load_profile, 0)  # ValueError: not a profile
        self.load_profile = load_profile  # None: meters draw only what a console gives them
        self._slot: dict[int, datetime] = {}  # the household slot whose load a meter draws (RAM)
        self._manual: set[int] = set()  # meters whose typed load overrides the profile
        self.start = clock.now()
        self._marks: list[datetime] = []  # shared-clock times of the steps some meter has not reached
        self._mark_base = 0  # how many marks every meter has passed (pruned from _marks)
        self._pos: dict[int, int] = {}  # a hydrated meter's position: how many marks it has reached
        self._at: Counter[int] = Counter({0: len(self.indices)})  # position -> meters there
        self._dormant: dict[int, bytes] = {}  # tools.fleet.dormant records
        self._unsaved: set[int] = set()  # dormant meters whose RAM holds something uncommitted (Meter.unsaved)
        self._layout = dormant.Layout()  # where the shared configuration is, found once
        self._hydrated: OrderedDict[int, MeterNode] = OrderedDict()  # least recently observed first
        self._pinned: dict[int, int] = {}
        self.listeners: list = []  # asyncio servers, once served (tools.fleet.serve)
        self.hydrations = 0
        self.dehydrations = 0
        self.collect_every = 4 * cache_size  # evictions between collections of dead meters (see _collect)
        self._batch: _Batch | None = None  # the open batch of DLMS requests (batched)
        self.sessions: dict[int, set] = {}  # meter -> its open connections' shells (tools.fleet.serve)
        self.batches = 0  # batches committed or failed
        self.batch_failures = 0

    # --- time ----------------------------------------------------------------------------
    def step(self, seconds: float) -> datetime:
        """Step the shared simulated clock. No meter moves now: each catches up, mark by
        mark, when it is next observed."""
        if not self.clock.simulated:
            raise CommandError("step needs the simulated clock")
        if seconds <= 0:
            raise CommandError(f"a step moves time forward, not by {seconds!r} s")
        self.clock.step(seconds)  # type: ignore[attr-defined]
        self._marks.append(self.clock.now())
        return self.clock.now()

    def advance(self) -> None:
        """Every meter of the shard walked to now, in one commit group (one fsync for a
        fleet-wide boundary): what a bench measures, or a read-back wants before it reads."""
        with self.store.group():
            for index in self.indices:
                with self.observe(index):
                    pass

    def advance_slices(self, budget: float = ADVANCE_SLICE_S,
                       visit: Callable[[int, MeterNode], None] | None = None) -> Iterator[float]:
        """:meth:`advance` for a cooperative caller: one commit group per ``budget`` seconds
        of real time, closed before each yield (the fraction of meters done), so what runs in
        between (an association delivering a token, committed before it is acknowledged) is
        never inside a group, and a stop between slices finds every walked meter committed.
        A meter is walked whole once begun: its marks cannot be split (see the module text).
        ``visit(index, node)``, if given, is called with each meter once it is walked, while
        it is still hydrated: a fleet-wide read in the same pass as the walk, not a second one."""
        indices = self.indices
        done = 0
        while done < len(indices):
            until = time.monotonic() + budget
            with self.store.group():
                while done < len(indices):
                    with self.observe(indices[done]) as node:
                        if visit is not None:
                            visit(indices[done], node)
                    done += 1
                    if time.monotonic() >= until:
                        break
            yield done / len(indices)

    def _catch_up(self, index: int, node: MeterNode) -> None:
        """Meter ``index`` to now, through every mark it has not reached, in ONE jump
        (:meth:`Meter.advance_to` with :class:`_Schedule`'s stops): the jump stops at each
        mark and, with a load profile, at each household slot edge of the shared clock
        inside a step, where it draws the slot's load, as :meth:`Fleet.step_slices` walks it
        slot by slot; without one, at the ends of the slices of :data:`STEP_SLICE_S` from
        each step's start in which a single meter's console step walks
        (:meth:`MeterNode.step_slices`): a settle lands at each slice's end, and a
        low-credit event or a cut lands on the first settle after the credit crosses, so
        one walk over a long step would put them up to a slice later. A stop is where one
        of the walks the meter would otherwise get (one per mark, slot edge or slice) ends:
        the jump settles there and walks on from it, step for step as those walks would,
        but it is one commit group (one savepoint inside a fleet's), its state records
        written once. Those stops are the meter's own, derived (every slot edge or slice
        end, the load from the meter's seed), never stored."""
        offset = node.clock.offset  # type: ignore[attr-defined]
        stands = node.meter.now - offset  # where the meter is on the shared clock
        i = bisect.bisect_right(self._marks, stands)
        profiled = self.load_profile is not None
        if profiled:
            self._follow(index, node)  # born, restarted or its clock set: the slot it is in now
        if i < len(self._marks):
            stops: list[datetime] = []  # on the meter's clock
            for mark in self._marks[i:]:
                if profiled:
                    stops.extend(edge + offset for edge in household.slot_edges(stands, mark))
                else:
                    cut = stands + _SLICE
                    while cut < mark:
                        stops.append(cut + offset)
                        cut += _SLICE
                stops.append(mark + offset)
                stands = mark
            until = stops.pop()
            node.meter.advance_to(until, _Schedule(self, index, node, stops, profiled))
            if profiled:
                self._follow(index, node)
        if not self.clock.simulated:
            # The time since it was last observed, on its own clock, as one jump too: with a
            # load profile stopping at each slot edge, then the last block measured by a
            # tick. A tick alone over the gap would walk it step by step, a commit (or, in a
            # round's batch, a savepoint and every state record) per step: a storm's read-back
            # of a meter delivered an hour before was an hour of steps each.
            now = node.clock.now()
            until = now - timedelta(seconds=node.max_block_seconds)
            if until > node.meter.now:
                edges = list(household.slot_edges(node.meter.now, until)) if profiled else []
                node.meter.advance_to(until, _Schedule(self, index, node, edges, profiled) if edges else None)
                if profiled:
                    self._follow(index, node)
            node.tick()
            if profiled:
                self._follow(index, node)
        self._reached(index, self._mark_base + len(self._marks))

    def _follow(self, index: int, node: MeterNode) -> None:
        """Draw the household load of the slot the meter's time is in (Member.follow_profile)."""
        if index in self._manual:
            return
        slot, point = household.follow(household.profile(self.load_profile, index), self._slot.get(index),
                                       node.meter.now)
        self._slot[index] = slot
        if point is not None:
            node.draw(point.amps, point.pf, point.lagging, None)

    def typed_load(self, index: int) -> None:
        """A console gave meter ``index`` a load: it overrides the load profile from now on."""
        self._manual.add(index)

    def load_profile_of(self, index: int) -> str:
        """What meter ``index`` draws: 'manual' (a typed load), the profile's name, or 'none'."""
        if index in self._manual:
            return "manual"
        return self.load_profile or "none"

    def _reached(self, index: int, position: int) -> None:
        """Meter ``index`` has applied every mark before ``position``. Marks every meter
        has passed are dropped: a fleet stepped for a simulated month keeps only the marks
        of the slowest meter onwards (a meter never observed holds them all: it is born
        at the fleet's start and catches up through every one)."""
        old = self._pos.get(index, 0)
        self._pos[index] = position
        if old == position:
            return
        self._at[position] += 1
        self._at[old] -= 1
        if self._at[old]:
            return
        del self._at[old]
        if old == self._mark_base:  # the last meter at the slowest position moved on
            lowest = min(self._at)
            del self._marks[:lowest - self._mark_base]
            self._mark_base = lowest

    # --- batches: one commit for a round of DLMS requests ----------------------------------
    def batched(self, index: int) -> None:
        """A connection to meter ``index`` is about to run its requests (connect, data,
        close): they run in the open *batch*, opened now if none is. A batch is one commit
        group of the shard (:meth:`ShardStore.begin_batch`) for every request of one round
        of the event loop: committed, with one fsync, by a callback scheduled for the
        round's end (or sooner, by anything that needs the store outside a group), and
        every byte the requests answer is held (:meth:`send`) until it has committed. So a
        token's reply still leaves only once its credit is on disk, a frame's invocation
        counter reservation is on disk before anything ciphered under it leaves, and a
        SIGKILL before the commit loses requests none of whose answers was sent; but the
        three commits a delivery's meter made (its first start, its counter reservation,
        its token), each an fsync that stopped the whole shard, are shared by every
        meter of the round."""
        if self._batch is None:
            if self.store.in_group or self.store.in_step:  # inside a walk's own group: no batch, nothing held
                return
            self.store.begin_batch(self.flush)
            self._batch = _Batch()
            asyncio.get_running_loop().call_soon(self.flush)
        self._batch.meters.add(index)

    def send(self, conn, data: bytes) -> None:
        """Write ``data`` to ``conn`` once the open batch has committed (now if none is)."""
        if self._batch is None:
            conn.write(data)
        else:
            self._batch.held.append((conn, data))

    def close_after(self, conn) -> None:
        """Close ``conn`` after what is held for it (now if no batch is open)."""
        if self._batch is None:
            conn.close()
        else:
            self._batch.held.append((conn, None))

    def flush(self) -> None:
        """Commit the open batch, then release what it held. A batch that cannot commit
        (a full disk) is rolled back: its meters are powered off as a SIGKILL would, their
        connections aborted and nothing it held sent (see :meth:`_batch_failed`)."""
        batch = self._batch
        if batch is None:
            return
        self._batch = None
        self.batches += 1
        try:
            self.store.commit_batch()
        except StorageError as exc:
            self._batch_failed(batch, exc)
            return
        for conn, data in batch.held:
            if data is None:
                conn.close()
            else:
                conn.write(data)

    def _batch_failed(self, batch: _Batch, exc: StorageError) -> None:
        """Nothing of the batch is on disk, but its meters' RAM moved on with it: each is
        powered off (RAM dropped, next observed it restarts from its last commit, as after a
        crash) and every connection of theirs is aborted, so no answer of the batch and no
        later one from the lost RAM reaches anyone."""
        self.batch_failures += 1
        log.warning("%s: a batch of %d meters could not commit, they restart from their memory: %s",
                    self.store.path, len(batch.meters), exc)
        for conn, _ in batch.held:
            conn.abort()
        for index in batch.meters:
            for shell in list(self.sessions.get(index, ())):
                shell.abort()
            self._power_off(index)

    def _power_off(self, index: int) -> None:
        """Meter ``index`` loses its RAM: hydrated or dormant, it is next built from the shard."""
        node = self._hydrated.pop(index, None)
        blob = self._dormant.pop(index, None)
        if node is None and blob is not None:  # its position among the marks is in the record
            self._pos[index] = dormant.unpack(blob, member_config(self.base, index).meter, index)["mark"]
        self._unsaved.discard(index)

    # --- hydrate / dehydrate --------------------------------------------------------------
    @contextmanager
    def observe(self, index: int) -> Iterator[MeterNode]:
        """Meter ``index`` hydrated and advanced to now, held in the cache while in use.
        An open batch is committed first: what an observer does (a console's token) is
        acknowledged when it returns, so it runs outside any batch."""
        self.flush()
        node = self._node(index)
        self._pinned[index] = self._pinned.get(index, 0) + 1
        try:
            yield node
        finally:
            self._pinned[index] -= 1
            if not self._pinned[index]:
                del self._pinned[index]
            self._evict()

    def pin(self, index: int) -> MeterNode:
        """Hydrate and keep meter ``index`` until :meth:`unpin` (an association is open)."""
        node = self._node(index)
        self._pinned[index] = self._pinned.get(index, 0) + 1
        return node

    def unpin(self, index: int) -> None:
        self._pinned[index] -= 1
        if not self._pinned[index]:
            del self._pinned[index]
        self._evict()

    def _node(self, index: int) -> MeterNode:
        if index not in self._known:
            raise CommandError(f"meter {index} is not in this shard")
        node = self._hydrated.get(index)
        if node is None:
            node = self._hydrate(index)
            self._hydrated[index] = node
        else:
            self._hydrated.move_to_end(index)
        self._catch_up(index, node)
        return node

    def _hydrate(self, index: int) -> MeterNode:
        cfg = member_config(self.base, index)
        clock = ClockView(self.clock)
        blob = self._dormant.pop(index, None)
        self._unsaved.discard(index)
        self.hydrations += 1
        if blob is None:
            memory = self.store.memory(index)
            if not self.store.blank(index) and memory.get("progress") is not None:
                # in the shard but not in RAM: this process restarted, for the meter a power cut
                # (it logs the failure from its last committed step to now, as a single meter does)
                return MeterNode(cfg, None, clock, open_samples(cfg, seed=index), storage=memory, **_NODE)
            # never started: its first start is at the fleet's start, whenever it is first observed
            clock.offset = self.start - self.clock.now()
            node = MeterNode(cfg, None, clock, open_samples(cfg, seed=index), storage=memory, **_NODE)
            clock.offset = timedelta(0)
            return node
        ram = dormant.unpack(blob, cfg.meter, index)
        clock.offset = ram["offset"]
        node = MeterNode(cfg, None, clock, ram["source"], storage=self.store.memory(index), resume=ram["meter"],
                         **_NODE)
        node._load = ram["load"]
        node._earth = ram.get("earth", 0.0)  # a record of before the earth current: a healthy neutral
        node._held = ram.get("held")  # what its measurements are of (a record of before: measure again)
        node.security.counters.resume(ram["counters"])
        self._pos[index] = ram["mark"]
        return node

    def _dehydrate(self, index: int) -> None:
        node = self._hydrated.pop(index)
        # The invocation counters are RAM too: kept here, not flushed to the shard (a flush
        # per eviction was a commit per association, and the next association then had to
        # reserve again: another). The shard holds their reservations, so a crash of the
        # fleet still never reuses one; a clean shutdown flushes them exactly.
        ram = {"meter": node.meter.volatile(), "source": node.source, "load": node._load, "earth": node._earth,
               "offset": node.clock.offset,  # type: ignore[attr-defined]
               "held": node._held,
               "counters": node.security.counters.positions(), "mark": self._pos.pop(index, 0)}
        self._dormant[index] = dormant.pack(ram, node.cfg.meter, node.source, self._layout)
        if node.meter.unsaved():
            self._unsaved.add(index)
        self.dehydrations += 1

    def _evict(self) -> None:
        if len(self._hydrated) <= self.cache_size:
            return
        for index in list(self._hydrated):
            if len(self._hydrated) <= self.cache_size:
                break
            if index not in self._pinned:
                self._dehydrate(index)
                if self.dehydrations % self.collect_every == 0:
                    self._collect()

    def _collect(self) -> None:
        """Free the dehydrated meters. A MeterNode is a web of reference cycles (the meter
        calls back into its node, the console and the object list hold both), so only the
        cycle collector frees it, and left to its own schedule it let hundreds of dead
        meters (about 200 KB each) pile up: 30-40 KB of memory per meter at a few hundred
        meters. A full collection every ``collect_every`` evictions bounds that pile; it is
        cheap when the process froze its start-up objects (``gc.freeze()``, as ``bijli
        fleet --shard`` does once it serves), since the dormant records themselves are
        bytes, which the collector never scans."""
        gc.collect()

    # --- figures ---------------------------------------------------------------------------
    @property
    def hydrated(self) -> int:
        return len(self._hydrated)

    def dormant_bytes(self) -> int:
        """RAM held by the dormant records themselves (their compressed bytes)."""
        return sum(len(b) for b in self._dormant.values())

    # --- end -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """A clean stop, in one commit group, costing the meters with something unsaved.

        A hydrated meter stops as ``bijli meter`` stops (counters flushed, :meth:`Meter.shutdown`).
        A dormant meter whose RAM holds nothing its last commit lacks (:meth:`Meter.unsaved`,
        noted when it was dehydrated) costs nothing: its last commit is its state. One that
        does is resumed from its record with :meth:`Meter.resume` alone (no object list, no
        DLMS server, no console) and stopped the same way. No meter is walked to now: a
        dormant meter stops at the time it was last observed, and after a restart its power
        failure starts there (README, "A shard's clean stop")."""
        self.flush()
        try:
            with self.store.group():
                for index in sorted(self._unsaved):
                    self._stop_dormant(index)
                for node in self._hydrated.values():
                    node.security.counters.flush()
                    node.meter.shutdown()
        finally:
            self._hydrated.clear()
            self._dormant.clear()
            self._unsaved.clear()
            self.store.close()

    def _stop_dormant(self, index: int) -> None:
        cfg = member_config(self.base, index)
        ram = dormant.unpack(self._dormant[index], cfg.meter, index)
        meter = Meter.resume(cfg.meter, self.store.memory(index), ram["meter"])
        counters = security_settings(meter).counters
        counters.resume(ram["counters"])
        counters.flush()
        meter.shutdown()
