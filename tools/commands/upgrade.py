"""`bijli upgrade`: send a new bijli build to a meter over DLMS image transfer (class 18).

The head-end side of IEC 62056-6-2 clause 4.4.6: read the meter's
``image_block_size``, ``image_transfer_initiate`` with the image's identifier
and size, read ``image_transferred_blocks_status`` and send only the blocks the
meter does not have (so an interrupted transfer resumes where it stopped, even
across a meter restart), ``image_verify``, optionally write the activation time
into the image activation schedule (0.0.15.0.2.255), and ``image_activate``.
:class:`TransferPlan` is the sans-IO part (which blocks, what is left);
:func:`send_image` drives it through a :class:`dlms.client.Client`.

``bijli upgrade keygen`` makes a signing key, ``bijli upgrade sign`` wraps a
wheel or zip into the signed container of :mod:`firmware.upgrade.image`; ``bijli
upgrade --sign-key KEY WHEEL`` signs on the fly (``--key`` stays the DLMS
encryption key, as in the other DLMS commands).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from bijli.tools.errors import RefusedByMeter, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from bijli.dlms.cosem.image_transfer import ImageTransferStatus

CLASS_ID = 18


class UpgradeCommandError(RefusedByMeter):
    """The meter cannot take the image (transfer disabled, blocks missing, verification or
    activation refused); the message says why (exit status 1)."""


@dataclass(frozen=True)
class TransferPlan:
    """Which blocks of ``image`` to send, given what the meter reports it has."""

    image: bytes
    block_size: int

    @property
    def block_count(self) -> int:
        return (len(self.image) + self.block_size - 1) // self.block_size

    def block(self, number: int) -> bytes:
        return self.image[number * self.block_size:(number + 1) * self.block_size]

    def missing(self, transferred: str) -> list[int]:
        """Block numbers not marked '1' in image_transferred_blocks_status (block 0 first);
        bits beyond the string count as missing, as a meter may send a short one."""
        return [n for n in range(self.block_count) if n >= len(transferred) or transferred[n] != "1"]


def _status(client) -> ImageTransferStatus:
    from bijli.dlms.cosem.image_transfer import ImageTransferStatus
    from bijli.firmware.cosem.upgrade import IMAGE_TRANSFER

    value = client.get(CLASS_ID, IMAGE_TRANSFER, 6)
    return ImageTransferStatus(int(value.value))


def send_image(client, image: bytes, *, activate: bool = True, activate_at: datetime | None = None,
               report: Callable[[str], None] = lambda s: None, stop_after: int | None = None) -> ImageTransferStatus:
    """Transfer, verify and (by default) activate ``image`` (a signed container) on the meter
    behind ``client`` (associated, with ACTION rights on the image transfer object).
    ``stop_after`` sends at most that many blocks and returns (to interrupt on purpose).
    Returns the image_transfer_status the meter reports at the end."""
    from bijli.dlms import axdr
    from bijli.dlms.axdr import CosemDate, CosemTime
    from bijli.dlms.errors import ServiceError
    from bijli.firmware.cosem.upgrade import IMAGE_ACTIVATION_SCHEDULE, IMAGE_TRANSFER
    from bijli.firmware.upgrade.image import parse_image

    header = parse_image(image).header
    identifier = header.identifier
    if not client.get(CLASS_ID, IMAGE_TRANSFER, 5).value:
        raise UpgradeCommandError("the meter has image transfer disabled (image_transfer_enabled = false)")
    block_size = int(client.get(CLASS_ID, IMAGE_TRANSFER, 2).value)
    plan = TransferPlan(image, block_size)
    client.action(CLASS_ID, IMAGE_TRANSFER, 1, axdr.Structure((axdr.OctetString(identifier),
                                                               axdr.DoubleLongUnsigned(len(image)))))
    missing = plan.missing(client.get(CLASS_ID, IMAGE_TRANSFER, 3).value)
    have = plan.block_count - len(missing)
    report(f"{identifier.decode()}: {len(image):,} octets in {plan.block_count} blocks of {block_size}; "
           f"{have} already on the meter, sending {len(missing)}")
    for i, n in enumerate(missing, 1):
        if stop_after is not None and i > stop_after:
            return _status(client)
        client.action(CLASS_ID, IMAGE_TRANSFER, 2, axdr.Structure((axdr.DoubleLongUnsigned(n),
                                                                   axdr.OctetString(plan.block(n)))))
        if i % 50 == 0 or i == len(missing):
            report(f"sent {have + i}/{plan.block_count} blocks")
    still = plan.missing(client.get(CLASS_ID, IMAGE_TRANSFER, 3).value)
    if still:
        raise UpgradeCommandError(f"the meter still misses {len(still)} blocks (first {still[0]}) after they were "
                                  f"sent: it dropped them; run again to send the missing ones")
    try:
        client.action(CLASS_ID, IMAGE_TRANSFER, 3, axdr.Integer(0))
    except ServiceError as exc:
        status = _status(client)
        raise UpgradeCommandError(f"the meter refused the image: {status.name.lower()} ({exc})") from None
    report("image verified by the meter")
    if not activate:
        return _status(client)
    if activate_at is not None:
        t = activate_at.replace(tzinfo=None)
        client.set(22, IMAGE_ACTIVATION_SCHEDULE, 4, axdr.Array((axdr.Structure((
            axdr.OctetString(CosemTime.from_time(t.time()).encode()),
            axdr.OctetString(CosemDate.from_date(t.date()).encode()))),)))
        report(f"activation scheduled for {t.isoformat()} (meter time)")
    try:
        client.action(CLASS_ID, IMAGE_TRANSFER, 4, axdr.Integer(0))
    except ServiceError as exc:
        raise UpgradeCommandError(f"the meter refused to activate: {exc}") from None
    status = _status(client)
    report(f"activation: {status.name.lower()}")
    return status


# --- command line -------------------------------------------------------------------------------


USAGE = """\
  bijli upgrade IMAGE [--target tcp://HOST:PORT] [--client 48 ...]        send, verify, activate
  bijli upgrade WHEEL --sign-key KEY.pem [--version V] ...               sign on the fly and send
  bijli upgrade sign --key KEY.pem [--version V] WHEEL -o IMAGE          make a signed image
  bijli upgrade keygen [--algorithm ed25519|p256] -o KEY.pem             make a signing key"""


class _SendByDefault(argparse._SubParsersAction):
    """`bijli upgrade IMAGE ...` means `bijli upgrade send IMAGE ...`: any first word that is
    not ``sign`` or ``keygen`` is the image to send."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.choices = None  # any first word goes; __call__ sorts it out

    def __call__(self, parser, namespace, values, option_string=None):
        if values[0] not in ("send", "sign", "keygen"):
            values = ["send", *values]
        super().__call__(parser, namespace, values, option_string)


def register(subparsers) -> None:
    from bijli.tools.commands.association import add_association_arguments

    fmt = argparse.RawDescriptionHelpFormatter
    description = ("Send a signed bijli image to a meter over DLMS image transfer (class 18): only the blocks "
                   "the meter does not have yet, so an interrupted transfer resumes; then verify and activate.")
    p = subparsers.add_parser("upgrade", description=description, epilog=USAGE, formatter_class=fmt)
    sub = p.add_subparsers(dest="upgrade_action", action=_SendByDefault, metavar="IMAGE | sign | keygen")
    s = sub.add_parser("send", help="send, verify and activate an image", epilog=USAGE, formatter_class=fmt)
    s.add_argument("image", type=Path, help="signed image (from `bijli upgrade sign`), or a wheel/zip with --sign-key")
    s.add_argument("--sign-key", type=Path,
                   help="private key (PEM) to sign a plain wheel or zip (--key is the DLMS encryption key)")
    s.add_argument("--version", dest="image_version", help="version to put in the image (default: from the wheel name)")
    s.add_argument("--activate-at", metavar="ISO", help="meter time to activate at (default: the meter's policy)")
    s.add_argument("--no-activate", action="store_true", help="transfer and verify only")
    add_association_arguments(s)
    s.set_defaults(func=_main)
    g = sub.add_parser("sign", help="wrap a wheel or zip into a signed image")
    g.add_argument("payload", type=Path, help="the bijli wheel or zip")
    g.add_argument("--sign-key", "--key", dest="sign_key", type=Path, required=True, help="private key (PEM)")
    g.add_argument("--version", dest="image_version", help="version (default: from the wheel name)")
    g.add_argument("-o", "--output", type=Path, required=True, help="image file to write")
    g.set_defaults(func=_main)
    k = sub.add_parser("keygen", help="make a signing key; prints the public key for [upgrade] public_key")
    k.add_argument("-o", "--output", type=Path, required=True, help="private key file to write (PEM)")
    k.add_argument("--algorithm", choices=("ed25519", "p256"), default="ed25519")
    k.add_argument("--force", action="store_true", help="replace an existing key file (its key is lost)")
    k.set_defaults(func=_main)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _name_version(path: Path, version: str | None) -> tuple[str, str]:
    parts = path.name.split("-")
    if path.suffix == ".whl" and len(parts) >= 2:
        return parts[0], version or parts[1]
    return path.stem.split("-")[0] or "bijli", version or "0"


def _signed(payload_path: Path, key_path: Path, version: str | None) -> bytes:
    from bijli.firmware.upgrade.image import load_private_key, sign_image

    key = load_private_key(key_path.read_bytes())
    name, ver = _name_version(payload_path, version)
    return sign_image(payload_path.read_bytes(), name, ver, key)


def _keygen(args) -> int:
    from bijli.firmware.upgrade.image import SignatureAlgorithm, generate_private_key, load_private_key, public_key_pem

    if (args.output.exists() or args.output.is_symlink()) and not args.force:
        raise UsageError(f"{args.output} exists: it may be the only copy of a key meters trust; "
                         f"choose another file, or pass --force to replace it")
    alg = SignatureAlgorithm.ED25519 if args.algorithm == "ed25519" else SignatureAlgorithm.ECDSA_P256_SHA256
    pem = generate_private_key(alg)
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, args.output)
    print(f"private key written to {args.output}; put this in the meter's [upgrade] public_key:")
    print(public_key_pem(load_private_key(pem)), end="")
    return 0


