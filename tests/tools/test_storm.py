"""`bijli storm`: every meter of a real fleet credited exactly once, whatever is killed midway.

The fleets are real ``bijli fleet`` processes; the storm is the real ``bijli storm``
command in a subprocess; every credit is checked again here with the blocking DLMS
client in the meter-reader association, independently of the storm's own read-back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bijli.dlms.client import Client, ClientSettings
from bijli.tools.node.client_transports import open_client_transport
from bijli.tools.storm import StormJournalError
from bijli.tools.storm.engine import backoff, judge
from bijli.tools.storm.journal import TRANSITIONS, Journal, Kind, MeterRecord, MeterState, apply
from bijli.tools.testing.meter import RunningFleet

TOTAL_RECHARGED = "0.0.94.96.23.255"
BALANCE = "0.0.94.96.24.255"


# --- the journal's state machine and the pure pieces ------------------------------------------

RECORDS = {Kind.VENDED: {"token": "12345678901234567890", "tid": 7, "value_paisa": 10000},
           Kind.BEFORE: {"total": 500}, Kind.DELIVERED: {"word": "used", "attempts": 2},
           Kind.REFUSED: {"word": "old", "attempts": 1}}


@given(st.sampled_from(list(MeterState)), st.sampled_from(list(Kind)))
def test_every_state_and_record_pair_moves_by_the_table_or_is_refused_unchanged(state, kind):
    m = MeterRecord("BJL0000001", state=state)
    entry = TRANSITIONS.get((state, kind))
    if entry is None:
        with pytest.raises(StormJournalError):
            apply(m, kind, RECORDS[kind])
        assert m.state is state and m.token is None and m.before is None and m.word is None
    else:
        apply(m, kind, RECORDS[kind])
        assert m.state is entry[1]


def test_a_delivery_is_sold_then_in_doubt_then_delivered_in_that_order_only():
    m = MeterRecord("BJL0000001")
    for kind, state in ((Kind.VENDED, MeterState.VENDED), (Kind.BEFORE, MeterState.IN_DOUBT),
                        (Kind.DELIVERED, MeterState.DELIVERED)):
        apply(m, kind, RECORDS[kind])
        assert m.state is state
    assert (m.token, m.before, m.word, m.attempts) == ("12345678901234567890", 500, "used", 2)


@given(st.integers(1, 40), st.floats(0.001, 1.0), st.floats(0.01, 30.0), st.randoms(use_true_random=False))
def test_backoff_grows_exponentially_within_its_cap_with_jitter(attempt, base, cap, rng):
    pause = backoff(attempt, base, cap, rng)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert ceiling / 2 - 1e-12 <= pause <= ceiling  # equal jitter: between half and the whole ceiling


def test_judge_names_lost_doubled_and_partial_credit():
    D = MeterState.DELIVERED
    assert judge(D, 100, 50, 150) == {"ok": True, "verdict": "exact"}
    assert judge(D, 100, 50, 100)["verdict"] == "lost"
    assert judge(D, 100, 50, 200)["verdict"] == "over-credited by 50 paisa"
    assert not judge(MeterState.IN_DOUBT, 100, 50, 150)["ok"]
    assert not judge(MeterState.VENDED, None, 50, 150)["ok"]


def test_a_torn_last_line_is_ignored_a_damaged_one_refused_another_storms_journal_refused(tmp_path):
    path = tmp_path / "j.jsonl"
    header = {"manifest": "abc", "meters": 1, "amount": "10.00"}
    j = Journal.open(path, header)
    j.append_now([{"kind": "vended", "meter": "M1", **RECORDS[Kind.VENDED]}])
    j.close()
    with open(path, "ab") as f:
        f.write(b'{"kind":"before","meter":"M1","tot')  # the crash tore this one
    again = Journal.open(path, header)
    assert again.meter("M1").state is MeterState.VENDED
    again.close()
    with pytest.raises(StormJournalError, match="another storm"):
        Journal.open(path, dict(header, amount="20.00"))
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"{not json", lines[1], b""]))
    with pytest.raises(StormJournalError, match="line 2 is damaged"):
        Journal.open(path, header)


def test_a_verdict_waits_for_no_fsync_rides_the_next_group_and_a_crash_before_it_leaves_the_meter_in_doubt(tmp_path):
    """``before`` is on disk when its commit returns; a deferred ``delivered`` is applied at
    once, on disk only with the next durable group (or sync/close), and if the storm dies
    first the journal reopens with the meter in doubt: the state a resend of the same token
    is made for."""
    import asyncio

    path = tmp_path / "j.jsonl"
    header = {"manifest": "abc", "meters": 2, "amount": "100.00"}
    j = Journal.open(path, header)
    j.append_now([{"kind": "vended", "meter": m, **RECORDS[Kind.VENDED]} for m in ("M1", "M2")])

    def on_disk() -> list[str]:
        return journal_kinds(path)

    async def storm_of_two() -> None:
        await j.commit({"kind": "before", "meter": "M1", **RECORDS[Kind.BEFORE]})
        assert on_disk().count("before") == 1
        await j.commit({"kind": "delivered", "meter": "M1", **RECORDS[Kind.DELIVERED]}, durable=False)
        assert j.meter("M1").state is MeterState.DELIVERED and "delivered" not in on_disk()
        with pytest.raises(StormJournalError):  # a pair the table lacks is refused before anything is kept
            await j.commit({"kind": "delivered", "meter": "M1", **RECORDS[Kind.DELIVERED]}, durable=False)
        crashed = Journal.open(path, header)  # what a storm killed now would find
        assert crashed.meter("M1").state is MeterState.IN_DOUBT and crashed.meter("M1").before == 500
        crashed.close()
        await j.commit({"kind": "before", "meter": "M2", **RECORDS[Kind.BEFORE]})  # the next group carries it
        assert on_disk().count("delivered") == 1
        await j.commit({"kind": "delivered", "meter": "M2", **RECORDS[Kind.DELIVERED]}, durable=False)
        await j.sync()
        assert on_disk().count("delivered") == 2

    asyncio.run(storm_of_two())
    j.close()
    again = Journal.open(path, header)
    assert [again.meter(m).state for m in ("M1", "M2")] == [MeterState.DELIVERED] * 2
    again.close()


# --- storms against real fleets ---------------------------------------------------------------


def storm(manifest: Path, journal: Path, *args: str, env: dict | None = None, timeout: float = 240) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "storm", "--manifest", str(manifest),
                           "--journal", str(journal), "--json", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    assert (proc.returncode == 0) == out["ok"]
    return out


def storm_process(manifest: Path, journal: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "storm", "--manifest", str(manifest),
                             "--journal", str(journal), "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def credits(meters: list[dict]) -> dict[str, tuple[int, int]]:
    """(total recharged, balance) in paisa per serial, read here in the meter-reader association."""
    out = {}
    for m in meters:
        settings = ClientSettings.for_association(32, password=m["dlms"]["reader_password"].encode("latin-1"))
        with Client(open_client_transport(m["target"], 32), settings) as client:
            client.associate()
            out[m["serial"]] = (client.get(1, TOTAL_RECHARGED, 2).to_python(), client.get(1, BALANCE, 2).to_python())
    return out


def write_manifest(fleet: RunningFleet, path: Path) -> Path:
    path.write_text(json.dumps(fleet.manifest), encoding="utf-8")
    return path


def wait_for_deliveries(proc: subprocess.Popen, journal: Path, count: int, timeout: float = 120.0) -> None:
    """Until the storm's journal holds ``count`` deliveries (the storm still running)."""
    deadline = time.monotonic() + timeout
    while journal_kinds(journal).count("delivered") < count:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.005)


