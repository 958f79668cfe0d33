"""Damaged state databases: the meter must refuse them or carry on whole, never start as new.

A meter credits tokens on a real sqlite state (README "The state directory"), is stopped
(cleanly, or by SIGKILL so the commits are still in the write-ahead log), and a copy of
its state directory is damaged as a disk, a bad copy or a careless hand would: the
database emptied (0 bytes), deleted or truncated, bytes flipped or overwritten at random
places, the WAL deleted, emptied or flipped, a stored record replaced, an old copy put back.
Then ``bijli meter`` starts on it. It must either refuse, with one clear message naming
``bijli state recover`` and no traceback, after which ``bijli state recover`` and a new
start bring back every credited token; or start with exactly the credit it had, every
token still ``used``. Starting with less credit (as new, or older than it was) is lost
credit; a credited token accepted again is doubled credit.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from bijli.tools.soak.kills import CONFIG, START, Tokens
from bijli.tools.soak.report import SoakRow
from bijli.tools.soak.subject import ask, status
from bijli.tools.testing.meter import MeterStartError, RunningMeter

KINDS = ("zero-bytes", "deleted", "truncated", "flipped", "overwritten", "wal-deleted", "wal-emptied", "wal-flipped",
         "record-changed", "old-copy")
WAL_KINDS = ("wal-deleted", "wal-emptied", "wal-flipped")


def _bijli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def _start(state: Path, config: Path) -> RunningMeter:
    return RunningMeter.start(state, config=config, hdlc=False, serial=False, optical=False, timeout=30)


def _golden(work: Path, rng: random.Random, tokens: Tokens, *, kill: bool) -> tuple[Path, Path, list, Decimal]:
    """A lived-in state: tokens credited, then a clean stop or a SIGKILL. Also a copy taken
    after the first token (the 'old copy' a careless restore puts back)."""
    state = work / ("golden-killed" if kill else "golden")
    config = work / "soak.toml"
    config.write_text(CONFIG, encoding="utf-8")
    meter = RunningMeter.start(state, config=config, start=START, hdlc=False, serial=False, optical=False)
    credited = []
    old = work / (state.name + "-old")
    try:
        for i in range(3):
            digits, amount = tokens.next()
            if ask(meter, f"token {digits}").startswith("accepted"):
                credited.append((digits, amount))
            if i == 0:
                ask(meter, "time")
                shutil.copytree(state, old, dirs_exist_ok=True)
        total = Decimal(status(meter)["total_recharged"])
    finally:
        if kill:
            meter.kill()
        else:
            meter.stop()
    return state, old, credited, total


def _damage(kind: str, state: Path, old: Path, rng: random.Random) -> None:
    db, wal = state / "meter.db", state / "meter.db-wal"
    if kind == "zero-bytes":
        db.write_bytes(b"")
    elif kind == "deleted":
        db.unlink()
    elif kind == "truncated":
        size = db.stat().st_size
        with open(db, "r+b") as f:
            f.truncate(rng.randrange(1, max(2, size)))
    elif kind in ("flipped", "overwritten"):
        raw = bytearray(db.read_bytes())
        for _ in range(rng.choice((1, 1, 3, 16)) if kind == "flipped" else 1):
            at = rng.randrange(len(raw))
            if kind == "flipped":
                raw[at] ^= 1 << rng.randrange(8)
            else:
                chunk = rng.randbytes(rng.choice((16, 512, 4096)))
                raw[at:at + len(chunk)] = chunk
        db.write_bytes(bytes(raw[:max(len(raw), 1)]))
    elif kind == "wal-deleted":
        wal.unlink(missing_ok=True)
        (state / "meter.db-shm").unlink(missing_ok=True)
    elif kind == "wal-emptied":
        wal.write_bytes(b"")
    elif kind == "wal-flipped":
        raw = bytearray(wal.read_bytes())
        if raw:
            raw[rng.randrange(max(0, len(raw) - 4096), len(raw))] ^= 1 << rng.randrange(8)
        wal.write_bytes(bytes(raw))
    elif kind == "record-changed":
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE kv SET value = ? WHERE key = 'account'", (rng.choice(("{}", "null", "[]", '""')),))
        conn.close()
    elif kind == "old-copy":
        for name in ("meter.db", "meter.db-wal", "meter.db-shm"):
            (state / name).unlink(missing_ok=True)
            if (old / name).exists():
                shutil.copy2(old / name, state / name)


def _judge_running(meter: RunningMeter, row: SoakRow, where: str, credited: list, total: Decimal) -> None:
    now = Decimal(status(meter)["total_recharged"])
    if now < total:
        row.fail("credit", f"{where}: started with {now} recharged, it had {total}")
    for digits, _ in credited:
        word = ask(meter, f"token {digits}").split(":")[0]
        if word == "accepted":
            row.fail("credit", f"{where}: a credited token was accepted again")


def run(row: SoakRow, seed: int, work: Path, deadline: float) -> SoakRow:
    rng = random.Random(f"damage-{seed}")
    tokens = Tokens(rng)
    work = work / "damage"
    work.mkdir(parents=True, exist_ok=True)
    golden: dict[bool, tuple] = {}  # made when first needed: a clean stop, a SIGKILL
    config = work / "soak.toml"
    while row.inputs < row.target and time.monotonic() < deadline:
        index = row.inputs
        kind = KINDS[(index + seed) % len(KINDS)]
        killed = kind in WAL_KINDS or (len(golden) == 2 and rng.random() < 0.5)
        if killed not in golden:
            golden[killed] = _golden(work, rng, tokens, kill=killed)
        source, old, credited, total = golden[killed]
        state = work / f"case-{index}"
        shutil.copytree(source, state)
        _damage(kind, state, old, rng)
        row.inputs += 1
        where = f"seed {seed} damage {index} ({kind}, from {source.name})"
        try:
            meter = _start(state, config)
        except MeterStartError as exc:
            text = str(exc)
            if "Traceback" in text:
                row.fail("tracebacks", f"{where}: {text.strip().splitlines()[-1][:160]}")
            elif "bijli state recover" not in text:
                row.fail("wrong", f"{where}: refused without naming the recovery: {text[-160:]}")
            recovered = _bijli("state", "recover", "--state", str(state))
            if "Traceback" in recovered.stderr:
                row.fail("tracebacks", f"{where}: bijli state recover: {recovered.stderr.strip()[-160:]}")
            if recovered.returncode != 0:
                recovered = _bijli("state", "recover", "--state", str(state), "--accept-older")
            if recovered.returncode != 0:
                row.fail("wrong", f"{where}: bijli state recover failed: {recovered.stderr.strip()[-160:]}")
                shutil.rmtree(state, ignore_errors=True)
                continue
            try:
                meter = _start(state, config)
            except MeterStartError as exc2:
                row.fail("wrong", f"{where}: no start after recover: {str(exc2)[-160:]}")
                shutil.rmtree(state, ignore_errors=True)
                continue
        try:
            _judge_running(meter, row, where, credited, total)
            if "Traceback" in (state / "meter.err").read_text(errors="replace"):
                row.fail("tracebacks", f"{where}: in the meter's stderr")
        finally:
            meter.stop()
        shutil.rmtree(state, ignore_errors=True)
    return row


