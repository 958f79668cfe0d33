"""firmware.upgrade: the signed container (image), the [upgrade] table (config), the typed
record (record), the on-disk image store and its status table (store), and the
start/promote/fail record the launcher keeps (boot)."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.firmware.errors import ConfigError
from bijli.firmware.upgrade.boot import StartPlan, fail_pending, plan_start, promote
from bijli.firmware.upgrade.config import UpgradeConfig, activation_time
from bijli.firmware.upgrade.errors import (ImageFormatError, TransferRefusal, TransferRefused, UpgradeError,
                                           VerificationError)
from bijli.firmware.upgrade.image import (SignatureAlgorithm, algorithm_of, generate_private_key, load_private_key,
                                          load_public_key, parse_image, public_key_pem, sign_image, verify_image)
from bijli.firmware.upgrade.record import UpgradePhase as S
from bijli.firmware.upgrade.record import load_record
from bijli.firmware.upgrade.store import REQUESTS, TRANSITIONS, ImageStore, TransferInput as I

NOW = datetime(2024, 6, 17, 10, 0, 0)


def payload(marker: str = "ok") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bijli/__init__.py", "")
        z.writestr("bijli/tools/__init__.py", "")
        z.writestr("bijli/tools/cli.py", f"MARK = {marker!r}\n")
    return buf.getvalue()


@pytest.fixture(scope="module", params=[SignatureAlgorithm.ED25519, SignatureAlgorithm.ECDSA_P256_SHA256])
def key(request):
    return load_private_key(generate_private_key(request.param))


@pytest.fixture(scope="module")
def ed_key():
    return load_private_key(generate_private_key())


def config_for(key, **kw) -> UpgradeConfig:
    return UpgradeConfig.from_table({"public_key": public_key_pem(key), "block_size": 64, **kw})


def send_all(store: ImageStore, image: bytes, skip: set[int] = frozenset()) -> None:
    bs = store.image_block_size
    for n in range((len(image) + bs - 1) // bs):
        if n not in skip:
            store.transfer_block(n, image[n * bs:(n + 1) * bs])


# --- container ---------------------------------------------------------------------------------


def test_sign_and_verify_round_trip(key):
    image = sign_image(payload(), "bijli", "0.2.0", key)
    parsed = verify_image(image, key.public_key(), identifier=b"bijli-0.2.0")
    assert parsed.header.name == "bijli" and parsed.header.version == "0.2.0"
    assert parsed.payload == payload()


def test_a_bad_signature_is_refused(key):
    image = bytearray(sign_image(payload(), "bijli", "0.2.0", key))
    sig_at = len(parse_image(bytes(image)).signed) + 2
    image[sig_at + 5] ^= 0x01
    with pytest.raises(VerificationError, match="bad signature"):
        verify_image(bytes(image), key.public_key())


def test_another_key_is_refused(key):
    other = load_private_key(generate_private_key(algorithm_of(key)))
    image = sign_image(payload(), "bijli", "0.2.0", other)
    with pytest.raises(VerificationError):
        verify_image(image, key.public_key())


def test_payload_tampering_is_caught_by_the_digest(ed_key):
    image = bytearray(sign_image(payload(), "bijli", "0.2.0", ed_key))
    image[-30] ^= 0xFF
    with pytest.raises(VerificationError, match="SHA-256"):
        verify_image(bytes(image), ed_key.public_key())


def test_payload_must_be_a_bijli_build(ed_key):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("other/x.py", "")
    with pytest.raises(VerificationError, match="not a bijli build"):
        verify_image(sign_image(buf.getvalue(), "bijli", "1", ed_key), ed_key.public_key())
    with pytest.raises(VerificationError, match="outside"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("../evil.py", "")
            z.writestr("bijli/tools/cli.py", "")
        verify_image(sign_image(buf.getvalue(), "bijli", "1", ed_key), ed_key.public_key())


def test_identifier_must_name_the_image(ed_key):
    image = sign_image(payload(), "bijli", "0.2.0", ed_key)
    with pytest.raises(VerificationError, match="identifier"):
        verify_image(image, ed_key.public_key(), identifier=b"bijli-9")


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_parse_never_fails_with_anything_but_format_error(data):
    try:
        parse_image(b"BJLI\x01" + data)
    except ImageFormatError:
        pass
    try:
        parse_image(data)
    except ImageFormatError:
        pass


def test_truncations_are_format_errors(ed_key):
    image = sign_image(payload(), "bijli", "0.2.0", ed_key)
    header_end = len(parse_image(image).signed) + 2 + 64
    for n in range(header_end):
        with pytest.raises(ImageFormatError):
            parse_image(image[:n])


# --- configuration -----------------------------------------------------------------------------


def test_config_accepts_pem_and_hex(ed_key, key):
    raw = ed_key.public_key().public_bytes_raw().hex()
    assert UpgradeConfig.from_table({"public_key": raw}).key is not None
    assert UpgradeConfig.from_table({"public_key": public_key_pem(key)}).key is not None
    from cryptography.hazmat.primitives import serialization
    if algorithm_of(key) == SignatureAlgorithm.ECDSA_P256_SHA256:
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        assert load_public_key(point.hex()).public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("table,bad_key", [
    ({"public_key": "abcd"}, "upgrade.public_key"),
    ({"public_key": "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"}, "upgrade.public_key"),
    ({"activation": "tomorrow"}, "upgrade.activation"),
    ({"activation": "25:00"}, "upgrade.activation"),
    ({"block_size": 8}, "upgrade.block_size"),
    ({"start_attempts": 0}, "upgrade.start_attempts"),
    ({"colour": "red"}, "upgrade.colour"),
])
def test_config_errors_name_the_key(table, bad_key):
    with pytest.raises(ConfigError) as err:
        UpgradeConfig.from_table(table)
    assert err.value.key == bad_key


def test_activation_time():
    cfg = UpgradeConfig.from_table({"activation": "02:00"})
    assert activation_time(cfg, NOW) == datetime(2024, 6, 18, 2, 0)
    assert activation_time(UpgradeConfig(), NOW) == NOW
    assert activation_time(cfg, NOW, datetime(2024, 6, 20, 3, 0)) == datetime(2024, 6, 20, 3, 0)
    assert activation_time(cfg, NOW, datetime(2020, 1, 1)) == NOW


# --- the store ---------------------------------------------------------------------------------


def test_transfer_verify_activate(tmp_path, ed_key):
    image = sign_image(payload(), "bijli", "0.2.0", ed_key)
    store = ImageStore(tmp_path, config_for(ed_key), now=lambda: NOW)
    store.initiate(b"bijli-0.2.0", len(image))
    assert store.transfer_status() == S.INITIATED
    send_all(store, image)
    assert store.first_not_transferred_block() == len(store.transferred_blocks())
    store.verify()
    assert store.transfer_status() == S.VERIFICATION_SUCCESSFUL
    t = store.transfer
    assert (t.size, t.identifier) == (len(image), b"bijli-0.2.0")
    assert t.verified.signature == parse_image(image).signature
    store.activate()
    assert store.transfer_status() == S.ACTIVATION_INITIATED
    pending = load_record(tmp_path).pending
    assert (tmp_path / "images" / pending.name / "bijli" / "tools" / "cli.py").read_text() == "MARK = 'ok'\n"
    assert store.restart_due(NOW)


def test_interrupted_transfer_resumes_after_a_restart(tmp_path, ed_key):
    image = sign_image(payload("x" * 2000), "bijli", "0.2.0", ed_key)
    cfg = config_for(ed_key)
    store = ImageStore(tmp_path, cfg, now=lambda: NOW)
    store.initiate(b"bijli-0.2.0", len(image))
    count = len(store.transferred_blocks())
    send_all(store, image, skip=set(range(5, count)) | {2})
    del store  # power cut
    again = ImageStore(tmp_path, cfg, now=lambda: NOW)
    again.initiate(b"bijli-0.2.0", len(image))  # the same image: resume, not restart
    assert again.missing_blocks() == [2, *range(5, count)]
    assert again.first_not_transferred_block() == 2
    with pytest.raises(TransferRefused) as err:
        again.verify()  # incomplete: refused, and the transfer goes on
    assert err.value.reason is TransferRefusal.INCOMPLETE
    assert again.transfer_status() == S.INITIATED
    send_all(again, image, skip={0, 1, 3, 4})
    again.verify()
    assert again.transfer_status() == S.VERIFICATION_SUCCESSFUL


def test_another_image_restarts_the_transfer(tmp_path, ed_key):
    store = ImageStore(tmp_path, config_for(ed_key))
    store.initiate(b"bijli-0.2.0", 200)
    store.transfer_block(0, b"a" * 64)
    store.initiate(b"bijli-0.3.0", 200)
    assert store.transferred_blocks() == "0000"


def test_bad_signature_refused_by_the_store(tmp_path, ed_key):
    other = load_private_key(generate_private_key())
    image = sign_image(payload(), "bijli", "0.2.0", other)
    store = ImageStore(tmp_path, config_for(ed_key))
    store.initiate(b"bijli-0.2.0", len(image))
    send_all(store, image)
    with pytest.raises(TransferRefused) as err:
        store.verify()
    assert err.value.reason is TransferRefusal.REJECTED
    assert store.transfer_status() == S.VERIFICATION_FAILED
    assert "bad signature" in store.detail
    with pytest.raises(TransferRefused) as err:
        store.activate()
    assert err.value.reason is TransferRefusal.NOT_NOW
    assert [e.kind for e in store.take_events()] == ["verification_failed"]
    assert store.take_events() == []
    assert not [p for p in (tmp_path / "images").iterdir() if p.is_dir()]


@pytest.mark.parametrize("number,value", [(4, b"x"), (3, b"x" * 64), (0, b"x" * 63), (0, b"x" * 65)])
def test_blocks_of_the_wrong_size_or_number_are_refused(tmp_path, number, value):
    store = ImageStore(tmp_path, UpgradeConfig(block_size=64))
    store.initiate(b"bijli-1", 200)  # blocks 0..2 of 64, block 3 of 8
    with pytest.raises(TransferRefused) as err:
        store.transfer_block(number, value)
    assert err.value.reason is TransferRefusal.BAD_REQUEST
    assert store.transferred_blocks() == "0000"


def test_disabled_transfer_refuses_initiate(tmp_path):
    store = ImageStore(tmp_path, UpgradeConfig())
    store.set_transfer_enabled(False)
    with pytest.raises(TransferRefused) as err:
        store.initiate(b"bijli-1", 10)
    assert err.value.reason is TransferRefusal.DISABLED
    assert store.transfer_status() == S.NOT_INITIATED


def test_scheduled_activation_waits_for_its_time(tmp_path, ed_key):
    image = sign_image(payload(), "bijli", "0.2.0", ed_key)
    clock = [NOW]
    store = ImageStore(tmp_path, config_for(ed_key, activation="02:00"), now=lambda: clock[0])
    store.initiate(b"bijli-0.2.0", len(image))
    send_all(store, image)
    store.activate()  # verifies implicitly
    assert store.transfer_status() == S.ACTIVATION_INITIATED
    assert plan_start(tmp_path, 2).image is None  # not armed: a restart before 02:00 keeps the old build
    assert not store.restart_due(datetime(2024, 6, 18, 1, 59))
    assert store.restart_due(datetime(2024, 6, 18, 2, 0))
    assert plan_start(tmp_path, 2).image == load_record(tmp_path).pending.name


# --- the status table: every (phase, input) pair ------------------------------------------------


@pytest.fixture(scope="module")
def good_image(ed_key):
    return sign_image(payload(), "bijli", "0.2.0", ed_key)


def corrupted(image: bytes) -> bytes:
    return image[:-1] + bytes((image[-1] ^ 1,))


def store_in(tmp_path, status: S, key, image: bytes, *, complete: bool = False, good: bool = True) -> ImageStore:
    """A store brought to ``status`` by the real path (not by writing the record). In
    INITIATED, ``complete`` sends every block of the image (``good``, or corrupted)."""
    store = ImageStore(tmp_path, config_for(key), now=lambda: NOW)
    if status == S.NOT_INITIATED:
        return store
    bad = status == S.VERIFICATION_FAILED or (status == S.INITIATED and not good)
    data = corrupted(image) if bad else image
    store.initiate(b"bijli-0.2.0", len(data))
    if status == S.INITIATED:
        if complete:
            send_all(store, data)
        return store
    send_all(store, data)
    try:
        store.verify()
    except TransferRefused:
        pass
    if status in (S.VERIFICATION_SUCCESSFUL, S.VERIFICATION_FAILED):
        return store
    store.activate()
    if status == S.ACTIVATION_INITIATED:
        return store
    name = load_record(tmp_path).pending.name
    if status == S.ACTIVATION_SUCCESSFUL:
        assert promote(tmp_path, name)
    else:
        plan_start(tmp_path, 0)  # no attempts: fails at once
    return store


REACHABLE = [s for s in S if s != S.VERIFICATION_INITIATED]
#: what the store fires itself, inside a request; tried through the requests that lead to them
INTERNAL = {I.IMAGE_VERIFIED, I.IMAGE_REJECTED, I.INSTALL}
DRIVEN = [i for i in I if i not in INTERNAL]


def walk(status: S, event: I, good: bool) -> S | None:
    """The phase the table says ``event`` leads to from ``status`` (None: refused), with the
    check of the image and the install the store runs within the same step."""
    entry = TRANSITIONS.get((status, event))
    if entry is None:
        return None
    nxt = entry[1]
    if nxt is S.VERIFICATION_INITIATED:
        nxt = TRANSITIONS[(nxt, I.IMAGE_VERIFIED if good else I.IMAGE_REJECTED)][1]
        if good and event is I.ACTIVATE:
            nxt = TRANSITIONS[(nxt, I.INSTALL)][1]
    return nxt


def drive(store: ImageStore, event: I, image: bytes) -> None:
    """Produce ``event`` through the store's public methods, as a head-end or the launcher would."""
    if event is I.INITIATE:
        store.initiate(b"bijli-0.3.0", len(image))  # another image
    elif event is I.RESUME:
        store.initiate(b"bijli-0.2.0", len(image))  # the image store_in sent
    elif event is I.BLOCK:
        store.transfer_block(0, image[:64])
    elif event is I.VERIFY:
        store.verify()
    elif event is I.ACTIVATE:
        store.activate()
    else:
        store.finish_activation(event is I.IMAGE_HEALTHY, "did not come up")


