"""Service-specific block transfer for GET, SET and ACTION, IEC 62056-5-3 clauses
9.3.5 (GET with datablocks), 9.3.7 (SET with datablocks) and 9.3.9 (ACTION with
pblocks), from the server's seat. Sans-IO.

Two directions, one shape each:

* :class:`Outbound`: a response too long for the client's PDU (a long GET value, a
  long ACTION return) cut into numbered blocks from 1; the client pulls each next
  block naming the number of the last one it got (get-request-next /
  action-request-next-pblock).
* :class:`Inbound`: a request whose data comes in blocks (SET with datablocks,
  ACTION with pblocks), numbered from 1 and acknowledged one by one; the data is
  used after the block flagged last.

What differs between the services is only the APDU each answer is spelled with;
:data:`_SPELLING` holds that per :class:`BlockService`, so the server has one code path
for all three (general-block-transfer, the service-independent mechanism, is
:mod:`dlms.gbt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bijli.dlms import apdu
from bijli.dlms.apdu import ActionResult, DataAccessResult, DataBlockSA

MAX_LONG_TRANSFER = 1 << 20  # a long SET/ACTION request may not grow beyond this


class BlockService(Enum):
    GET = "get"
    SET = "set"
    ACTION = "action"


class Outcome(Enum):
    MORE = "more"  # acknowledge and wait for the next block
    COMPLETE = "complete"  # the last block came: the data is whole
    OUT_OF_SEQUENCE = "out of sequence"
    TOO_LONG = "too long"


@dataclass(slots=True)
class Outbound:
    """A long GET or ACTION response being sent block by block."""

    service: BlockService
    invoke_id: int
    data: bytes
    block_size: int
    sent: int = 0  # the number of the last block sent

    def next_block(self) -> bytes:
        start = self.sent * self.block_size
        chunk = self.data[start : start + self.block_size]
        self.sent += 1
        last = start + self.block_size >= len(self.data)
        if self.service is BlockService.ACTION:
            return apdu.ActionResponseWithPblock(self.invoke_id, DataBlockSA(last, self.sent, chunk)).encode()
        return apdu.GetResponseWithDatablock(self.invoke_id, last, self.sent, chunk).encode()

    @property
    def done(self) -> bool:
        return self.sent * self.block_size >= len(self.data)


@dataclass(slots=True)
class Inbound:
    """A long SET or ACTION request being received block by block."""

    service: BlockService
    invoke_id: int
    descriptor: apdu.AttributeDescriptor
    selection: apdu.AccessSelection | None
    received: int = 0  # the number of the last block taken
    parts: bytearray | None = None

    def take(self, block: DataBlockSA) -> Outcome:
        if block.block_number != self.received + 1:
            return Outcome.OUT_OF_SEQUENCE
        if self.parts is None:
            self.parts = bytearray()
        self.parts += block.raw_data
        self.received = block.block_number
        if len(self.parts) > MAX_LONG_TRANSFER:
            return Outcome.TOO_LONG
        return Outcome.COMPLETE if block.last_block else Outcome.MORE

    @property
    def data(self) -> bytes:
        return bytes(self.parts or b"")


# --- the answers, spelled per service -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spelling:
    no_transfer: int  # result when no transfer of this service is in progress
    aborted: int  # result when the transfer breaks off
    out_of_sequence: int


_SPELLING = {
    BlockService.GET: _Spelling(DataAccessResult.NO_LONG_GET_IN_PROGRESS, DataAccessResult.LONG_GET_ABORTED,
                                DataAccessResult.LONG_GET_ABORTED),
    BlockService.SET: _Spelling(DataAccessResult.NO_LONG_SET_IN_PROGRESS, DataAccessResult.LONG_SET_ABORTED,
                                DataAccessResult.DATA_BLOCK_NUMBER_INVALID),
    BlockService.ACTION: _Spelling(ActionResult.NO_LONG_ACTION_IN_PROGRESS, ActionResult.LONG_ACTION_ABORTED,
                                   ActionResult.LONG_ACTION_ABORTED),
}


def acknowledge(service: BlockService, invoke_id: int, block_number: int) -> bytes:
    """'Block received, send the next' for an inbound SET or ACTION."""
    if service is BlockService.SET:
        return apdu.SetResponseDatablock(invoke_id, block_number).encode()
    return apdu.ActionResponseNextPblock(invoke_id, block_number).encode()


def final(service: BlockService, invoke_id: int, result, block_number: int) -> bytes:
    """The closing answer of an inbound SET (with its block number) or ACTION carrying ``result``."""
    if service is BlockService.SET:
        return apdu.SetResponseLastDatablock(invoke_id, DataAccessResult(result), block_number).encode()
    if service is BlockService.ACTION:
        return apdu.ActionResponseNormal(invoke_id, ActionResult(result)).encode()
    return apdu.GetResponseWithDatablock(invoke_id, True, block_number, DataAccessResult(result)).encode()


def no_transfer(service: BlockService, invoke_id: int, block_number: int) -> bytes:
    return final(service, invoke_id, _SPELLING[service].no_transfer, block_number)


def aborted(service: BlockService, invoke_id: int, block_number: int) -> bytes:
    return final(service, invoke_id, _SPELLING[service].aborted, block_number)


def out_of_sequence(service: BlockService, invoke_id: int, block_number: int) -> bytes:
    return final(service, invoke_id, _SPELLING[service].out_of_sequence, block_number)
