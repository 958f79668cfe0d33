"""`bijli storm --scenario bakrid` on the fleet engine, and the shard ``summary`` it reads.

The week runs end to end in a subprocess on two real ``bijli fleet --shard K/2``
processes, driven through their consoles and over DLMS; the shard summary is checked
against what every meter says of itself through its own console (one line per meter,
the slow way the summary replaces), on a real shard database with real tokens.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

from bijli.firmware.shard import ShardStore
from bijli.hal.clock import SimClock
from bijli.tools.fleet import serve as fleet_serve
from bijli.tools.fleet.console import ShardConsole
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.fleet.summary import merge
from bijli.tools.node import config
from bijli.tools.storm import scenario, vending


def bakrid_shard(tmp_path, count=4):
    """A shard of ``count`` meters on the scenario's friendly calendar at Friday 17:00, drawing 5 A."""
    (tmp_path / "bakrid.toml").write_text(scenario.config_text(), encoding="utf-8")
    engine = FleetEngine(config.load(tmp_path / "bakrid.toml"), range(count), ShardStore.open(tmp_path / "shard.db"),
                         SimClock(scenario.FRIDAY, rate=0), cache_size=2, load_profile="constant")
    rows = fleet_serve.manifest(engine, {i: ("127.0.0.1", 4059 + i) for i in range(count)})["meters"]
    return ShardConsole(engine), rows


def recharge(console, rows, amount, when, tmp_path):
    index = {r["serial"]: r["index"] for r in rows}
    for rec in vending.vend(rows, vending.plan(amount), when, tmp_path / "vend-journal.json"):
        assert console.execute(f"meter {index[rec['meter']]} token {rec['token']}").text.startswith("accepted")


def one_by_one(console, count, since=None) -> dict:
    """What the summary must say, from each meter's own console: relay output, credit, events."""
    out = {"meters": count, "supplied": 0, "in_debt": 0, "disconnections": {}, "connections": {}}
    for i in range(count):
        on = console.execute(f"meter {i} get 0.0.96.3.10.255:2").text.strip()
        assert on in ("True", "False")
        out["supplied"] += on == "True"
        credit = console.execute(f"meter {i} status --json").text
        out["in_debt"] += float(json.loads(credit)["credit"]) < 0
        for line in console.execute(f"meter {i} events 1000").text.splitlines():
            when, code = line.split()[:2]
            if since is not None and datetime.fromisoformat(when) <= since:
                continue
            key = {"301": "disconnections", "302": "connections"}.get(code)
            if key:
                out[key][when] = out[key].get(when, 0) + 1
    return out


def test_a_shard_summary_walks_every_meter_and_says_what_each_says_of_itself(tmp_path):
    console, rows = bakrid_shard(tmp_path)
    engine = console.engine
    try:
        recharge(console, rows[:2], "1", scenario.FRIDAY, tmp_path)  # runs out before the friendly evening
        recharge(console, rows[2:3], "10", scenario.FRIDAY, tmp_path)  # lasts; meter 3 has nothing
        assert console.execute("step 29m").text == "2024-06-14T17:29:00"
        assert engine._marks  # nobody looked yet: the summary is what walks them
        s = json.loads(console.execute("summary").text)
        assert engine._marks == []
        assert {k: s[k] for k in ("meters", "supplied", "in_debt", "disconnections", "connections")} == \
            one_by_one(console, 4)
        assert s["time"] == "2024-06-14T17:29:00" and s["since"] is None
        assert s["supplied"] == 1 and s["in_debt"] == 3 and sum(s["disconnections"].values()) == 3
        assert s["friendly_disconnections"] == [] and s["cut_without_debt_count"] == 0
        assert s["in_debt_supplied_count"] == 0  # 17:29 is not friendly: every debtor is off
        # into the friendly evening: the last meter runs out and keeps its supply, in debt
        console.execute("step 3h")
        s = json.loads(console.execute("summary 2024-06-14T17:00").text)
        assert {k: s[k] for k in ("meters", "supplied", "in_debt", "disconnections", "connections")} == \
            one_by_one(console, 4, since=scenario.FRIDAY)
        assert s["friendly_disconnections"] == []
        assert s["in_debt"] == 4 and s["in_debt_supplied"] == [2] and s["in_debt_supplied_count"] == 1
        assert float(s["largest_debt"]) > 0
    finally:
        engine.shutdown()


def test_a_summary_with_a_bad_since_is_refused_and_walks_no_one(tmp_path):
    console, _ = bakrid_shard(tmp_path, count=2)
    try:
        console.execute("step 1h")
        for line, word in (("summary yesterday", "not an ISO time"), ("summary 2024-06-14T17:00 x", "at most one"),
                           ("summary 2024-06-14T17:00+05:30", "without a UTC offset")):
            reply = console.execute(line)
            assert not reply.ok and word in reply.text and "usage: summary [SINCE]" in reply.text
        assert console.engine._marks  # no meter walked
        assert console.execute("time").text == "2024-06-14T18:00:00"
    finally:
        console.engine.shutdown()


