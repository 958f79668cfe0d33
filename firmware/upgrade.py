"""Firmware upgrade, the meter's side: receive an image in blocks, verify it, activate it.

This is the logic behind the Image transfer object (IEC 62056-6-2 clause 4.4.6,
class 18, :mod:`dlms.cosem.image_transfer`): an :class:`ImageStore` keeps the
blocks of the image being received on disk under ``STATE/images/`` so a
transfer survives a power cut or a restart and resumes from the missing
blocks, verifies the whole image (size, SHA-256, and an Ed25519 or ECDSA P-256
signature by the key in the ``[upgrade]`` config table), and activates it by
installing the payload beside the running build and recording it as
*pending*. Which build actually runs is the launcher's business
(``tools.node.launcher``); it tells this module what happened through
:func:`record_start`, :func:`promote` and :func:`fail_pending`. Time is
passed in (``now``): the firmware never reads the clock.

Signed image container, format 1 (integers big-endian)::

    offset  size  field
    0       4     magic "BJLI"
    4       1     format version (1)
    5       1     signature algorithm: 1 Ed25519, 2 ECDSA P-256 with SHA-256 (DER signature)
    6       1     payload kind: 1 wheel, 2 zip
    7       1     name length N (1..64)
    8       N     payload name, UTF-8 (e.g. "bijli")
    8+N     1     version length V (1..64)
    9+N     V     version, UTF-8 (e.g. "0.2.0")
    9+N+V   8     payload length L
    17+N+V  32    SHA-256 of the payload
    49+N+V        -- end of the signed header --
    49+N+V  2     signature length S (1..255)
    51+N+V  S     signature over the signed header (octets 0 .. 48+N+V)
    51+N+V+S L    payload: a pure-Python wheel or zip of a bijli build

The signature covers every header field, and through the SHA-256 in the header
the payload, without hashing the payload twice. The DLMS image_identifier of a
transfer is ``NAME-VERSION`` (``b"bijli-0.2.0"``) and must match the header.

Files under ``STATE/images/``: ``state.json`` (the transfer record and the
image slots: active, previous, pending; written atomically), ``transfer.part``
(the image octets received so far) and ``transfer.map`` (one octet per block,
1 = received; written after the block's octets are on disk, so a block marked
received is never a hole), and one directory per installed image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, time as dtime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable

import construct
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bijli.dlms.apdu import ActionResult
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.image_transfer import ImageToActivateInfo, ImageTransferStatus
from bijli.firmware.config import Table
from bijli.firmware.errors import ConfigError, FirmwareError

MAGIC = b"BJLI"
FORMAT_VERSION = 1

# The container, as its figure reads: the signature covers HEADER's octets (the payload
# through its SHA-256); SIGNATURE and the payload follow.
HEADER = construct.Struct(
    "magic" / construct.Bytes(4),
    "format" / construct.Int8ub,
    "algorithm" / construct.Int8ub,          # SignatureAlgorithm
    "kind" / construct.Int8ub,               # PayloadKind
    "name" / construct.PascalString(construct.Int8ub, "utf8"),
    "version" / construct.PascalString(construct.Int8ub, "utf8"),
    "payload_length" / construct.Int64ub,
    "payload_sha256" / construct.Bytes(32),
)
SIGNATURE = construct.Prefixed(construct.Int16ub, construct.GreedyBytes)
IMAGES_DIR = "images"
STATE_FILE = "state.json"
PART_FILE = "transfer.part"
MAP_FILE = "transfer.map"
ENTRY_MODULE = "bijli/tools/cli.py"  # a payload without it is not a bijli build
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


class SignatureAlgorithm(IntEnum):
    ED25519 = 1
    ECDSA_P256_SHA256 = 2


class PayloadKind(IntEnum):
    WHEEL = 1
    ZIP = 2


# --- errors ---------------------------------------------------------------------------------


class UpgradeError(FirmwareError):
    """Root of the upgrade errors."""


class ImageFormatError(UpgradeError):
    """The octets are not a signed image container of a format we know."""


class VerificationError(UpgradeError):
    """The image is complete but not to be trusted: wrong size, digest or signature."""


class TransferRefused(UpgradeError, CosemError):
    """An image transfer step the store refuses; ``result`` is the ACTION result to send."""

    def __init__(self, result: ActionResult, message: str):
        CosemError.__init__(self, int(result), message)


# --- keys -----------------------------------------------------------------------------------

def load_public_key(text: str):
    """A verification key from PEM (SubjectPublicKeyInfo) or hex: 32 octets Ed25519, or
    a P-256 point (65 octets uncompressed, 33 compressed). Raises UpgradeError."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            raw = bytes.fromhex(text.replace(" ", "").replace(":", ""))
            if len(raw) == 32:
                key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            elif len(raw) in (33, 65):
                key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
            else:
                raise UpgradeError(f"a hex key is 32 (Ed25519) or 33/65 (P-256) octets, not {len(raw)}")
    except UpgradeError:
        raise
    except (ValueError, TypeError, UnicodeError) as exc:
        raise UpgradeError(f"not a usable public key: {exc}") from None
    algorithm_of(key)
    return key


