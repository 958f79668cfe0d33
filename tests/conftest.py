"""Shared fixtures: a real `bijli meter` subprocess on a free port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import settings

# CI (CI=true, as .ci/run is started) replays the same Hypothesis examples on every run, so
# a landing never hangs on luck; everywhere else, and in `make soak`, each run explores anew.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "explore")

ROOT = Path(__file__).resolve().parents[1]

# `bijli token vend` keeps a per-meter TID journal (by default in the user's state folder);
# the suite's vends, in-process and in subprocesses, keep theirs in a folder of its own
if "BIJLI_VEND_JOURNAL" not in os.environ:
    import tempfile
    os.environ["BIJLI_VEND_JOURNAL"] = os.path.join(tempfile.mkdtemp(prefix="bijli-tests-"), "vend-journal.json")


class MeterProcess:
    """`bijli meter` as a child process with its console on a pipe."""

    def __init__(self, state: Path, *extra: str, config: Path | None = None,
                 console_line: str = "service console on this terminal"):
        args = [sys.executable, "-m", "bijli.tools.cli", "meter", "--tcp", "127.0.0.1:0", "--state", str(state), *extra]
        if config is not None:
            args += ["--config", str(config)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.port = None
        self.banner: list[str] = []  # the start-up lines: every listener and port the meter opened
        deadline = time.monotonic() + 20
        while self.port is None:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"meter exited: {self.proc.stderr.read()}")
            self.banner.append(line.rstrip("\n"))
            m = re.search(r"DLMS wrapper listening on [\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if time.monotonic() > deadline:
                raise RuntimeError("meter did not start")
        line = self.proc.stdout.readline()
        if console_line not in line:
            raise RuntimeError(f"expected {console_line!r}, got {line!r}")

    def find(self, pattern: str) -> str:
        """The first group of ``pattern`` in the start-up lines (a port, a pty path)."""
        for line in self.banner:
            m = re.search(pattern, line)
            if m:
                return m.group(1)
        raise LookupError(f"{pattern!r} not in {self.banner}")

    def console(self, line: str) -> str:
        """Send one console command and return its first reply line."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().rstrip("\n")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def meter_process(tmp_path):
    started = []

    def start(*extra: str, config: Path | None = None, state: Path | None = None, **kw) -> MeterProcess:
        m = MeterProcess(state or tmp_path / "state", *extra, config=config, **kw)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()
