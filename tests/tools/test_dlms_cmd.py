"""`bijli objects|read|write|call|profile` as real subprocesses against a real `bijli meter`."""

from __future__ import annotations

from bijli.firmware.events import EventCode, EventLog, LogKind
from bijli.firmware.storage import Storage

import json
import os
import re
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


# What a public `bijli read` over the wrapper may not load, ever (issue 16: start-up is most
# of a one-shot read's cost): the event loop, the meter's listeners and link shells, the DLMS
# server, the firmware, HDLC and the optical opening, pyserial, cryptography (nothing is
# ciphered on the public association) and the SET and ACTION APDUs. Checked on a real read,
# not on an import list, so a lazy import that a run takes is caught too.
NOT_FOR_A_WRAPPER_READ = ("asyncio", "bijli.hal.tcp", "bijli.hal.serial", "serial", "bijli.tools.node.links",
                          "bijli.dlms.server", "bijli.firmware", "bijli.dlms.link.hdlc", "bijli.dlms.link.mode_e",
                          "bijli.tools.node.hdlc_transport", "cryptography", "bijli.dlms.apdu_set_action")


def loaded_by(argv: list[str], heavy: tuple[str, ...], env=None) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the command line ``argv`` in a fresh interpreter; the ``heavy`` modules it held at the end."""
    code = ("import json, sys\n"
            "from bijli.tools.cli import main\n"
            f"status = main({argv!r})\n"
            f"heavy = {heavy!r}\n"
            "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))),"
            " file=sys.stderr)\n"
            "sys.exit(status)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    return r, json.loads(r.stderr.strip().splitlines()[-1])


def test_a_wrapper_read_loads_no_event_loop_no_server_and_no_meter(bijli_meter):
    r, loaded = loaded_by(["read", "0.0.1.0.0.255", "--target", bijli_meter.endpoints.wrapper], NOT_FOR_A_WRAPPER_READ)
    assert r.returncode == 0 and r.stdout.startswith("0.0.1.0.0.255:2 = 2024-06-14T"), r.stdout + r.stderr
    assert loaded == []


def test_the_guard_sees_what_a_read_loads(bijli_meter):
    """The check above can fail: HDLC over TCP does load the HDLC link (and its transport)."""
    r, loaded = loaded_by(["read", "0.0.1.0.0.255", "--hdlc", "--target", bijli_meter.endpoints.hdlc],
                          NOT_FOR_A_WRAPPER_READ)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {"bijli.dlms.link.hdlc", "bijli.tools.node.hdlc_transport"} <= set(loaded)
    assert not [m for m in loaded if m.startswith(("asyncio", "bijli.dlms.server", "bijli.tools.node.links"))]


def test_a_ciphered_read_loads_cryptography_when_it_ciphers(bijli_meter, tmp_path):
    """HLS-GMAC needs AES-GCM: the lazy import in dlms.security happens, and the read works."""
    env = dict(os.environ, BIJLI_CLIENT_STATE=str(tmp_path))
    r, loaded = loaded_by(["read", "0.0.1.0.0.255", "--client", "48", "--target", bijli_meter.endpoints.wrapper],
                          ("cryptography", "asyncio"), env=env)
    assert r.returncode == 0 and r.stdout.startswith("0.0.1.0.0.255:2 = 2024-06-14T"), r.stdout + r.stderr
    assert "cryptography" in loaded and "asyncio" not in loaded


def test_read_objects_write_over_the_wrapper(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(start="2024-06-17T10:00:00")
    target = meter.endpoints.wrapper
    r = bijli("read", "0.0.1.0.0.255:2", "1.0.1.8.0.255:3", "--target", target, "--json")
    assert r.returncode == 0, r.stderr
    values = json.loads(r.stdout)
    assert values["0.0.1.0.0.255:2"].startswith("2024-06-17T10:0")
    assert values["1.0.1.8.0.255:3"] == [0, 30]

    r = bijli("objects", "--target", target, "--client", "32", "--json")
    assert r.returncode == 0, r.stderr
    names = {o["obis"] for o in json.loads(r.stdout)}
    assert {"0.0.1.0.0.255", "1.0.12.7.0.255"} <= names

    r = bijli("read", "1.0.1.8.0.255", "--target", target, "--client", "32", "--password", "wrong")
    assert r.returncode == 1 and "authentication" in r.stderr

    # the public client may not write the clock (SET is outside its conformance): the meter's
    # exception-response is shown, status 1
    r = bijli("write", "0.0.1.0.0.255:2", "date-time:2024-07-01T00:00", "--target", target)
    assert r.returncode == 1 and "SERVICE_NOT_SUPPORTED" in r.stderr
    r = bijli("write", "0.0.1.0.0.255:2", "bogus", "--target", target)
    assert r.returncode == 2 and "TYPE:VALUE" in r.stderr


def test_utility_association_writes_the_clock_over_hls_gmac(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(start="2024-06-17T10:00:00")
    target = meter.endpoints.wrapper
    r = bijli("write", "0.0.1.0.0.255:2", "date-time:2024-07-01T08:00", "--target", target, "--client", "48",
              env_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    r = bijli("read", "0.0.1.0.0.255", "--target", target, "--client", "48", "--json", env_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout).startswith("2024-07-01T08:0")


def test_utility_association_changes_the_meter_readers_password(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    meter = bijli_meter_factory(state=state, start="2024-06-17T10:00:00")
    target = meter.endpoints.wrapper
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

    again = bijli_meter_factory(state=state)  # resumes its own clock
    r = bijli("read", "0.0.96.1.0.255", "--target", again.endpoints.wrapper, "--client", "32",
              "--password", new.decode())
    assert r.returncode == 0, r.stderr  # kept across a restart


# --- outcomes that look like success (issue 15 item 12) ----------------------------------------------


def vend(time: str) -> str:
    r = bijli("token", "vend", "--time", time, "credit", "--amount", "77")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[0]


def test_a_token_through_the_gateway_prints_the_meters_word(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(start="2024-06-17T10:00:00")
    target = ("--target", meter.endpoints.wrapper, "--client", "48")
    first, second = vend("2024-06-17T09:00"), vend("2024-06-17T09:01")

    r = bijli("token", "deliver", first, *target, env_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("accepted")
    r = bijli("token", "deliver", first, *target, env_dir=tmp_path)  # the same token again
    assert r.returncode == 1 and r.stdout.startswith("used"), (r.stdout, r.stderr)
    assert "did not accept" in r.stderr
    broken = first[:-1] + str((int(first[-1]) + 1) % 10)
    r = bijli("token", "deliver", broken, *target, "--json", env_dir=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout) == {"accepted": False, "word": json.loads(r.stdout)["word"]}
    assert json.loads(r.stdout)["word"].startswith("crc_error")

    # `call` on the gateway says the same, and str:DIGITS is the 20 digits, not a refused type
    r = bijli("call", "0.0.19.40.0.255:1", f"str:{second}", *target, env_dir=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("accepted"), (r.stdout, r.stderr)
    r = bijli("call", "0.0.19.40.0.255:1", f"str:{second}", *target, env_dir=tmp_path)
    assert r.returncode == 1 and r.stdout.startswith("used") and "done" not in r.stdout
    r = bijli("token", "deliver", "12345", *target, env_dir=tmp_path)
    assert r.returncode == 1 and r.stdout.startswith("format_error")
    r = bijli("token", "deliver", "not-digits", *target, env_dir=tmp_path)
    assert r.returncode == 2  # refused before any association


# --- errors that say what to do (issue 15 item 13) ----------------------------------------------------


def test_a_refused_association_says_why_and_what_to_do(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(start="2024-06-17T10:00:00")
    target = ("--target", meter.endpoints.wrapper)

    # the utility client works, then replays an old invocation counter: stale, and how to resynchronise
    r = bijli("read", "0.0.1.0.0.255", *target, "--client", "48", env_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    r = bijli("read", "0.0.1.0.0.255", *target, "--client", "48", "--ic", "1", env_dir=tmp_path)
    assert r.returncode == 1
    assert "invocation counter 1 is stale" in r.stderr and "0.0.43.1.3.255" in r.stderr and "--ic" in r.stderr
    expected = int(r.stderr.split("expects at least ")[1].split(";")[0])
    r = bijli("read", "0.0.1.0.0.255", *target, "--client", "48", "--ic", str(expected), env_dir=tmp_path)
    assert r.returncode == 0, r.stderr  # the advice works

    # a wrong key with a current counter: the keys, not the counter
    r = bijli("read", "0.0.1.0.0.255", *target, "--client", "48", "--key", "11" * 16, env_dir=tmp_path)
    assert r.returncode == 1 and "--key or --auth-key is wrong" in r.stderr and "stale" not in r.stderr

    # the reader: a wrong password says so; after three, the SAP is locked out, and says that instead
    for _ in range(3):
        r = bijli("read", "0.0.1.0.0.255", *target, "--client", "32", "--password", "wrong")
        assert r.returncode == 1 and "wrong password" in r.stderr and "locks the SAP out" in r.stderr
    r = bijli("read", "0.0.1.0.0.255", *target, "--client", "32")  # the right password, too late
    assert r.returncode == 1 and "is locked out" in r.stderr and "wait" in r.stderr, r.stderr
    assert "diagnostic" not in r.stderr


def test_upgrade_refused_for_lack_of_rights_does_not_promise_a_resume(bijli_meter_factory, tmp_path):
    key = tmp_path / "signing.pem"
    r = bijli("upgrade", "keygen", "-o", str(key))
    assert r.returncode == 0, r.stderr
    before = key.read_bytes()
    r = bijli("upgrade", "keygen", "-o", str(key))
    assert r.returncode == 2 and "exists" in r.stderr and "--force" in r.stderr
    assert key.read_bytes() == before  # the key meters trust is still there
    r = bijli("upgrade", "keygen", "-o", str(key), "--force")
    assert r.returncode == 0 and key.read_bytes() != before

    payload = tmp_path / "bijli-9.9.9-py3-none-any.whl"
    payload.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip is a payload like any other
    image = tmp_path / "image.bin"
    r = bijli("upgrade", "sign", "--sign-key", str(key), str(payload), "-o", str(image))
    assert r.returncode == 0, r.stderr
    meter = bijli_meter_factory(start="2024-06-17T10:00:00")
    r = bijli("upgrade", str(image), "--target", meter.endpoints.wrapper)  # the public client
    assert r.returncode == 1, r.stderr
    assert "--client 48" in r.stderr and "resume" not in r.stderr and "run again" not in r.stderr


# --- what engineers expect of a reading tool (issue 15 item 14) ---------------------------------------


def test_scalers_names_and_whole_profiles(bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(start="2024-06-17T10:00:00")
    meter.console("load 10")
    assert meter.console("step 6h").startswith("2024-06-17T16:00")
    target = ("--target", meter.endpoints.wrapper, "--client", "32")

    raw = bijli("read", "1.0.12.7.0.255", *target, "--json")
    scaled = bijli("read", "1.0.12.7.0.255", "1.0.11.7.0.255", *target, "--scale")
    assert raw.returncode == 0 and scaled.returncode == 0, scaled.stderr
    volts, amps = scaled.stdout.splitlines()
    assert re.fullmatch(r"1\.0\.12\.7\.0\.255:2 = 2\d\d\.\d\d V", volts), volts
    assert amps.endswith(" A")
    r = bijli("read", "1.0.12.7.0.255:3", *target, "--json")
    scaler = json.loads(r.stdout)[0]
    assert float(volts.split("= ")[1].split()[0]) == pytest.approx(json.loads(raw.stdout) * 10 ** scaler)
    j = json.loads(bijli("read", "1.0.12.7.0.255", *target, "--scale", "--json").stdout)
    assert j["unit"] == "V" and j["raw"] == json.loads(raw.stdout)

    r = bijli("objects", *target)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[2]: line for line in r.stdout.splitlines()}
    assert "Clock" in lines["0.0.1.0.0.255"] and lines["0.0.1.0.0.255"].endswith("clock")
    assert lines["1.0.1.8.0.255"].endswith("active energy import (+A)")
    named = json.loads(bijli("objects", *target, "--json").stdout)
    assert {"class", "name"} <= set(named[0])

    # no range: the whole buffer, as many rows as the profile says it holds
    in_use = json.loads(bijli("read", "7/1.0.99.1.0.255:7", *target, "--json").stdout)
    r = bijli("profile", "1.0.99.1.0.255", *target, "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["rows"]) == in_use >= 24
    r = bijli("profile", "1.0.99.1.0.255", *target, "--scale", "--csv")
    header, first = r.stdout.splitlines()[:2]
    assert re.search(r",2\d\d\.\d+ V", first) and r.returncode == 0, first

    # an inverted range is an error, and costs no association
    r = bijli("profile", "1.0.99.1.0.255", *target, "--from", "2024-06-17T14:00", "--to", "2024-06-17T11:00")
    assert r.returncode == 2 and "inverted" in r.stderr
    r = bijli("profile", "1.0.99.1.0.255", *target, "--entries", "9..3")
    assert r.returncode == 2 and "inverted" in r.stderr


def test_the_progress_bar_shows_a_total_and_clears(bijli_meter_factory, tmp_path):
    import os
    import pty

    meter = bijli_meter_factory(start="2024-06-17T10:00:00")
    meter.console("load 10")
    meter.console("step 2d")
    master, slave = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "profile", "1.0.99.1.0.255", "--target",
                            meter.endpoints.wrapper, "--client", "32", "--csv"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=slave, timeout=60)
        os.close(slave)
        slave = -1
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) > 150  # two days of 15-minute rows
    text = err.decode()
    assert re.search(r"\d+ blocks, [\d,]+ octets of ~[\d,]+ \(\d+%\)", text), text
    assert text.endswith("\r\x1b[K")  # the line is cleared: the result is what stays on the screen
