"""Image transfer (class 18, version 0), IEC 62056-6-2 clause 4.4.6.

How a head-end delivers a new firmware image to a meter: it reads
``image_block_size`` (2), calls ``image_transfer_initiate`` (1) with the
image's identifier and size, sends the image in numbered blocks with
``image_block_transfer`` (2; block n holds octets n*size .. (n+1)*size-1, the
last block may be short), checks ``image_transferred_blocks_status`` (3, one
bit per block, block 0 first) or ``image_first_not_transferred_block_number``
(4) to find and resend missing blocks, then calls ``image_verify`` (3) and
``image_activate`` (4). ``image_transfer_status`` (6) follows the process
(0 not initiated .. 7 activation failed) and ``image_to_activate_info`` (7)
describes what a successful verification found.

The object holds no logic: it parses parameters strictly and calls an injected
:class:`ImageTransferStore` (the firmware's), which refuses with a
:class:`~dlms.cosem.base.CosemError` carrying the result to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from bijli.dlms import axdr
from bijli.dlms.apdu import ActionResult
from bijli.dlms.cosem.base import CosemError, CosemObject, expect

U32_MAX = 0xFFFFFFFF


class ImageTransferStatus(IntEnum):
    """image_transfer_status (attribute 6)."""

    NOT_INITIATED = 0
    INITIATED = 1
    VERIFICATION_INITIATED = 2
    VERIFICATION_SUCCESSFUL = 3
    VERIFICATION_FAILED = 4
    ACTIVATION_INITIATED = 5
    ACTIVATION_SUCCESSFUL = 6
    ACTIVATION_FAILED = 7


@dataclass(frozen=True, slots=True)
class ImageToActivateInfo:
    """image_to_activate_info element ::= structure {image_to_activate_size double-long-unsigned,
    image_to_activate_identification octet-string, image_to_activate_signature octet-string}."""

    size: int
    identification: bytes
    signature: bytes

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.DoubleLongUnsigned(self.size), axdr.OctetString(self.identification),
                               axdr.OctetString(self.signature)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ImageToActivateInfo":
        size, ident, sig = _fields(value, 3)
        return cls(_u32(size), _octets(ident), _octets(sig))


class ImageTransferStore(Protocol):
    """What the firmware gives the object. Every method may raise CosemError to refuse."""

    @property
    def image_block_size(self) -> int: ...

    def transferred_blocks(self) -> str:
        """One '0'/'1' per block of the image being transferred, block 0 first."""

    def first_not_transferred_block(self) -> int: ...

    def transfer_enabled(self) -> bool: ...

    def set_transfer_enabled(self, enabled: bool) -> None: ...

    def transfer_status(self) -> int: ...

    def images_to_activate(self) -> list[ImageToActivateInfo]: ...

    def initiate(self, identifier: bytes, size: int) -> None: ...

    def transfer_block(self, number: int, value: bytes) -> None: ...

    def verify(self) -> None: ...

    def activate(self) -> None: ...


class ImageTransfer(CosemObject):
    CLASS_ID = 18
    VERSION = 0
    ATTRIBUTES = ("logical_name", "image_block_size", "image_transferred_blocks_status",
                  "image_first_not_transferred_block_number", "image_transfer_enabled", "image_transfer_status",
                  "image_to_activate_info")
    METHODS = ("image_transfer_initiate", "image_block_transfer", "image_verify", "image_activate")

    def __init__(self, logical_name, store: ImageTransferStore):
        super().__init__(logical_name)
        self.store = store

    # --- attributes -------------------------------------------------------------------
    def get_image_block_size(self, ctx) -> axdr.Data:
        return axdr.DoubleLongUnsigned(self.store.image_block_size)

    def get_image_transferred_blocks_status(self, ctx) -> axdr.Data:
        return axdr.BitString(self.store.transferred_blocks())

    def get_image_first_not_transferred_block_number(self, ctx) -> axdr.Data:
        return axdr.DoubleLongUnsigned(self.store.first_not_transferred_block())

    def get_image_transfer_enabled(self, ctx) -> axdr.Data:
        return axdr.Boolean(bool(self.store.transfer_enabled()))

    def set_image_transfer_enabled(self, value: axdr.Data, ctx) -> None:
        self.store.set_transfer_enabled(bool(expect(value, axdr.Boolean).value))

    def get_image_transfer_status(self, ctx) -> axdr.Data:
        return axdr.Enum(int(self.store.transfer_status()))

    def get_image_to_activate_info(self, ctx) -> axdr.Data:
        return axdr.Array(tuple(info.to_data() for info in self.store.images_to_activate()))

    # --- methods ----------------------------------------------------------------------
    def do_image_transfer_initiate(self, parameters, ctx) -> None:
        identifier, size = _fields(parameters, 2)
        self.store.initiate(_octets(identifier), _u32(size))
        return None

    def do_image_block_transfer(self, parameters, ctx) -> None:
        number, value = _fields(parameters, 2)
        self.store.transfer_block(_u32(number), _octets(value))
        return None

    def do_image_verify(self, parameters, ctx) -> None:
        _integer_zero(parameters)
        self.store.verify()
        return None

    def do_image_activate(self, parameters, ctx) -> None:
        _integer_zero(parameters)
        self.store.activate()
        return None


# --- strict parameter parsing ---------------------------------------------------------------


def _refuse(message: str) -> CosemError:
    return CosemError(ActionResult.TYPE_UNMATCHED, message)


def _fields(value, n: int) -> tuple:
    if not isinstance(value, axdr.Structure) or len(value.value) != n:
        raise _refuse(f"expected a structure of {n} elements, got {type(value).__name__}")
    return value.value


def _u32(value) -> int:
    # double-long-unsigned by the standard; any unsigned integer type in range is taken,
    # since clients differ in how they type small sizes and block numbers
    if not isinstance(value, axdr.INTEGER_TYPES) or isinstance(value, axdr.Enum) or not 0 <= value.value <= U32_MAX:
        raise _refuse(f"expected double-long-unsigned, got {value!r}")
    return int(value.value)


def _octets(value) -> bytes:
    if not isinstance(value, axdr.OctetString):
        raise _refuse(f"expected octet-string, got {type(value).__name__}")
    return value.value


def _integer_zero(value) -> None:
    # data ::= integer (0); a missing parameter is tolerated (some clients send none)
    if value is not None and not (isinstance(value, axdr.Integer) and value.value == 0):
        raise _refuse(f"expected integer (0), got {value!r}")


__all__ = ["ImageToActivateInfo", "ImageTransfer", "ImageTransferStatus", "ImageTransferStore"]
