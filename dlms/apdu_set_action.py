"""The SET and ACTION service APDUs (IEC 62056-5-3 clause 9.3: Set-Request/Response and
Action-Request/Response in every CHOICE, ASN.1 of clause 9.5), and their decoders.

Part of :mod:`dlms.apdu`, which names each class as ``apdu.X`` too and decodes these
tags through the functions at the end here; they live apart only so that a client that
reads and never writes or invokes does not build twenty frozen dataclasses at start-up
(issue 16). The parts they share with GET (the reader, descriptors, selective access,
Get-Data-Result, DataBlock-SA) stay in :mod:`dlms.apdu` and are used from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bijli.dlms import axdr
from bijli.dlms.apdu import (AccessSelection, ActionResult, AttributeDescriptor, DataAccessResult, DataBlockSA,
                             GetDataResult, Tag, _Apdu, _encode_get_data_result, _enum, _read_get_data_result,
                             _Reader, _sel_bytes, _seq)
from bijli.dlms.axdr import Data
from bijli.dlms.errors import ApduError


@dataclass(frozen=True, slots=True)
class SetRequestNormal(_Apdu):
    invoke_id: int
    attribute: AttributeDescriptor
    value: Data
    access_selection: AccessSelection | None = None
    tag: ClassVar[int] = Tag.SET_REQUEST
    choice: ClassVar[int] = 1

    def encode(self) -> bytes:
        return (bytes((0xC1, 1, self.invoke_id)) + self.attribute.encode() + _sel_bytes(self.access_selection)
                + axdr.encode(self.value))


@dataclass(frozen=True, slots=True)
class SetRequestWithFirstDatablock(_Apdu):
    invoke_id: int
    attribute: AttributeDescriptor
    access_selection: AccessSelection | None
    block: DataBlockSA
    tag: ClassVar[int] = Tag.SET_REQUEST
    choice: ClassVar[int] = 2

    def encode(self) -> bytes:
        return (bytes((0xC1, 2, self.invoke_id)) + self.attribute.encode() + _sel_bytes(self.access_selection)
                + self.block.encode())


@dataclass(frozen=True, slots=True)
class SetRequestWithDatablock(_Apdu):
    invoke_id: int
    block: DataBlockSA
    tag: ClassVar[int] = Tag.SET_REQUEST
    choice: ClassVar[int] = 3

    def encode(self) -> bytes:
        return bytes((0xC1, 3, self.invoke_id)) + self.block.encode()


@dataclass(frozen=True, slots=True)
class SetRequestWithList(_Apdu):
    invoke_id: int
    attributes: tuple  # of (AttributeDescriptor, AccessSelection | None)
    values: tuple  # of Data
    tag: ClassVar[int] = Tag.SET_REQUEST
    choice: ClassVar[int] = 4

    def encode(self) -> bytes:
        return (bytes((0xC1, 4, self.invoke_id)) + _seq([d.encode() + _sel_bytes(s) for d, s in self.attributes])
                + _seq([axdr.encode(v) for v in self.values]))


@dataclass(frozen=True, slots=True)
class SetRequestWithListAndFirstDatablock(_Apdu):
    """The first block of a SET of several attributes whose values did not fit one APDU;
    the blocks together carry the SEQUENCE OF Data of the values."""

    invoke_id: int
    attributes: tuple  # of (AttributeDescriptor, AccessSelection | None)
    block: DataBlockSA
    tag: ClassVar[int] = Tag.SET_REQUEST
    choice: ClassVar[int] = 5

    def encode(self) -> bytes:
        return (bytes((0xC1, 5, self.invoke_id)) + _seq([d.encode() + _sel_bytes(s) for d, s in self.attributes])
                + self.block.encode())


@dataclass(frozen=True, slots=True)
class SetResponseNormal(_Apdu):
    invoke_id: int
    result: DataAccessResult
    tag: ClassVar[int] = Tag.SET_RESPONSE
    choice: ClassVar[int] = 1

    def encode(self) -> bytes:
        return bytes((0xC5, 1, self.invoke_id, self.result))


@dataclass(frozen=True, slots=True)
class SetResponseDatablock(_Apdu):
    invoke_id: int
    block_number: int
    tag: ClassVar[int] = Tag.SET_RESPONSE
    choice: ClassVar[int] = 2

    def encode(self) -> bytes:
        return bytes((0xC5, 2, self.invoke_id)) + self.block_number.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class SetResponseLastDatablock(_Apdu):
    invoke_id: int
    result: DataAccessResult
    block_number: int
    tag: ClassVar[int] = Tag.SET_RESPONSE
    choice: ClassVar[int] = 3

    def encode(self) -> bytes:
        return bytes((0xC5, 3, self.invoke_id, self.result)) + self.block_number.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class SetResponseLastDatablockWithList(_Apdu):
    invoke_id: int
    results: tuple  # of DataAccessResult
    block_number: int
    tag: ClassVar[int] = Tag.SET_RESPONSE
    choice: ClassVar[int] = 4

    def encode(self) -> bytes:
        return (bytes((0xC5, 4, self.invoke_id)) + _seq([bytes((r,)) for r in self.results])
                + self.block_number.to_bytes(4, "big"))


@dataclass(frozen=True, slots=True)
class SetResponseWithList(_Apdu):
    invoke_id: int
    results: tuple  # of DataAccessResult
    tag: ClassVar[int] = Tag.SET_RESPONSE
    choice: ClassVar[int] = 5

    def encode(self) -> bytes:
        return bytes((0xC5, 5, self.invoke_id)) + _seq([bytes((r,)) for r in self.results])


# --- ACTION -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionRequestNormal(_Apdu):
    invoke_id: int
    method: AttributeDescriptor  # attribute field holds the method id
    parameters: Data | None = None
    tag: ClassVar[int] = Tag.ACTION_REQUEST
    choice: ClassVar[int] = 1

    def encode(self) -> bytes:
        params = b"\x00" if self.parameters is None else b"\x01" + axdr.encode(self.parameters)
        return bytes((0xC3, 1, self.invoke_id)) + self.method.encode() + params


@dataclass(frozen=True, slots=True)
class ActionRequestNextPblock(_Apdu):
    invoke_id: int
    block_number: int
    tag: ClassVar[int] = Tag.ACTION_REQUEST
    choice: ClassVar[int] = 2

    def encode(self) -> bytes:
        return bytes((0xC3, 2, self.invoke_id)) + self.block_number.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class ActionRequestWithList(_Apdu):
    invoke_id: int
    methods: tuple  # of AttributeDescriptor
    parameters: tuple  # of Data
    tag: ClassVar[int] = Tag.ACTION_REQUEST
    choice: ClassVar[int] = 3

    def encode(self) -> bytes:
        return (bytes((0xC3, 3, self.invoke_id)) + _seq([m.encode() for m in self.methods])
                + _seq([axdr.encode(p) for p in self.parameters]))


@dataclass(frozen=True, slots=True)
class ActionRequestWithFirstPblock(_Apdu):
    invoke_id: int
    method: AttributeDescriptor
    block: DataBlockSA
    tag: ClassVar[int] = Tag.ACTION_REQUEST
    choice: ClassVar[int] = 4

    def encode(self) -> bytes:
        return bytes((0xC3, 4, self.invoke_id)) + self.method.encode() + self.block.encode()


@dataclass(frozen=True, slots=True)
class ActionRequestWithListAndFirstPblock(_Apdu):
    invoke_id: int
    methods: tuple  # of AttributeDescriptor
    block: DataBlockSA
    tag: ClassVar[int] = Tag.ACTION_REQUEST
    choice: ClassVar[int] = 5

    def encode(self) -> bytes:
        return bytes((0xC3, 5, self.invoke_id)) + _seq([m.encode() for m in self.methods]) + self.block.encode()


@dataclass(frozen=True, slots=True)
class ActionRequestWithPblock(_Apdu):
    invoke_id: int
    block: DataBlockSA
    tag: ClassVar[int] = Tag.ACTION_REQUEST
    choice: ClassVar[int] = 6

    def encode(self) -> bytes:
        return bytes((0xC3, 6, self.invoke_id)) + self.block.encode()


@dataclass(frozen=True, slots=True)
class ActionResponseNormal(_Apdu):
    invoke_id: int
    result: ActionResult
    return_parameters: GetDataResult | None = None
    tag: ClassVar[int] = Tag.ACTION_RESPONSE
    choice: ClassVar[int] = 1

    def encode(self) -> bytes:
        head = bytes((0xC7, 1, self.invoke_id, self.result))
        if self.return_parameters is None:
            return head + b"\x00"
        return head + b"\x01" + _encode_get_data_result(self.return_parameters)


@dataclass(frozen=True, slots=True)
class ActionResponseWithPblock(_Apdu):
    invoke_id: int
    block: DataBlockSA
    tag: ClassVar[int] = Tag.ACTION_RESPONSE
    choice: ClassVar[int] = 2

    def encode(self) -> bytes:
        return bytes((0xC7, 2, self.invoke_id)) + self.block.encode()


@dataclass(frozen=True, slots=True)
class ActionResponseWithList(_Apdu):
    invoke_id: int
    results: tuple  # of (ActionResult, GetDataResult | None)
    tag: ClassVar[int] = Tag.ACTION_RESPONSE
    choice: ClassVar[int] = 3

    def encode(self) -> bytes:
        items = []
        for result, ret in self.results:
            items.append(bytes((result,)) + (b"\x00" if ret is None else b"\x01" + _encode_get_data_result(ret)))
        return bytes((0xC7, 3, self.invoke_id)) + _seq(items)


@dataclass(frozen=True, slots=True)
class ActionResponseNextPblock(_Apdu):
    invoke_id: int
    block_number: int
    tag: ClassVar[int] = Tag.ACTION_RESPONSE
    choice: ClassVar[int] = 4

    def encode(self) -> bytes:
        return bytes((0xC7, 4, self.invoke_id)) + self.block_number.to_bytes(4, "big")


# --- decoding (dlms.apdu.decode calls these for the SET and ACTION tags) -------------


def decode_set_request(rd: _Reader, choice: int):
    iid = rd.u8()
    if choice == 1:
        desc = rd.descriptor()
        sel = rd.selection()
        return SetRequestNormal(iid, desc, rd.data(), sel)
    if choice == 2:
        desc = rd.descriptor()
        sel = rd.selection()
        return SetRequestWithFirstDatablock(iid, desc, sel, DataBlockSA.read(rd))
    if choice == 3:
        return SetRequestWithDatablock(iid, DataBlockSA.read(rd))
    if choice == 4:
        attrs = tuple((rd.descriptor(), rd.selection()) for _ in range(rd.count()))
        return SetRequestWithList(iid, attrs, tuple(rd.data() for _ in range(rd.count())))
    if choice == 5:
        attrs = tuple((rd.descriptor(), rd.selection()) for _ in range(rd.count()))
        return SetRequestWithListAndFirstDatablock(iid, attrs, DataBlockSA.read(rd))
    raise ApduError(f"set-request choice {choice}")


def decode_set_response(rd: _Reader, choice: int):
    iid = rd.u8()
    if choice == 1:
        return SetResponseNormal(iid, _enum(DataAccessResult, rd.u8()))
    if choice == 2:
        return SetResponseDatablock(iid, rd.u32())
    if choice == 3:
        result = _enum(DataAccessResult, rd.u8())
        return SetResponseLastDatablock(iid, result, rd.u32())
    if choice == 4:
        results = tuple(_enum(DataAccessResult, rd.u8()) for _ in range(rd.count()))
        return SetResponseLastDatablockWithList(iid, results, rd.u32())
    if choice == 5:
        return SetResponseWithList(iid, tuple(_enum(DataAccessResult, rd.u8()) for _ in range(rd.count())))
    raise ApduError(f"set-response choice {choice}")


def decode_action_request(rd: _Reader, choice: int):
    iid = rd.u8()
    if choice == 1:
        desc = rd.descriptor()
        return ActionRequestNormal(iid, desc, rd.data() if rd.optional() else None)
    if choice == 2:
        return ActionRequestNextPblock(iid, rd.u32())
    if choice == 3:
        methods = tuple(rd.descriptor() for _ in range(rd.count()))
        return ActionRequestWithList(iid, methods, tuple(rd.data() for _ in range(rd.count())))
    if choice == 4:
        return ActionRequestWithFirstPblock(iid, rd.descriptor(), DataBlockSA.read(rd))
    if choice == 5:
        methods = tuple(rd.descriptor() for _ in range(rd.count()))
        return ActionRequestWithListAndFirstPblock(iid, methods, DataBlockSA.read(rd))
    if choice == 6:
        return ActionRequestWithPblock(iid, DataBlockSA.read(rd))
    raise ApduError(f"action-request choice {choice}")


def _read_action_result(rd: _Reader):
    result = _enum(ActionResult, rd.u8())
    ret = _read_get_data_result(rd) if rd.optional() else None
    return result, ret


def decode_action_response(rd: _Reader, choice: int):
    iid = rd.u8()
    if choice == 1:
        return ActionResponseNormal(iid, *_read_action_result(rd))
    if choice == 2:
        return ActionResponseWithPblock(iid, DataBlockSA.read(rd))
    if choice == 3:
        return ActionResponseWithList(iid, tuple(_read_action_result(rd) for _ in range(rd.count())))
    if choice == 4:
        return ActionResponseNextPblock(iid, rd.u32())
    raise ApduError(f"action-response choice {choice}")
