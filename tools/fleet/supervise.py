"""``bijli fleet --processes P``: the P shards of one fleet on this machine, supervised.

One process per core is how a fleet uses a machine (the firmware step is Python, one
core per process). The supervisor starts ``bijli fleet --shard K/P`` for K = 0..P-1 with
the same fleet arguments, all at once, waits until each serves, merges their manifests into one
(rows by meter index, as shards on many machines merge), restarts a shard that dies
(a SIGKILL is a power cut of its meters: they come back from the shard database, as a
single meter does) with a short back-off, rewriting the merged manifest, and on SIGTERM
or SIGINT stops every shard with SIGTERM so each saves its meters. Beyond one machine
use an orchestrator instead (:mod:`tools.fleet.deploy`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bijli.tools.errors import UsageError
from bijli.tools.fleet.manifest import merge_files

__all__ = ["RESTART_BACKOFF_S", "Supervisor"]

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)  # after the 1st, 2nd, 3rd, later deaths in a row
STOP_REPORT_S = 30.0  # how often a stop says which shard it still waits for


class Supervisor:
    def __init__(self, fleet_args: list[str], processes: int, manifest: Path | None, state: Path,
                 shard_args: Callable[[int], list[str]] | None = None):
        if processes < 1:
            raise UsageError("--processes must be at least 1")
        self.fleet_args = fleet_args
        self.shard_args = shard_args or (lambda k: [])  # what differs by shard beyond --shard K/P
        self.processes = processes
        self.manifest = manifest
        self.state = state
        self.children: dict[int, subprocess.Popen] = {}
        self.deaths: dict[int, int] = {}
        self.stopping = threading.Event()

    def part_manifest(self, k: int) -> Path:
        return self.state / f"manifest-shard-{k}-of-{self.processes}.json"

    def spawn(self, k: int) -> subprocess.Popen:
        args = [sys.executable, "-m", "bijli.tools.cli", "fleet", *self.fleet_args, *self.shard_args(k),
                "--shard", f"{k}/{self.processes}", "--manifest", str(self.part_manifest(k))]
        return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)

    def serving(self, k: int, proc: subprocess.Popen) -> None:
        """Wait until shard ``k`` says it serves (or dies trying: UsageError)."""
        for line in proc.stdout:
            if line.strip() == "serving":
                break
        else:
            proc.wait()
            raise UsageError(f"shard {k}/{self.processes} did not start (exit {proc.returncode})")
        # keep draining its output so it never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        self.children[k] = proc
        print(f"shard {k}/{self.processes} serving, pid {proc.pid}", flush=True)

    def start(self, k: int) -> None:
        self.serving(k, self.spawn(k))

    def start_all(self) -> None:
        """Every shard started at once (each is one core's work: opening its listeners and
        writing its manifest), then each awaited in turn: the fleet serves when the slowest
        shard does, not after the sum of them. If one fails, the others are stopped by
        :meth:`run`'s end (they are children from the start)."""
        procs = {k: self.spawn(k) for k in range(self.processes)}
        try:
            for k, proc in procs.items():
                self.serving(k, proc)
        except BaseException:
            for k, proc in procs.items():
                self.children.setdefault(k, proc)
            raise

    def write_manifest(self) -> None:
        if self.manifest is None:
            return
        # line by line, no JSON parsed again (tools.fleet.manifest); a reader never sees half a manifest
        merge_files([self.part_manifest(k) for k in range(self.processes)], self.manifest,
                    {"shards": self.processes, "host_cores": os.cpu_count() or 1})  # one host serves them all

    def _stopped(self, k: int, proc: subprocess.Popen) -> int:
        """Shard ``k``'s exit status once it has stopped. A shard stops by saving its meters,
        which for 18,000 meters on a real clock after a storm (every one with time unsaved)
        took more than two minutes on a busy machine: a fixed time-out here gave up on it
        with a traceback and left it running without its supervisor. It is waited for,
        saying so every :data:`STOP_REPORT_S` seconds (SIGKILL stops it, as a power cut)."""
        while True:
            try:
                return proc.wait(STOP_REPORT_S)
            except subprocess.TimeoutExpired:
                print(f"shard {k}/{self.processes} is still saving its meters", flush=True)

    def run(self) -> int:
        self.state.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            self.start_all()
            self.write_manifest()
            print(f"bijli fleet: {self.processes} shard processes serving"
                  + (f", manifest in {self.manifest.resolve()}" if self.manifest else ""), flush=True)
            print("serving", flush=True)
            while not self.stopping.wait(0.2):
                for k, proc in list(self.children.items()):
                    if proc.poll() is None:
                        continue
                    n = self.deaths[k] = self.deaths.get(k, 0) + 1
                    print(f"shard {k}/{self.processes} exited ({proc.returncode}); restarting", flush=True)
                    time.sleep(RESTART_BACKOFF_S[min(n, len(RESTART_BACKOFF_S)) - 1])
                    self.start(k)
                    self.write_manifest()
        finally:
            for proc in self.children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            failed = [k for k, proc in self.children.items() if self._stopped(k, proc) != 0]
        print("fleet stopped, state saved" if not failed else f"shards {failed} did not stop cleanly", flush=True)
        return 0 if not failed else 1
