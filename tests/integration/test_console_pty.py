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


def _meter_with_pty_console(bijli_meter_factory, link):
    """A meter whose service console is the pty linked at ``link`` (it is there once the meter
    has started). The clock stands still between commands (rate 0), so 'step 1h' lands on
    19:00:00 exactly however long the commands take under load."""
    return bijli_meter_factory(console=link, start="2024-06-14T18:00:00")


def test_console_over_a_pty(bijli_meter_factory, tmp_path):
    link = tmp_path / "console"
    meter = _meter_with_pty_console(bijli_meter_factory, link)
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


def test_bijli_console_runs_commands_on_the_meters_serial_console(bijli_meter_factory, tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    link = tmp_path / "console"
    meter = _meter_with_pty_console(bijli_meter_factory, link)

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


# --- the console never dies (issue 14 item 8, issue 15 items 8, 9, 10) --------------------

import json  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

HOSTILE = ["k x", "k 10 -0.5", "lcd 1.5h", "token ", "get 1.0.1.8.0.255:9", "get 1.0.1.8.0.255:0", "load abc",
           "load 1000", "load 5 0.9L 1e9", "x" * (70 * 1024)]


def _meter_cmd(state, *extra):
    return [sys.executable, "-m", "bijli.tools.cli", "meter", "--tcp", "127.0.0.1:0", "--state", str(state),
            "--clock", "sim", "--start", "2024-06-01T00:00:00", "--rate", "0", *extra]


def test_the_stdio_console_answers_every_hostile_line_through_a_pipe_and_quits(tmp_path):
    script = "\n".join([*HOSTILE, "relay", "quit"]) + "\n"
    r = subprocess.run(_meter_cmd(tmp_path / "state"), cwd=ROOT, input=script, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(HOSTILE), errors
    assert "error: line longer than 65536 bytes ignored" in errors
    assert r.stdout.splitlines()[-3:-1] == ["connected", "bye"]


def test_the_stdio_console_with_stdin_at_dev_null_prints_no_traceback(tmp_path):
    proc = subprocess.Popen(_meter_cmd(tmp_path / "state"), cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # the banner lines: by then the console has met the end of its input
            assert proc.stdout.readline()
        time.sleep(1.0)
        assert proc.poll() is None  # the meter serves on without a console, as under systemd
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err and "Error" not in err, err


def _pty_read_until_exit(fd: int, proc, timeout: float = 60.0) -> bytes:
    """Everything the child writes on its terminal, until it exits and the line is drained."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    return bytes(buf)


def _typed_at_a_terminal(cmd: list[str], keys: list[bytes], *, raw: bool = True, gap: float = 0.05,
                         timeout: float = 60.0, env: dict | None = None) -> tuple[bytes, bytes]:
    """``cmd`` with stdin and stdout on one pty (a person at a terminal; ``raw``: no echo,
    no CR/LF rewriting), ``keys`` typed each ``gap`` after the last while its replies are read: what it
    wrote on the terminal and on stderr, once it has exited with status 0."""
    import tty

    master, slave = os.openpty()
    if raw:
        tty.setraw(slave)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=slave, stdout=slave, stderr=subprocess.PIPE, close_fds=True,
                            env=env)
    os.close(slave)
    try:
        def type_keys():  # while the main thread reads: the replies fill the pty too
            for k in keys:
                time.sleep(gap)
                os.write(master, k)

        typist = threading.Thread(target=type_keys, daemon=True)
        typist.start()
        out = _pty_read_until_exit(master, proc, timeout)
        typist.join(5)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return out, proc.stderr.read()


def test_large_replies_arrive_whole_on_a_terminal(tmp_path):
    """stdin and stdout on one pty (a person at a terminal): a 2,880-row profile and
    status --json come out whole, hostile lines are answered, quit still works."""
    lines = ["step 30d", "get 1.0.99.1.0.255", "status --json", *HOSTILE, "quit"]
    out, err = _typed_at_a_terminal(_meter_cmd(tmp_path / "state"), [(line + "\n").encode() for line in lines])
    text = out.decode("utf-8", "replace").replace("bijli> ", "")
    replies = text.splitlines()
    profile = next(line for line in replies if line.startswith("[[2024-06-01T00:15:00"))
    assert len(profile) > 69_000 and profile.endswith("]]")
    assert profile.count("], [") + 1 == 2880  # 30 days of 15-minute blocks, none cut off
    status = json.loads(next(line for line in replies if line.startswith("{")))
    assert status["time"] == "2024-07-01T00:00:00"
    assert sum(line.startswith("error: ") for line in replies) == len(HOSTILE)
    assert "bye" in replies
    assert b"Traceback" not in err


def test_the_serial_console_answers_hostile_lines_and_quits(bijli_meter_factory, tmp_path):
    link = tmp_path / "console"
    meter = _meter_with_pty_console(bijli_meter_factory, link)
    with serial.Serial(os.fspath(link), 9600, timeout=0.2) as port:
        port.write(b"\r")
        _read_until(port, b"> ")
        for line in HOSTILE:
            port.write(line.encode() + b"\r")
            assert b"error: " in _read_until(port, b"\r\n> ", timeout=20)
        port.write(b"relay\r")
        assert b"connected\r\n> " in _read_until(port, b"connected\r\n> ")
        port.write(b"quit\r")
        assert b"bye" in _read_until(port, b"bye")
    assert meter.proc.wait(10) == 0


def test_a_fleets_status_arrives_whole_on_a_terminal(tmp_path):
    """Fleet `status` (a row per meter) and `status --json` on a pty: every row, valid JSON."""
    count = 40
    cmd = [sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", str(count), "--tcp", "127.0.0.1:0", "--state",
           str(tmp_path / "fleet"), "--clock", "sim", "--start", "2024-06-01T00:00:00", "--rate", "0", "--console",
           "stdio"]
    lines = ("status", "status --json", "get 1.0.1.8.0.255:9", "quit")
    out, err = _typed_at_a_terminal(cmd, [(line + "\n").encode() for line in lines], timeout=120)
    replies = out.decode("utf-8", "replace").replace("fleet> ", "").splitlines()
    rows = [line for line in replies if re.match(r"\s*\d+\s+BJL\d{7}\s", line)]
    assert len(rows) == count
    status = json.loads(next(line for line in replies if line.startswith("[{")))
    assert [m["serial"] for m in status] == [f"BJL{i:07d}" for i in range(1, count + 1)]
    assert any(line.startswith("error: ") for line in replies)
    assert b"Traceback" not in err


def test_a_person_at_the_terminal_gets_line_editing_and_history(tmp_path):
    """stdin and stdout a terminal: readline edits the line (Ctrl-A goes to its start) and
    the up arrow brings back the last command, as in ``bijli console`` (issue 15 item 14)."""
    out, err = _typed_at_a_terminal(_meter_cmd(tmp_path / "state"), [b"elay\x01r\r", b"\x1b[A\r", b"quit\r"],
                                    raw=False, gap=0.5, env=dict(os.environ, TERM="xterm"))
    replies = out.decode("utf-8", "replace").splitlines()
    assert sum(line.strip() == "connected" for line in replies) == 2, replies  # edited line, then history
    assert any(line.strip() == "bye" for line in replies)
    assert b"Traceback" not in err
