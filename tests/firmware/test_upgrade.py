"""firmware.upgrade: the signed container, the [upgrade] table, the on-disk image store and
its status table, and the start/promote/fail record the launcher keeps."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.apdu import ActionResult
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.image_transfer import ImageTransferStatus as S
from bijli.firmware.errors import ConfigError
from bijli.firmware.upgrade import (TRANSITIONS, ImageFormatError, ImageStore, SignatureAlgorithm, Trigger, UpgradeConfig,
                              UpgradeError, VerificationError, activation_time, algorithm_of, generate_private_key, load_private_key,
                              load_public_key, load_state, parse_image, plan_start, promote, public_key_pem,
                              sign_image, verify_image)

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
    info = store.images_to_activate()[0]
    assert (info.size, info.identification) == (len(image), b"bijli-0.2.0")
    assert info.signature == parse_image(image).signature
    store.activate()
    assert store.transfer_status() == S.ACTIVATION_INITIATED
    pending = load_state(tmp_path)["pending"]
    assert (tmp_path / "images" / pending["name"] / "bijli" / "tools" / "cli.py").read_text() == "MARK = 'ok'\n"
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
    with pytest.raises(CosemError):
        again.verify()  # incomplete: refused, and the transfer goes on
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
    with pytest.raises(CosemError) as err:
        store.verify()
    assert err.value.result == ActionResult.OTHER_REASON
    assert store.transfer_status() == S.VERIFICATION_FAILED
    assert "bad signature" in store.detail
    with pytest.raises(CosemError):
        store.activate()
    assert [e.kind for e in store.take_events()] == ["verification_failed"]
    assert store.take_events() == []
    assert not [p for p in (tmp_path / "images").iterdir() if p.is_dir()]


@pytest.mark.parametrize("number,value", [(4, b"x"), (3, b"x" * 64), (0, b"x" * 63), (0, b"x" * 65)])
def test_blocks_of_the_wrong_size_or_number_are_refused(tmp_path, number, value):
    store = ImageStore(tmp_path, UpgradeConfig(block_size=64))
    store.initiate(b"bijli-1", 200)  # blocks 0..2 of 64, block 3 of 8
    with pytest.raises(CosemError):
        store.transfer_block(number, value)
    assert store.transferred_blocks() == "0000"


def test_disabled_transfer_refuses_initiate(tmp_path):
    store = ImageStore(tmp_path, UpgradeConfig())
    store.set_transfer_enabled(False)
    with pytest.raises(CosemError) as err:
        store.initiate(b"bijli-1", 10)
    assert err.value.result == ActionResult.READ_WRITE_DENIED


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
    assert plan_start(tmp_path, 2).image == load_state(tmp_path)["pending"]["name"]


# --- the status table: every (status, trigger) pair ----------------------------------------------


@pytest.fixture(scope="module")
def good_image(ed_key):
    return sign_image(payload(), "bijli", "0.2.0", ed_key)


def store_in(tmp_path, status: S, key, image: bytes) -> ImageStore:
    """A store brought to ``status`` by the real path (not by writing the record)."""
    store = ImageStore(tmp_path, config_for(key), now=lambda: NOW)
    if status == S.NOT_INITIATED:
        return store
    bad = status == S.VERIFICATION_FAILED
    data = image[:-1] + bytes((image[-1] ^ 1,)) if bad else image
    store.initiate(b"bijli-0.2.0", len(data))
    if status == S.INITIATED:
        return store
    send_all(store, data)
    try:
        store.verify()
    except CosemError:
        pass
    if status in (S.VERIFICATION_SUCCESSFUL, S.VERIFICATION_FAILED):
        return store
    store.activate()
    if status == S.ACTIVATION_INITIATED:
        return store
    name = load_state(tmp_path)["pending"]["name"]
    if status == S.ACTIVATION_SUCCESSFUL:
        assert promote(tmp_path, name)
    else:
        plan_start(tmp_path, 0)  # no attempts: fails at once
    return store


REACHABLE = [s for s in S if s != S.VERIFICATION_INITIATED]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(REACHABLE), st.sampled_from(list(Trigger)))
def test_every_status_trigger_pair(tmp_path_factory, ed_key, good_image, status, trigger):
    tmp = tmp_path_factory.mktemp("pair")
    store = store_in(tmp, status, ed_key, good_image)
    assert store.transfer_status() == status
    args = {Trigger.INITIATE: (b"bijli-0.2.0", len(good_image)), Trigger.BLOCK: (0, good_image[:64]),
            Trigger.VERIFY: (), Trigger.ACTIVATE: ()}[trigger]
    call = {Trigger.INITIATE: store.initiate, Trigger.BLOCK: store.transfer_block, Trigger.VERIFY: store.verify,
            Trigger.ACTIVATE: store.activate}[trigger]
    entry = TRANSITIONS.get((status, trigger))
    if entry is None:
        with pytest.raises(CosemError):
            call(*args)
        assert store.transfer_status() == status
    else:
        try:
            call(*args)
        except CosemError:
            pass
        assert store.transfer_status() in entry[1]


def test_every_transition_names_an_action():
    for (status, trigger), (action, nexts) in TRANSITIONS.items():
        assert hasattr(ImageStore, f"_do_{action}"), action
        assert nexts <= set(S)


# --- start attempts, promotion, rollback ---------------------------------------------------------


def test_pending_image_gets_its_attempts_then_rolls_back(tmp_path, ed_key, good_image):
    store_in(tmp_path, S.ACTIVATION_INITIATED, ed_key, good_image)
    name = load_state(tmp_path)["pending"]["name"]
    assert plan_start(tmp_path, 2).image == name
    assert plan_start(tmp_path, 2).image == name
    third = plan_start(tmp_path, 2)
    assert third.image is None and "did not come up healthy" in third.note
    state = load_state(tmp_path)
    assert state["status"] == S.ACTIVATION_FAILED and state["pending"] is None
    assert not (tmp_path / "images" / name).exists()
    events = ImageStore(tmp_path).take_events()
    assert [e.kind for e in events] == ["activation_failed"] and events[0].identifier == "bijli-0.2.0"


def test_healthy_image_is_promoted_and_the_previous_kept(tmp_path, ed_key, good_image):
    store_in(tmp_path, S.ACTIVATION_INITIATED, ed_key, good_image)
    name = load_state(tmp_path)["pending"]["name"]
    assert not promote(tmp_path, None)  # the base build is not the pending image
    assert plan_start(tmp_path, 2).image == name
    assert promote(tmp_path, name)
    state = load_state(tmp_path)
    assert (state["active"], state["previous"], state["status"]) == (name, None, S.ACTIVATION_SUCCESSFUL)
    assert plan_start(tmp_path, 2).image == name  # from now on every start runs it
    assert ImageStore(tmp_path, running_image=name).restart_due(NOW) is False


def test_corrupt_record_is_an_upgrade_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "state.json").write_text("{not json")
    with pytest.raises(UpgradeError):
        load_state(tmp_path)