def journal_kinds(path: Path) -> list[str]:
    kinds = []
    if not path.exists():
        return kinds
    for line in path.read_bytes().split(b"\n"):
        try:
            kinds.append(json.loads(line)["kind"])
        except (ValueError, KeyError):
            pass
    return kinds


def test_a_storm_credits_every_meter_of_a_fleet_exactly_once_and_a_rerun_adds_nothing(bijli_fleet_factory, tmp_path):
    fleet = bijli_fleet_factory(4)
    manifest = write_manifest(fleet, tmp_path / "fleet.json")
    before = credits(fleet.meters)
    out = storm(manifest, tmp_path / "j.jsonl", "--amount", "125", "--concurrency", "3")
    assert out["ok"] and out["delivered_now"] == 4 and out["exact"] == 4 and not out["problems"]
    after = credits(fleet.meters)
    assert all(after[s][0] == before[s][0] + 12500 and after[s][1] == before[s][1] + 12500 for s in before)
    again = storm(manifest, tmp_path / "j.jsonl", "--amount", "125")  # the same journal: resumes, all done
    assert again["ok"] and again["delivered_now"] == 0 and again["already_delivered"] == 4
    assert credits(fleet.meters) == after
    second = storm(manifest, tmp_path / "j2.jsonl", "--amount", "125")  # a new storm: new TIDs, credited again
    assert second["ok"] and second["delivered_now"] == 4
    assert all(credits(fleet.meters)[s][0] == after[s][0] + 12500 for s in before)


