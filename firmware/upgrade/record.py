"""The images record, ``STATE/images/state.json``, as typed frozen values.

One record says where the image transfer stands (:class:`UpgradePhase`, the numbers
of IEC 62056-6-2 class 18 attribute 6 ``image_transfer_status``), what is being
received (:class:`Transfer`), which installed images the launcher may run (active,
previous, :class:`PendingImage`) and which :class:`UpgradeEvent` the meter has still
to log. The store (:mod:`.store`) and the launcher's bookkeeping (:mod:`.boot`) both
read it with :func:`load_record` and replace it whole with :func:`save_record`
(write, fsync, rename, fsync the directory), so a power cut leaves the old record or
the new one, never half of one. The JSON layout is the one bijli has always written;
a record missing a key reads that key's default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, Mapping

from bijli.firmware.upgrade.errors import UpgradeError

IMAGES_DIR = "images"
STATE_FILE = "state.json"
PART_FILE = "transfer.part"
MAP_FILE = "transfer.map"
RECORD_FORMAT = 1


class UpgradePhase(IntEnum):
    """Where the image transfer stands; the values are class 18's image_transfer_status
    (the wing publishes them as such), and state.json stores them as these numbers."""

    NOT_INITIATED = 0
    INITIATED = 1
    VERIFICATION_INITIATED = 2  # only inside a step: verification runs to completion there
    VERIFICATION_SUCCESSFUL = 3
    VERIFICATION_FAILED = 4
    ACTIVATION_INITIATED = 5
    ACTIVATION_SUCCESSFUL = 6
    ACTIVATION_FAILED = 7


class UpgradeEventKind(StrEnum):
    """What the meter puts in its event log for an upgrade (as stored in state.json)."""

    VERIFICATION_FAILED = "verification_failed"
    ACTIVATION_SCHEDULED = "activation_scheduled"
    ACTIVATED = "activated"
    ACTIVATION_FAILED = "activation_failed"


@dataclass(frozen=True)
class UpgradeEvent:
    """Something the meter should put in its event log."""

    kind: UpgradeEventKind
    identifier: str
    detail: str = ""


@dataclass(frozen=True)
class VerifiedImage:
    """What a successful verification found in the received image."""

    name: str
    version: str
    sha256: bytes
    signature: bytes


@dataclass(frozen=True)
class Transfer:
    """The image being received: as announced by image_transfer_initiate, and, once it
    verified, what verification found."""

    identifier: bytes
    size: int
    block_size: int
    verified: VerifiedImage | None = None

    @property
    def block_count(self) -> int:
        return (self.size + self.block_size - 1) // self.block_size

    def is_for(self, identifier: bytes, size: int, block_size: int) -> bool:
        """True when an initiate with these values announces this very transfer again."""
        return (self.identifier, self.size, self.block_size) == (identifier, size, block_size)


@dataclass(frozen=True)
class PendingImage:
    """An installed image waiting to take over. ``armed``: its activation time has come,
    so the launcher may start it; ``attempts``: starts it has had."""

    name: str
    identifier: str
    activate_at: datetime | None = None
    armed: bool = True
    attempts: int = 0


@dataclass(frozen=True)
class ImagesRecord:
    """Everything ``state.json`` holds. ``enabled`` None: as the ``[upgrade]`` table says;
    ``schedule``: the activation time the head-end wrote, if any."""

    transfer: Transfer | None = None
    status: UpgradePhase = UpgradePhase.NOT_INITIATED
    detail: str = ""
    schedule: datetime | None = None
    enabled: bool | None = None
    active: str | None = None
    previous: str | None = None
    pending: PendingImage | None = None
    events: tuple[UpgradeEvent, ...] = ()

    def with_event(self, kind: UpgradeEventKind, identifier: str, detail: str) -> "ImagesRecord":
        return replace(self, events=self.events + (UpgradeEvent(kind, identifier, detail),))

    # --- the JSON layout --------------------------------------------------------------------
    def to_json(self) -> dict:
        t, p = self.transfer, self.pending
        return {
            "format": RECORD_FORMAT,
            "transfer": None if t is None else {
                "identifier": t.identifier.hex(), "size": t.size, "block_size": t.block_size,
                "verified": None if t.verified is None else {
                    "name": t.verified.name, "version": t.verified.version,
                    "sha256": t.verified.sha256.hex(), "signature": t.verified.signature.hex()},
            },
            "status": int(self.status),
            "detail": self.detail,
            "schedule": _iso(self.schedule),
            "enabled": self.enabled,
            "active": self.active,
            "previous": self.previous,
            "pending": None if p is None else {
                "name": p.name, "identifier": p.identifier, "activate_at": _iso(p.activate_at),
                "armed": p.armed, "attempts": p.attempts},
            "events": [{"kind": str(e.kind), "identifier": e.identifier, "detail": e.detail} for e in self.events],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ImagesRecord":
        """The record ``data`` (as :meth:`to_json` writes it) describes. Raises ValueError,
        TypeError, KeyError or AttributeError on a record it cannot read."""
        t, p = data.get("transfer"), data.get("pending")
        v = t.get("verified") if t else None
        return cls(
            transfer=None if not t else Transfer(
                bytes.fromhex(t["identifier"]), _int(t["size"]), _int(t["block_size"]),
                None if not v else VerifiedImage(v["name"], v["version"], bytes.fromhex(v["sha256"]),
                                                 bytes.fromhex(v["signature"]))),
            status=UpgradePhase(_int(data.get("status", 0))),
            detail=str(data.get("detail") or ""),
            schedule=_datetime(data.get("schedule")),
            enabled=None if data.get("enabled") is None else bool(data["enabled"]),
            active=data.get("active") or None,
            previous=data.get("previous") or None,
            pending=None if not p else PendingImage(p["name"], p.get("identifier", ""),
                                                    _datetime(p.get("activate_at")), bool(p.get("armed")),
                                                    _int(p.get("attempts", 0))),
            events=tuple(UpgradeEvent(UpgradeEventKind(e["kind"]), e.get("identifier", ""), e.get("detail", ""))
                         for e in data.get("events", [])),
        )


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _datetime(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected a whole number, not {value!r}")
    return value


def images_dir(state_dir: "str | Path") -> Path:
    return Path(state_dir) / IMAGES_DIR


def load_record(state_dir: "str | Path") -> ImagesRecord:
    """The images record (an empty one when there is none). Raises UpgradeError when the
    file is there but cannot be read as a record."""
    path = images_dir(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ImagesRecord()
    except (OSError, ValueError) as exc:
        raise UpgradeError(f"{path}: unreadable image record: {exc}") from None
    if not isinstance(data, dict):
        return ImagesRecord()
    try:
        return ImagesRecord.from_json(data)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise UpgradeError(f"{path}: unreadable image record: {exc!r}") from None


def save_record(state_dir: "str | Path", record: ImagesRecord) -> None:
    """Atomically replace the images record (write, fsync, rename, fsync the directory)."""
    d = images_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (STATE_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record.to_json(), f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, d / STATE_FILE)
    fsync_dir(d)


def fsync_dir(d: Path) -> None:
    """Make a rename in ``d`` durable (best effort: not every file system lets a directory be synced)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "IMAGES_DIR", "MAP_FILE", "PART_FILE", "STATE_FILE", "ImagesRecord", "PendingImage", "Transfer",
    "UpgradeEvent", "UpgradeEventKind", "UpgradePhase", "VerifiedImage", "fsync_dir", "images_dir",
    "load_record", "save_record",
]