def test_shard_summaries_merge_into_the_fleets():
    def part(meters, supplied, debt, largest, cuts, named):
        return {"meters": meters, "supplied": supplied, "in_debt": debt, "largest_debt": largest,
                "since": "2024-06-14T17:00:00", "disconnections": cuts, "connections": {},
                "friendly_disconnections": named, "friendly_disconnections_count": len(named),
                "cut_without_debt": [], "cut_without_debt_count": 0, "in_debt_supplied": [],
                "in_debt_supplied_count": 0}

    m = merge([part(2, 1, 1, "3.50", {"2024-06-18T11:00:00": 1}, []),
               part(3, 0, 3, "12.25", {"2024-06-18T11:00:00": 2, "2024-06-15T12:00:00": 1},
                    [[5, "2024-06-15T12:00:00"]])])
    assert (m["meters"], m["supplied"], m["in_debt"], m["largest_debt"]) == (5, 1, 4, "12.25")
    assert m["disconnections"] == {"2024-06-15T12:00:00": 1, "2024-06-18T11:00:00": 3}
    assert m["friendly_disconnections"] == [[5, "2024-06-15T12:00:00"]] and m["friendly_disconnections_count"] == 1


def test_the_bakrid_week_cuts_no_one_in_friendly_time_every_debtor_at_tuesday_11_and_restores_all(tmp_path):
    work = tmp_path / "bakrid"
    plot = tmp_path / "storm.svg"
    proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "storm", "--scenario", "bakrid", "--count", "3",
                           "--processes", "2", "--tcp", "127.0.0.1:0", "--work", str(work), "--amount", "300",
                           "--json", "--plot", str(plot), "--progress-every", "1",
                           "--shards-at-once", "1"],  # storms, reads and walks a shard at a time
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    r = json.loads(proc.stdout)
    assert r["processes"] == 2 and len(json.loads((work / "fleet.json").read_text())["meters"]) == 3
    assert sorted(p.name for p in work.glob("manifest-shard-*.json")) == ["manifest-shard-0-of-2.json",
                                                                        "manifest-shard-1-of-2.json"]
    # the fleet was configured with the holiday, and it held: Saturday, Sunday and Bakrid Monday friendly
    assert "2024-06-17" in (work / "bakrid.toml").read_text()
    friendly = {c["time"][:10]: c for c in r["checkpoints"] if c["friendly"]}
    assert {"2024-06-15", "2024-06-16", "2024-06-17"} <= set(friendly)
    assert all(c["supplied"] == 3 for c in r["checkpoints"][:-1])  # supply held up to Tuesday 10:59
    assert r["cut_during_friendly_time"] == [] and r["cut_during_friendly_time_count"] == 0
    assert r["in_debt_at_10_59"] > 0 and r["cut_at_11_00"] == r["in_debt_at_10_59"] and r["in_debt_not_cut"] == []
    assert r["cut_without_debt"] == []
    assert set(r["cut_times"]) == {"2024-06-18T11:00:00"}
    assert r["recharge_storm"]["exact"] == 3 and r["recharge_storm"]["ok"]
    assert r["restore_s"]["count"] == r["cut_at_11_00"] and r["not_restored"] == []
    assert r["ok"]
    # every phase measured, each checkpoint's walk among them; progress while it ran
    phases = [p["phase"] for p in r["phases"]]
    assert phases[0] == "start" and phases[-2:] == ["recharge storm", "read-back"]
    assert sum(p.startswith("walk to ") for p in phases) == len(scenario.CHECKPOINTS)
    assert all(p["wall_s"] >= 0 and p["head_end_cpu_s"] >= 0 for p in r["phases"])
    assert sum(p["fleet_cpu_s"] for p in r["phases"]) > 0
    assert "bakrid: walk to 2024-06-18T11:00" in proc.stderr and "storm: 3/3 delivered" in proc.stderr
    svg = plot.read_text()
    assert 'id="series-delivered"' in svg and 'id="series-restored"' in svg
    assert 'id="series-histogram"' in (tmp_path / "storm-latency.svg").read_text()


def test_a_scenario_work_directory_that_holds_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "storm", "--scenario", "bakrid", "--count", "2",
                           "--work", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "holds no earlier Bakrid week" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_scenario_whose_shards_cannot_start_says_so_and_where_to_look(tmp_path):
    def run(*extra):
        return subprocess.run([sys.executable, "-m", "bijli.tools.cli", "storm", "--scenario", "bakrid", "--count", "2",
                               "--work", str(tmp_path / "w"), *extra], capture_output=True, text=True, timeout=120)

    proc = run("--processes", "0")
    assert proc.returncode == 2 and "--processes and --cache must be at least 1" in proc.stderr
    assert not (tmp_path / "w").exists()  # refused before anything was made
    proc = run("--processes", "2", "--tcp", "no-such-host.invalid:0")
    assert proc.returncode == 2 and "did not start: see" in proc.stderr and "shard-" in proc.stderr
    assert not list((tmp_path / "w").glob("fleet.json"))  # no merged manifest of a fleet that never served
