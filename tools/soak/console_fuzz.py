"""The service console fed hostile lines (issue 14 item 8).

Lines are drawn from the console's own commands (README "The service console": help,
status, load, time, get, token, credit, emergency, relay, events, k, lcd, step) with
arguments of every wrong shape (signs, fractions, units, huge numbers, other commands'
arguments, control characters, UTF-8, keys the keypad lacks), mutated, or made of
garbage, now and then longer than the console's 64 KiB line limit. Every line must get
an answer and the console must keep serving (*hang*: no prompt within ``TIMEOUT``); a
line whose first word is no command must be answered ``error: ...`` (*wrong*); no reply
and no stderr may hold a traceback. ``quit`` is never sent as such (only with
arguments, which it refuses), and ``step`` takes only short or malformed durations, so
the campaign measures answers rather than simulated years.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from bijli.tools.soak.hostile import EDGE_OCTETS
from bijli.tools.soak.report import SoakRow
from bijli.tools.soak.subject import SoakMeter

TIMEOUT = 10.0
COMMANDS = ("help", "status", "load", "time", "get", "token", "credit", "emergency", "relay", "events", "k", "lcd")
ARGS = ("", "-0.5", "1.5h", "x", "--json", "-1", "0", "1e308", "nan", "inf", "99999999999999999999", "0.5L", "0.8C",
        "2.0X", "set", "set 2024-13-45T99:99", "set 1999-01-01T00:00", "press", "1.0.1.8.0.255", "1.0.1.8.0.255:9",
        "0.0.1.0.0.255:2", "a.b.c.d.e.f", "12345678901234567890", "1234 5678 9012 3456 7890", "#", "*", "e", "s",
        "0123456789#*es", "ß", "\u202e", "\x1b[2J", "\t", "'\"", "$(id)", "%s%n", "token", "k", "10 1.0 230",
        "60.1", "-60", "1000000")
STEPS = ("", "0s", "1s", "-5m", "1.5q", "90", "s", "1x", "15m extra", "nan", "-inf")


def line(rng: random.Random) -> tuple[str, bool]:
    """(line, whether its first word is no command at all)."""
    pick = rng.random()
    if pick < 0.05:
        return "step " + rng.choice(STEPS), False
    if pick < 0.08:  # quit with an argument it must refuse (never blank: "quit \t" is a quit)
        return "quit " + rng.choice([a for a in ARGS if a.strip()]), False
    if pick < 0.15:
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz!@%^&()_+=") for _ in range(rng.randint(1, 12)))
        if word in COMMANDS or word in ("quit", "step"):
            word += "!"
        return word + " " + rng.choice(ARGS), True
    if pick < 0.17:
        return "k " + "x" * rng.choice((1, 70_000)), False
    text = (rng.choice(COMMANDS) + " " + " ".join(rng.choice(ARGS) for _ in range(rng.randint(0, 3)))).rstrip()
    if pick < 0.40:
        raw = bytearray(text.encode("utf-8"))
        for _ in range(rng.randint(1, 3)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.choice((*EDGE_OCTETS, 0x20, 0x2D, 0x2E, 0x3A, rng.getrandbits(8)))
        text = raw.decode("utf-8", "replace")
    text = text.replace("\r", " ").replace("\n", " ")
    first = (text.split() or [""])[0].lower()
    if first.startswith("quit") or first.startswith("step") or not text.strip():
        text = "help " + text  # never a real quit, a long step, or a blank line (which asks for the prompt)
    return text, False


def run(row: SoakRow, seed: int, work: Path, deadline: float) -> SoakRow:
    rng = random.Random(f"console-{seed}")
    meter = SoakMeter(work / "console", "[sts]\nlockout_after = 0\n", hdlc=False, serial=False, optical=False)
    checked = time.monotonic()
    try:
        while row.inputs < row.target and time.monotonic() < deadline:
            text, unknown = line(rng)
            index = row.inputs
            row.inputs += 1
            where = f"seed {seed} console line {index} ({text[:60]!r})"
            try:
                reply = meter.ask(text)
            except Exception as exc:  # noqa: BLE001 - no prompt in time, or the line went away
                if not meter.meter.running:
                    row.fail("crashes", f"{where}: exit status {meter.meter.proc.poll()}")
                else:
                    row.fail("hangs", f"{where}: no answer ({exc})")
                meter.restart()
                continue
            if "Traceback" in reply:
                row.fail("tracebacks", f"{where}: in the reply")
            elif unknown and not reply.lstrip().startswith("error"):
                row.fail("wrong", f"{where}: answered {reply[:60]!r}")
            if time.monotonic() - checked > 2.0:
                meter.check(row, where, probe=False)
                checked = time.monotonic()
        meter.check(row, f"seed {seed} console at the end")
    finally:
        meter.stop()
    return row
