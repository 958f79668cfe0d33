"""xDLMS APDUs of the LN referencing services (IEC 62056-5-3 clause 9.3 and the
ASN.1 of clause 9.5), as frozen dataclasses with ``encode()`` and one
:func:`decode` entry point.

Covered: GET (normal, next, with-list; response normal, with-datablock,
with-list), SET (normal, with-first-datablock, with-datablock, with-list,
with-list-and-first-datablock; every response), ACTION (normal, next-pblock,
with-list, with-first-pblock, with-list-and-first-pblock, with-pblock; every
response), exception-response, confirmed-service-error,
event-notification-request, data-notification, general-block-transfer, and the
ciphered APDUs (glo-, ded-, general-glo-, general-ded- and general-ciphering) as
byte containers: what is inside them is the business of :mod:`dlms.protection`.
The SET and ACTION classes are defined in :mod:`dlms.apdu_set_action` and named
here too (``apdu.SetRequestNormal``), loaded on first use.

The hot path (a GET-request-normal in, a GET-response-normal out) is
hand-written because the meter answers tens of thousands of them a second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Union

from bijli.dlms import axdr
from bijli.dlms.axdr import Data
from bijli.dlms.errors import ApduError
from bijli.dlms.obis import Obis
from bijli.dlms.reader import Reader


class Tag(IntEnum):
    """XDLMS-APDU / ACSE-APDU CHOICE tags (IEC 62056-5-3 clause 9.5); SN-only services
    (read, write, information-report, ...) are left out: this stack is LN only."""

    INITIATE_REQUEST = 0x01
    INITIATE_RESPONSE = 0x08
    CONFIRMED_SERVICE_ERROR = 0x0E
    DATA_NOTIFICATION = 0x0F
    GLO_INITIATE_REQUEST = 0x21
    GLO_INITIATE_RESPONSE = 0x28
    GLO_CONFIRMED_SERVICE_ERROR = 0x2E
    DED_INITIATE_REQUEST = 0x41
    DED_INITIATE_RESPONSE = 0x48
    DED_CONFIRMED_SERVICE_ERROR = 0x4E
    AARQ = 0x60
    AARE = 0x61
    RLRQ = 0x62
    RLRE = 0x63
    GET_REQUEST = 0xC0
    SET_REQUEST = 0xC1
    EVENT_NOTIFICATION_REQUEST = 0xC2
    ACTION_REQUEST = 0xC3
    GET_RESPONSE = 0xC4
    SET_RESPONSE = 0xC5
    ACTION_RESPONSE = 0xC7
    GLO_GET_REQUEST = 0xC8
    GLO_SET_REQUEST = 0xC9
    GLO_EVENT_NOTIFICATION_REQUEST = 0xCA
    GLO_ACTION_REQUEST = 0xCB
    GLO_GET_RESPONSE = 0xCC
    GLO_SET_RESPONSE = 0xCD
    GLO_ACTION_RESPONSE = 0xCF
    DED_GET_REQUEST = 0xD0
    DED_SET_REQUEST = 0xD1
    DED_EVENT_NOTIFICATION_REQUEST = 0xD2
    DED_ACTION_REQUEST = 0xD3
    DED_GET_RESPONSE = 0xD4
    DED_SET_RESPONSE = 0xD5
    DED_ACTION_RESPONSE = 0xD7
    EXCEPTION_RESPONSE = 0xD8
    ACCESS_REQUEST = 0xD9
    ACCESS_RESPONSE = 0xDA
    GENERAL_GLO_CIPHERING = 0xDB
    GENERAL_DED_CIPHERING = 0xDC
    GENERAL_CIPHERING = 0xDD
    GENERAL_SIGNING = 0xDF
    GENERAL_BLOCK_TRANSFER = 0xE0


GLO_TAGS = frozenset(
    (Tag.GLO_GET_REQUEST, Tag.GLO_SET_REQUEST, Tag.GLO_EVENT_NOTIFICATION_REQUEST, Tag.GLO_ACTION_REQUEST,
     Tag.GLO_GET_RESPONSE, Tag.GLO_SET_RESPONSE, Tag.GLO_ACTION_RESPONSE,
     Tag.GLO_INITIATE_REQUEST, Tag.GLO_INITIATE_RESPONSE, Tag.GLO_CONFIRMED_SERVICE_ERROR)
)
DED_TAGS = frozenset(
    (Tag.DED_GET_REQUEST, Tag.DED_SET_REQUEST, Tag.DED_EVENT_NOTIFICATION_REQUEST, Tag.DED_ACTION_REQUEST,
     Tag.DED_GET_RESPONSE, Tag.DED_SET_RESPONSE, Tag.DED_ACTION_RESPONSE,
     Tag.DED_INITIATE_REQUEST, Tag.DED_INITIATE_RESPONSE, Tag.DED_CONFIRMED_SERVICE_ERROR)
)
# the plain APDU tag each service-specific ciphered tag stands for
PLAIN_OF_CIPHERED = {
    Tag.GLO_GET_REQUEST: Tag.GET_REQUEST, Tag.GLO_SET_REQUEST: Tag.SET_REQUEST,
    Tag.GLO_EVENT_NOTIFICATION_REQUEST: Tag.EVENT_NOTIFICATION_REQUEST, Tag.GLO_ACTION_REQUEST: Tag.ACTION_REQUEST,
    Tag.GLO_GET_RESPONSE: Tag.GET_RESPONSE, Tag.GLO_SET_RESPONSE: Tag.SET_RESPONSE,
    Tag.GLO_ACTION_RESPONSE: Tag.ACTION_RESPONSE, Tag.GLO_INITIATE_REQUEST: Tag.INITIATE_REQUEST,
    Tag.GLO_INITIATE_RESPONSE: Tag.INITIATE_RESPONSE, Tag.GLO_CONFIRMED_SERVICE_ERROR: Tag.CONFIRMED_SERVICE_ERROR,
    Tag.DED_GET_REQUEST: Tag.GET_REQUEST, Tag.DED_SET_REQUEST: Tag.SET_REQUEST,
    Tag.DED_EVENT_NOTIFICATION_REQUEST: Tag.EVENT_NOTIFICATION_REQUEST, Tag.DED_ACTION_REQUEST: Tag.ACTION_REQUEST,
    Tag.DED_GET_RESPONSE: Tag.GET_RESPONSE, Tag.DED_SET_RESPONSE: Tag.SET_RESPONSE,
    Tag.DED_ACTION_RESPONSE: Tag.ACTION_RESPONSE, Tag.DED_INITIATE_REQUEST: Tag.INITIATE_REQUEST,
    Tag.DED_INITIATE_RESPONSE: Tag.INITIATE_RESPONSE, Tag.DED_CONFIRMED_SERVICE_ERROR: Tag.CONFIRMED_SERVICE_ERROR,
}
GLO_OF_PLAIN = {plain: c for c, plain in PLAIN_OF_CIPHERED.items() if c in GLO_TAGS}
DED_OF_PLAIN = {plain: c for c, plain in PLAIN_OF_CIPHERED.items() if c in DED_TAGS}


class DataAccessResult(IntEnum):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


class ActionResult(IntEnum):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_ACTION_ABORTED = 15
    NO_LONG_ACTION_IN_PROGRESS = 16
    OTHER_REASON = 250


class StateError(IntEnum):
    SERVICE_NOT_ALLOWED = 1
    SERVICE_UNKNOWN = 2


class ServiceErrorCode(IntEnum):
    OPERATION_NOT_POSSIBLE = 1
    SERVICE_NOT_SUPPORTED = 2
    OTHER_REASON = 3
    PDU_TOO_LONG = 4
    DECIPHERING_ERROR = 5
    INVOCATION_COUNTER_ERROR = 6


def _enum(kind, value):
    try:
        return kind(value)
    except ValueError:
        raise ApduError(f"unknown {kind.__name__} value {value}") from None


# --- common parts --------------------------------------------------------------------

_DESC = struct.Struct(">H6sb")  # class-id, instance-id (logical name), attribute-id/method-id


@dataclass(frozen=True, slots=True)
class AttributeDescriptor:
    """Cosem-Attribute-Descriptor: class-id, instance-id, attribute-id (also used for methods)."""

    class_id: int
    instance: Obis
    attribute: int

    def encode(self) -> bytes:
        return _DESC.pack(self.class_id, bytes(self.instance), self.attribute)


@dataclass(frozen=True, slots=True)
class AccessSelection:
    """Selective access: selector (1 = range, 2 = entry for profile generic) and its parameters."""

    selector: int
    parameters: Data

    def encode(self) -> bytes:
        return bytes((self.selector,)) + axdr.encode(self.parameters)


class _Reader(Reader):
    """The bounded reader (:mod:`dlms.reader`) with the xDLMS reads on top: Data,
    attribute descriptors and selective access."""

    __slots__ = ()

    def __init__(self, buf: bytes, pos: int = 0):
        super().__init__(buf, pos, ApduError)

    def data(self) -> Data:
        value, self.pos = axdr.decode_prefix(self.buf, self.pos)
        return value

    def descriptor(self) -> AttributeDescriptor:
        end = self.pos + 9
        if end > len(self.buf):
            raise ApduError("truncated attribute descriptor")
        class_id, ln, attr = _DESC.unpack_from(self.buf, self.pos)
        self.pos = end
        return AttributeDescriptor(class_id, Obis(*ln), attr)

    def selection(self) -> AccessSelection | None:
        if not self.optional():
            return None
        selector = self.u8()
        return AccessSelection(selector, self.data())


def _sel_bytes(sel: AccessSelection | None) -> bytes:
    return b"\x00" if sel is None else b"\x01" + sel.encode()


def _seq(items) -> bytes:
    return axdr.encode_length(len(items)) + b"".join(items)


# --- Get-Data-Result: data or data-access-result --------------------------------------

GetDataResult = Union[Data, DataAccessResult]


def _encode_get_data_result(r: GetDataResult) -> bytes:
    if isinstance(r, DataAccessResult):
        return bytes((1, r))
    return b"\x00" + axdr.encode(r)


def _read_get_data_result(rd: _Reader) -> GetDataResult:
    choice = rd.u8()
    if choice == 0:
        return rd.data()
    if choice == 1:
        return _enum(DataAccessResult, rd.u8())
    raise ApduError(f"Get-Data-Result choice {choice}")


# --- GET ----------------------------------------------------------------------------


class _Apdu:
    __slots__ = ()
    tag: ClassVar[int]
    choice: ClassVar[int]


@dataclass(frozen=True, slots=True)
class GetRequestNormal(_Apdu):
    invoke_id: int
    attribute: AttributeDescriptor
    access_selection: AccessSelection | None = None
    tag: ClassVar[int] = Tag.GET_REQUEST
    choice: ClassVar[int] = 1

    def encode(self) -> bytes:
        return bytes((0xC0, 1, self.invoke_id)) + self.attribute.encode() + _sel_bytes(self.access_selection)


@dataclass(frozen=True, slots=True)
class GetRequestNext(_Apdu):
    invoke_id: int
    block_number: int
    tag: ClassVar[int] = Tag.GET_REQUEST
    choice: ClassVar[int] = 2

    def encode(self) -> bytes:
        return bytes((0xC0, 2, self.invoke_id)) + self.block_number.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class GetRequestWithList(_Apdu):
    invoke_id: int
    attributes: tuple  # of (AttributeDescriptor, AccessSelection | None)
    tag: ClassVar[int] = Tag.GET_REQUEST
    choice: ClassVar[int] = 3

    def encode(self) -> bytes:
        return bytes((0xC0, 3, self.invoke_id)) + _seq([d.encode() + _sel_bytes(s) for d, s in self.attributes])


@dataclass(frozen=True, slots=True)
class GetResponseNormal(_Apdu):
    invoke_id: int
    result: GetDataResult
    tag: ClassVar[int] = Tag.GET_RESPONSE
    choice: ClassVar[int] = 1

    def encode(self) -> bytes:
        return bytes((0xC4, 1, self.invoke_id)) + _encode_get_data_result(self.result)


@dataclass(frozen=True, slots=True)
class GetResponseWithDatablock(_Apdu):
    """One block of a long GET; ``raw_data`` is a slice of the A-XDR encoded value."""

    invoke_id: int
    last_block: bool
    block_number: int
    raw_data: bytes | DataAccessResult
    tag: ClassVar[int] = Tag.GET_RESPONSE
    choice: ClassVar[int] = 2

    def encode(self) -> bytes:
        head = bytes((0xC4, 2, self.invoke_id, 1 if self.last_block else 0)) + self.block_number.to_bytes(4, "big")
        if isinstance(self.raw_data, DataAccessResult):
            return head + bytes((1, self.raw_data))
        return head + b"\x00" + axdr.encode_length(len(self.raw_data)) + self.raw_data


@dataclass(frozen=True, slots=True)
class GetResponseWithList(_Apdu):
    invoke_id: int
    results: tuple  # of GetDataResult
    tag: ClassVar[int] = Tag.GET_RESPONSE
    choice: ClassVar[int] = 3

    def encode(self) -> bytes:
        return bytes((0xC4, 3, self.invoke_id)) + _seq([_encode_get_data_result(r) for r in self.results])


# --- SET and ACTION ---------------------------------------------------------------
# Their blocks are here; their 20 APDU classes are in :mod:`dlms.apdu_set_action`, loaded
# the first time one is named (module ``__getattr__`` below) or decoded: a client that
# only reads (``bijli read``) never builds them, and building a frozen dataclass is most
# of this module's import (issue 16: ~17 ms of a one-shot read's start-up for these).


@dataclass(frozen=True, slots=True)
class DataBlockSA:
    """DataBlock-SA: a block of a long SET or ACTION (last-block, block-number, raw-data)."""

    last_block: bool
    block_number: int
    raw_data: bytes

    def encode(self) -> bytes:
        return (bytes((1 if self.last_block else 0,)) + self.block_number.to_bytes(4, "big")
                + axdr.encode_length(len(self.raw_data)) + self.raw_data)

    @classmethod
    def read(cls, rd: _Reader) -> "DataBlockSA":
        return cls(rd.boolean(), rd.u32(), rd.octets())


# --- errors, notifications, block transfer, ciphered containers ------------------------


@dataclass(frozen=True, slots=True)
class ExceptionResponse(_Apdu):
    """exception-response: state-error, then the service-error CHOICE, whose
    invocation-counter-error [6] alternative carries the server's expected IC
    (Unsigned32); every other alternative is NULL."""

    state_error: StateError
    service_error: ServiceErrorCode
    invocation_counter: int | None = None  # only with INVOCATION_COUNTER_ERROR
    tag: ClassVar[int] = Tag.EXCEPTION_RESPONSE

    def encode(self) -> bytes:
        head = bytes((0xD8, self.state_error, self.service_error))
        if self.service_error == ServiceErrorCode.INVOCATION_COUNTER_ERROR:
            return head + (self.invocation_counter or 0).to_bytes(4, "big")
        if self.invocation_counter is not None:
            raise ApduError("only invocation-counter-error carries an invocation counter")
        return head


@dataclass(frozen=True, slots=True)
class ConfirmedServiceError(_Apdu):
    """confirmed-service-error: which service failed ([1] initiate, [5] read ...) and the ServiceError."""

    service: int
    error_class: int
    error_value: int
    tag: ClassVar[int] = Tag.CONFIRMED_SERVICE_ERROR

    def encode(self) -> bytes:
        return bytes((0x0E, self.service, self.error_class, self.error_value))


@dataclass(frozen=True, slots=True)
class DataNotification(_Apdu):
    long_invoke_id: int
    date_time: axdr.CosemDateTime | None
    body: Data
    tag: ClassVar[int] = Tag.DATA_NOTIFICATION

    def encode(self) -> bytes:
        dt = b"\x00" if self.date_time is None else b"\x0c" + self.date_time.encode()
        return b"\x0f" + self.long_invoke_id.to_bytes(4, "big") + dt + axdr.encode(self.body)


@dataclass(frozen=True, slots=True)
class EventNotificationRequest(_Apdu):
    time: axdr.CosemDateTime | None
    attribute: AttributeDescriptor
    value: Data
    tag: ClassVar[int] = Tag.EVENT_NOTIFICATION_REQUEST

    def encode(self) -> bytes:
        t = b"\x00" if self.time is None else b"\x01\x0c" + self.time.encode()
        return b"\xc2" + t + self.attribute.encode() + axdr.encode(self.value)


@dataclass(frozen=True, slots=True)
class GeneralBlockTransfer(_Apdu):
    """general-block-transfer: block-control (last-block, streaming, window), block
    number, the number of the last block received, and a slice of the APDU."""

    last_block: bool
    streaming: bool
    window: int
    block_number: int
    block_number_ack: int
    block_data: bytes
    tag: ClassVar[int] = Tag.GENERAL_BLOCK_TRANSFER

    def encode(self) -> bytes:
        if not 0 <= self.window <= 63:
            raise ApduError("GBT window must be 0..63")
        control = (0x80 if self.last_block else 0) | (0x40 if self.streaming else 0) | self.window
        return (bytes((0xE0, control)) + self.block_number.to_bytes(2, "big")
                + self.block_number_ack.to_bytes(2, "big") + axdr.encode_length(len(self.block_data))
                + self.block_data)


@dataclass(frozen=True, slots=True)
class CipheredApdu(_Apdu):
    """glo-xxx / ded-xxx: ``tag`` then an octet string holding security header + ciphertext."""

    cipher_tag: int
    content: bytes

    def encode(self) -> bytes:
        return bytes((self.cipher_tag,)) + axdr.encode_length(len(self.content)) + self.content

    @property
    def tag(self) -> int:  # type: ignore[override]
        return self.cipher_tag


@dataclass(frozen=True, slots=True)
class GeneralGloCiphering(_Apdu):
    """general-glo-ciphering (0xDB) / general-ded-ciphering (0xDC): the sender's system
    title, then the ciphered content (security header, ciphertext, tag)."""

    cipher_tag: int
    system_title: bytes
    content: bytes

    def encode(self) -> bytes:
        return (bytes((self.cipher_tag,)) + axdr.encode_length(len(self.system_title)) + self.system_title
                + axdr.encode_length(len(self.content)) + self.content)

    @property
    def tag(self) -> int:  # type: ignore[override]
        return self.cipher_tag


class KeyInfoKind(IntEnum):
    """The Key-Info CHOICE of general-ciphering (IEC 62056-5-3 clause 9.5)."""

    IDENTIFIED_KEY = 0  # key-id: 0 global unicast, 1 global broadcast encryption key
    WRAPPED_KEY = 1  # kek-id 0 (master key) and the key wrapped under it (RFC 3394)
    AGREED_KEY = 2  # key-parameters and key-ciphered-data of a key agreement (suites 1 and 2)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kind: KeyInfoKind
    key_id: int = 0  # key-id (identified) or kek-id (wrapped)
    key_parameters: bytes = b""  # agreed only
    key_ciphered_data: bytes = b""  # wrapped and agreed

    def encode(self) -> bytes:
        if self.kind is KeyInfoKind.IDENTIFIED_KEY:
            return bytes((self.kind, self.key_id))
        if self.kind is KeyInfoKind.WRAPPED_KEY:
            return bytes((self.kind, self.key_id)) + axdr.encode_length(len(self.key_ciphered_data)) \
                + self.key_ciphered_data
        return (bytes((self.kind,)) + axdr.encode_length(len(self.key_parameters)) + self.key_parameters
                + axdr.encode_length(len(self.key_ciphered_data)) + self.key_ciphered_data)

    @classmethod
    def read(cls, rd: "_Reader") -> "KeyInfo":
        kind = _enum(KeyInfoKind, rd.u8())
        if kind is KeyInfoKind.IDENTIFIED_KEY:
            return cls(kind, rd.u8())
        if kind is KeyInfoKind.WRAPPED_KEY:
            return cls(kind, rd.u8(), b"", rd.octets())
        return cls(kind, 0, rd.octets(), rd.octets())


@dataclass(frozen=True, slots=True)
class GeneralCiphering(_Apdu):
    """general-ciphering (0xDD): transaction-id, originator and recipient system titles,
    date-time, other-information, an optional Key-Info naming the key, and the ciphered
    content (security header, ciphertext, tag), IEC 62056-5-3 clause 9.5."""

    transaction_id: bytes
    originator_system_title: bytes
    recipient_system_title: bytes
    date_time: bytes
    other_information: bytes
    key_info: KeyInfo | None
    content: bytes
    tag: ClassVar[int] = Tag.GENERAL_CIPHERING

    def encode(self) -> bytes:
        out = bytearray((Tag.GENERAL_CIPHERING,))
        for field in (self.transaction_id, self.originator_system_title, self.recipient_system_title,
                      self.date_time, self.other_information):
            out += axdr.encode_length(len(field)) + field
        out += b"\x00" if self.key_info is None else b"\x01" + self.key_info.encode()
        out += axdr.encode_length(len(self.content)) + self.content
        return bytes(out)


# --- decoding --------------------------------------------------------------------------


def _decode_get_request(rd: _Reader, choice: int):
    iid = rd.u8()
    if choice == 1:
        return GetRequestNormal(iid, rd.descriptor(), rd.selection())
    if choice == 2:
        return GetRequestNext(iid, rd.u32())
    if choice == 3:
        return GetRequestWithList(iid, tuple((rd.descriptor(), rd.selection()) for _ in range(rd.count())))
    raise ApduError(f"get-request choice {choice}")


def _decode_get_response(rd: _Reader, choice: int):
    iid = rd.u8()
    if choice == 1:
        return GetResponseNormal(iid, _read_get_data_result(rd))
    if choice == 2:
        last = rd.boolean()
        number = rd.u32()
        sel = rd.u8()
        if sel == 0:
            return GetResponseWithDatablock(iid, last, number, rd.octets())
        if sel == 1:
            return GetResponseWithDatablock(iid, last, number, _enum(DataAccessResult, rd.u8()))
        raise ApduError(f"DataBlock-G result choice {sel}")
    if choice == 3:
        return GetResponseWithList(iid, tuple(_read_get_data_result(rd) for _ in range(rd.count())))
    raise ApduError(f"get-response choice {choice}")



def _decode_set_request(rd: _Reader, choice: int):
    from bijli.dlms.apdu_set_action import decode_set_request

    return decode_set_request(rd, choice)


def _decode_set_response(rd: _Reader, choice: int):
    from bijli.dlms.apdu_set_action import decode_set_response

    return decode_set_response(rd, choice)


def _decode_action_request(rd: _Reader, choice: int):
    from bijli.dlms.apdu_set_action import decode_action_request

    return decode_action_request(rd, choice)


def _decode_action_response(rd: _Reader, choice: int):
    from bijli.dlms.apdu_set_action import decode_action_response

    return decode_action_response(rd, choice)


_SERVICE_DECODERS = {
    Tag.GET_REQUEST: _decode_get_request,
    Tag.GET_RESPONSE: _decode_get_response,
    Tag.SET_REQUEST: _decode_set_request,
    Tag.SET_RESPONSE: _decode_set_response,
    Tag.ACTION_REQUEST: _decode_action_request,
    Tag.ACTION_RESPONSE: _decode_action_response,
}

Apdu = _Apdu

#: the APDU classes defined in :mod:`dlms.apdu_set_action`, named here as ``apdu.X`` too
SET_ACTION_APDUS = frozenset((
    "SetRequestNormal",
    "SetRequestWithFirstDatablock",
    "SetRequestWithDatablock",
    "SetRequestWithList",
    "SetRequestWithListAndFirstDatablock",
    "SetResponseNormal",
    "SetResponseDatablock",
    "SetResponseLastDatablock",
    "SetResponseLastDatablockWithList",
    "SetResponseWithList",
    "ActionRequestNormal",
    "ActionRequestNextPblock",
    "ActionRequestWithList",
    "ActionRequestWithFirstPblock",
    "ActionRequestWithListAndFirstPblock",
    "ActionRequestWithPblock",
    "ActionResponseNormal",
    "ActionResponseWithPblock",
    "ActionResponseWithList",
    "ActionResponseNextPblock",
))


def __getattr__(name: str):
    """PEP 562: ``apdu.SetRequestNormal`` and the other SET/ACTION classes, loaded on first
    use and then kept in this module's namespace, so later lookups cost nothing extra."""
    if name in SET_ACTION_APDUS:
        from bijli.dlms import apdu_set_action

        value = globals()[name] = getattr(apdu_set_action, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_DESCRIPTORS: dict[bytes, AttributeDescriptor] = {}
_DESCRIPTORS_KEPT = 1024


def decode(buf: bytes):
    """Decode one xDLMS APDU (not ACSE: see :mod:`dlms.acse`). Raises only ApduError/AxdrError."""
    if not buf:
        raise ApduError("empty APDU")
    # hot path: a get-request-normal without selective access; a head-end reads the same
    # few attributes over and over, so their descriptors (frozen values) are kept
    if len(buf) == 13 and buf[0] == 0xC0 and buf[1] == 1 and buf[12] == 0:
        key = bytes(buf[3:12])
        desc = _DESCRIPTORS.get(key)
        if desc is None:
            class_id, ln, attr = _DESC.unpack_from(buf, 3)
            desc = AttributeDescriptor(class_id, Obis(*ln), attr)
            if len(_DESCRIPTORS) >= _DESCRIPTORS_KEPT:
                _DESCRIPTORS.clear()  # a peer walking every OBIS code cannot grow it without bound
            _DESCRIPTORS[key] = desc
        return GetRequestNormal(buf[2], desc, None)
    rd = _Reader(buf, 1)
    tag = buf[0]
    fn = _SERVICE_DECODERS.get(tag)
    if fn is not None:
        result = fn(rd, rd.u8())
    elif tag == Tag.EXCEPTION_RESPONSE:
        state = _enum(StateError, rd.u8())
        service = _enum(ServiceErrorCode, rd.u8())
        ic = rd.u32() if service == ServiceErrorCode.INVOCATION_COUNTER_ERROR else None
        result = ExceptionResponse(state, service, ic)
    elif tag == Tag.CONFIRMED_SERVICE_ERROR:
        result = ConfirmedServiceError(rd.u8(), rd.u8(), rd.u8())
    elif tag == Tag.DATA_NOTIFICATION:
        iid = rd.u32()
        n = rd.length()
        if n not in (0, 12):
            raise ApduError(f"data-notification date-time of {n} octets")
        dt = axdr.CosemDateTime.decode(rd.take(12)) if n else None
        result = DataNotification(iid, dt, rd.data())
    elif tag == Tag.EVENT_NOTIFICATION_REQUEST:
        t = None
        if rd.optional():
            if rd.length() != 12:
                raise ApduError("event-notification time must be 12 octets")
            t = axdr.CosemDateTime.decode(rd.take(12))
        desc = rd.descriptor()
        result = EventNotificationRequest(t, desc, rd.data())
    elif tag == Tag.GENERAL_BLOCK_TRANSFER:
        control = rd.u8()
        number = rd.u16()
        ack = rd.u16()
        result = GeneralBlockTransfer(bool(control & 0x80), bool(control & 0x40), control & 0x3F, number, ack, rd.octets())
    elif tag in GLO_TAGS or tag in DED_TAGS:
        result = CipheredApdu(tag, rd.octets())
    elif tag in (Tag.GENERAL_GLO_CIPHERING, Tag.GENERAL_DED_CIPHERING):
        title = rd.octets()
        result = GeneralGloCiphering(tag, title, rd.octets())
    elif tag == Tag.GENERAL_CIPHERING:
        fields = tuple(rd.octets() for _ in range(5))
        key_info = KeyInfo.read(rd) if rd.optional() else None
        result = GeneralCiphering(*fields, key_info, rd.octets())
    else:
        raise ApduError(f"unknown APDU tag 0x{tag:02x}")
    rd.end()
    return result