def algorithm_of(key) -> SignatureAlgorithm:
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return SignatureAlgorithm.ED25519
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)) and key.curve.name == "secp256r1":
        return SignatureAlgorithm.ECDSA_P256_SHA256
    raise UpgradeError(f"unsupported key type {type(key).__name__}: use Ed25519 or ECDSA P-256")


def load_private_key(pem: bytes):
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise UpgradeError(f"not an unencrypted PEM private key: {exc}") from None
    algorithm_of(key)
    return key


def generate_private_key(algorithm: SignatureAlgorithm = SignatureAlgorithm.ED25519) -> bytes:
    """A new signing key as unencrypted PKCS#8 PEM."""
    key = (ed25519.Ed25519PrivateKey.generate() if algorithm == SignatureAlgorithm.ED25519
           else ec.generate_private_key(ec.SECP256R1()))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(private_key) -> str:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


# --- the container -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageHeader:
    algorithm: SignatureAlgorithm
    kind: PayloadKind
    name: str
    version: str
    payload_length: int
    payload_sha256: bytes

    @property
    def identifier(self) -> bytes:
        """The DLMS image_identifier of this image."""
        return f"{self.name}-{self.version}".encode("utf-8")

    def encode(self) -> bytes:
        for what, text in (("name", self.name), ("version", self.version)):
            if not 1 <= len(text.encode("utf-8")) <= 64:
                raise ImageFormatError(f"payload {what} must be 1..64 octets")
        return HEADER.build({"magic": MAGIC, "format": FORMAT_VERSION, "algorithm": int(self.algorithm),
                             "kind": int(self.kind), "name": self.name, "version": self.version,
                             "payload_length": self.payload_length, "payload_sha256": self.payload_sha256})


@dataclass(frozen=True)
class SignedImage:
    header: ImageHeader
    signed: bytes  # the header octets the signature covers
    signature: bytes
    payload: bytes


def parse_image(data: bytes) -> SignedImage:
    """Split a container into its parts (no trust decided here). Raises ImageFormatError."""
    try:
        stream = io.BytesIO(data)
        h = HEADER.parse_stream(stream)
        signed = data[:stream.tell()]
        signature = SIGNATURE.parse_stream(stream)
    except construct.ConstructError as exc:
        if data[:4] != MAGIC:
            raise ImageFormatError("not a bijli image (bad magic)") from None
        raise ImageFormatError(f"image header unreadable: {exc.__class__.__name__}") from None
    if h.magic != MAGIC:
        raise ImageFormatError("not a bijli image (bad magic)")
    if h.format != FORMAT_VERSION:
        raise ImageFormatError(f"image format {h.format} unknown (this firmware reads {FORMAT_VERSION})")
    try:
        algorithm, payload_kind = SignatureAlgorithm(h.algorithm), PayloadKind(h.kind)
    except ValueError:
        raise ImageFormatError(f"unknown signature algorithm {h.algorithm} or payload kind {h.kind}") from None
    header = ImageHeader(algorithm, payload_kind, h.name, h.version, h.payload_length, h.payload_sha256)
    if not _NAME_RE.fullmatch(header.name) or not _NAME_RE.fullmatch(header.version):
        raise ImageFormatError("payload name or version has characters a file name cannot")
    if not signature:
        raise ImageFormatError("image has no signature")
    return SignedImage(header, signed, signature, data[stream.tell():])