def check_pair(tmp, key, image, status: S, event: I, complete: bool, good: bool) -> None:
    store = store_in(tmp, status, key, image, complete=complete, good=good)
    assert store.transfer_status() == status
    good = status is not S.VERIFICATION_FAILED and (good or status is not S.INITIATED)
    expected = walk(status, event, good)
    if event is I.RESUME and store.transfer is None:
        event = I.INITIATE  # nothing being received: an initiate is a new transfer
        expected = walk(status, event, good)
    try:
        drive(store, event, image)
    except TransferRefused as exc:
        if expected is None:
            busy = status is S.ACTIVATION_INITIATED
            assert exc.reason is (TransferRefusal.BUSY if busy else TransferRefusal.NOT_NOW)
        elif exc.reason is TransferRefusal.REJECTED:
            assert not good and store.transfer_status() == expected == S.VERIFICATION_FAILED
            return
        else:  # the pair is allowed, the arguments were not: nothing changed
            assert exc.reason in (TransferRefusal.INCOMPLETE, TransferRefusal.BAD_REQUEST), exc
            expected = None
    assert store.transfer_status() == (status if expected is None else expected)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(REACHABLE), st.sampled_from(DRIVEN), st.booleans(), st.booleans())
def test_every_phase_input_pair(tmp_path_factory, ed_key, good_image, status, event, complete, good):
    check_pair(tmp_path_factory.mktemp("pair"), ed_key, good_image, status, event, complete, good)


