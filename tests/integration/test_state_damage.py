"""A lost or damaged state database never forgets money (issue 14 item 2).

A real `bijli meter` credits tokens on a real sqlite file; then the file is deleted,
emptied, rolled back (its write-ahead log deleted, emptied or bit-flipped after a
SIGKILL) or overwritten mid-file. The meter must refuse to start, say so plainly and
name the recovery command, never start as new or older than it was; and
`bijli state recover` must bring back the credit and the used TIDs, so a token it
had credited is still refused as used."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.firmware.meter import MeterConfig
from bijli.firmware.sts.vend import vend_credit
from tests.conftest import ROOT

KEY = MeterConfig.from_dict({}).sts.vend_key()
START = "2024-06-03T12:00:00"
TOKENS = [vend_credit(KEY, Decimal(a), subclass=4, time=datetime(2024, 6, 3, 10, 0) + timedelta(minutes=i)).digits
          for i, a in enumerate((11, 13, 17))]
RESUME = ("--clock", "sim", "--rate", "0")  # a lived-in state: the clock carries on where it stopped


def _bijli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def _start_refused(state) -> str:
    r = _bijli("meter", "--tcp", "127.0.0.1:0", "--state", str(state), "--console", "none", *RESUME)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert f"bijli state recover --state {state}" in r.stderr
    return r.stderr


def _credit(meter) -> str:
    return meter.status()["credit"]


def _credit_tokens(bijli_meter_factory, state, *, kill: bool) -> str:
    """Three tokens credited on a fresh meter; the meter then quits or is SIGKILLed."""
    meter = bijli_meter_factory(state=state, start=START)  # a lived-in state resumes its own clock
    for digits in TOKENS:
        assert meter.console(f"token {digits}").startswith("accepted")
    credit = _credit(meter)
    assert Decimal(credit) == 41
    if kill:
        os.kill(meter.proc.pid, signal.SIGKILL)
        meter.proc.wait(10)
    else:
        meter.console("quit")
        assert meter.proc.wait(10) == 0
    return credit


def _recovered_with(bijli_meter_factory, state, credit: str) -> None:
    r = _bijli("state", "recover", "--state", str(state))
    assert r.returncode == 0, r.stderr
    assert "restored from the seal" in r.stdout and "recovered" in r.stdout
    assert any(p.name.startswith("damaged-") for p in state.iterdir())  # the evidence is kept
    assert _bijli("state", "verify", "--state", str(state)).returncode == 0
    meter = bijli_meter_factory(state=state)  # resumes its clock
    assert _credit(meter) == credit  # no money forgotten
    for digits in TOKENS:
        assert meter.console(f"token {digits}").split(":")[0] == "used"  # and none taken twice
    meter.console("quit")
    meter.proc.wait(10)


def test_a_deleted_database_is_refused_and_recovered(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    credit = _credit_tokens(bijli_meter_factory, state, kill=False)
    (state / "meter.db").unlink()
    assert "meter.db is missing" in _start_refused(state)
    r = _bijli("state", "verify", "--state", str(state))
    assert r.returncode == 1 and "DAMAGED" in r.stdout
    _recovered_with(bijli_meter_factory, state, credit)


def test_an_emptied_database_is_refused_and_recovered(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    credit = _credit_tokens(bijli_meter_factory, state, kill=False)
    (state / "meter.db").write_bytes(b"")
    assert "is empty (0 bytes)" in _start_refused(state)
    _recovered_with(bijli_meter_factory, state, credit)


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip"])
def test_a_lost_or_damaged_write_ahead_log_after_a_sigkill_is_a_rollback_refused(bijli_meter_factory, tmp_path, damage):
    state = tmp_path / "state"
    credit = _credit_tokens(bijli_meter_factory, state, kill=True)
    wal = state / "meter.db-wal"
    assert wal.stat().st_size > 0  # the tokens' commits are still in the log
    if damage == "delete":
        wal.unlink()
        (state / "meter.db-shm").unlink(missing_ok=True)
    elif damage == "truncate":
        wal.write_bytes(b"")
    else:
        raw = bytearray(wal.read_bytes())
        raw[-100] ^= 0x01  # one bit in the last frame: sqlite drops that commit and all after it
        wal.write_bytes(bytes(raw))
    assert "rolled back" in _start_refused(state)
    _recovered_with(bijli_meter_factory, state, credit)


def test_bytes_overwritten_mid_file_are_refused_without_a_traceback_and_recovered(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    credit = _credit_tokens(bijli_meter_factory, state, kill=False)
    db = state / "meter.db"
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(4096))
    assert "meter.db" in _start_refused(state)
    _recovered_with(bijli_meter_factory, state, credit)


def test_a_record_changed_behind_the_meters_back_is_refused(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    credit = _credit_tokens(bijli_meter_factory, state, kill=False)
    with sqlite3.connect(state / "meter.db") as db:
        db.execute("UPDATE kv SET value = '{}' WHERE key = 'account'")
    assert "record 'account' fails its checksum" in _start_refused(state)
    _recovered_with(bijli_meter_factory, state, credit)


def test_a_database_put_back_from_an_old_copy_is_refused(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    meter = bijli_meter_factory(state=state, start=START)
    meter.console("quit")
    meter.proc.wait(10)
    old = (state / "meter.db").read_bytes()  # before any token
    credit = _credit_tokens(bijli_meter_factory, state, kill=False)
    (state / "meter.db").write_bytes(old)
    assert "rolled back" in _start_refused(state)
    _recovered_with(bijli_meter_factory, state, credit)