def sign_image(payload: bytes, name: str, version: str, private_key, kind: PayloadKind | None = None) -> bytes:
    """The container for ``payload`` signed with ``private_key`` (Ed25519 or P-256)."""
    algorithm = algorithm_of(private_key)
    if kind is None:
        kind = PayloadKind.WHEEL if name.endswith(".whl") else PayloadKind.ZIP
    header = ImageHeader(algorithm, kind, name, version, len(payload), hashlib.sha256(payload).digest())
    signed = header.encode()
    if algorithm == SignatureAlgorithm.ED25519:
        signature = private_key.sign(signed)
    else:
        signature = private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    return signed + SIGNATURE.build(signature) + payload


def verify_image(data: bytes, public_key, *, identifier: bytes | None = None) -> SignedImage:
    """The image if it is whole and signed by ``public_key``; else VerificationError/ImageFormatError."""
    image = parse_image(data)
    h = image.header
    if identifier is not None and identifier != h.identifier:
        raise VerificationError(f"identifier {identifier!r} does not name the image ({h.identifier!r})")
    if len(image.payload) != h.payload_length:
        raise VerificationError(f"payload is {len(image.payload)} octets, the header says {h.payload_length}")
    if hashlib.sha256(image.payload).digest() != h.payload_sha256:
        raise VerificationError("payload SHA-256 does not match the header")
    if public_key is None:
        raise VerificationError("no public key configured ([upgrade] public_key)")
    if algorithm_of(public_key) != h.algorithm:
        raise VerificationError(f"image signed with {h.algorithm.name}, the configured key is "
                                f"{algorithm_of(public_key).name}")
    try:
        if h.algorithm == SignatureAlgorithm.ED25519:
            public_key.verify(image.signature, image.signed)
        else:
            public_key.verify(image.signature, image.signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError("bad signature") from None
    _check_payload(image.payload)
    return image


def _check_payload(payload: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as z:
            names = set(z.namelist())
            for n in names:
                _safe_member(n)
    except zipfile.BadZipFile:
        raise VerificationError("payload is not a wheel or zip") from None
    if ENTRY_MODULE not in names:
        raise VerificationError(f"payload has no {ENTRY_MODULE}: not a bijli build")


def _safe_member(name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise VerificationError(f"payload member {name!r} would land outside the image directory")


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeConfig:
    """The ``[upgrade]`` table.

    ``public_key``: PEM or hex (Ed25519 32 octets, P-256 point 33/65 octets); no key, no
    image passes verification. ``activation``: "immediate", a daily "HH:MM" (the next such
    time after image_activate, e.g. a quiet hour) or an ISO date-time; the image
    activation schedule (0.0.15.0.2.255) set by the head-end overrides it.
    ``start_attempts``: starts a new image gets to come up healthy before the previous one
    runs again; ``healthy_after_s``: how long it must serve to count as healthy.
    """

    public_key: str = ""
    activation: str = "immediate"
    block_size: int = 512
    start_attempts: int = 2
    healthy_after_s: float = 10.0
    max_image_size: int = 16 * 1024 * 1024
    enabled: bool = True
    key: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_table(cls, table: dict, prefix: str = "upgrade") -> "UpgradeConfig":
        t = Table(table, prefix, {"public_key", "activation", "block_size", "start_attempts", "healthy_after_s",
                                  "max_image_size", "enabled"})
        text = t.str("public_key", "")
        key = None
        if text.strip():
            try:
                key = load_public_key(text)
            except UpgradeError as exc:
                raise ConfigError(t.key("public_key"), str(exc)) from None
        activation = t.str("activation", "immediate").strip()
        try:
            _parse_activation(activation)
        except ValueError:
            raise ConfigError(t.key("activation"),
                              f'must be "immediate", "HH:MM" or an ISO date-time, not {activation!r}') from None
        return cls(
            public_key=text,
            activation=activation,
            block_size=t.int("block_size", 512, 16, 65535),
            start_attempts=t.int("start_attempts", 2, 1, 10),
            healthy_after_s=t.float("healthy_after_s", 10.0, 0.0, 3600.0),
            max_image_size=t.int("max_image_size", 16 * 1024 * 1024, 1024, 1 << 30),
            enabled=t.bool("enabled", True),
            key=key,
        )


def _parse_activation(text: str) -> "None | dtime | datetime":
    if text == "immediate":
        return None
    if re.fullmatch(r"\d{1,2}:\d{2}", text):
        h, m = map(int, text.split(":"))
        return dtime(h, m)  # ValueError when out of range
    return datetime.fromisoformat(text).replace(tzinfo=None)


def activation_time(config: UpgradeConfig, now: datetime, scheduled: datetime | None = None) -> datetime:
    """When an image activated at ``now`` takes over (meter time)."""
    if scheduled is not None:
        return max(scheduled, now)
    when = _parse_activation(config.activation)
    if when is None:
        return now
    if isinstance(when, dtime):
        at = datetime.combine(now.date(), when)
        return at if at > now else at + timedelta(days=1)
    return max(when, now)


# --- the store -----------------------------------------------------------------------------------


class Trigger(IntEnum):
    INITIATE = 1
    BLOCK = 2
    VERIFY = 3
    ACTIVATE = 4


S = ImageTransferStatus
#: (status, trigger) -> (action, statuses it may lead to). A pair not listed is refused
#: and leaves the status as it was. Verification runs to completion inside the method,
#: so VERIFICATION_INITIATED is never left standing.
TRANSITIONS: dict[tuple[S, Trigger], tuple[str, frozenset[S]]] = {
    (S.NOT_INITIATED, Trigger.INITIATE): ("start", frozenset({S.INITIATED})),
    (S.INITIATED, Trigger.INITIATE): ("start_or_resume", frozenset({S.INITIATED})),
    (S.INITIATED, Trigger.BLOCK): ("store_block", frozenset({S.INITIATED})),
    (S.INITIATED, Trigger.VERIFY): ("check", frozenset({S.INITIATED, S.VERIFICATION_SUCCESSFUL,
                                                       S.VERIFICATION_FAILED})),
    # activating an unverified image verifies it first (IEC 62056-6-2 image_activate)
    (S.INITIATED, Trigger.ACTIVATE): ("check_and_install", frozenset({S.INITIATED, S.VERIFICATION_FAILED,
                                                                     S.ACTIVATION_INITIATED})),
    (S.VERIFICATION_SUCCESSFUL, Trigger.INITIATE): ("start", frozenset({S.INITIATED})),
    (S.VERIFICATION_SUCCESSFUL, Trigger.VERIFY): ("nothing", frozenset({S.VERIFICATION_SUCCESSFUL})),
    (S.VERIFICATION_SUCCESSFUL, Trigger.ACTIVATE): ("install", frozenset({S.ACTIVATION_INITIATED})),
    (S.VERIFICATION_FAILED, Trigger.INITIATE): ("start", frozenset({S.INITIATED})),
    (S.ACTIVATION_INITIATED, Trigger.ACTIVATE): ("nothing", frozenset({S.ACTIVATION_INITIATED})),
    (S.ACTIVATION_SUCCESSFUL, Trigger.INITIATE): ("start", frozenset({S.INITIATED})),
    (S.ACTIVATION_FAILED, Trigger.INITIATE): ("start", frozenset({S.INITIATED})),
}


@dataclass(frozen=True)
class UpgradeEvent:
    """Something the meter should put in its event log: ``kind`` is "verification_failed",
    "activation_scheduled", "activated" or "activation_failed"."""

    kind: str
    identifier: str
    detail: str = ""


def images_dir(state_dir: "str | Path") -> Path:
    return Path(state_dir) / IMAGES_DIR


def _empty_state() -> dict:
    return {"format": 1, "transfer": None, "status": int(S.NOT_INITIATED), "detail": "", "schedule": None,
            "enabled": None, "active": None, "previous": None, "pending": None, "events": []}


def load_state(state_dir: "str | Path") -> dict:
    """The images record (an empty one when there is none or it cannot be read)."""
    path = images_dir(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _empty_state()
    except (OSError, ValueError) as exc:
        raise UpgradeError(f"{path}: unreadable image record: {exc}") from None
    state = _empty_state()
    if isinstance(data, dict):
        state.update(data)
    return state


def save_state(state_dir: "str | Path", state: dict) -> None:
    """Atomically replace the images record (write, fsync, rename, fsync the directory)."""
    d = images_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (STATE_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, d / STATE_FILE)
    _fsync_dir(d)


def _fsync_dir(d: Path) -> None:
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


class ImageStore:
    """The firmware side of the Image transfer object (see :class:`dlms.cosem.image_transfer.ImageTransferStore`).

    ``now`` gives meter time (for scheduled activation); ``running_image`` names the
    installed image this process runs from (None: the base build), as the launcher says.
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
        self.state = load_state(state_dir)
        self._map = self._read_map()

    # --- persistence ----------------------------------------------------------------------
    def _save(self) -> None:
        save_state(self.state_dir, self.state)

    def _read_map(self) -> bytearray:
        t = self.state["transfer"]
        if not t:
            return bytearray()
        count = _block_count(t["size"], t["block_size"])
        try:
            raw = (self.dir / MAP_FILE).read_bytes()
        except OSError:
            raw = b""
        return bytearray(raw[:count].ljust(count, b"\0"))

    @property
    def transfer(self) -> dict | None:
        return self.state["transfer"]

    def _status(self) -> S:
        return S(self.state["status"])

    def _set_status(self, status: S, detail: str = "") -> None:
        self.state["status"] = int(status)
        self.state["detail"] = detail

    @property
    def detail(self) -> str:
        """Why the last verification or activation failed ("" when it did not)."""
        return self.state.get("detail", "")

    # --- attributes -----------------------------------------------------------------------
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
        self.state = load_state(self.state_dir)
        enabled = self.state.get("enabled")
        return self.config.enabled if enabled is None else bool(enabled)

    def set_transfer_enabled(self, enabled: bool) -> None:
        self.state = load_state(self.state_dir)
        self.state["enabled"] = bool(enabled)
        self._save()

    def transfer_status(self) -> S:
        self.state = load_state(self.state_dir)
        return self._status()

    def images_to_activate(self) -> list[ImageToActivateInfo]:
        t = self.transfer
        if not t or not t.get("verified"):
            return []
        v = t["verified"]
        return [ImageToActivateInfo(t["size"], bytes.fromhex(t["identifier"]), bytes.fromhex(v["signature"]))]

    # --- the schedule (image activation single action schedule, 0.0.15.0.2.255) -------------
    @property
    def scheduled_activation(self) -> datetime | None:
        s = self.state.get("schedule")
        return datetime.fromisoformat(s) if s else None

    def set_scheduled_activation(self, when: datetime | None) -> None:
        self.state = load_state(self.state_dir)
        self.state["schedule"] = when.replace(tzinfo=None).isoformat() if when else None
        self._save()

    # --- methods --------------------------------------------------------------------------
    def _step(self, trigger: Trigger, *args) -> None:
        self.state = load_state(self.state_dir)  # the launcher or mark_healthy may have written it
        status = self._status()
        entry = TRANSITIONS.get((status, trigger))
        if entry is None:
            result = ActionResult.TEMPORARY_FAILURE if status == S.ACTIVATION_INITIATED else ActionResult.OTHER_REASON
            raise TransferRefused(result, f"{trigger.name.lower()} not allowed while {status.name.lower()}")
        action, _ = entry
        if trigger in (Trigger.INITIATE, Trigger.BLOCK) and not self.transfer_enabled():
            raise TransferRefused(ActionResult.READ_WRITE_DENIED, "image transfer is disabled")
        getattr(self, f"_do_{action}")(*args)

    def initiate(self, identifier: bytes, size: int) -> None:
        self._step(Trigger.INITIATE, identifier, size)

    def transfer_block(self, number: int, value: bytes) -> None:
        self._step(Trigger.BLOCK, number, value)

    def verify(self) -> None:
        self._step(Trigger.VERIFY)

    def activate(self) -> None:
        self._step(Trigger.ACTIVATE)

    # --- actions --------------------------------------------------------------------------
    def _do_nothing(self) -> None:
        pass

    def _do_start_or_resume(self, identifier: bytes, size: int) -> None:
        t = self.transfer
        same = t and (t["identifier"], t["size"], t["block_size"]) == (identifier.hex(), size, self.config.block_size)
        if same:
            return  # the same image again: keep what arrived, the head-end sends what is missing
        self._do_start(identifier, size)

    def _do_start(self, identifier: bytes, size: int) -> None:
        if not 0 < size <= self.config.max_image_size:
            raise TransferRefused(ActionResult.OTHER_REASON,
                                  f"image size {size} outside 1..{self.config.max_image_size}")
        if not identifier or len(identifier) > 128:
            raise TransferRefused(ActionResult.OTHER_REASON, "image identifier must be 1..128 octets")
        block_size = self.config.block_size
        count = _block_count(size, block_size)
        for name in (PART_FILE, MAP_FILE):
            (self.dir / name).unlink(missing_ok=True)
        with open(self.dir / PART_FILE, "wb") as f:
            f.truncate(size)
        (self.dir / MAP_FILE).write_bytes(bytes(count))
        self._map = bytearray(count)
        self.state["transfer"] = {"identifier": identifier.hex(), "size": size, "block_size": block_size,
                                  "verified": None}
        self._set_status(S.INITIATED)
        self._save()

    def _do_store_block(self, number: int, value: bytes) -> None:
        t = self.transfer
        assert t is not None
        count = len(self._map)
        if number >= count:
            raise TransferRefused(ActionResult.OTHER_REASON, f"block {number} beyond the last block {count - 1}")
        expected = min(t["block_size"], t["size"] - number * t["block_size"])
        if len(value) != expected:
            raise TransferRefused(ActionResult.OTHER_REASON,
                                  f"block {number} is {len(value)} octets, expected {expected}")
        fd = os.open(self.dir / PART_FILE, os.O_WRONLY)
        try:
            os.pwrite(fd, value, number * t["block_size"])
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

    def _do_check(self) -> None:
        t = self.transfer
        assert t is not None
        missing = self.missing_blocks()
        if missing:
            raise TransferRefused(ActionResult.OTHER_REASON,
                                  f"{len(missing)} blocks missing, first {missing[0]}")
        data = (self.dir / PART_FILE).read_bytes()
        try:
            if len(data) != t["size"]:
                raise VerificationError(f"image is {len(data)} octets, {t['size']} were announced")
            image = verify_image(data, self.config.key, identifier=bytes.fromhex(t["identifier"]))
        except UpgradeError as exc:
            self._set_status(S.VERIFICATION_FAILED, str(exc))
            self._event("verification_failed", str(exc))
            self._save()
            raise TransferRefused(ActionResult.OTHER_REASON, f"verification failed: {exc}") from None
        h = image.header
        t["verified"] = {"name": h.name, "version": h.version, "sha256": h.payload_sha256.hex(),
                         "signature": image.signature.hex()}
        self._set_status(S.VERIFICATION_SUCCESSFUL)
        self._save()

    def _do_check_and_install(self) -> None:
        self._do_check()
        self._do_install()

    def _do_install(self) -> None:
        t = self.transfer
        assert t is not None and t["verified"]
        if self.state.get("pending"):
            raise TransferRefused(ActionResult.TEMPORARY_FAILURE, "another image is waiting to be activated")
        data = (self.dir / PART_FILE).read_bytes()
        try:
            image = verify_image(data, self.config.key, identifier=bytes.fromhex(t["identifier"]))
        except UpgradeError as exc:  # the disk changed under us since verification
            self._set_status(S.VERIFICATION_FAILED, str(exc))
            self._save()
            raise TransferRefused(ActionResult.OTHER_REASON, f"verification failed: {exc}") from None
        h = image.header
        name = f"{h.name}-{h.version}-{h.payload_sha256.hex()[:12]}"
        _extract(image.payload, self.dir / name)
        now = self._now() if self._now else None
        at = activation_time(self.config, now, self.scheduled_activation) if now else None
        self.state["pending"] = {"name": name, "identifier": h.identifier.decode("utf-8"),
                                 "activate_at": at.isoformat() if at else None,
                                 "armed": at is None or (now is not None and at <= now), "attempts": 0}
        self.state["schedule"] = None
        self._set_status(S.ACTIVATION_INITIATED)
        if at and now and at > now:
            self._event("activation_scheduled", f"at {at.isoformat()}")
        self._save()
        # the transfer octets are installed now; the record (size, map) stays for the attributes
        (self.dir / PART_FILE).unlink(missing_ok=True)

    def _event(self, kind: str, detail: str) -> None:
        t = self.transfer
        ident = bytes.fromhex(t["identifier"]).decode("utf-8", "replace") if t else ""
        self.state["events"].append({"kind": kind, "identifier": ident, "detail": detail})

    # --- for the meter ----------------------------------------------------------------------
    def restart_due(self, now: datetime) -> bool:
        """True when the meter should stop and restart through the launcher into the pending
        image: its activation time has come and this process does not already run it."""
        p = self.state.get("pending")
        if not p or p["name"] == self.running_image:
            return False
        if not p.get("armed"):
            self.state = load_state(self.state_dir)
            p = self.state.get("pending")
            if not p:
                return False
            at = p.get("activate_at")
            if at and datetime.fromisoformat(at) > now:
                return False
            p["armed"] = True
            self._save()
        return True

    def take_events(self) -> list[UpgradeEvent]:
        """Events not yet logged by the meter (each returned once)."""
        self.state = load_state(self.state_dir)  # the launcher may have added some
        events = [UpgradeEvent(e["kind"], e.get("identifier", ""), e.get("detail", ""))
                  for e in self.state.get("events", [])]
        if events:
            self.state["events"] = []
            self._save()
        return events

    def reload(self) -> None:
        self.state = load_state(self.state_dir)
        self._map = self._read_map()


def _block_count(size: int, block_size: int) -> int:
    return (size + block_size - 1) // block_size


def _extract(payload: bytes, target: Path) -> None:
    """Unpack ``payload`` into ``target`` atomically (a temporary directory, then a rename)."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(payload)) as z:
        for member in z.namelist():
            _safe_member(member)
        z.extractall(tmp)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


# --- what the launcher and the running meter report ---------------------------------------------


@dataclass(frozen=True)
class StartPlan:
    """What the launcher should run: ``image`` (an installed image's directory name, None for
    the base build) and a line for the log when the plan is not the usual one."""

    image: str | None
    note: str = ""


def plan_start(state_dir: "str | Path", start_attempts: int) -> StartPlan:
    """Decide which image this start runs, and record the decision.

    An armed pending image gets ``start_attempts`` starts to come up healthy; each start
    counts before it happens, so a crash (or a power cut) during a start uses it up. When
    the attempts are spent, the previous image runs again and the activation is recorded
    as failed (status 7, an "activation_failed" event for the meter's log).
    """
    state = load_state(state_dir)
    active = state.get("active")
    if active and not (images_dir(state_dir) / active).is_dir():
        active = state["active"] = None  # an image directory lost: run the base build
    p = state.get("pending")
    if not p or not p.get("armed"):
        return StartPlan(active)
    if p.get("attempts", 0) < start_attempts:
        p["attempts"] = p.get("attempts", 0) + 1
        save_state(state_dir, state)
        return StartPlan(p["name"], f"starting new image {p['name']} (attempt {p['attempts']} of {start_attempts})")
    detail = f"did not come up healthy in {p.get('attempts', 0)} start(s)"
    _fail(state_dir, state, detail)
    return StartPlan(active, f"image {p['name']} {detail}; running {active or 'the base build'} again")


def fail_pending(state_dir: "str | Path", detail: str) -> None:
    """Give up on the pending image now (the launcher saw it fail)."""
    state = load_state(state_dir)
    if state.get("pending"):
        _fail(state_dir, state, detail)


def _fail(state_dir, state: dict, detail: str) -> None:
    p = state["pending"]
    state["pending"] = None
    state["status"] = int(S.ACTIVATION_FAILED)
    state["detail"] = detail
    state["events"].append({"kind": "activation_failed", "identifier": p.get("identifier", ""), "detail": detail})
    save_state(state_dir, state)
    if p.get("name") and p["name"] not in (state.get("active"), state.get("previous")):
        shutil.rmtree(images_dir(state_dir) / p["name"], ignore_errors=True)


def promote(state_dir: "str | Path", running_image: str | None) -> bool:
    """The meter running ``running_image`` has served long enough: if that is the pending
    image, it becomes the active one (status 6, an "activated" event). True if it did."""
    state = load_state(state_dir)
    p = state.get("pending")
    if not p or not running_image or p["name"] != running_image:
        return False
    old_previous = state.get("previous")
    state["previous"], state["active"], state["pending"] = state.get("active"), p["name"], None
    state["status"] = int(S.ACTIVATION_SUCCESSFUL)
    state["detail"] = ""
    state["events"].append({"kind": "activated", "identifier": p.get("identifier", ""),
                            "detail": f"after {p.get('attempts', 0)} start(s)"})
    save_state(state_dir, state)
    keep = {state["active"], state["previous"]}
    if old_previous and old_previous not in keep:
        shutil.rmtree(images_dir(state_dir) / old_previous, ignore_errors=True)
    return True


# --- the COSEM objects ------------------------------------------------------------------------------

IMAGE_TRANSFER = "0.0.44.0.0.255"
#: the image activation single action schedule and the script it runs (IEC 62056-6-1 OBIS)
IMAGE_ACTIVATION_SCHEDULE = "0.0.15.0.2.255"
IMAGE_ACTIVATION_SCRIPT = "0.0.10.0.107.255"


def upgrade_objects(store: ImageStore) -> list:
    """The Image transfer object (0.0.44.0.0.255) bound to ``store``, and the image
    activation Single action schedule (0.0.15.0.2.255) whose execution_time, written by
    the head-end, says when the next activated image takes over."""
    from bijli.dlms.axdr import CosemDate, CosemTime
    from bijli.dlms.cosem.image_transfer import ImageTransfer
    from bijli.dlms.cosem.schedule import ExecutionTime, SingleActionSchedule
    from bijli.dlms.cosem.values import ScriptReference
    from bijli.dlms.obis import Obis

    def execution_time() -> list:
        when = store.scheduled_activation
        return [ExecutionTime(CosemTime.from_time(when.time()), CosemDate.from_date(when.date()))] if when else []

    def set_execution_time(times: list) -> None:
        if not times:
            store.set_scheduled_activation(None)
            return
        if len(times) != 1:
            raise TransferRefused(ActionResult.OTHER_REASON, "one image activation time, not several")
        try:
            when = datetime.combine(times[0].date.to_date(), times[0].time.to_time())
        except Exception as exc:  # wildcards: an image is activated once, at one time
            raise TransferRefused(ActionResult.OTHER_REASON,
                                  f"activation time must be a full date and time: {exc}") from None
        store.set_scheduled_activation(when)

    return [
        ImageTransfer(IMAGE_TRANSFER, store),
        SingleActionSchedule(IMAGE_ACTIVATION_SCHEDULE,
                             executed_script=ScriptReference(Obis.parse(IMAGE_ACTIVATION_SCRIPT), 1), type=1,
                             execution_time=execution_time, set_execution_time=set_execution_time),
    ]


__all__ = [
    "ImageFormatError", "ImageHeader", "ImageStore", "PayloadKind", "SignatureAlgorithm", "SignedImage", "StartPlan",
    "TRANSITIONS", "TransferRefused", "Trigger", "UpgradeConfig", "UpgradeError", "UpgradeEvent",
    "VerificationError", "activation_time", "fail_pending", "generate_private_key", "images_dir", "load_private_key",
    "load_public_key", "load_state", "parse_image", "plan_start", "promote", "public_key_pem", "save_state",
    "sign_image", "upgrade_objects", "verify_image",
]