def test_every_phase_input_pair_once(tmp_path_factory, ed_key, good_image):
    """The same check, each pair once (INITIATED with a complete good and a complete bad image too)."""
    for status in REACHABLE:
        for event in DRIVEN:
            cases = [(True, True), (True, False), (False, True)] if status is S.INITIATED else [(False, True)]
            for complete, good in cases:
                check_pair(tmp_path_factory.mktemp("pair"), ed_key, good_image, status, event, complete, good)


def test_every_transition_is_an_action_of_the_store():
    for (status, event), (action, nxt) in TRANSITIONS.items():
        assert getattr(ImageStore, action.__name__) is action, action
        assert isinstance(status, S) and isinstance(nxt, S)
    assert set(REQUESTS) | INTERNAL | {I.IMAGE_HEALTHY, I.IMAGE_FAILED} == set(I)
    # VERIFICATION_INITIATED is only passed through: every way in has both ways out
    assert {e for (s, e) in TRANSITIONS if s is S.VERIFICATION_INITIATED} == {I.IMAGE_VERIFIED, I.IMAGE_REJECTED}


def test_a_step_writes_the_phase_the_table_gives(tmp_path, ed_key, good_image):
    """The record on disk after each step of a whole transfer is the table's next phase."""
    store = ImageStore(tmp_path, config_for(ed_key), now=lambda: NOW)
    phase = S.NOT_INITIATED
    for event, call in [(I.INITIATE, lambda: store.initiate(b"bijli-0.2.0", len(good_image))),
                        (I.RESUME, lambda: store.initiate(b"bijli-0.2.0", len(good_image))),
                        (I.BLOCK, lambda: send_all(store, good_image)),
                        (I.VERIFY, store.verify), (I.VERIFY, store.verify), (I.ACTIVATE, store.activate),
                        (I.ACTIVATE, store.activate)]:
        call()
        phase = walk(phase, event, True)
        assert load_record(tmp_path).status is phase, event
    assert phase is S.ACTIVATION_INITIATED


