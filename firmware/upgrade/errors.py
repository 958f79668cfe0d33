"""The upgrade's errors: one root, :class:`UpgradeError`, under the firmware's
:class:`~bijli.firmware.errors.FirmwareError`.

A refused image transfer step is a :class:`TransferRefused` whose ``reason`` says what
kind of refusal it is; the binding wing (:mod:`bijli.firmware.cosem.upgrade`) turns the
reason into the ACTION result of IEC 62056-6-2 class 18. A firmware error is never also
a DLMS error.
"""

from __future__ import annotations

from enum import Enum

from bijli.firmware.errors import FirmwareError


class UpgradeError(FirmwareError):
    """Root of the upgrade errors."""


class ImageFormatError(UpgradeError):
    """The octets are not a signed image container of a format we know."""


class VerificationError(UpgradeError):
    """The image is complete but not to be trusted: wrong size, digest or signature."""


class TransferRefusal(Enum):
    """Why the store refused an image transfer step (the step changed nothing, except
    that a rejected image is recorded as such)."""

    NOT_NOW = "the step is not allowed in the present transfer status"
    BUSY = "an activation is under way: try again when it has ended"
    DISABLED = "image transfer is disabled"
    BAD_REQUEST = "the size, identifier or block does not fit the transfer"
    INCOMPLETE = "blocks are missing"
    REJECTED = "the image failed verification"


class TransferRefused(UpgradeError):
    """An image transfer step the store refuses, and why (:class:`TransferRefusal`)."""

    def __init__(self, reason: TransferRefusal, message: str):
        super().__init__(message)
        self.reason = reason


__all__ = ["ImageFormatError", "TransferRefusal", "TransferRefused", "UpgradeError", "VerificationError"]
