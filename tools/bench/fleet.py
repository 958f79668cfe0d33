"""`bijli bench fleet`: what one fleet meter costs, measured on the fleet engine itself.

Runs a :class:`~tools.fleet.engine.FleetEngine` on a real shard database in a
temporary directory with ``BIJLI_BENCH_FLEET_METERS`` meters (default 300) and
``BIJLI_BENCH_FLEET_LISTENERS`` listeners (default as many; capped by RLIMIT_NOFILE, which
the bench raises as a shard does; the figures are per meter, so a small fleet gives them,
and a large one checks that they stay flat): the dormant record's size, the process's memory growth per meter (all of
it, and what one more meter adds once the cache of hydrated meters is full),
the time to first start and to resume a meter, the cost of one 30-minute
profile-capture boundary across the fleet in one commit group, the start-up of the
listeners (one plain socket per meter at its own loopback address) with, side by side in
the same run, ``BIJLI_BENCH_FLEET_LISTENERS_BEFORE`` asyncio servers (default 1,000 or
the listeners' count: the way before, opened while the first listeners are still open),
idle CPU on a real clock with every listener open, and the CPU of a manifest row without
hydration beside one of a hydrated meter (the way before); and, on ``BIJLI_BENCH_FLEET_STORM`` dormant meters (default
200), associations per second (one meter-reader association with a GET and a release
per dormant meter, one at a time: hydration, object list and server included) and the
storm's deliveries per second (``bijli storm``'s own engine, 32 associations at once,
vend journal and storm journal on disk; and meters delivered *and* read back per second,
the delivery and read-back phases' CPU together), head-end and meters on one event loop in this
one process, per CPU-second of this process (both sides on one core; other sessions'
load on the machine does not count, pin the bench with ``taskset -c 1`` all the same). Targets are
issue 12's, per meter (8 GB / 250,000 = 32 KB; 60 s / 250,000 for start-up; one core at
idle; 250,000 deliveries in 10 minutes = 417/s, over the machine's two cores).

The disk over a month: ``BIJLI_BENCH_FLEET_MONTH_METERS`` meters (default 10; disk per
meter-day is per meter, so a few give it) with credit and a household load that changes
every 6 hours, walked by the engine through ``BIJLI_BENCH_FLEET_MONTH_DAYS`` simulated
days (default 30) of 30-minute block load, daily load and events, then the shard's size
per meter-day, all included (state records, pages, tails, sqlite's own) but the few
pages an empty shard's tables take; and *before*,
the same records and entries copied into a shard that keeps one row per entry
(``ShardStore.open(packing=False)``, the layout before profile pages), written in one
go (so densely: the ratio is if anything too kind to the rows). Target: 5 GB for
250,000 meters over 30 days = 667 bytes per meter-day.

``BIJLI_BENCH_FLEET_PARTS`` (comma-separated: engine, month, listen, storm; default all)
runs only those parts, e.g. ``BIJLI_BENCH_FLEET_PARTS=listen BIJLI_BENCH_FLEET_LISTENERS=18000``
for one large shard's start-up.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bijli.firmware.shard import ShardStore
from bijli.firmware.sts.vend import vend_credit
from bijli.hal import tcp
from bijli.hal.clock import RealClock, SimClock
from bijli.tools.commands.bench import BenchResult
from bijli.tools.errors import UsageError
from bijli.tools.fleet import serve as fleet_serve
from bijli.tools.fleet.addressing import meter_endpoint
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node import config
from bijli.tools.node.links import tcp_options

START = datetime(2024, 6, 14, 17, 0)
FLEET_TARGET = 250_000
CACHE = 16  # hydrated meters: the rest are dormant records, which is what is measured


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def engine_figures(meters: int, state: Path) -> list[BenchResult]:
    base = config.load(None)
    engine = FleetEngine(base, range(meters), ShardStore.open(state / "shard.db"), SimClock(START, rate=0),
                         cache_size=CACHE)
    with _frozen():
        return _engine_figures(engine, meters, state)


@contextmanager
def _frozen():
    """The start-up objects out of the cycle collector's scans, as ``bijli fleet --shard``
    has them once it serves (:meth:`FleetEngine._collect`), then back: the bench may run
    inside another program (a test)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _engine_figures(engine: FleetEngine, meters: int, state: Path) -> list[BenchResult]:
    rss0 = _rss_bytes()
    t0 = time.perf_counter()
    third = meters // 3
    with engine.store.group():
        for i in range(meters):
            if i == third:
                rss_third = _rss_bytes()
            with engine.observe(i) as node:
                node.set_load(5.0 + i % 7, 0.9, True, None)
    born = (time.perf_counter() - t0) / meters
    rss_end = _rss_bytes()
    rss = (rss_end - rss0) / meters
    # the last two thirds of the meters only: the cache of hydrated meters (about 200 KB
    # each) and sqlite's page cache are full by then, so this is what one more meter costs,
    # what 250,000 meters scale by; the rest of the growth is fixed
    marginal = (rss_end - rss_third) / max(1, meters - third)
    fixed = max(0.0, rss_end - rss0 - marginal * meters)
    record = engine.dormant_bytes() / max(1, meters - engine.hydrated)
    t0 = time.perf_counter()
    engine.advance()  # every meter resumed and dehydrated again, one commit group
    resumed = (time.perf_counter() - t0) / meters
    engine.step(1800)  # 17:00 -> 17:30: a block-load capture on every meter
    t0 = time.perf_counter()
    engine.advance()
    boundary = (time.perf_counter() - t0) / meters
    engine.shutdown()
    disk = sum(p.stat().st_size for p in state.glob("shard.db*")) / meters
    return [
        BenchResult(f"fleet: dormant record per meter ({meters} meters)", record, "bytes", 32 * 1024, False),
        BenchResult("fleet: process memory growth per meter (records + shard cache)", rss, "bytes", 32 * 1024, False),
        BenchResult("fleet: memory per additional meter (last two thirds of the meters)", marginal, "bytes",
                    32 * 1024, False),
        BenchResult(f"fleet: fixed memory (cache of {CACHE} hydrated meters, sqlite)", fixed / 2**20, "MB"),
        BenchResult("fleet: first start of a meter (hydrate, born)", born * 1000, "ms"),
        BenchResult("fleet: resume + re-dehydrate a meter (MeterNode, objects lazy)", resumed * 1000, "ms"),
        # walked eagerly on a real clock, a boundary must be done before the next one
        BenchResult("fleet: 30-min capture boundary, per meter (one group)", boundary * 1000, "ms",
                    1800 / FLEET_TARGET * 1000, False),
        BenchResult("fleet: shard disk per meter after its first boundary", disk / 1024, "KB"),
    ]


