"""`bijli fleet --shard K/N`: one slice of a fleet on the engine, as a real process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bijli.dlms.client import Client, ClientSettings
from bijli.tools.fleet.addressing import meter_address
from bijli.tools.node.client_transports import open_client_transport
from tests.conftest import ROOT
from tests.peers.addresses import clear_shard
from tests.tools.test_storm import free_port_run

SERIAL = "0.0.96.1.0.255"


def test_a_shard_serves_its_meters_at_their_own_addresses_and_saves_them(tmp_path):
    manifest = tmp_path / "shard.json"
    # three meters of one shard spread over a fleet of over two million, all above any fleet
    # serving on this machine (tests/peers/addresses.py): K, K + N and K + 2N of shard K/N
    n = 4_000_000
    k = clear_shard(n, 3)
    count = k + 2 * n + 1
    args = [sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", str(count), "--shard", f"{k}/{n}",
            "--state", str(tmp_path / "state"), "--clock", "sim", "--start", "2024-06-14T17:00:00", "--rate", "0",
            "--manifest", str(manifest), "--cache", "1"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while "serving" not in lines:
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, (lines, proc.stderr.read())
            lines.append(line.strip())
        assert f"shard {k}/{n}, 3 of {count} meters" in lines[0]
        meters = json.loads(manifest.read_text())["meters"]
        assert [m["index"] for m in meters] == [k, k + n, k + 2 * n]
        for m in meters:
            assert m["target"] == f"tcp://{meter_address(m['index'])}:4059"
            client = Client(open_client_transport(m["target"], 16), ClientSettings.for_association(16))
            with client:
                client.associate()
                serial = client.get(1, SERIAL, 2).to_python()
            assert (serial.decode() if isinstance(serial, bytes) else serial) == m["serial"]
        assert len({m["serial"] for m in meters}) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "state saved" in out
    assert (tmp_path / "state" / f"shard-{k}-of-{n}.db").exists()


def run_fleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", "fleet", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_shard_unit_is_accepted_by_systemd_analyze_verify(tmp_path):
    out = run_fleet("--print-unit")
    assert out.returncode == 0, out.stderr
    fake = tmp_path / "bijli"  # verify checks that ExecStart exists: a stand-in for the install
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    unit = tmp_path / "bijli-fleet@.service"
    text = out.stdout.replace("/opt/bijli/venv/bin/bijli", str(fake))
    assert "--shard %i/${BIJLI_FLEET_SHARDS}" in text
    instance = tmp_path / "bijli-fleet@3.service"  # a template is verified through an instance
    unit.write_text(text)
    instance.symlink_to(unit)
    assert verify_unit_problems(instance) == (0, [])
    broken = tmp_path / "bijli-fleet-broken@.service"
    broken.write_text(text.replace("TimeoutStopSec=120", "TimeoutStopSec=later"))
    (tmp_path / "bijli-fleet-broken@1.service").symlink_to(broken)
    assert verify_unit_problems(tmp_path / "bijli-fleet-broken@1.service")[1]  # the check has teeth


def test_the_statefulset_makes_the_pod_ordinal_the_shard():
    out = run_fleet("--count", "250000", "--print-statefulset", "8")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "replicas: 8" in text and '"--count", "250000"' in text and '"$(SHARD)/8"' in text
    assert "metadata.labels['apps.kubernetes.io/pod-index']" in text
    assert "storage: 2Gi" in text  # 250,000 meters x 5 GB / 250,000 / 8 shards, doubled, rounded up
    assert run_fleet("--print-statefulset", "0").returncode == 2


def verify_unit_problems(unit_path):
    proc = subprocess.run(["systemd-analyze", "verify", str(unit_path)], capture_output=True, text=True, timeout=60)
    name = unit_path.name.split("@")[0]
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if name in line]
    return proc.returncode, problems


def test_processes_supervises_the_shards_and_restarts_one_killed(tmp_path):
    manifest = tmp_path / "fleet.json"
    proc = subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", "4", "--processes", "2",
                             "--tcp", "127.0.0.1:0", "--state", str(tmp_path / "state"), "--clock", "sim",
                             "--start", "2024-06-14T17:00:00", "--rate", "0", "--manifest", str(manifest)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def until(done) -> list[str]:
        lines = []
        deadline = time.monotonic() + 90
        while not lines or not done(lines[-1]):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, (lines, proc.stderr.read() if not line else "")
            lines.append(line.strip())
        return lines

    def serials() -> dict[int, str]:
        out = {}
        for m in json.loads(manifest.read_text())["meters"]:
            client = Client(open_client_transport(m["target"], 16), ClientSettings.for_association(16))
            with client:
                client.associate()
                serial = client.get(1, SERIAL, 2).to_python()
            out[m["index"]] = serial.decode() if isinstance(serial, bytes) else serial
        return out

    try:
        pids = {int(line.split()[1].split("/")[0]): int(line.rsplit(" ", 1)[1])
                for line in until(lambda line: line == "serving") if line.startswith("shard ")}
        assert sorted(pids) == [0, 1]
        first = serials()
        assert sorted(first) == [0, 1, 2, 3] and len(set(first.values())) == 4
        head = json.loads(manifest.read_text())
        assert (head["shards"], head["host_cores"]) == (2, os.cpu_count())  # one host serves both shards
        os.kill(pids[1], signal.SIGKILL)  # shard 1 (meters 1 and 3) dies as in a power cut
        restarted = until(lambda line: "serving, pid" in line)
        assert any("exited" in line for line in restarted)
        time.sleep(0.5)
        assert serials() == first  # the same meters again, at the ports the rewritten manifest names
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "state saved" in out


def test_processes_on_one_host_give_each_shard_its_own_block_of_ports(tmp_path):
    """`--processes P --tcp HOST:BASEPORT`: shard K of P puts meter I on BASEPORT + I // P (a
    shard per host), so on one host every shard would want the same ports; the supervisor
    gives shard K the K-th block instead, and every meter answers at its own port."""
    base = free_port_run(6)
    manifest = tmp_path / "fleet.json"
    proc = subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", "5", "--processes", "2",
                             "--tcp", f"127.0.0.1:{base}", "--state", str(tmp_path / "state"), "--clock", "sim",
                             "--start", "2024-06-14T17:00:00", "--rate", "0", "--manifest", str(manifest)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while (line := proc.stdout.readline()).strip() != "serving":
            assert line and time.monotonic() < deadline, proc.stderr.read() if not line else line
        meters = json.loads(manifest.read_text())["meters"]
        ports = {m["index"]: int(m["target"].rsplit(":", 1)[1]) for m in meters}
        # shard 0 (meters 0, 2, 4) on base..base+2, shard 1 (meters 1, 3) on base+3, base+4
        assert ports == {0: base, 2: base + 1, 4: base + 2, 1: base + 3, 3: base + 4}
        for m in meters:
            client = Client(open_client_transport(m["target"], 16), ClientSettings.for_association(16))
            with client:
                client.associate()
                assert client.get(1, SERIAL, 2).to_python()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


class ShardProcess:
    """`bijli fleet --shard` with its console on a pipe."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "fleet", *args], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while "fleet console on this terminal: type help" not in lines:
            line = self.proc.stdout.readline()
            assert line and time.monotonic() < deadline, (lines, self.proc.stderr.read())
            lines.append(line.strip())

    def console(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().rstrip("\n")

    def stop(self) -> tuple[float, str]:
        """SIGTERM; the seconds until it exited, and its output."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err
        return time.monotonic() - t0, out


def test_a_shard_stops_in_the_time_of_its_unsaved_meters_and_restarts_with_every_commit(tmp_path):
    """400 dormant meters, one of them with half a minute metered in RAM only: SIGTERM saves
    that one (not the 399 whose last commit is their state), quickly; after a restart every
    meter's memory is there and the one with progress kept it."""
    from bijli.firmware.shard import ShardStore

    state = tmp_path / "state"
    common = ["--count", "400", "--shard", "0/1", "--state", str(state), "--clock", "sim", "--rate", "0",
              "--cache", "4", "--tcp", "127.0.0.1:0"]
    shard = ShardProcess(*common, "--start", "2024-06-14T17:00:00")
    try:
        t0 = time.monotonic()
        assert shard.console("advance") == "400 meters at 2024-06-14T17:00:00"  # every meter born, then dormant
        born = time.monotonic() - t0
        assert shard.console("meter 5 load 9").startswith("load 9")
        assert shard.console("step 10m") == "2024-06-14T17:10:00"
        json.loads(shard.console("meter 5 status --json"))  # walked and committed at 17:10
        assert shard.console("step 30s") == "2024-06-14T17:10:30"
        kept = json.loads(shard.console("meter 5 status --json"))  # the half minute: in RAM only
        for i in (6, 7, 8, 9):  # meter 5 leaves the cache of four: dormant with something unsaved
            assert shard.console(f"meter {i} time").startswith("2024-06-14T17:10:30")
    finally:
        took, out = shard.stop()
    assert "state saved" in out
    assert took < max(1.5, born / 4), (took, born)  # not a hydration per dormant meter (born: one each)
    store = ShardStore.open(state / "shard-0-of-1.db")
    try:
        assert store.meters() == list(range(400))
        memory = store.memory(5)
        assert round(memory.get("energy")["active_import_wh"] / 1000, 3) == kept["energy_import_kwh"] > 0
        assert memory.get("progress")["last_now"].startswith("2024-06-14T17:10:30")
        assert store.memory(300).get("progress")["last_now"].startswith("2024-06-14T17:00")  # its birth commit
    finally:
        store.close()
    again = ShardProcess(*common, "--start", "2024-06-14T18:00:00")
    try:
        after = json.loads(again.console("meter 5 status --json"))
        assert after["energy_import_kwh"] == kept["energy_import_kwh"] and after["time"] == "2024-06-14T18:00:00"
    finally:
        again.stop()


def test_a_storm_over_engine_shards_one_killed_midway_credits_every_meter_exactly_once(tmp_path):
    """The recharge storm against two `bijli fleet --shard` processes (the fleet engine, one
    hydrated meter at a time, so every association resumes a dormant meter); shard 1 is
    SIGKILLed while the storm runs (its meters' RAM lost, a power cut) and started again on
    the same state and ports; the storm still ends with every meter credited exactly once,
    checked here again in the meter-reader association."""
    from tests.tools.test_storm import credits, free_port_run, journal_kinds, storm_process, wait_for_deliveries

    def shard(k: int, base: int) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", "6", "--shard", f"{k}/2",
             "--tcp", f"127.0.0.1:{base}", "--state", str(tmp_path / "state"), "--clock", "sim",
             "--start", "2024-06-14T17:00:00", "--rate", "0", "--manifest", str(tmp_path / f"shard-{k}.json"),
             "--cache", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        lines: list[str] = []
        while "serving" not in lines:
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, (lines, proc.stderr.read() if not line else "")
            lines.append(line.strip())
        return proc

    base = free_port_run(6)
    bases = (base, base + 3)  # three ports per shard (meter I at base + I // 2), kept over a restart
    shards = [shard(0, bases[0]), shard(1, bases[1])]
    try:
        meters = sorted((m for k in (0, 1) for m in json.loads((tmp_path / f"shard-{k}.json").read_text())["meters"]),
                        key=lambda m: m["index"])
        assert [m["index"] for m in meters] == list(range(6))
        manifest = tmp_path / "fleet.json"
        manifest.write_text(json.dumps({"count": 6, "clock": "sim", "meters": meters}), encoding="utf-8")
        journal = tmp_path / "j.jsonl"
        proc = storm_process(manifest, journal, "--amount", "30", "--concurrency", "1", "--retries", "40",
                             "--timeout", "5")
        wait_for_deliveries(proc, journal, 2)
        shards[1].kill()  # SIGKILL: shard 1 (meters 1, 3, 5) loses its RAM
        shards[1].communicate(timeout=30)
        assert journal_kinds(journal).count("delivered") < 6  # midway: some meters still to deliver
        shards[1] = shard(1, bases[1])
        stdout, stderr = proc.communicate(timeout=240)
        out = json.loads(stdout)
        assert out["ok"], (out, stderr)
        assert out["exact"] == 6 and out["delivered_now"] == 6
        assert all(total == 3000 for total, _ in credits(meters).values())
    finally:
        for p in shards:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.communicate(timeout=120)


def _limited(soft: int, hard: int):
    def preexec():
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return preexec


def _may_raise_hard_limit() -> bool:
    """Whether this machine lets a process raise its hard RLIMIT_NOFILE (CAP_SYS_RESOURCE:
    root, unless a container withholds the capability, as here)."""
    code = ("import resource\ns, h = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (h + 1, h + 1))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          preexec_fn=_limited(100, 200)).returncode == 0


def test_a_shard_raises_its_descriptor_limits_or_refuses_at_start_with_what_it_needs(tmp_path):
    """Issue 12: a shard needs a descriptor per listener. It raises its soft limit, and its
    hard one when it may (CAP_SYS_RESOURCE, up to fs.nr_open); what it cannot get is a
    UsageError at start (status 2, nothing built), never EMFILE half way through its listeners."""
    code = ("import resource\nfrom bijli.tools.fleet.descriptors import check_file_descriptors\n"
            "check_file_descriptors(3000, 1, 1024, raise_hard=True)\n"
            "print(*resource.getrlimit(resource.RLIMIT_NOFILE))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       preexec_fn=_limited(100, 10_000))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4024", "10000"]  # the soft limit, to what it needs
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       preexec_fn=_limited(100, 200))
    if _may_raise_hard_limit():
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["4024", "4024"]
    else:
        assert "UsageError: 3,000 meters need about 4,024 open files" in r.stderr
        assert "hard limit 200, which only a process with CAP_SYS_RESOURCE may raise" in r.stderr
    with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
        nr_open = int(f.read())
    count = nr_open + 10  # more listeners than the kernel lets one process have, even as root
    r = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", str(count), "--shard", "0/1",
                        "--state", str(tmp_path / "state"), "--console", "none"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"{count:,} meters need about {count + 1024:,} open files" in r.stderr
    assert f"fs.nr_open = {nr_open:,}" in r.stderr and "ulimit -n" in r.stderr and "more shards" in r.stderr
    assert "meters fit in one process under the hard limit" in r.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was built


def test_processes_that_cannot_hold_their_listeners_are_refused_with_how_many_would(tmp_path):
    """`--processes P` checks once, before starting any shard, and names the number of
    processes that fit under this hard limit (here 1,000 meters each)."""
    with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
        count = 2 * int(f.read()) + 20  # beyond the kernel's ceiling in each of two shards: refused everywhere
    r = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", str(count), "--processes", "2",
                        "--state", str(tmp_path / "state")], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       preexec_fn=_limited(2024, 2024))
    assert r.returncode == 2, r.stderr
    assert f"--processes {-(-count // 1000)} (or --shard K/{-(-count // 1000)})" in r.stderr
    assert "did not start" not in r.stderr + r.stdout and not (tmp_path / "state").exists()


def test_the_fewest_shards_that_fit_under_the_hard_open_file_limit():
    """The Bakrid scenario's default --processes: one per core unless the shards' meters
    would not fit under the hard limit a child inherits (refused at start otherwise)."""
    code = ("import resource\nfrom bijli.tools.fleet.descriptors import ENGINE_FD_HEADROOM, shards_that_fit\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (2024, 2024))\n"
            "print(shards_that_fit(500, 2), shards_that_fit(1000, 1), shards_that_fit(1001, 1), "
            "shards_that_fit(10_000, 2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2", "1", "2", "10"]  # 1,000 meters a shard under 2,024 (1,024 headroom)
