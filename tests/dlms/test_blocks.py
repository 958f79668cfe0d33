"""Service-specific block transfer (dlms.blocks): what goes out in blocks comes back
whole, blocks out of sequence or beyond the size limit end the transfer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import apdu, blocks
from bijli.dlms.apdu import DataBlockSA
from bijli.dlms.obis import Obis

DESC = apdu.AttributeDescriptor(1, Obis(0, 0, 96, 1, 0, 255), 2)


@settings(max_examples=100)
@given(st.binary(max_size=3000), st.integers(16, 500), st.sampled_from([blocks.BlockService.GET,
                                                                      blocks.BlockService.ACTION]))
def test_outbound_blocks_reassemble(data, size, service):
    out = blocks.Outbound(service, 0xC1, data, size)
    got, numbers = b"", []
    while True:
        answer = apdu.decode(out.next_block())
        block = answer if service is blocks.BlockService.GET else answer.block
        raw = block.raw_data
        got += raw
        numbers.append(block.block_number)
        if block.last_block:
            break
    assert got == data and numbers == list(range(1, len(numbers) + 1)) and out.done


def test_inbound_takes_blocks_in_sequence_only():
    inbound = blocks.Inbound(blocks.BlockService.SET, 0xC1, DESC, None)
    assert inbound.take(DataBlockSA(False, 1, b"\x09")) is blocks.Outcome.MORE
    assert inbound.take(DataBlockSA(False, 3, b"x")) is blocks.Outcome.OUT_OF_SEQUENCE
    assert inbound.take(DataBlockSA(True, 2, b"\x01x")) is blocks.Outcome.COMPLETE
    assert inbound.data == b"\x09\x01x"
    big = blocks.Inbound(blocks.BlockService.ACTION, 0xC1, DESC, None)
    assert big.take(DataBlockSA(False, 1, bytes(blocks.MAX_LONG_TRANSFER + 1))) is blocks.Outcome.TOO_LONG


def test_answers_are_spelled_per_service():
    assert apdu.decode(blocks.acknowledge(blocks.BlockService.SET, 0xC1, 4)) == apdu.SetResponseDatablock(0xC1, 4)
    assert apdu.decode(blocks.acknowledge(blocks.BlockService.ACTION, 0xC1, 4)) == \
        apdu.ActionResponseNextPblock(0xC1, 4)
    assert apdu.decode(blocks.no_transfer(blocks.BlockService.GET, 0xC1, 2)) == apdu.GetResponseWithDatablock(
        0xC1, True, 2, apdu.DataAccessResult.NO_LONG_GET_IN_PROGRESS)
    assert apdu.decode(blocks.out_of_sequence(blocks.BlockService.SET, 0xC1, 2)) == apdu.SetResponseLastDatablock(
        0xC1, apdu.DataAccessResult.DATA_BLOCK_NUMBER_INVALID, 2)
    assert apdu.decode(blocks.aborted(blocks.BlockService.ACTION, 0xC1, 2)) == apdu.ActionResponseNormal(
        0xC1, apdu.ActionResult.LONG_ACTION_ABORTED)
