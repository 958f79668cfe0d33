"""A shard's fleet console: the per-file fleet's words over the fleet engine, and `advance`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from bijli.firmware.shard import ShardStore
from bijli.hal.clock import SimClock
from bijli.tools.fleet.console import ShardConsole
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node import config
from bijli.tools.node.fleet import Fleet
from bijli.tools.node.fleet_console import MEMBER_QUIT
from bijli.tools.node.meter_node import run_cooperatively

START = datetime(2024, 6, 14, 17, 0)
BASE = config.load(None)


def shard(tmp_path, indices=(1, 3, 5, 7, 9), cache=2) -> ShardConsole:
    engine = FleetEngine(BASE, indices, ShardStore.open(tmp_path / "shard.db"), SimClock(START, rate=0),
                         cache_size=cache)
    return ShardConsole(engine, {i: ("127.0.0.1", 4059 + i) for i in indices})


def test_a_shard_answers_the_words_of_the_per_file_fleet_and_one_of_its_own(tmp_path):
    console = shard(tmp_path)
    fleet = Fleet(BASE, 1, tmp_path / "files", SimClock(START, rate=0), load_profile="constant")
    try:
        assert list(console.commands) == [*(w for w in fleet.commands if w != "quit"), "advance", "summary", "quit"]
        assert {w: u for w, (_, u, _) in fleet.commands.items()} == \
            {w: u for w, (_, u, _) in console.commands.items()
             if w not in ("advance", "summary")}  # one table, the same usage
    finally:
        fleet.shutdown()
        console.engine.shutdown()


def test_meter_step_status_time_and_quit_through_the_engine(tmp_path):
    console = shard(tmp_path)
    engine = console.engine
    try:
        assert console.execute("meter 3 load 10").ok
        assert console.execute("step 1h").text == "2024-06-14T18:00:00"
        assert console.execute("meter 3 step 30m").text == "2024-06-14T18:30:00"  # the shared clock, every meter
        assert console.execute("time").text == "2024-06-14T18:30:00"
        rows = json.loads(console.execute("status --json").text)
        assert [r["index"] for r in rows] == [1, 3, 5, 7, 9] and [r["port"] for r in rows][:2] == [4060, 4062]
        assert all(r["time"] == "2024-06-14T18:30:00" for r in rows)
        energy = {r["index"]: r["energy_import_kwh"] for r in rows}
        assert energy[3] > 0.5 and all  # (out of credit, cut at 17:15)(energy[i] == 0 for i in (1, 5, 7, 9))
        table = console.execute("status").text.splitlines()
        assert len(table) == 6 and table[2].split()[0] == "3"
        assert json.loads(console.execute("meter 3 status --json").text)["energy_import_kwh"] == energy[3]
        refused = console.execute("meter 3 quit")
        assert not refused.ok and refused.text == MEMBER_QUIT and not refused.quit
        missing = console.execute("meter 2 status")
        assert not missing.ok and "not in this shard" in missing.text
        assert not console.execute("step").ok and not console.execute("advance now").ok
        assert console.execute("time").text == "2024-06-14T18:30:00"  # a refused line changed nothing
        assert console.execute("quit").quit
    finally:
        engine.shutdown()


def test_advance_walks_every_meter_to_now_in_commit_groups(tmp_path):
    console = shard(tmp_path, indices=range(6), cache=1)
    engine = console.engine
    try:
        console.execute("meter 0 load 4")
        console.execute("step 45m")
        assert engine._marks  # nobody looked: every meter still has the step to take
        commits = engine.store.commit
        assert console.execute("advance").text == "6 meters at 2024-06-14T17:45:00"
        assert engine._marks == [] and engine._mark_base == 1  # every meter has taken it
        assert 1 <= engine.store.commit - commits <= 6  # a group per slice of real time
        engine.step(1800)  # captures on every meter
        rows = [engine.store.memory(i).count("block_load") for i in range(6)]
        commits = engine.store.commit
        engine.advance()
        assert engine._marks == [] and engine.store.commit - commits == 1  # one group: one commit
        assert [engine.store.memory(i).count("block_load") - rows[i] for i in range(6)] == [2] * 6  # 18:00, 18:15
        engine.step(900)
        assert list(engine.advance_slices(budget=0.0)) == [i / 6 for i in range(1, 7)]  # a group per meter
        assert engine._marks == [] and engine.store.commit - commits == 7
    finally:
        engine.shutdown()


def test_a_stopping_fleet_ends_an_advance_between_slices_with_the_walked_meters_committed(tmp_path):
    console = shard(tmp_path, indices=range(8), cache=1)
    engine = console.engine
    try:
        console.execute("step 2h")
        stopping = asyncio.Event()
        stopping.set()  # the signal came: the slice under way ends, no other begins
        done = asyncio.run(run_cooperatively(engine.advance_slices(budget=0.0), stopping, "fleet advance",
                                             engine.clock.now, report=lambda text: None))
        assert not done
        assert engine._mark_base == 0 and engine._pos[0] == 1  # meter 0 walked, the others not yet
        assert engine.store.memory(0).get("progress")["last_now"].startswith("2024-06-14T19:00")
        assert engine.store.memory(1).get("progress") is None
    finally:
        engine.shutdown()