def _first_address(part: int) -> int:
    """The first meter index of a bench's listeners: beyond a 250,000-meter fleet (one may be
    running on this machine), by this process's id and ``part``, so that they collide
    neither with the other part nor with a second bench run side by side."""
    return FLEET_TARGET + (os.getpid() % 200) * 40_000 + part * 20_000


async def _listen(meters: int, state: Path, before: int) -> dict[str, float]:
    """Start-up of ``meters`` listeners as a shard opens them (plain sockets,
    :func:`hal.tcp.listen`), and idle CPU on a real clock with them open; the manifest per
    meter without hydration; then, side by side in this run on the same core, the way
    before (an asyncio server per meter, :func:`hal.tcp.serve`: ``before`` of them, at as
    many open descriptors as the first part had) and a manifest row of a hydrated meter."""
    first = _first_address(0)
    engine = FleetEngine(config.load(None), range(first, first + meters), ShardStore.open(state / "listen.db"),
                         RealClock(330))
    figures: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        endpoints = await fleet_serve.serve(engine)
        figures["start"] = time.perf_counter() - t0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(2.0)
        figures["idle"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        t0 = time.process_time()
        fleet_serve.manifest(engine, endpoints)
        figures["manifest"] = (time.process_time() - t0) / meters
        # before: an asyncio server per meter, with every listener above still open (the
        # descriptors a shard holds when it opens its last ones)
        base = _first_address(1)
        options = tcp_options(engine.base.meter.dlms)
        servers = []
        t0 = time.perf_counter()
        try:
            for index in range(base, base + before):
                host, port = meter_endpoint(index)
                servers.append(await tcp.serve(host, port, lambda conn: None, **options))
            figures["start_before"] = (time.perf_counter() - t0) / max(1, before)
        finally:
            for server in servers:
                server.close()
        sample = engine.indices[:min(20, meters)]
        t0 = time.process_time()
        for index in sample:
            with engine.observe(index) as node:
                node.manifest(*endpoints[index])
        figures["manifest_before"] = (time.process_time() - t0) / len(sample)
    finally:
        for listener in engine.listeners:
            listener.close()
        engine.shutdown()
    return figures


async def _storm(meters: int, state: Path) -> tuple[float, float, float, int]:
    """(associations/s, deliveries/s, meters delivered and read back/s, meters credited
    wrongly) on ``meters`` dormant meters, per CPU-second."""
    engine = FleetEngine(config.load(None), range(meters), ShardStore.open(state / "storm.db"),
                         SimClock(START, rate=0), cache_size=CACHE)
    try:
        with _frozen():
            return await _storm_on(engine, state)
    finally:
        for listener in engine.listeners:
            listener.close()
        engine.shutdown()


async def _storm_on(engine: FleetEngine, state: Path) -> tuple[float, float, float, int]:
    from bijli.tools.storm import vending
    from bijli.tools.storm.delivery import MeterTarget, read_credit
    from bijli.tools.storm.engine import Options, Storm
    from bijli.tools.storm.journal import Journal

    endpoints = await fleet_serve.serve(engine, host="127.0.0.1", base_port=0)
    rows = fleet_serve.manifest(engine, endpoints)["meters"]  # every meter born, then dormant
    targets = [MeterTarget.from_row(r, i) for i, r in enumerate(rows)]
    c0 = time.process_time()  # CPU, not wall: other load on the machine does not count
    for t in targets:
        await read_credit(t, timeout=30)
    associations = len(targets) / (time.process_time() - c0)
    credit = vending.plan("100")
    journal = Journal.open(state / "storm.jsonl", {"manifest": "bench", "meters": len(targets),
                                                   "amount": str(credit.value)})
    try:
        journal.append_now(vending.vend(rows, credit, datetime(2024, 6, 18, 11, 30), state / "vend.json"))
        storm = Storm(targets, journal, Options(concurrency=32, timeout=30), progress_out=None)
        verified = await storm.run()
        deliveries = storm.stats.done / storm.delivery_cpu
        # what issue 12's ten minutes hold: every token delivered *and* read back
        verified_rate = sum(1 for v in verified.values() if v["ok"]) / (storm.delivery_cpu + storm.verify_cpu)
    finally:
        journal.close()
    wrong = len(targets) - sum(1 for v in verified.values() if v["ok"])
    return associations, deliveries, verified_rate, wrong


MONTH_BUDGET = 5e9 / (FLEET_TARGET * 30)  # bytes per meter-day


def _household(meter: int, slot: int) -> float:
    """A household's current in the 6-hour ``slot`` of its day (night, morning, day,
    evening), a little different for each meter and each day."""
    base = (0.6, 3.2, 1.8, 5.5)[slot % 4] * (0.7 + (meter % 5) * 0.15)
    return round(base + ((meter * 31 + slot * 17) % 10) / 10, 2)


def month_figures(meters: int, days: int, state: Path) -> list[BenchResult]:
    base = config.parse({"profiles": {"block_load_period": 1800}})  # issue 12's 30-minute blocks
    path = state / "month.db"
    engine = FleetEngine(base, range(meters), ShardStore.open(path), SimClock(START, rate=0), cache_size=meters)
    with engine.store.group():
        for i in range(meters):
            with engine.observe(i) as node:
                token = vend_credit(node.meter.config.sts.vend_key(), Decimal("20000"), subclass=4,
                                    time=START - timedelta(hours=1)).digits
                node.meter.enter_token(token)
    for slot in range(days * 4):
        with engine.store.group():
            for i in range(meters):
                with engine.observe(i) as node:
                    node.set_load(_household(i, slot), 0.9, True, None)
        engine.step(6 * 3600)
    with engine.store.group():  # the last slot walked too
        for i in range(meters):
            with engine.observe(i):
                pass
    engine.shutdown()
    paged = _disk(path)
    shard, rows = ShardStore.open(path), ShardStore.open(state / "month-rows.db", packing=False)
    entries = 0
    with rows.group():
        for i in shard.meters():
            src, dst = shard.memory(i), rows.memory(i)
            with dst.transaction() as tx:
                for key, text in shard._db.execute("SELECT key, value FROM kv WHERE meter = ?", (i,)).fetchall():
                    tx.put(key, src.get(key))
                for (profile,) in shard._db.execute("SELECT profile FROM heads WHERE meter = ?", (i,)).fetchall():
                    for r in src.rows(profile):
                        tx.append(profile, r.time, r.values, 10**9)
                        entries += 1
    shard.close()
    rows.close()
    per_row = _disk(state / "month-rows.db")
    empty = ShardStore.open(state / "empty.db")  # what a shard costs before its first meter (its tables)
    empty.close()
    paged, per_row = paged - _disk(state / "empty.db"), per_row - _disk(state / "empty.db")
    meter_days = meters * days
    return [
        BenchResult(f"fleet month: shard disk per meter-day, profile pages ({meters} meters x {days} days)",
                    paged / meter_days, "bytes", MONTH_BUDGET, False),
        BenchResult("fleet month: shard disk per meter-day, one row per entry (before)", per_row / meter_days,
                    "bytes", MONTH_BUDGET, False),
        BenchResult("fleet month: profile entries per meter-day (block, daily, events)", entries / meter_days,
                    "entries"),
    ]


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if not p.name.endswith(".seal"))