def test_a_token_in_doubt_is_sent_again_as_the_same_token_and_counts_once(bijli_fleet_factory, tmp_path):
    """The storm took the meter's credit-before, sent the token, the meter took it, and the
    storm died before journaling the verdict: the resumed storm sends the same digits, the
    meter answers used, and the credit is counted once."""
    fleet = bijli_fleet_factory(2)
    manifest = write_manifest(fleet, tmp_path / "fleet.json")
    journal = tmp_path / "j.jsonl"
    assert storm(manifest, journal, "--amount", "50", "--concurrency", "1")["ok"]
    lines = journal.read_bytes().split(b"\n")
    last_before = max(i for i, line in enumerate(lines) if b'"kind":"before"' in line)
    journal.write_bytes(b"\n".join(lines[: last_before + 1]) + b"\n")  # as if killed right after the ACTION
    out = storm(manifest, journal, "--amount", "50", "--concurrency", "1")
    assert out["ok"] and out["delivered_now"] == 1 and out["already_delivered"] == 1
    assert any(json.loads(x)["word"] == "used" for x in journal.read_bytes().split(b"\n")[:-1]
               if b'"kind":"delivered"' in x)
    assert all(total == 5000 for total, _ in credits(fleet.meters).values())


def test_a_storm_killed_midway_resumes_from_its_journal_with_nothing_lost_or_doubled(bijli_fleet_factory, tmp_path):
    fleet = bijli_fleet_factory(6)
    manifest = write_manifest(fleet, tmp_path / "fleet.json")
    journal = tmp_path / "j.jsonl"
    proc = storm_process(manifest, journal, "--amount", "40", "--concurrency", "1")
    wait_for_deliveries(proc, journal, 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = journal_kinds(journal).count("delivered")
    assert killed_at < 6, "the storm finished before it could be killed"
    out = storm(manifest, journal, "--amount", "40", "--concurrency", "2")
    assert out["ok"] and out["exact"] == 6 and out["delivered_now"] + out["already_delivered"] == 6
    assert all(total == 4000 for total, _ in credits(fleet.meters).values())


def free_port_run(count: int) -> int:
    """A base port with ``count`` free ports above it (so a restarted fleet keeps its addresses)."""
    for base in range(23000 + os.getpid() % 1000 * 20, 60000, 997):
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def test_a_fleet_process_killed_and_restarted_during_the_storm_loses_and_doubles_nothing(tmp_path):
    base = free_port_run(6)
    state = tmp_path / "fleet"
    fleet = RunningFleet.start(state, 6, extra=("--tcp", f"127.0.0.1:{base}"))
    try:
        manifest = write_manifest(fleet, tmp_path / "fleet.json")
        journal = tmp_path / "j.jsonl"
        proc = storm_process(manifest, journal, "--amount", "30", "--concurrency", "1", "--retries", "40",
                             "--timeout", "5")
        wait_for_deliveries(proc, journal, 2)
        os.killpg(fleet.proc.pid, signal.SIGKILL)  # a power cut of the whole fleet process
        fleet.proc.wait()
        fleet = RunningFleet.start(state, 6, extra=("--tcp", f"127.0.0.1:{base}"))  # same state, same ports
        stdout, stderr = proc.communicate(timeout=240)
        out = json.loads(stdout)
        assert out["ok"], (out, stderr)
        assert out["exact"] == 6 and out["delivered_now"] == 6
        assert all(total == 3000 for total, _ in credits(fleet.meters).values())
    finally:
        fleet.stop()


def test_a_tid_another_token_used_first_is_reported_not_counted_as_delivered(bijli_fleet_factory, tmp_path):
    """Two vending systems that do not share a TID journal sell the same TID: the meter takes the
    first and answers used to the second, which this storm never sent before. That is a lost
    recharge, and the storm says so (exit 1) instead of counting the 'used' as its delivery."""
    fleet = bijli_fleet_factory(2)
    manifest = write_manifest(fleet, tmp_path / "fleet.json")
    when = ("--vend-time", "2024-06-14T17:00")
    first = storm(manifest, tmp_path / "a.jsonl", "--amount", "20", *when, "--vend-journal", str(tmp_path / "v1.json"))
    assert first["ok"]
    second = storm(manifest, tmp_path / "b.jsonl", "--amount", "20", *when, "--vend-journal", str(tmp_path / "v2.json"))
    assert not second["ok"] and second["delivered_now"] == 0 and len(second["failed"]) == 2
    assert all("used this TID" in f["error"] for f in second["failed"])
    assert {p["verdict"] for p in second["problems"]} == {"not credited (refused)"}
    assert all(total == 2000 for total, _ in credits(fleet.meters).values())
    third = storm(manifest, tmp_path / "c.jsonl", "--amount", "20", *when, "--vend-journal", str(tmp_path / "v1.json"))
    assert third["ok"] and third["delivered_now"] == 2  # the shared journal moves to the next free minute
    assert all(total == 4000 for total, _ in credits(fleet.meters).values())


def test_progress_is_one_line_rewritten_on_a_terminal_and_plain_lines_on_a_pipe():
    import io

    from bijli.tools.storm.engine import Progress, Stats

    stats = Stats(10, done=4, failed=1, latencies=[0.010, 0.020, 0.030])
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        Progress(stats, tty).show()
        Progress(stats, tty).show(final=True)
        shown = ""
        deadline = time.monotonic() + 5
        while "\n" not in shown and time.monotonic() < deadline:  # a pty may hand it over in pieces
            shown += os.read(master, 4096).decode()
    os.close(master)
    assert shown.count("\r\x1b[K") == 2 and shown.rstrip().endswith("s") and shown.count("\n") == 1
    assert "storm: 4/10 delivered" in shown and "p50 20 ms" in shown and "1 failed" in shown
    pipe = io.StringIO()
    Progress(stats, pipe).show()
    assert "\r" not in pipe.getvalue() and pipe.getvalue().endswith("\n")


@given(st.sampled_from(["tcp", "udp", "TCP", ""]),
       st.sampled_from(["127.0.0.2", "LocalHost", "[::1]", "a@h", "h h", "", "h:1", "[x", "h%1", "h\\x", "h\t"]),
       st.sampled_from(["4059", "0", "65535", "65536", "", "١٢", "00080", "123456"]),
       st.sampled_from(["", "/", "/x", "?q", "#f"]))
def test_a_manifest_target_is_read_as_urlsplit_reads_it(scheme, host, port, tail):
    """parse_target splits the plain form by hand; it must agree with urlsplit on every form."""
    from urllib.parse import urlsplit

    from bijli.tools.storm import DeliveryError
    from bijli.tools.storm.link import parse_target

    target = f"{scheme}://{host}:{port}{tail}"

    def outcome(fn):
        try:
            return fn()
        except DeliveryError:
            return "refused"
        except ValueError:
            return "ValueError"

    def reference():
        parts = urlsplit(target)
        if parts.scheme != "tcp" or not parts.hostname or not parts.port:
            raise DeliveryError("not a TCP wrapper target", retry=False)
        return parts.hostname, parts.port

    assert outcome(lambda: parse_target(target)) == outcome(reference)


def test_meters_with_the_same_keys_share_one_keys_object():
    from bijli.tools.storm.delivery import MeterTarget

    dlms = {"encryption_key": "00" * 16, "authentication_key": "11" * 16, "reader_password": "12345678"}
    a = MeterTarget.from_row({"serial": "A", "target": "tcp://127.0.0.2:4059", "dlms": dict(dlms)}, 0)
    b = MeterTarget.from_row({"serial": "B", "target": "tcp://127.0.0.3:4059", "dlms": dict(dlms)}, 1)
    c = MeterTarget.from_row({"serial": "C", "target": "tcp://127.0.0.4:4059",
                              "dlms": dict(dlms, encryption_key="22" * 16)}, 2)
    assert a.keys is b.keys and a.keys is not c.keys
    assert c.keys.encryption_key == bytes([0x22]) * 16 and a.keys.reader_password == b"12345678"
    assert (a.host, a.port, b.host, c.index) == ("127.0.0.2", 4059, "127.0.0.3", 2)


@given(st.lists(st.lists(st.floats(0, 60, allow_nan=False), max_size=20), max_size=12),
       st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]))