# --- start attempts, promotion, rollback ---------------------------------------------------------


def test_pending_image_gets_its_attempts_then_rolls_back(tmp_path, ed_key, good_image):
    store_in(tmp_path, S.ACTIVATION_INITIATED, ed_key, good_image)
    name = load_record(tmp_path).pending.name
    assert plan_start(tmp_path, 2).image == name
    assert plan_start(tmp_path, 2).image == name
    third = plan_start(tmp_path, 2)
    assert third.image is None and "did not come up healthy" in third.note
    record = load_record(tmp_path)
    assert record.status == S.ACTIVATION_FAILED and record.pending is None
    assert not (tmp_path / "images" / name).exists()
    events = ImageStore(tmp_path).take_events()
    assert [e.kind for e in events] == ["activation_failed"] and events[0].identifier == "bijli-0.2.0"


def test_healthy_image_is_promoted_and_the_previous_kept(tmp_path, ed_key, good_image):
    store_in(tmp_path, S.ACTIVATION_INITIATED, ed_key, good_image)
    name = load_record(tmp_path).pending.name
    assert not promote(tmp_path, None)  # the base build is not the pending image
    assert plan_start(tmp_path, 2).image == name
    assert promote(tmp_path, name)
    record = load_record(tmp_path)
    assert (record.active, record.previous, record.status) == (name, None, S.ACTIVATION_SUCCESSFUL)
    assert plan_start(tmp_path, 2).image == name  # from now on every start runs it
    assert ImageStore(tmp_path, running_image=name).restart_due(NOW) is False


