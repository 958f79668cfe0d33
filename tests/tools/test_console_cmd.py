"""`bijli console --port P COMMAND...` against a real meter's console on a pty: the exit status
tells a script whether the meter took what it was given (README: status 1 on an error reply)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import ROOT


def test_a_refused_token_is_status_1(bijli_meter_factory, tmp_path):
    link = tmp_path / "console"
    bijli_meter_factory(console=link, start="2024-06-17T10:00:00")  # started once the link is there
    vend = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "token", "vend", "--time", "2024-06-17T09:00",
                           "credit", "--amount", "50"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    token = vend.stdout.split()[0]

    def console(*commands: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bijli.tools.cli", "console", "--port", str(link), *commands],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    r = console(f"token {token}")
    assert r.returncode == 0 and r.stdout.startswith("accepted"), (r.stdout, r.stderr)
    r = console(f"token {token}")  # used: the meter said no, so does the status
    assert r.returncode == 1 and r.stdout.startswith("used"), (r.stdout, r.stderr)
    assert "token" in r.stderr
    r = console("token 12345678901234567890")
    assert r.returncode == 1 and not r.stdout.startswith("accepted")
    r = console("credit")  # a reply that merely mentions a word is not a refusal
    assert r.returncode == 0, r.stderr


def test_typed_lines_have_editing_and_history(bijli_meter_factory, tmp_path):
    """On a terminal, `bijli console` reads lines with readline: a typo erased, an earlier line
    recalled with the up arrow. A real pty stands in for the engineer's terminal."""
    import os
    import pty
    import select

    link = tmp_path / "console"
    bijli_meter_factory(console=link, start="2024-06-17T10:00:00")  # started once the link is there
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "console", "--port", str(link)], cwd=ROOT,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    seen = b""

    def until(marker: bytes, count: int = 1) -> None:
        nonlocal seen
        end = time.monotonic() + 20
        while seen.count(marker) < count:
            assert time.monotonic() < end, seen
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)

    try:
        until(b"> ")
        os.write(master, b"loax\x7fd 3\r")  # a typo, erased with backspace
        until(b"load 3 A at PF 1")
        until(b"> ", 2)
        os.write(master, b"\x1b[A\r")  # up arrow: the same line again
        until(b"load 3 A at PF 1", 2)
        until(b"> ", 3)
        os.write(master, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_a_reply_still_in_flight_when_the_console_opens_is_not_taken_for_the_next_one(bijli_meter_factory, tmp_path):
    """A console opened while the meter still owes earlier lines their answers (here two long
    steps typed by someone else on the same UART) reads its own replies, not theirs: the
    opening waits for the answer to a line of its own (a nonce) before the first command.
    Counting prompts could not tell, and a loaded machine then read ``> {...`` for JSON."""
    from bijli.hal.serial import SerialLine
    from bijli.tools.commands.console import ConsoleLine

    link = tmp_path / "console"
    bijli_meter_factory(console=link, start="2024-06-17T10:00:00")
    other = SerialLine(str(link), 9600)
    try:
        other.send(b"step 20d\rstep 20d\r")  # two replies and their prompts still to come, one after the other
        line = ConsoleLine(str(link), timeout=120)
        try:
            status = json.loads(line.ask("status --json"))  # raises if a stale reply or prompt came back
            assert status["time"].startswith("2024-07-27T10:00"), status["time"]
            assert line.ask("help help").startswith("help [COMMAND]")  # and each reply is its own
        finally:
            line.close()
    finally:
        other.close()
