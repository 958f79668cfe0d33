"""firmware.cosem.upgrade: the image store as the Image transfer object sees it: refusals
as ACTION results, the transfer status as class 18's, image_to_activate_info, and the
image activation schedule."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest

from bijli.dlms import axdr
from bijli.dlms.apdu import ActionResult
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.image_transfer import ImageTransferStatus
from bijli.firmware.cosem.upgrade import (ACTION_RESULTS, IMAGE_ACTIVATION_SCHEDULE, IMAGE_TRANSFER,
                                         ImageTransferBinding, upgrade_objects)
from bijli.firmware.upgrade.config import UpgradeConfig
from bijli.firmware.upgrade.errors import TransferRefusal
from bijli.firmware.upgrade.image import generate_private_key, load_private_key, parse_image, public_key_pem, sign_image
from bijli.firmware.upgrade.record import UpgradePhase
from bijli.firmware.upgrade.store import ImageStore

NOW = datetime(2024, 6, 17, 10, 0, 0)


@pytest.fixture(scope="module")
def key():
    return load_private_key(generate_private_key())


def payload() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bijli/tools/cli.py", "MARK = 1\n")
    return buf.getvalue()


def binding(tmp_path, key, **kw) -> ImageTransferBinding:
    cfg = UpgradeConfig.from_table({"public_key": public_key_pem(key), "block_size": 64, **kw})
    return ImageTransferBinding(ImageStore(tmp_path, cfg, now=lambda: NOW))


def send(b: ImageTransferBinding, image: bytes) -> None:
    b.initiate(b"bijli-0.2.0", len(image))
    for n in range(0, len(image), 64):
        b.transfer_block(n // 64, image[n:n + 64])


def test_every_refusal_has_an_action_result():
    assert set(ACTION_RESULTS) == set(TransferRefusal)
    assert ACTION_RESULTS[TransferRefusal.BUSY] is ActionResult.TEMPORARY_FAILURE
    assert ACTION_RESULTS[TransferRefusal.DISABLED] is ActionResult.READ_WRITE_DENIED


def test_the_phases_are_class_18s_transfer_statuses():
    assert {p.name: p.value for p in UpgradePhase} == {s.name: s.value for s in ImageTransferStatus}


def test_a_whole_transfer_through_the_binding(tmp_path, key):
    image = sign_image(payload(), "bijli", "0.2.0", key)
    b = binding(tmp_path, key)
    assert b.images_to_activate() == []
    send(b, image)
    assert b.transfer_status() is ImageTransferStatus.INITIATED
    b.verify()
    assert b.transfer_status() is ImageTransferStatus.VERIFICATION_SUCCESSFUL
    [info] = b.images_to_activate()
    assert (info.size, info.identification, info.signature) == (len(image), b"bijli-0.2.0",
                                                                parse_image(image).signature)
    b.activate()
    assert b.transfer_status() is ImageTransferStatus.ACTIVATION_INITIATED
    with pytest.raises(CosemError) as err:  # an activation under way: try later
        b.initiate(b"bijli-0.3.0", 100)
    assert err.value.result == ActionResult.TEMPORARY_FAILURE


def test_refusals_become_action_results(tmp_path, key):
    other = load_private_key(generate_private_key())
    b = binding(tmp_path, key)
    with pytest.raises(CosemError) as err:  # nothing to verify yet
        b.verify()
    assert err.value.result == ActionResult.OTHER_REASON
    send(b, sign_image(payload(), "bijli", "0.2.0", other))
    with pytest.raises(CosemError) as err:
        b.verify()
    assert err.value.result == ActionResult.OTHER_REASON and "bad signature" in str(err.value)
    assert b.transfer_status() is ImageTransferStatus.VERIFICATION_FAILED
    with pytest.raises(CosemError) as err:
        b.initiate(b"", 10)
    assert err.value.result == ActionResult.OTHER_REASON
    b.set_transfer_enabled(False)
    assert not b.transfer_enabled()
    with pytest.raises(CosemError) as err:
        b.initiate(b"bijli-1", 10)
    assert err.value.result == ActionResult.READ_WRITE_DENIED


def _times(*whens: datetime) -> axdr.Array:
    return axdr.Array(tuple(axdr.Structure((axdr.OctetString(axdr.CosemTime.from_time(w.time()).encode()),
                                            axdr.OctetString(axdr.CosemDate.from_date(w.date()).encode())))
                            for w in whens))


def test_the_objects_speak_for_the_store(tmp_path, key):
    store = ImageStore(tmp_path, UpgradeConfig(), now=lambda: NOW)
    transfer, schedule, _script = upgrade_objects(store)
    assert str(transfer.logical_name) == IMAGE_TRANSFER and str(schedule.logical_name) == IMAGE_ACTIVATION_SCHEDULE
    assert transfer.get(6) == axdr.Enum(int(ImageTransferStatus.NOT_INITIATED))
    with pytest.raises(CosemError) as err:  # the store's refusal, as class 18 answers it
        transfer.invoke(3, axdr.Integer(0))
    assert err.value.result == ActionResult.OTHER_REASON
    when = datetime(2024, 6, 18, 2, 0)
    schedule.set(4, _times(when))
    assert store.scheduled_activation == when
    assert ImageStore(tmp_path).scheduled_activation == when  # on disk
    assert schedule.get(4) == _times(when)
    with pytest.raises(CosemError):
        schedule.set(4, _times(when, when))
    assert store.scheduled_activation == when
    schedule.set(4, axdr.Array(()))
    assert store.scheduled_activation is None


def test_the_activation_script_the_schedule_names_runs_image_activate(tmp_path, key):
    b = binding(tmp_path, key)
    transfer, schedule, script = upgrade_objects(b.store)
    ref = schedule.get(2).value
    assert bytes(script.logical_name) == ref[0].value and ref[1] == axdr.LongUnsigned(1)
    with pytest.raises(CosemError) as err:  # nothing verified yet: the store's refusal, as image_activate's
        script.invoke(1, axdr.LongUnsigned(1))
    assert err.value.result == ActionResult.OTHER_REASON
    send(b, sign_image(payload(), "bijli", "0.2.0", key))
    b.verify()
    script.invoke(1, axdr.LongUnsigned(1))
    assert b.transfer_status() is ImageTransferStatus.ACTIVATION_INITIATED
    with pytest.raises(CosemError):
        script.invoke(1, axdr.LongUnsigned(2))  # the table holds script 1 only