def test_the_progress_quantiles_are_those_of_every_latency_so_far(batches, q):
    """The stats keep a sorted copy merged as latencies come in; every quantile asked between
    batches is the one a fresh sort of all latencies so far gives."""
    from bijli.tools.storm.engine import Stats

    stats = Stats(1000)
    assert stats.quantile(q) is None
    for batch in batches:
        stats.latencies.extend(batch)
        xs = sorted(stats.latencies)
        assert stats.quantile(q) == (xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None)
    stats.latencies = stats.latencies[:1]  # replaced by a shorter list: sorted again from it
    assert stats.quantile(q) == (stats.latencies[0] if stats.latencies else None)


def test_a_meter_that_never_answers_is_retried_then_named_while_the_others_are_delivered(bijli_fleet_factory, tmp_path):
    fleet = bijli_fleet_factory(2)
    silent = socket.socket()  # a meter that accepts the connection and then says nothing
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        rows = [dict(fleet.meters[0]), dict(fleet.meters[1])]
        rows[1]["target"] = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        manifest = tmp_path / "fleet.json"
        manifest.write_text(json.dumps({"meters": rows}), encoding="utf-8")
        started = time.monotonic()
        out = storm(manifest, tmp_path / "j.jsonl", "--amount", "10", "--timeout", "0.5", "--retries", "2")
        assert time.monotonic() - started < 60
    finally:
        silent.close()
    assert not out["ok"] and out["delivered_now"] == 1 and out["retries"] == 2
    (failed,) = out["failed"]
    assert failed["meter"] == rows[1]["serial"] and failed["attempts"] == 3 and "no answer within 0.5 s" in failed["error"]
    verdicts = {p["meter"]: p["verdict"] for p in out["problems"]}
    assert verdicts == {rows[1]["serial"]: "unreadable"}
    assert credits([rows[0]])[rows[0]["serial"]][0] == 1000


