"""The firmware upgrade as COSEM objects: Image transfer and the image activation schedule.

:func:`upgrade_objects` binds the image store (:mod:`bijli.firmware.upgrade.store`) to
the Image transfer object 0.0.44.0.0.255 (IEC 62056-6-2 clause 4.4.6, interface class
18) through :class:`ImageTransferBinding`, and publishes the image activation single
action schedule 0.0.15.0.2.255 (class 22) whose execution_time, written by the
head-end, says when the next activated image takes over, and the image activation
script table 0.0.10.0.107.255 that schedule names: its script 1 is image_activate
(method 4) of the Image transfer object, run through the object's own hook, so the
schedule's reference resolves and a head-end may execute it. Here, and only here, a
refusal of the store becomes a COSEM result: :data:`ACTION_RESULTS` maps each
:class:`~bijli.firmware.upgrade.errors.TransferRefusal` to the ACTION result class 18
answers with, and the store's transfer status is published as class 18's
``image_transfer_status``.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

from bijli.dlms.apdu import ActionResult, DataAccessResult
from bijli.dlms.axdr import CosemDate, CosemTime
from bijli.dlms import axdr
from bijli.dlms.cosem.base import Context, CosemError
from bijli.dlms.cosem.image_transfer import ImageToActivateInfo, ImageTransfer, ImageTransferStatus
from bijli.dlms.cosem.schedule import (ActionSpecification, ExecutionTime, Script, ScriptTable, ServiceId,
                                       SingleActionSchedule)
from bijli.dlms.cosem.values import ScriptReference
from bijli.dlms.obis import Obis
from bijli.firmware.upgrade.errors import TransferRefusal, TransferRefused, UpgradeError
from bijli.firmware.upgrade.store import ImageStore

IMAGE_TRANSFER = "0.0.44.0.0.255"
#: the image activation single action schedule and the script it runs (IEC 62056-6-1 OBIS)
IMAGE_ACTIVATION_SCHEDULE = "0.0.15.0.2.255"
IMAGE_ACTIVATION_SCRIPT = "0.0.10.0.107.255"
IMAGE_ACTIVATE_METHOD = 4  # class 18 method 4, image_activate

#: how each refusal of the store is answered to image_transfer_initiate, _block_transfer,
#: _verify and _activate.
ACTION_RESULTS: dict[TransferRefusal, ActionResult] = {
    TransferRefusal.NOT_NOW: ActionResult.OTHER_REASON,
    TransferRefusal.BUSY: ActionResult.TEMPORARY_FAILURE,  # an activation under way ends by itself
    TransferRefusal.DISABLED: ActionResult.READ_WRITE_DENIED,
    TransferRefusal.BAD_REQUEST: ActionResult.OTHER_REASON,
    TransferRefusal.INCOMPLETE: ActionResult.OTHER_REASON,
    TransferRefusal.REJECTED: ActionResult.OTHER_REASON,
}


@contextmanager
def _as_action_result():
    """Run a store method; a refusal becomes the CosemError carrying its ACTION result."""
    try:
        yield
    except TransferRefused as exc:
        raise CosemError(ACTION_RESULTS[exc.reason], str(exc)) from None
    except UpgradeError as exc:  # e.g. an image record that cannot be read
        raise CosemError(ActionResult.OTHER_REASON, str(exc)) from None


class ImageTransferBinding:
    """The :class:`~bijli.dlms.cosem.image_transfer.ImageTransferStore` the Image transfer
    object calls: the firmware's :class:`ImageStore`, in COSEM terms."""

    def __init__(self, store: ImageStore):
        self.store = store

    @property
    def image_block_size(self) -> int:
        return self.store.image_block_size

    def transferred_blocks(self) -> str:
        return self.store.transferred_blocks()

    def first_not_transferred_block(self) -> int:
        return self.store.first_not_transferred_block()

    def transfer_enabled(self) -> bool:
        return self.store.transfer_enabled()

    def set_transfer_enabled(self, enabled: bool) -> None:
        self.store.set_transfer_enabled(enabled)

    def transfer_status(self) -> ImageTransferStatus:
        return ImageTransferStatus(int(self.store.transfer_status()))

    def images_to_activate(self) -> list[ImageToActivateInfo]:
        t = self.store.transfer
        if t is None or t.verified is None:
            return []
        return [ImageToActivateInfo(t.size, t.identifier, t.verified.signature)]

    def initiate(self, identifier: bytes, size: int) -> None:
        with _as_action_result():
            self.store.initiate(identifier, size)

    def transfer_block(self, number: int, value: bytes) -> None:
        with _as_action_result():
            self.store.transfer_block(number, value)

    def verify(self) -> None:
        with _as_action_result():
            self.store.verify()

    def activate(self) -> None:
        with _as_action_result():
            self.store.activate()


def upgrade_objects(store: ImageStore) -> list:
    """The Image transfer object (0.0.44.0.0.255) bound to ``store``, the image
    activation Single action schedule (0.0.15.0.2.255) whose execution_time, written by
    the head-end, says when the next activated image takes over, and the script table
    (0.0.10.0.107.255) it runs."""

    def execution_time() -> list:
        when = store.scheduled_activation
        return [ExecutionTime(CosemTime.from_time(when.time()), CosemDate.from_date(when.date()))] if when else []

    def set_execution_time(times: list) -> None:
        if not times:
            store.set_scheduled_activation(None)
            return
        if len(times) != 1:
            raise CosemError(DataAccessResult.OTHER_REASON, "one image activation time, not several")
        try:
            when = datetime.combine(times[0].date.to_date(), times[0].time.to_time())
        except Exception as exc:  # wildcards: an image is activated once, at one time
            raise CosemError(DataAccessResult.OTHER_REASON,
                             f"activation time must be a full date and time: {exc}") from None
        store.set_scheduled_activation(when)

    transfer = ImageTransfer(IMAGE_TRANSFER, ImageTransferBinding(store))
    activate = ActionSpecification(ServiceId.EXECUTE_SPECIFIC_METHOD, ImageTransfer.CLASS_ID,
                                   Obis.parse(IMAGE_TRANSFER), IMAGE_ACTIVATE_METHOD, axdr.Integer(0))

    def execute(identifier: int) -> None:
        if identifier != 1:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"no script {identifier} in {IMAGE_ACTIVATION_SCRIPT}")
        transfer.invoke(activate.index, activate.parameter, Context(0))

    return [
        transfer,
        SingleActionSchedule(IMAGE_ACTIVATION_SCHEDULE,
                             executed_script=ScriptReference(Obis.parse(IMAGE_ACTIVATION_SCRIPT), 1), type=1,
                             execution_time=execution_time, set_execution_time=set_execution_time),
        ScriptTable(IMAGE_ACTIVATION_SCRIPT, scripts=lambda: (Script(1, (activate,)),), on_execute=execute),
    ]


__all__ = ["ACTION_RESULTS", "IMAGE_ACTIVATION_SCHEDULE", "IMAGE_ACTIVATION_SCRIPT", "IMAGE_TRANSFER",
           "ImageTransferBinding", "upgrade_objects"]