def test_the_launcher_gives_up_on_a_pending_image_at_once(tmp_path, ed_key, good_image):
    fail_pending(tmp_path, "nothing pending")  # no pending image: nothing to record
    assert load_record(tmp_path).status is S.NOT_INITIATED
    store_in(tmp_path, S.ACTIVATION_INITIATED, ed_key, good_image)
    name = load_record(tmp_path).pending.name
    fail_pending(tmp_path, "exited with status 1")
    record = load_record(tmp_path)
    assert (record.status, record.pending, record.detail) == (S.ACTIVATION_FAILED, None, "exited with status 1")
    assert not (tmp_path / "images" / name).exists()
    assert [(e.kind, e.detail) for e in ImageStore(tmp_path).take_events()] == [
        ("activation_failed", "exited with status 1")]


def test_a_lost_active_image_runs_the_base_build(tmp_path, ed_key, good_image):
    store_in(tmp_path, S.ACTIVATION_SUCCESSFUL, ed_key, good_image)
    name = load_record(tmp_path).active
    assert plan_start(tmp_path, 2).image == name
    import shutil
    shutil.rmtree(tmp_path / "images" / name)
    assert plan_start(tmp_path, 2) == StartPlan(None)


#: state.json as bijli has written it since the image store exists (a pending image scheduled
#: for 02:00, one verified transfer, one event not yet logged).
TODAYS_RECORD = {
    "format": 1, "status": 5, "detail": "", "schedule": None, "enabled": None, "active": "bijli-0.1.0-aaaaaaaaaaaa",
    "previous": None, "events": [{"kind": "activation_scheduled", "identifier": "bijli-0.2.0",
                                  "detail": "at 2024-06-18T02:00:00"}],
    "transfer": {"identifier": b"bijli-0.2.0".hex(), "size": 700, "block_size": 64,
                 "verified": {"name": "bijli", "version": "0.2.0", "sha256": "ab" * 32, "signature": "cd" * 64}},
    "pending": {"name": "bijli-0.2.0-abababababab", "identifier": "bijli-0.2.0",
                "activate_at": "2024-06-18T02:00:00", "armed": False, "attempts": 0},
}


