"""hal.clock: the meter keeps its own zone, whatever zone the host is set to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from bijli.hal.clock import RealClock, SimClock, meter_local, utc_now

from tests.conftest import ROOT


def test_real_clock_is_host_utc_plus_the_meters_offset():
    fixed = datetime(2024, 6, 18, 5, 30)  # 05:30 UTC is 11:00 IST
    assert RealClock(330, source=lambda: fixed).now() == datetime(2024, 6, 18, 11, 0)
    assert RealClock(-300, source=lambda: fixed).now() == datetime(2024, 6, 18, 0, 30)
    clock = RealClock(330, source=lambda: fixed)
    clock.set(datetime(2024, 6, 18, 12, 0))  # a clock write moves meter time, not the host's
    assert clock.now() == datetime(2024, 6, 18, 12, 0)


def test_utc_now_ignores_the_process_time_zone():
    code = "from bijli.hal.clock import utc_now; print(utc_now().isoformat())"
    seen = []
    for tz in ("UTC", "America/New_York", "Pacific/Kiritimati"):
        out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, TZ=tz),
                             capture_output=True, text=True, check=True).stdout
        seen.append(datetime.fromisoformat(out.strip()))
    assert max(seen) - min(seen) < timedelta(seconds=30)


def test_meter_local_converts_aware_times_and_keeps_naive_ones():
    aware = datetime(2024, 6, 14, 11, 30, tzinfo=timezone.utc)
    assert meter_local(aware, 330) == datetime(2024, 6, 14, 17, 0)
    assert meter_local(datetime(2024, 6, 14, 17, 0), 330) == datetime(2024, 6, 14, 17, 0)
    assert SimClock(meter_local(aware, 330), rate=0).now() == datetime(2024, 6, 14, 17, 0)


@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles"])
def test_a_meter_on_a_host_in_another_zone_shows_its_own_local_time(tmp_path, tz):
    """A Pi left at UTC (or anywhere): the meter's status time is UTC + 5:30, the demo's IST."""
    proc = subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "meter", "--tcp", "127.0.0.1:0",
                             "--state", str(tmp_path / "state"), "--clock", "real"],
                            cwd=ROOT, env=dict(os.environ, TZ=tz), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        deadline = time.monotonic() + 30
        while "service console" not in proc.stdout.readline():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        proc.stdin.write("status --json\n")
        proc.stdin.flush()
        status = json.loads(proc.stdout.readline())
        shown = datetime.fromisoformat(status["time"])
        expected = utc_now() + timedelta(minutes=330)
        assert abs(shown - expected) < timedelta(minutes=2), (shown, expected)
    finally:
        proc.terminate()
        proc.wait(10)
