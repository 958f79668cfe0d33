"""`bijli objects|read|write|call|profile` as real subprocesses against a real `bijli meter`."""

from __future__ import annotations

from bijli.firmware.events import EventCode, EventLog, LogKind
from bijli.firmware.storage import Storage

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from bijli.tools.commands.dlms import UsageError, parse_ref, parse_value
from bijli.dlms import axdr
from bijli.dlms.obis import Obis


def bijli(*args: str, env_dir=None) -> subprocess.CompletedProcess:
    env = None
    if env_dir is not None:
        import os
        env = dict(os.environ, BIJLI_CLIENT_STATE=str(env_dir))
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)


def test_value_syntax():
    assert parse_value("u32:5") == axdr.DoubleLongUnsigned(5)
    assert parse_value("i8:-3") == axdr.Integer(-3)
    assert parse_value("octets:0A0b") == axdr.OctetString(b"\x0a\x0b")
    assert parse_value('json:["enum:1", {"array": ["u16:30", "u16:31"]}, false]') == axdr.Structure((
        axdr.Enum(1), axdr.Array((axdr.LongUnsigned(30), axdr.LongUnsigned(31))), axdr.Boolean(False)))
    dt = parse_value("date-time:2024-06-17T10:00").value
    assert axdr.CosemDateTime.decode(dt).to_datetime().isoformat() == "2024-06-17T10:00:00"
    for bad in ("5", "u8:300", "octets:zz", "nope:1", 'json:[1]'):
        with pytest.raises(UsageError):
            parse_value(bad)


def test_reference_syntax():
    assert parse_ref("1.0.1.8.0.255:3") == (None, Obis(1, 0, 1, 8, 0, 255), 3)
    assert parse_ref("3/1-0:1.8.0*255", 2) == (3, Obis(1, 0, 1, 8, 0, 255), 2)
    with pytest.raises(UsageError):
        parse_ref("1.0.1.8.0.255")  # write/call need the index


def test_read_objects_write_over_the_wrapper(meter_process, tmp_path):
    meter = meter_process("--clock", "sim", "--start", "2024-06-17T10:00:00")
    target = f"tcp://127.0.0.1:{meter.port}"
    r = bijli("read", "0.0.1.0.0.255:2", "1.0.1.8.0.255:3", "--target", target, "--json")
    assert r.returncode == 0, r.stderr
    values = json.loads(r.stdout)
    assert values["0.0.1.0.0.255:2"].startswith("2024-06-17T10:0")
    assert values["1.0.1.8.0.255:3"] == [0, 30]

    r = bijli("objects", "--target", target, "--client", "32", "--json")
    assert r.returncode == 0, r.stderr
    names = {o["obis"] for o in json.loads(r.stdout)}
    assert {"0.0.1.0.0.255", "1.0.32.7.0.255"} <= names

    r = bijli("read", "1.0.1.8.0.255", "--target", target, "--client", "32", "--password", "wrong")
    assert r.returncode == 1 and "authentication" in r.stderr

    # the public client may not write the clock (SET is outside its conformance): the meter's
    # exception-response is shown, status 1
    r = bijli("write", "0.0.1.0.0.255:2", "date-time:2024-07-01T00:00", "--target", target)
    assert r.returncode == 1 and "SERVICE_NOT_SUPPORTED" in r.stderr
    r = bijli("write", "0.0.1.0.0.255:2", "bogus", "--target", target)
    assert r.returncode == 2 and "TYPE:VALUE" in r.stderr


def test_utility_association_writes_the_clock_over_hls_gmac(meter_process, tmp_path):
    meter = meter_process("--clock", "sim", "--start", "2024-06-17T10:00:00")
    target = f"tcp://127.0.0.1:{meter.port}"
    r = bijli("write", "0.0.1.0.0.255:2", "date-time:2024-07-01T08:00", "--target", target, "--client", "48",
              env_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    r = bijli("read", "0.0.1.0.0.255", "--target", target, "--client", "48", "--json", env_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout).startswith("2024-07-01T08:0")


def test_utility_association_changes_the_meter_readers_password(meter_process, tmp_path):
    state = tmp_path / "state"
    meter = meter_process("--clock", "sim", "--start", "2024-06-17T10:00:00", state=state)
    target = f"tcp://127.0.0.1:{meter.port}"
    new = b"s3cret-42"
    r = bijli("write", "0.0.40.0.2.255:7", f"octets:{new.hex()}", "--target", target, "--client", "48",
              env_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    # the secret is write-only: reading it back is refused
    r = bijli("read", "0.0.40.0.2.255:7", "--target", target, "--client", "48", env_dir=tmp_path)
    assert r.returncode == 1
    r = bijli("read", "0.0.96.1.0.255", "--target", target, "--client", "32")  # the old password
    assert r.returncode == 1 and "authentication" in r.stderr
    r = bijli("read", "0.0.96.1.0.255", "--target", target, "--client", "32", "--password", new.decode())
    assert r.returncode == 0, r.stderr
    assert meter.stop() == 0
    storage = Storage.open(state)
    try:  # the change is in the transaction log (IS 15959 event 161)
        codes = [e.code for e in EventLog().events(storage, LogKind.TRANSACTION)]
    finally:
        storage.close()
    assert EventCode.LLS_SECRET_CHANGED in codes

    again = meter_process("--clock", "sim", "--start", "2024-06-17T11:00:00", state=state)
    r = bijli("read", "0.0.96.1.0.255", "--target", f"tcp://127.0.0.1:{again.port}", "--client", "32",
              "--password", new.decode())
    assert r.returncode == 0, r.stderr  # kept across a restart