def test_the_record_reads_todays_state_json_and_writes_it_back(tmp_path):
    import json
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "state.json").write_text(json.dumps(TODAYS_RECORD))
    record = load_record(tmp_path)
    assert record.status is S.ACTIVATION_INITIATED
    assert record.transfer.identifier == b"bijli-0.2.0" and record.transfer.block_count == 11
    assert record.transfer.verified.signature == bytes.fromhex("cd" * 64)
    assert record.pending.activate_at == datetime(2024, 6, 18, 2, 0) and not record.pending.armed
    assert [e.kind for e in record.events] == ["activation_scheduled"]
    assert record.to_json() == TODAYS_RECORD
    store = ImageStore(tmp_path)
    assert not store.restart_due(datetime(2024, 6, 18, 1, 59))
    assert store.restart_due(datetime(2024, 6, 18, 2, 0))
    assert load_record(tmp_path).pending.armed


@pytest.mark.parametrize("change", [{"status": 9}, {"status": "5"}, {"transfer": {"identifier": "zz"}},
                                    {"events": [{"kind": "exploded"}]}, {"pending": {"attempts": 1}}])
def test_a_record_that_does_not_read_is_an_upgrade_error(tmp_path, change):
    import json
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "state.json").write_text(json.dumps({**TODAYS_RECORD, **change}))
    with pytest.raises(UpgradeError, match="unreadable image record"):
        load_record(tmp_path)


def test_corrupt_record_is_an_upgrade_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "state.json").write_text("{not json")
    with pytest.raises(UpgradeError):
        load_record(tmp_path)