def _sign(args) -> int:
    from bijli.firmware.upgrade.image import parse_image

    image = _signed(args.payload, args.sign_key, args.image_version)
    args.output.write_bytes(image)
    h = parse_image(image).header
    print(f"{args.output}: {h.identifier.decode()} signed with {h.algorithm.name}, {len(image):,} octets")
    return 0


def _main(args) -> int:
    from bijli.firmware.upgrade.errors import UpgradeError
    from bijli.firmware.upgrade.image import parse_image

    action = args.upgrade_action
    try:
        if action == "keygen":
            return _keygen(args)
        if action == "sign":
            return _sign(args)
        image = (_signed(args.image, args.sign_key, args.image_version) if args.sign_key
                 else args.image.read_bytes())
        parse_image(image)  # a wrong file should not cost an association
        activate_at = datetime.fromisoformat(args.activate_at) if args.activate_at else None
    except UpgradeError as exc:
        raise UsageError(str(exc)) from None
    return _send(args, image, activate_at)


def _send(args, image: bytes, activate_at: datetime | None) -> int:
    from bijli.dlms.cosem.image_transfer import ImageTransferStatus
    from bijli.dlms.errors import LinkError, ServiceError
    from bijli.tools.commands.association import close_client, connect
    from bijli.tools.errors import ConnectionFailed

    client = connect(args)
    try:
        status = send_image(client, image, activate=not args.no_activate, activate_at=activate_at,
                            report=lambda line: print(line, flush=True))
    except ServiceError as exc:
        # the meter answered, and said no: running again would get the same answer
        hint = "" if args.client == 48 else "; image transfer needs the utility association (--client 48)"
        raise UpgradeCommandError(f"the meter refused: {exc}{hint}") from None
    except (LinkError, OSError) as exc:
        raise ConnectionFailed(f"interrupted: {exc}; run again to resume from the missing blocks") from None
    finally:
        close_client(client)
    ok = {ImageTransferStatus.VERIFICATION_SUCCESSFUL, ImageTransferStatus.ACTIVATION_INITIATED,
          ImageTransferStatus.ACTIVATION_SUCCESSFUL}
    if status not in ok:
        raise UpgradeCommandError(f"the meter reports {status.name.lower().replace('_', ' ')}")
    return 0
