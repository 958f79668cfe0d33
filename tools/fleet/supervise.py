"""``bijli fleet --processes P``: the P shards of one fleet on this machine, supervised.

One process per core is how a fleet uses a machine (the firmware step is Python, one
core per process). The supervisor starts ``bijli fleet --shard K/P`` for K = 0..P-1 with
the same fleet arguments, waits until each serves, merges their manifests into one
(rows by meter index, as shards on many machines merge), restarts a shard that dies
(a SIGKILL is a power cut of its meters: they come back from the shard database, as a
single meter does) with a short back-off, rewriting the merged manifest, and on SIGTERM
or SIGINT stops every shard with SIGTERM so each saves its meters. Beyond one machine
use an orchestrator instead (:mod:`tools.fleet.deploy`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bijli.tools.errors import UsageError

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)  # after the 1st, 2nd, 3rd, later deaths in a row


def merge_manifests(parts: list[dict]) -> dict:
    rows = sorted((row for part in parts for row in part["meters"]), key=lambda r: r["index"])
    indices = [r["index"] for r in rows]
    if len(set(indices)) != len(indices):
        raise UsageError("the shards' manifests overlap: two shards hold the same meter")
    return {"count": len(rows), "clock": parts[0]["clock"] if parts else "sim", "meters": rows}


class Supervisor:
    def __init__(self, fleet_args: list[str], processes: int, manifest: Path | None, state: Path):
        if processes < 1:
            raise UsageError("--processes must be at least 1")
        self.fleet_args = fleet_args
        self.processes = processes
        self.manifest = manifest
        self.state = state
        self.children: dict[int, subprocess.Popen] = {}
        self.deaths: dict[int, int] = {}
        self.stopping = threading.Event()

    def part_manifest(self, k: int) -> Path:
        return self.state / f"manifest-shard-{k}-of-{self.processes}.json"

    def start(self, k: int) -> None:
        args = [sys.executable, "-m", "bijli.tools.cli", "fleet", *self.fleet_args,
                "--shard", f"{k}/{self.processes}", "--manifest", str(self.part_manifest(k))]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:  # until it serves (or dies trying)
            if line.strip() == "serving":
                break
        else:
            proc.wait()
            raise UsageError(f"shard {k}/{self.processes} did not start (exit {proc.returncode})")
        # keep draining its output so it never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        self.children[k] = proc
        print(f"shard {k}/{self.processes} serving, pid {proc.pid}", flush=True)

    def write_manifest(self) -> None:
        if self.manifest is None:
            return
        parts = [json.loads(self.part_manifest(k).read_text(encoding="utf-8")) for k in range(self.processes)]
        tmp = self.manifest.with_name(self.manifest.name + ".tmp")
        tmp.write_text(json.dumps(merge_manifests(parts), indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.manifest)  # a reader never sees half a manifest

    def run(self) -> int:
        self.state.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            for k in range(self.processes):
                self.start(k)
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
            failed = [k for k, proc in self.children.items() if proc.wait(120) != 0]
        print("fleet stopped, state saved" if not failed else f"shards {failed} did not stop cleanly", flush=True)
        return 0 if not failed else 1
