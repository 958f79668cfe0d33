"""One meter per state directory (issue 15 item 1): a second `bijli meter` on the same
state is refused with the PID of the one that holds it, and the lock goes with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from bijli.hal import statelock
from tests.conftest import ROOT


def _second_meter(state) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", "meter", "--tcp", "127.0.0.1:0",
                           "--state", str(state), "--console", "none"],
                          cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def test_a_second_meter_on_the_same_state_is_refused_with_the_holders_pid(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    first = bijli_meter_factory(state=state)
    second = _second_meter(state)
    assert second.returncode == 2
    assert f"state directory {state.resolve()} in use by PID {first.proc.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.console("credit").startswith("credit")  # the first meter is untouched and serving


def test_the_lock_goes_with_its_holder_even_on_sigkill(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    first = bijli_meter_factory(state=state)
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    again = bijli_meter_factory(state=state)  # starts: the kernel dropped the dead holder's lock
    assert again.console("credit").startswith("credit")


def test_the_lock_in_one_process_refuses_another_and_releases(tmp_path):
    lock = statelock.acquire(tmp_path)
    probe = [sys.executable, "-c", "import sys; from bijli.hal import statelock\n"
             "try:\n statelock.acquire(sys.argv[1])\nexcept statelock.StateInUse as e:\n print(e.pid); sys.exit(3)",
             str(tmp_path)]
    held = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    assert (held.returncode, held.stdout.strip()) == (3, str(os.getpid()))
    lock.release()
    assert subprocess.run(probe, capture_output=True, text=True, timeout=30).returncode == 0
