"""Firmware upgrade end to end: DLMS image transfer over real TCP into an on-disk store,
interrupted and resumed across a meter restart with `bijli upgrade` as a subprocess, a
bad signature refused, and a broken image rolled back by the launcher in real processes."""

from __future__ import annotations

from bijli.firmware.events import EventCode, EventLog, LogKind
from bijli.firmware.storage import Storage

import io
import os
import re
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from bijli.dlms import axdr
from bijli.dlms.acse import Conformance, Mechanism
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.cosem.association import AssociationLN, AssociationPolicy, full_access
from bijli.dlms.cosem.image_transfer import ImageTransferStatus as S
from bijli.dlms.errors import ServiceError
from bijli.dlms.obis import Obis
from bijli.dlms.security import MemoryCounterStore, SecuritySettings
from bijli.dlms.server import Server
from bijli.firmware.cosem.upgrade import upgrade_objects
from bijli.firmware.upgrade.config import UpgradeConfig
from bijli.firmware.upgrade.image import generate_private_key, load_private_key, public_key_pem, sign_image
from bijli.firmware.upgrade.record import load_record
from bijli.firmware.upgrade.store import ImageStore
from bijli.hal import tcp
from bijli.tools.node import links
from bijli.tools.node.client_transports import open_client_transport
from bijli.tools.rig.wheel import build_wheel
from bijli.tools.commands.upgrade import UpgradeCommandError, send_image
from tests.peers.loop_thread import LoopThread

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2024, 6, 17, 10, 0, 0)
SYSTEM_TITLE = b"BJL\x00\x00\x00\x00\x01"
CONFORMANCE = (Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
               | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.BLOCK_TRANSFER_WITH_ACTION
               | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE)


class ImageMeter:
    """The meter's DLMS side for upgrades: the utility association (HLS-GMAC, ciphered) and the
    image transfer objects bound to a store on disk, served over the TCP wrapper in a thread."""

    def __init__(self, state: Path, config: UpgradeConfig):
        self.store = ImageStore(state, config, now=lambda: NOW)
        objects = upgrade_objects(self.store)
        objects.append(AssociationLN(Obis(0, 0, 40, 0, 0, 255), None, lambda: objects))
        policy = AssociationPolicy(48, "utility settings", Mechanism.HLS_GMAC, b"bijli-hls-secret", full_access,
                                   CONFORMANCE, ciphered=True, logical_name=Obis(0, 0, 40, 0, 3, 255))
        self.server = Server(objects, [policy], max_pdu=1024,
                             security=SecuritySettings(system_title=SYSTEM_TITLE, counter_store=MemoryCounterStore()))
        async def main():
            self.listener = await tcp.serve("127.0.0.1", 0, lambda s: links.wrapper_session(s, self.server))
            self.port = self.listener.sockets[0].getsockname()[1]

        self.loop_thread = LoopThread(main)

    def client(self, ic: int = 1) -> Client:
        transport = open_client_transport(f"tcp://127.0.0.1:{self.port}", 48)
        client = Client(transport, ClientSettings.for_association(48, invocation_counter=ic))
        client.associate()
        return client

    def stop(self) -> None:
        async def close():
            self.listener.close()
            await self.listener.wait_closed()

        self.loop_thread.stop(close, timeout=10)


@pytest.fixture(scope="module")
def signing_key():
    return load_private_key(generate_private_key())


@pytest.fixture(scope="module")
def wheel():
    return build_wheel(ROOT)[1]


