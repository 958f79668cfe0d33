"""The service console on a pseudo-terminal, as a rig engineer reaches it over a UART."""

from __future__ import annotations

import os
import time

import serial


def _read_until(port, marker: bytes, timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {marker!r} in {buf!r}")
        try:
            buf += port.read(port.in_waiting or 1)
        except serial.SerialException:
            return buf  # the meter closed the line (after quit)
    return buf


def test_console_over_a_pty(meter_process, tmp_path):
    link = tmp_path / "console"
    meter = meter_process("--console", f"pty:{link}", "--clock", "sim", "--start", "2024-06-14T18:00:00",
                          console_line="service console on")
    deadline = time.monotonic() + 10
    while not link.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with serial.Serial(os.fspath(link), 9600, timeout=0.2) as port:
        port.write(b"\r")  # what was written before we opened the line may be gone: ask for a prompt
        _read_until(port, b"> ")
        port.write(b"load 10\r")
        assert b"load 10 A at PF 1\r\n> " in _read_until(port, b"PF 1\r\n> ")
        port.write(b"step 1h\r")
        assert b"2024-06-14T19:00:00\r\n> " in _read_until(port, b"00\r\n> ")
        port.write(b"relay\r")
        assert b"connected\r\n> " in _read_until(port, b"connected\r\n> ")
        port.write(b"quit\r")
        assert b"bye" in _read_until(port, b"bye")
    assert meter.proc.wait(10) == 0


def test_bijli_console_runs_commands_on_the_meters_serial_console(meter_process, tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    link = tmp_path / "console"
    # --rate 0: the clock stands still between commands, so 'step 1h' lands on 19:00:00 exactly
    # however long the commands take under load
    meter = meter_process("--console", f"pty:{link}", "--clock", "sim", "--start", "2024-06-14T18:00:00",
                          "--rate", "0", console_line="service console on")
    deadline = time.monotonic() + 10
    while not link.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    def bijli_console(*commands: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bijli.tools.cli", "console", "--port", str(link), *commands],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    r = bijli_console("load 10", "step 1h", "status --json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "load 10 A at PF 1" and lines[1] == "2024-06-14T19:00:00"
    assert json.loads(lines[2])["energy_import_kwh"] > 2.2
    r = bijli_console("frobnicate")
    assert r.returncode == 1 and "unknown command" in r.stdout
    r = bijli_console("quit")
    assert r.returncode == 0 and "bye" in r.stdout
    assert meter.proc.wait(10) == 0