PARTS = ("engine", "month", "listen", "storm")


def bench() -> list[BenchResult]:
    """Every part, or those ``BIJLI_BENCH_FLEET_PARTS`` names (comma-separated, of PARTS:
    e.g. ``listen`` alone for the start-up figures of a large shard)."""
    parts = [p.strip() for p in os.environ.get("BIJLI_BENCH_FLEET_PARTS", ",".join(PARTS)).split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise UsageError(f"BIJLI_BENCH_FLEET_PARTS: no part {', '.join(unknown)} (parts: {', '.join(PARTS)})")
    meters = int(os.environ.get("BIJLI_BENCH_FLEET_METERS", "300"))
    wanted = int(os.environ.get("BIJLI_BENCH_FLEET_LISTENERS", str(meters)))
    wanted_before = int(os.environ.get("BIJLI_BENCH_FLEET_LISTENERS_BEFORE", str(min(wanted, 1000))))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = (hard if hard != resource.RLIM_INFINITY else 10**6) - 200  # both kinds open at once, and the rest
    before = max(1, min(wanted_before, wanted, room // 2))
    listeners = max(1, min(wanted, room - before))
    if soft < listeners + before + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (listeners + before + 200, hard))
    rows: list[BenchResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "engine" in parts:
            rows += engine_figures(meters, Path(tmp))
        if "month" in parts:
            rows += month_figures(int(os.environ.get("BIJLI_BENCH_FLEET_MONTH_METERS", "10")),
                                  int(os.environ.get("BIJLI_BENCH_FLEET_MONTH_DAYS", "30")), Path(tmp))
        if "listen" in parts:
            listen = asyncio.run(_listen(listeners, Path(tmp), before))
            rows += [
                BenchResult(f"fleet: start-up of {listeners} listeners at own loopback addresses", listen["start"],
                            "s"),
                BenchResult("fleet: start-up per listener (60 s / 250,000 = 240 us)",
                            listen["start"] / listeners * 1e6, "us", 60 / FLEET_TARGET * 1e6, False),
                BenchResult(f"fleet: start-up per listener, an asyncio server each (before, same run, {before})",
                            listen["start_before"] * 1e6, "us"),
                BenchResult("fleet: idle CPU on a real clock, listeners open", listen["idle"] * 100, "% of one core",
                            100, False),
                BenchResult("fleet: manifest row per meter, no hydration (CPU)", listen["manifest"] * 1e6, "us"),
                BenchResult("fleet: manifest row per meter, hydrating it (before, same run; CPU)",
                            listen["manifest_before"] * 1e6, "us"),
            ]
        if "storm" in parts:
            storm_meters = int(os.environ.get("BIJLI_BENCH_FLEET_STORM", "200"))
            associations, deliveries, verified_rate, wrong = asyncio.run(_storm(storm_meters, Path(tmp)))
            rows += [
                BenchResult(f"fleet: associations per CPU-s, dormant meters one at a time ({storm_meters} meters)",
                            associations, "/s"),
                BenchResult("fleet: storm deliveries per CPU-s, head-end and meters on one core", deliveries, "/s",
                            FLEET_TARGET / 600 / 2),
                BenchResult("fleet: storm meters delivered and read back per CPU-s (both phases)", verified_rate,
                            "/s", FLEET_TARGET / 600 / 2),
                BenchResult("fleet: storm meters not credited exactly once", wrong, "meters", 0, False),
            ]
    return rows
