"""The on-disk image store and its state machine over the image transfer status.

:class:`ImageStore` is what the Image transfer object (IEC 62056-6-2 clause 4.4.6,
class 18) drives: it keeps the blocks of the image being received on disk under
``STATE/images/`` so a transfer survives a power cut or a restart and resumes from the
missing blocks, verifies the whole image (:func:`~.image.verify_image`), and activates
it by installing the payload beside the running build and recording it as *pending*.
Which build actually runs is the launcher's business; it reports back through
:mod:`.boot`, which moves the same machine.

The rules are one table, :data:`TRANSITIONS`: ``(phase, input) -> (action, next
phase)``. The inputs are the head-end's four methods (an initiate of the image already
being received is :attr:`TransferInput.RESUME`), what the store itself finds when it
checks a complete image, and the launcher's two verdicts on a pending image. An action
returns the new record; the phase always comes from the table, never from the action.
A pair that is not in the table is refused and changes nothing; an action that refuses
(a block of the wrong size, say) raises :class:`~.errors.TransferRefused` and changes
nothing either. Checking an image is the only step that both moves the machine and
refuses: the rejection is recorded, then reported. VERIFICATION_INITIATED exists only
inside a step (verification runs to completion within the method), so it is never
written to disk. Each step writes the record once, at its end.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from dataclasses import replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Callable

from bijli.firmware.upgrade.config import UpgradeConfig, activation_time
from bijli.firmware.upgrade.errors import TransferRefusal, TransferRefused, UpgradeError, VerificationError
from bijli.firmware.upgrade.image import SignedImage, check_member, verify_image
from bijli.firmware.upgrade.record import (MAP_FILE, PART_FILE, ImagesRecord, PendingImage, Transfer, UpgradeEvent,
                                           UpgradeEventKind, UpgradePhase, VerifiedImage, fsync_dir, images_dir,
                                           load_record, save_record)


class TransferInput(Enum):
    """What moves the store: a request, what the store finds, or what the launcher saw."""

    # the head-end (class 18 methods 1..4)
    INITIATE = "image_transfer_initiate of another image"
    RESUME = "image_transfer_initiate of the image being received"
    BLOCK = "image_block_transfer"
    VERIFY = "image_verify"
    ACTIVATE = "image_activate"
    # the store itself, within the same step
    IMAGE_VERIFIED = "the complete image verifies"
    IMAGE_REJECTED = "the complete image fails verification"
    INSTALL = "image_activate found the image verified"
    # the launcher (boot)
    IMAGE_HEALTHY = "the pending image served long enough"
    IMAGE_FAILED = "the pending image did not come up healthy"


#: the inputs a head-end sends; the others are fired by the store only.
REQUESTS = (TransferInput.INITIATE, TransferInput.RESUME, TransferInput.BLOCK, TransferInput.VERIFY,
            TransferInput.ACTIVATE)


class ImageStore:
    """The firmware side of the Image transfer object (bound to it by
    :mod:`bijli.firmware.cosem.upgrade`).

    ``now`` gives meter time (for scheduled activation); ``running_image`` names the
    installed image this process runs from (None: the base build), as the launcher says.
    Refusals are :class:`~.errors.TransferRefused`.
    """

    def __init__(self, state_dir: "str | Path", config: UpgradeConfig | None = None, *,
                 now: Callable[[], datetime] | None = None, running_image: str | None = None,
                 durable: bool = True):
        self.state_dir = Path(state_dir)
        self.dir = images_dir(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = config or UpgradeConfig()
        self._now = now
        self.running_image = running_image or None
        self.durable = durable
        self.record = load_record(state_dir)
        self._map = self._read_map()
        self._discard: list[Path] = []  # what a step's record no longer needs, removed once it is written

    # --- persistence ----------------------------------------------------------------------
    def _reload(self) -> ImagesRecord:
        """The record as on disk: the launcher, mark_healthy or another store may have written it."""
        self.record = load_record(self.state_dir)
        return self.record

    def _commit(self, record: ImagesRecord) -> None:
        if record != self.record:
            save_record(self.state_dir, record)
            self.record = record
        for path in self._discard:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._discard.clear()

    def _read_map(self) -> bytearray:
        t = self.record.transfer
        if not t:
            return bytearray()
        count = t.block_count
        try:
            raw = (self.dir / MAP_FILE).read_bytes()
        except OSError:
            raw = b""
        return bytearray(raw[:count].ljust(count, b"\0"))

    def reload(self) -> None:
        self._reload()
        self._map = self._read_map()

    # --- what the attributes show -----------------------------------------------------------
    @property
    def transfer(self) -> Transfer | None:
        return self.record.transfer

    @property
    def detail(self) -> str:
        """Why the last verification or activation failed ("" when it did not)."""
        return self.record.detail

    @property
    def image_block_size(self) -> int:
        return self.config.block_size

    def transferred_blocks(self) -> str:
        return "".join("1" if b else "0" for b in self._map)

    def missing_blocks(self) -> list[int]:
        return [n for n, b in enumerate(self._map) if not b]

    def first_not_transferred_block(self) -> int:
        for n, b in enumerate(self._map):
            if not b:
                return n
        return len(self._map)

    def transfer_enabled(self) -> bool:
        enabled = self._reload().enabled
        return self.config.enabled if enabled is None else enabled

    def set_transfer_enabled(self, enabled: bool) -> None:
        self._commit(replace(self._reload(), enabled=bool(enabled)))

    def transfer_status(self) -> UpgradePhase:
        return self._reload().status

    # --- the schedule (image activation single action schedule, 0.0.15.0.2.255) -------------
    @property
    def scheduled_activation(self) -> datetime | None:
        return self.record.schedule

    def set_scheduled_activation(self, when: datetime | None) -> None:
        self._commit(replace(self._reload(), schedule=when.replace(tzinfo=None) if when else None))

    # --- the machine ----------------------------------------------------------------------
    def _fire(self, record: ImagesRecord, event: TransferInput, *args) -> ImagesRecord:
        entry = TRANSITIONS.get((record.status, event))
        if entry is None:
            busy = record.status is UpgradePhase.ACTIVATION_INITIATED
            raise TransferRefused(TransferRefusal.BUSY if busy else TransferRefusal.NOT_NOW,
                                  f"{event.name.lower()} not allowed while {record.status.name.lower()}")
        action, next_phase = entry
        return replace(action(self, record, *args), status=next_phase)

    def _step(self, request: TransferInput, *args) -> None:
        """One request, run to its end: the table's move, the check of a complete image
        when the move leads into verification, and the record written once."""
        self._discard.clear()
        record = self._fire(self._reload(), request, *args)
        rejected: UpgradeError | None = None
        if record.status is UpgradePhase.VERIFICATION_INITIATED:
            try:
                image = self._check(record.transfer)
            except UpgradeError as exc:
                record, rejected = self._fire(record, TransferInput.IMAGE_REJECTED, exc), exc
            else:
                record = self._fire(record, TransferInput.IMAGE_VERIFIED, image)
                if request is TransferInput.ACTIVATE:
                    record = self._fire(record, TransferInput.INSTALL, image)
        self._commit(record)
        if rejected is not None:
            raise TransferRefused(TransferRefusal.REJECTED, f"verification failed: {rejected}") from None

    def initiate(self, identifier: bytes, size: int) -> None:
        t = self._reload().transfer
        same = t is not None and t.is_for(identifier, size, self.config.block_size)
        self._step(TransferInput.RESUME if same else TransferInput.INITIATE, identifier, size)

    def transfer_block(self, number: int, value: bytes) -> None:
        self._step(TransferInput.BLOCK, number, value)

    def verify(self) -> None:
        self._step(TransferInput.VERIFY)

    def activate(self) -> None:
        self._step(TransferInput.ACTIVATE)

    # --- for the launcher (through .boot) ------------------------------------------------------
    def finish_activation(self, healthy: bool, detail: str = "") -> None:
        """The launcher's verdict on the pending image: it served long enough (``healthy``),
        or it did not come up (``detail`` says how)."""
        self._discard.clear()
        record = self._reload()
        if healthy:
            record = self._fire(record, TransferInput.IMAGE_HEALTHY)
        else:
            record = self._fire(record, TransferInput.IMAGE_FAILED, detail)
        self._commit(record)

    # --- actions: each returns the new record; the table gives the phase ---------------------
    def _keep(self, record: ImagesRecord, *_args) -> ImagesRecord:
        return record

    def _keep_receiving(self, record: ImagesRecord, *_args) -> ImagesRecord:
        # the same image again: keep what arrived, the head-end sends what is missing
        self._refuse_if_disabled(record)
        return record

    def _refuse_if_disabled(self, record: ImagesRecord) -> None:
        enabled = self.config.enabled if record.enabled is None else record.enabled
        if not enabled:
            raise TransferRefused(TransferRefusal.DISABLED, "image transfer is disabled")

    def _start(self, record: ImagesRecord, identifier: bytes, size: int) -> ImagesRecord:
        self._refuse_if_disabled(record)
        if not 0 < size <= self.config.max_image_size:
            raise TransferRefused(TransferRefusal.BAD_REQUEST,
                                  f"image size {size} outside 1..{self.config.max_image_size}")
        if not identifier or len(identifier) > 128:
            raise TransferRefused(TransferRefusal.BAD_REQUEST, "image identifier must be 1..128 octets")
        transfer = Transfer(identifier, size, self.config.block_size)
        for name in (PART_FILE, MAP_FILE):
            (self.dir / name).unlink(missing_ok=True)
        with open(self.dir / PART_FILE, "wb") as f:
            f.truncate(size)
        (self.dir / MAP_FILE).write_bytes(bytes(transfer.block_count))
        self._map = bytearray(transfer.block_count)
        return replace(record, transfer=transfer, detail="")

    def _store_block(self, record: ImagesRecord, number: int, value: bytes) -> ImagesRecord:
        self._refuse_if_disabled(record)
        t = record.transfer
        assert t is not None
        count = len(self._map)
        if number >= count:
            raise TransferRefused(TransferRefusal.BAD_REQUEST, f"block {number} beyond the last block {count - 1}")
        expected = min(t.block_size, t.size - number * t.block_size)
        if len(value) != expected:
            raise TransferRefused(TransferRefusal.BAD_REQUEST,
                                  f"block {number} is {len(value)} octets, expected {expected}")
        fd = os.open(self.dir / PART_FILE, os.O_WRONLY)
        try:
            os.pwrite(fd, value, number * t.block_size)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        # the block's octets are on disk before its bit: a marked block is never a hole
        fd = os.open(self.dir / MAP_FILE, os.O_WRONLY)
        try:
            os.pwrite(fd, b"\x01", number)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._map[number] = 1
        return record

    def _await_check(self, record: ImagesRecord) -> ImagesRecord:
        missing = self.missing_blocks()
        if missing:
            raise TransferRefused(TransferRefusal.INCOMPLETE, f"{len(missing)} blocks missing, first {missing[0]}")
        return record

    def _check(self, t: Transfer | None) -> SignedImage:
        """The received image, verified (not an action: what it finds is the next input)."""
        assert t is not None
        data = (self.dir / PART_FILE).read_bytes()
        if len(data) != t.size:
            raise VerificationError(f"image is {len(data)} octets, {t.size} were announced")
        return verify_image(data, self.config.key, identifier=t.identifier)

    def _keep_verified(self, record: ImagesRecord, image: SignedImage) -> ImagesRecord:
        h = image.header
        verified = VerifiedImage(h.name, h.version, h.payload_sha256, image.signature)
        return replace(record, transfer=replace(record.transfer, verified=verified), detail="")

    def _note_rejection(self, record: ImagesRecord, exc: UpgradeError) -> ImagesRecord:
        ident = record.transfer.identifier.decode("utf-8", "replace") if record.transfer else ""
        return replace(record, detail=str(exc)).with_event(UpgradeEventKind.VERIFICATION_FAILED, ident, str(exc))

    def _install(self, record: ImagesRecord, image: SignedImage) -> ImagesRecord:
        if record.pending:
            raise TransferRefused(TransferRefusal.BUSY, "another image is waiting to be activated")
        h = image.header
        name = f"{h.name}-{h.version}-{h.payload_sha256.hex()[:12]}"
        _extract(image.payload, self.dir / name)
        now = self._now() if self._now else None
        at = activation_time(self.config, now, record.schedule) if now else None
        pending = PendingImage(name, h.identifier.decode("utf-8"), at,
                               armed=at is None or (now is not None and at <= now), attempts=0)
        record = replace(record, pending=pending, schedule=None, detail="")
        if at and now and at > now:
            ident = record.transfer.identifier.decode("utf-8", "replace") if record.transfer else ""
            record = record.with_event(UpgradeEventKind.ACTIVATION_SCHEDULED, ident, f"at {at.isoformat()}")
        # the transfer octets are installed now; the record (size, map) stays for the attributes
        self._discard.append(self.dir / PART_FILE)
        return record

    def _promote(self, record: ImagesRecord) -> ImagesRecord:
        p = record.pending
        assert p is not None
        old_previous = record.previous
        record = replace(record, previous=record.active, active=p.name, pending=None, detail="")
        record = record.with_event(UpgradeEventKind.ACTIVATED, p.identifier, f"after {p.attempts} start(s)")
        if old_previous and old_previous not in (record.active, record.previous):
            self._discard.append(self.dir / old_previous)
        return record

    def _roll_back(self, record: ImagesRecord, detail: str) -> ImagesRecord:
        p = record.pending
        assert p is not None
        record = replace(record, pending=None, detail=detail).with_event(
            UpgradeEventKind.ACTIVATION_FAILED, p.identifier, detail)
        if p.name and p.name not in (record.active, record.previous):
            self._discard.append(self.dir / p.name)
        return record

    # --- for the meter ----------------------------------------------------------------------
    def restart_due(self, now: datetime) -> bool:
        """True when the meter should stop and restart through the launcher into the pending
        image: its activation time has come and this process does not already run it."""
        p = self.record.pending
        if not p or p.name == self.running_image:
            return False
        if not p.armed:
            record = self._reload()
            p = record.pending
            if not p:
                return False
            if p.activate_at and p.activate_at > now:
                return False
            self._commit(replace(record, pending=replace(p, armed=True)))
        return True

    def take_events(self) -> list[UpgradeEvent]:
        """Events not yet logged by the meter (each returned once)."""
        record = self._reload()  # the launcher may have added some
        if record.events:
            self._commit(replace(record, events=()))
        return list(record.events)


def _extract(payload: bytes, target: Path) -> None:
    """Unpack ``payload`` into ``target`` atomically (a temporary directory, then a rename)."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(payload)) as z:
        for member in z.namelist():
            check_member(member)
        z.extractall(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


P, I, _S = UpgradePhase, TransferInput, ImageStore
#: (phase, input) -> (action, next phase). A pair not listed is refused and changes nothing.
TRANSITIONS: dict[tuple[UpgradePhase, TransferInput], tuple[Callable[..., ImagesRecord], UpgradePhase]] = {
    (P.NOT_INITIATED, I.INITIATE): (_S._start, P.INITIATED),
    (P.INITIATED, I.INITIATE): (_S._start, P.INITIATED),
    (P.INITIATED, I.RESUME): (_S._keep_receiving, P.INITIATED),
    (P.INITIATED, I.BLOCK): (_S._store_block, P.INITIATED),
    (P.INITIATED, I.VERIFY): (_S._await_check, P.VERIFICATION_INITIATED),
    # activating an unverified image verifies it first (IEC 62056-6-2 image_activate)
    (P.INITIATED, I.ACTIVATE): (_S._await_check, P.VERIFICATION_INITIATED),
    (P.VERIFICATION_INITIATED, I.IMAGE_VERIFIED): (_S._keep_verified, P.VERIFICATION_SUCCESSFUL),
    (P.VERIFICATION_INITIATED, I.IMAGE_REJECTED): (_S._note_rejection, P.VERIFICATION_FAILED),
    (P.VERIFICATION_SUCCESSFUL, I.INITIATE): (_S._start, P.INITIATED),
    (P.VERIFICATION_SUCCESSFUL, I.RESUME): (_S._start, P.INITIATED),  # received whole: a new transfer
    (P.VERIFICATION_SUCCESSFUL, I.VERIFY): (_S._keep, P.VERIFICATION_SUCCESSFUL),
    # verified earlier, maybe before a restart: the octets on disk are checked again
    (P.VERIFICATION_SUCCESSFUL, I.ACTIVATE): (_S._await_check, P.VERIFICATION_INITIATED),
    (P.VERIFICATION_SUCCESSFUL, I.INSTALL): (_S._install, P.ACTIVATION_INITIATED),
    (P.VERIFICATION_FAILED, I.INITIATE): (_S._start, P.INITIATED),
    (P.VERIFICATION_FAILED, I.RESUME): (_S._start, P.INITIATED),
    (P.ACTIVATION_INITIATED, I.ACTIVATE): (_S._keep, P.ACTIVATION_INITIATED),
    (P.ACTIVATION_INITIATED, I.IMAGE_HEALTHY): (_S._promote, P.ACTIVATION_SUCCESSFUL),
    (P.ACTIVATION_INITIATED, I.IMAGE_FAILED): (_S._roll_back, P.ACTIVATION_FAILED),
    (P.ACTIVATION_SUCCESSFUL, I.INITIATE): (_S._start, P.INITIATED),
    (P.ACTIVATION_SUCCESSFUL, I.RESUME): (_S._start, P.INITIATED),
    (P.ACTIVATION_FAILED, I.INITIATE): (_S._start, P.INITIATED),
    (P.ACTIVATION_FAILED, I.RESUME): (_S._start, P.INITIATED),
}
del P, I, _S


__all__ = ["REQUESTS", "TRANSITIONS", "ImageStore", "TransferInput"]
