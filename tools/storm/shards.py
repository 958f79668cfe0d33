"""A scenario's fleet: P ``bijli fleet --shard K/P`` processes, each driven through its console.

A scenario (:mod:`tools.storm.scenario`) needs what ``bijli fleet --processes P`` gives a
head-end (one process per core, the meters at their own loopback addresses 127.x.y.z:4059,
the shards' manifests merged by index: :func:`tools.fleet.manifest.merge_manifests`) and
also each shard's console, which the supervisor keeps to itself. So it starts the P
shards itself, with their consoles on pipes and their stderr (where a long console line
reports its progress) in a file each, and sends a line to every shard at once: the shards
work in parallel, one per core, and the lines' replies are collected by one thread each
while this process prints progress (each shard's latest ``N% done``) and measures the
phase: wall time and the CPU of the shards (``/proc/PID/stat``) and of this process.

The end of a reply is marked the way a person at a terminal would see it: after the line,
an unknown word is sent, and its one-line error closes the reply before it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, TextIO

from bijli.tools.storm import ScenarioError

_END = "#end-of-reply"  # an unknown command: its one-line error marks the end of the reply before it
STARTUP_TIMEOUT = 600.0  # seconds for a shard to serve (its manifest hydrates each of its meters once)
_PROGRESS = re.compile(r": (\d+(?:\.\d+)?)% done")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a live child ``pid`` (Linux /proc), None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15)


class ShardProcess:
    """One ``bijli fleet --shard K/N`` child with its console on a pipe."""

    def __init__(self, work: Path, shard: int, shards: int, fleet_args: list[str]):
        self.shard, self.shards = shard, shards
        self.name = f"shard {shard}/{shards}"
        self.manifest_path = work / f"manifest-shard-{shard}-of-{shards}.json"
        self.manifest_path.unlink(missing_ok=True)
        self.err_path = work / f"shard-{shard}-of-{shards}.err"
        args = [sys.executable, "-m", "bijli.tools.cli", "fleet", *fleet_args, "--shard", f"{shard}/{shards}",
                "--manifest", str(self.manifest_path), "--console", "stdio"]
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1)

    def wait_serving(self, timeout: float = STARTUP_TIMEOUT) -> dict:
        """Until its console is up; its manifest. (A timeout needs the reader to see lines;
        a shard that hangs without a word is ended by its caller's close.)"""
        deadline = time.monotonic() + timeout
        while True:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise ScenarioError(f"{self.name} did not start: see {self.err_path}")
            if "fleet console on this terminal" in line:
                return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def ask(self, command: str) -> list[str]:
        """The reply lines of one console line."""
        try:
            self.proc.stdin.write(f"{command}\n{_END}\n")
            self.proc.stdin.flush()
        except OSError:
            raise ScenarioError(f"{self.name} stopped before {command!r}: see {self.err_path}") from None
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ScenarioError(f"{self.name} stopped during {command!r}: see {self.err_path}")
            line = line.rstrip("\n")
            if _END in line and line.startswith("error: unknown command"):
                return lines
            lines.append(line)

    def progress(self) -> float | None:
        """The fraction done its last long line reported on stderr (None: nothing yet)."""
        try:
            with open(self.err_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                tail = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        found = _PROGRESS.findall(tail)
        return float(found[-1]) / 100 if found else None

    def cpu(self) -> float | None:
        return process_cpu(self.proc.pid)

    def quit(self) -> None:
        """SIGTERM, as the supervisor stops a shard: it saves its meters and stops, within a
        second even in the middle of a long line (a console ``quit`` would wait for the line)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def close(self, timeout: float = 60.0) -> None:
        """Stopped (every meter saved), or killed when it does not stop within ``timeout``."""
        self.quit()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


class Shards:
    """The P shard processes of one scenario fleet, and the phases measured on them."""

    def __init__(self, work: Path, processes: int, fleet_args: list[str], *, progress_out: TextIO | None = sys.stderr,
                 progress_every: float = 5.0, walks_at_once: int | None = None):
        self.work = work
        self.processes = processes
        self.fleet_args = fleet_args
        self.progress_out = progress_out
        self.progress_every = progress_every
        self.phases: list[dict] = []
        self.members: list[ShardProcess] = []
        self._pool = ThreadPoolExecutor(max_workers=processes, thread_name_prefix="shard-console")
        # A walk is a shard's CPU for minutes: as many at once as the host has cores, not every
        # shard (14 processes time-sliced on two cores walked 1.6 times slower a meter, each
        # slice beginning with the caches another process had filled).
        self._walks = ThreadPoolExecutor(max_workers=max(1, min(processes, walks_at_once or processes)),
                                         thread_name_prefix="shard-walk")

    def say(self, text: str) -> None:
        if self.progress_out is not None:
            print(f"bakrid: {text}", file=self.progress_out, flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[dict]:
        """Measure what runs inside: wall, the shards' CPU and this process's CPU."""
        before = {m.proc.pid: m.cpu() for m in self.members}
        wall, own = time.monotonic(), time.process_time()
        record: dict = {"phase": name}
        yield record
        after = {m.proc.pid: m.cpu() for m in self.members}  # a shard started inside: from 0
        spent = [None if a is None or before.get(pid, 0.0) is None else a - before.get(pid, 0.0)
                 for pid, a in after.items()]
        fleet = None if None in spent else sum(spent)
        record.update(wall_s=round(time.monotonic() - wall, 3), fleet_cpu_s=None if fleet is None else round(fleet, 2),
                      head_end_cpu_s=round(time.process_time() - own, 2))
        self.phases.append(record)
        self.say(f"{name}: {record['wall_s']} s wall, fleet CPU {record['fleet_cpu_s']} s, "
                 f"head-end CPU {record['head_end_cpu_s']} s")

    def _gather(self, label: str, futures: list) -> list:
        """The futures' results, with a progress line every ``progress_every`` s meanwhile."""
        started = time.monotonic()
        while True:
            done, pending = wait(futures, timeout=self.progress_every)
            if not pending:
                break
            shown = []
            for m, f in zip(self.members, futures):
                p = m.progress()
                shown.append(f"{m.name} " + ("done" if f.done() else "-" if p is None else f"{p:.0%}"))
            self.say(f"{label}: {', '.join(shown)}; {time.monotonic() - started:.0f} s")
        return [f.result() for f in futures]  # a shard's ScenarioError is raised here

    def start(self) -> dict:
        """Start the shards and wait until every one serves; the merged manifest (written
        to ``fleet.json``)."""
        from bijli.tools.fleet.manifest import merge_manifests

        for k in range(self.processes):
            self.members.append(ShardProcess(self.work, k, self.processes, self.fleet_args))
        parts = self._gather("starting", [self._pool.submit(m.wait_serving) for m in self.members])
        merged = merge_manifests(parts)
        (self.work / "fleet.json").write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
        return merged

    def ask_all(self, command: str, label: str | None = None, *, walk: bool = False) -> list[list[str]]:
        """``command`` on every shard at once (``walk``: ``walks_at_once`` at a time); each
        shard's reply lines, in shard order."""
        pool = self._walks if walk else self._pool
        return self._gather(label or command, [pool.submit(m.ask, command) for m in self.members])

    def now(self) -> datetime:
        times = {lines[0] if lines else "" for lines in self.ask_all("time")}
        if len(times) != 1:
            raise ScenarioError(f"the shards' clocks disagree: {sorted(times)}")
        try:
            return datetime.fromisoformat(times.pop())
        except ValueError as exc:
            raise ScenarioError(f"a shard's time is not a time: {exc}") from None

    def step_to(self, when: datetime) -> None:
        """Every shard's clock to ``when`` (a mark: instant; each meter walks when observed)."""
        seconds = (when - self.now()).total_seconds()
        if seconds > 0:
            for m, reply in zip(self.members, self.ask_all(f"step {int(seconds)}s")):
                if not reply or reply[0].startswith("error"):
                    raise ScenarioError(f"{m.name}: step to {when}: {reply}")

    def summary(self, since: datetime, label: str) -> dict:
        """Every meter walked to now and read (``summary SINCE`` on each shard, ``walks_at_once``
        shards at a time), merged."""
        from bijli.tools.fleet.summary import merge

        parts = []
        for m, reply in zip(self.members, self.ask_all(f"summary {since.isoformat()}", label, walk=True)):
            try:
                parts.append(json.loads(reply[-1]))
            except (IndexError, ValueError):
                raise ScenarioError(f"{m.name}: summary answered {reply[-3:]}") from None
        return merge(parts)

    def close(self) -> None:
        for m in self.members:  # every shard told first: they stop in parallel
            m.quit()
        for m in self.members:
            m.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._walks.shutdown(wait=False, cancel_futures=True)