def test_a_single_meters_manifest_is_a_fleet_of_one(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(hdlc=False, serial=False, optical=False, console=False)
    out = storm(meter.state / "manifest.json", tmp_path / "j.jsonl", "--amount", "75")
    assert out["ok"] and out["meters"] == 1 and out["exact"] == 1
    with meter.client(32) as client:
        assert client.get(1, TOTAL_RECHARGED, 2).to_python() == 7500


def test_the_manifest_carries_the_currency_crc_rule_and_the_storm_vends_by_it(tmp_path):
    """Issue 11 made the CRC rule of currency tokens a meter setting: a meter set to
    append-01 says so in its manifest row, and the storm's tokens for it are accepted."""
    import copy
    from datetime import datetime

    from bijli.hal.clock import SimClock
    from bijli.tools.node import config
    from bijli.tools.node.meter_node import MeterNode
    from bijli.tools.storm import vending

    raw = copy.deepcopy(config.load(None).raw)
    raw.setdefault("sts", {})["currency_crc"] = "append-01"
    for rule, cfg in (("crc16", config.load(None)), ("append-01", config.parse(raw))):
        node = MeterNode(cfg, tmp_path / rule, SimClock(datetime(2024, 6, 18, 11, 0), rate=0))
        try:
            row = node.manifest("127.0.0.1", 4059)
            assert row["sts"]["currency_crc"] == rule and vending.sts_config(row).currency_crc.value == rule
            (vended,) = vending.vend([row], vending.plan("50"), datetime(2024, 6, 18, 10, 0), tmp_path / "vj.json")
            assert node.meter.enter_token(vended["token"]).accepted, rule
        finally:
            node.shutdown()


@given(st.integers(2, 20), st.data())
def test_waves_take_a_few_shards_meters_at_a_time_and_every_meter_once(shards, data):
    """A storm against shards that share a host takes the meters of ``at_once`` shards at a
    time (spread over all 14 on two cores, a meter cost a shard almost twice the CPU)."""
    from bijli.tools.storm.delivery import MeterTarget
    from bijli.tools.storm.engine import in_waves

    at_once = data.draw(st.integers(1, shards + 2))
    indices = data.draw(st.lists(st.integers(0, 5_000), unique=True, max_size=200))
    targets = [MeterTarget(i, f"S{i}", "127.0.0.1", 4059, None) for i in indices]
    out = in_waves(targets, shards, at_once)
    assert sorted(t.index for t in out) == sorted(indices)  # every meter, once
    if at_once >= shards:
        assert out == targets  # every shard at once: the manifest's order
        return
    waves = [(t.index % shards) // at_once for t in out]
    assert waves == sorted(waves)  # one wave after the other
    for w in set(waves):
        members = [t.index for t in out if (t.index % shards) // at_once == w]
        assert members == sorted(members) and len({i % shards for i in members}) <= at_once
    assert in_waves(targets, 1, at_once) == targets and in_waves(targets, shards, None) == targets


def test_a_manifest_says_how_its_meters_are_sharded_or_the_storm_takes_them_as_listed(tmp_path):
    from bijli.tools.storm.run import load_fleet_manifest, waves

    assert waves({"shards": 14, "host_cores": 2}, None) == {"shards": 14, "shards_at_once": 2}
    assert waves({"shards": 14, "host_cores": 2}, 5) == {"shards": 14, "shards_at_once": 5}
    assert waves({"shards": 14}, None) == {"shards": 14, "shards_at_once": None}  # shards on many hosts: all at once
    for head in ({}, {"shards": 1, "host_cores": 2}, {"shards": "14"}, {"shards": True}):
        assert waves(head, None) == {}
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"count": 1, "clock": "sim", "meters": [{"index": 0, "serial": "A"}]}))
    assert load_fleet_manifest(path) == ([{"index": 0, "serial": "A"}], {"count": 1, "clock": "sim"})
    proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "storm", "--manifest", str(path),
                           "--shards-at-once", "2", "--journal", str(tmp_path / "j.jsonl"),
                           "--vend-journal", str(tmp_path / "vj.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "does not say which shard serves each meter" in proc.stderr
    assert not (tmp_path / "j.jsonl").exists()  # nothing vended, nothing sent