def cli_payload(body: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bijli/__init__.py", "")
        z.writestr("bijli/tools/__init__.py", "")
        z.writestr("bijli/tools/cli.py", body)
    return buf.getvalue()


def test_interrupted_transfer_resumes_after_a_meter_restart(tmp_path, signing_key, wheel):
    image = sign_image(wheel, "bijli", "0.1.1", signing_key)
    config = UpgradeConfig.from_table({"public_key": public_key_pem(signing_key), "block_size": 512})
    meter = ImageMeter(tmp_path / "state", config)
    client = meter.client()
    lines: list[str] = []
    try:
        status = send_image(client, image, report=lines.append, stop_after=100)
    finally:
        client.close()
    meter.stop()  # the connection and the meter go away mid-transfer
    assert status == S.INITIATED
    count = (len(image) + 511) // 512
    assert f"0 already on the meter, sending {count}" in lines[0]

    meter = ImageMeter(tmp_path / "state", config)  # a new process: only the disk remembers
    try:
        assert meter.store.transferred_blocks().count("1") == 100
        env = dict(os.environ, BIJLI_CLIENT_STATE=str(tmp_path / "client"))
        (tmp_path / "image.bjl").write_bytes(image)
        proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "upgrade", str(tmp_path / "image.bjl"),
                               "--target", f"tcp://127.0.0.1:{meter.port}", "--client", "48"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"100 already on the meter, sending {count - 100}" in proc.stdout
        assert "image verified by the meter" in proc.stdout
        assert "activation: activation_initiated" in proc.stdout
        assert meter.store.transfer_status() == S.ACTIVATION_INITIATED
        pending = load_record(tmp_path / "state").pending
        assert pending.identifier == "bijli-0.1.1" and pending.armed
        assert (tmp_path / "state" / "images" / pending.name / "bijli" / "tools" / "cli.py").is_file()
    finally:
        meter.stop()


def test_bad_signature_refused_over_dlms(tmp_path, signing_key):
    intruder = load_private_key(generate_private_key())
    image = sign_image(cli_payload("print('pwned')\n"), "bijli", "6.6.6", intruder)
    config = UpgradeConfig.from_table({"public_key": public_key_pem(signing_key), "block_size": 256})
    meter = ImageMeter(tmp_path / "state", config)
    client = meter.client()
    try:
        with pytest.raises(UpgradeCommandError, match="verification_failed"):
            send_image(client, image)
        assert int(client.get(18, "0.0.44.0.0.255", 6).value) == S.VERIFICATION_FAILED
        assert client.get(18, "0.0.44.0.0.255", 7).value == ()  # nothing to activate
        with pytest.raises(ServiceError):
            client.action(18, "0.0.44.0.0.255", 4, axdr.Integer(0))
    finally:
        client.close()
        meter.stop()
    assert load_record(tmp_path / "state").pending is None
    assert [e.kind for e in ImageStore(tmp_path / "state", config).take_events()] == ["verification_failed"]


# --- the launcher, in real processes ---------------------------------------------------------------


def start_meter(state: Path, *extra: str) -> subprocess.Popen:
    """`bijli meter` itself: its launcher step picks the image, and a new image counts as
    healthy after one second of serving (the default is 10 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIJLI_")}
    config = state.parent / "meter.toml"
    config.write_text("[upgrade]\nhealthy_after_s = 1\n")
    return subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "meter", "--config", str(config),
                             "--state", str(state), "--tcp",
                             "127.0.0.1:0", "--console", "none", "--clock", "sim", "--start", NOW.isoformat(),
                             *extra], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_listening(proc: subprocess.Popen, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"meter exited {proc.wait()}: {proc.stderr.read()}")
        m = re.search(r"DLMS wrapper listening on [\d.]+:(\d+)", line)
        if m:
            return int(m.group(1))
    raise AssertionError("meter did not start")


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def activate(state: Path, key, payload: bytes, version: str) -> str:
    image = sign_image(payload, "bijli", version, key)
    store = ImageStore(state, UpgradeConfig.from_table({"public_key": public_key_pem(key), "block_size": 4096}),
                       now=lambda: NOW)
    store.initiate(f"bijli-{version}".encode(), len(image))
    for n in range(0, len(image), 4096):
        store.transfer_block(n // 4096, image[n:n + 4096])
    store.activate()
    return load_record(state).pending.name


def test_failed_activation_rolls_back_to_the_previous_image(tmp_path, signing_key):
    state = tmp_path / "state"
    broken = cli_payload("raise RuntimeError('this build is broken')\n")
    name = activate(state, signing_key, broken, "9.9.9")
    # default [upgrade] start_attempts = 2: two starts of the new image, each fails at import
    for attempt in (1, 2):
        proc = start_meter(state)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert f"starting new image {name} (attempt {attempt} of 2)" in err
        assert "this build is broken" in err
    assert load_record(state).status == S.ACTIVATION_INITIATED  # undecided until the next start
    proc = start_meter(state)
    try:
        port = wait_listening(proc)  # the previous (base) build serves again
        # the meter itself says so over DLMS (utility association, demo keys)
        transport = open_client_transport(f"tcp://127.0.0.1:{port}", 48)
        with Client(transport, ClientSettings.for_association(48, invocation_counter=1)) as c:
            c.associate()
            assert int(c.get(18, "0.0.44.0.0.255", 6).value) == S.ACTIVATION_FAILED
    finally:
        err = stop(proc)
    assert f"image {name} did not come up healthy in 2 start(s); running the base build again" in err
    record = load_record(state)
    assert record.status == S.ACTIVATION_FAILED and record.pending is None and record.active is None
    assert not (state / "images" / name).exists()
    # the meter took the rollback event from the record into its own event log
    assert ImageStore(state).take_events() == []
    storage = Storage.open(state)
    try:
        logged = [(e.code, e.detail) for e in EventLog().events(storage, LogKind.TRANSACTION)]
    finally:
        storage.close()
    assert any(code == EventCode.FIRMWARE_ACTIVATION_FAILED and "bijli-9.9.9" in detail for code, detail in logged)


def test_new_image_runs_from_its_directory(tmp_path, signing_key, wheel):
    state = tmp_path / "state"
    name = activate(state, signing_key, wheel, "0.1.1")
    proc = start_meter(state)
    try:
        wait_listening(proc)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"BIJLI_IMAGE={name}".encode() in environ
        assert any(e.startswith(b"PYTHONPATH=" + str((state / "images" / name).resolve()).encode()) for e in environ)
        deadline = time.monotonic() + 30
        while load_record(state).pending and time.monotonic() < deadline:
            time.sleep(0.2)
        assert load_record(state).active == name
    finally:
        stop(proc)

