"""Real meter and fleet processes restarting on the same state (issue 15 items 4 and 11).

Item 4: a saved simulated meter resumes its clock where it stopped; ``--start`` on a
state that holds a meter is refused (and changes nothing) unless ``--reset-clock``
asks for it, and then the meter logs the clock adjustment.

Item 11: a long ``step`` is cooperative: the meter answers DLMS while it steps, and a
SIGTERM mid-step ends the process within a second, exit 0, state consistent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from bijli.dlms.client import Client, ClientSettings
from bijli.firmware.events import EventCode, EventLog, LogKind
from bijli.firmware.meter import saved_time
from bijli.firmware.storage import Storage
from bijli.tools.node.client_transports import open_client_transport
from tests.conftest import ROOT

START = "2024-06-14T18:00:00"  # a Friday evening: friendly hours, supply on


def _saved(state: Path) -> datetime | None:
    storage = Storage.open(state)
    try:
        return saved_time(storage)
    finally:
        storage.close()


def _transaction_log(state: Path):
    storage = Storage.open(state)
    try:
        return EventLog().events(storage, LogKind.TRANSACTION)
    finally:
        storage.close()


def _refused(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_a_saved_meter_resumes_its_clock_and_an_earlier_start_needs_reset_clock(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    first = bijli_meter_factory(state=state, start=START)
    assert first.console("step 2h") == "2024-06-14T20:00:00"
    assert first.stop() == 0
    assert _saved(state) == datetime(2024, 6, 14, 20, 0)

    r = _refused("meter", "--state", str(state), "--tcp", "127.0.0.1:0", "--console", "none",
                 "--clock", "sim", "--start", "2024-06-14T17:00:00")
    assert r.returncode != 0
    assert "already holds a meter" in r.stderr and "--reset-clock" in r.stderr, r.stderr
    assert _saved(state) == datetime(2024, 6, 14, 20, 0)  # refused before anything changed

    again = bijli_meter_factory(state=state)  # no --start: a saved meter resumes its own clock
    assert again.console("time") == "2024-06-14T20:00:00"  # resumed, not the host's time
    assert again.stop() == 0

    reset = bijli_meter_factory(state=state, start="2024-06-14T17:00:00", extra=("--reset-clock",))
    assert reset.console("time") == "2024-06-14T17:00:00"
    assert reset.stop() == 0
    log = _transaction_log(state)
    old = [e for e in log if e.code is EventCode.CLOCK_ADJUSTED_OLD]
    new = [e for e in log if e.code is EventCode.CLOCK_ADJUSTED_NEW]
    assert old[-1].time == datetime(2024, 6, 14, 20, 0) and new[-1].time == datetime(2024, 6, 14, 17, 0)


def test_reset_clock_without_start_is_an_error(tmp_path):
    r = _refused("meter", "--state", str(tmp_path / "state"), "--console", "none", "--clock", "sim", "--reset-clock")
    assert r.returncode != 0 and "--reset-clock" in r.stderr and "--start" in r.stderr
    assert not (tmp_path / "state").exists()


def test_a_fleet_on_saved_meters_refuses_start_and_resumes(tmp_path):
    state = tmp_path / "fleet"
    base = [sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", "2", "--tcp", "127.0.0.1:0",
            "--state", str(state), "--clock", "sim", "--rate", "0", "--load-profile", "constant"]
    r = subprocess.run([*base, "--start", START], input="step 1h\nquit\n", cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2024-06-14T19:00:00" in r.stdout

    r = subprocess.run([*base, "--start", START], input="quit\n", cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "already holds a meter" in r.stderr and "--reset-clock" in r.stderr

    r = subprocess.run(base, input="meter 1 time\nquit\n", cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2024-06-14T19:00:00" in r.stdout  # each meter carries on at its own saved time


def _clock_over_dlms(port: int) -> datetime:
    client = Client(open_client_transport(f"tcp://127.0.0.1:{port}", 16, timeout=5.0),
                    ClientSettings.for_association(16))
    with client:
        client.associate()
        return client.read_clock()


def test_dlms_answers_during_a_long_step_and_sigterm_ends_it_within_a_second(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    meter = bijli_meter_factory(state=state, start=START)
    meter.console("load 5")
    # 82 years, hours of work (the console allows 100): it must not hold the meter. Typed on the
    # console line without waiting for the reply, which comes only when the step ends
    line = os.open(meter.endpoints.console, os.O_RDWR | os.O_NOCTTY)
    os.write(line, b"step 30000d\r")
    time.sleep(1.0)
    seen = []
    for _ in range(3):  # the clock answers, and moves on, while the step runs
        t0 = time.monotonic()
        seen.append(_clock_over_dlms(meter.endpoints.wrapper_port))
        assert time.monotonic() - t0 < 3.0
        time.sleep(0.3)
    assert seen[0] > datetime(2024, 6, 14, 18, 0) and seen[0] < seen[-1]
    assert meter.proc.poll() is None

    sent = time.monotonic()
    meter.proc.send_signal(signal.SIGTERM)
    assert meter.proc.wait(5) == 0
    assert time.monotonic() - sent < 1.0, "SIGTERM mid-step took longer than a second"
    os.close(line)
    stopped_at = _saved(state)
    assert stopped_at > seen[-1]

    # the state is consistent: the meter starts again where it stopped, energy and account agree
    again = bijli_meter_factory(state=state)
    status = again.status()
    assert status["time"] == stopped_at.isoformat(timespec="seconds")
    assert status["energy_import_kwh"] > 0
    assert again.stop() == 0


def test_a_short_step_still_replies_with_the_new_time(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(start=START)
    assert meter.console("step 3d") == "2024-06-17T18:00:00"
    error, usage = meter.console("step x").splitlines()
    assert error.startswith("error: not a duration") and usage.startswith("usage: step DURATION")
    assert meter.console("time") == "2024-06-17T18:00:00"


def test_a_fleet_step_keeps_every_meter_answering_and_sigterm_ends_it_within_a_second(tmp_path):
    manifest = tmp_path / "fleet.json"
    proc = subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", "20", "--tcp", "127.0.0.1:0",
                             "--state", str(tmp_path / "fleet"), "--clock", "sim", "--rate", "0", "--start", START,
                             "--manifest", str(manifest)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        deadline = time.monotonic() + 60
        while "fleet console on this terminal" not in proc.stdout.readline():
            assert time.monotonic() < deadline and proc.poll() is None, "the fleet did not start"
        meters = json.loads(manifest.read_text())["meters"]
        proc.stdin.write("step 3650d\n")
        proc.stdin.flush()
        time.sleep(1.0)
        first = _clock_over_dlms(meters[0]["port"])
        last = _clock_over_dlms(meters[-1]["port"])
        time.sleep(0.5)
        assert _clock_over_dlms(meters[0]["port"]) > first  # still stepping, still answering
        assert first > datetime(2024, 6, 14, 18, 0) and last > datetime(2024, 6, 14, 18, 0)
        # stderr carries the step's progress; its "stopped at" line says when the step gave way
        heard: list[tuple[float, str]] = []
        reader = threading.Thread(target=lambda: heard.extend((time.monotonic(), line) for line in proc.stderr),
                                  daemon=True)
        reader.start()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0  # after every meter's state is saved (a commit each)
        reader.join(5)
        stopped = [t for t, line in heard if "fleet step 3650d: stopped at" in line]
        assert stopped, heard
        assert stopped[0] - sent < 1.0, "the step went on for more than a second after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for m in meters:  # every meter's state is saved, none behind the step's start
        assert _saved(Path(m["state"])) > datetime(2024, 6, 14, 18, 0)


def test_the_clock_object_shows_doubtful_after_a_set_back_until_time_passes_the_mark(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(start=START)

    def status_and_time() -> tuple[int, int]:
        client = Client(open_client_transport(meter.endpoints.wrapper, 16, timeout=5.0),
                        ClientSettings.for_association(16))
        with client:
            client.associate()
            # attribute 4 status, and byte 11 of the date-time in attribute 2 (IEC 62056-6-2 4.5.1)
            return client.get(8, "0.0.1.0.0.255", 4).to_python(), client.get(8, "0.0.1.0.0.255", 2).value[11]

    assert meter.console("step 1h") == "2024-06-14T19:00:00"
    assert status_and_time() == (0, 0)
    assert meter.console("time set 2024-06-14T18:30:00") == "2024-06-14T18:30:00"
    assert status_and_time() == (2, 2)  # doubtful: the meter re-lives time it has stamped
    meter.console("step 31m")
    assert status_and_time() == (0, 0)
