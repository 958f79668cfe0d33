"""Decoders never crash: random and mutated bytes raise only DlmsError, and fast.

Each decoder gets (a) random bytes and (b) valid encodings mutated by bit flips,
truncation, extension and splicing with another valid encoding (the public
strategies of bijli.tools.testing.strategies, the ones a user's CI fuzzes with).
Anything but a DlmsError (IndexError, struct.error, ValueError, RecursionError, ...) fails, and
so does an example that takes longer than its deadline; a wall-clock assertion
bounds the slowest single decode.
"""

from __future__ import annotations

import time
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import acse, apdu, axdr, xdlms
from bijli.dlms.errors import DlmsError
from bijli.dlms.link import wrapper
from bijli.dlms.obis import Obis
from bijli.tools.testing import strategies as bst

FUZZ = settings(max_examples=300, deadline=timedelta(milliseconds=500))
SLOWEST_DECODE = 0.25  # CPU seconds of this thread (a busy machine does not count); real inputs decode in microseconds


def _survives(decode, data: bytes) -> None:
    start = time.thread_time()
    try:
        decode(data)
    except DlmsError:
        pass
    assert time.thread_time() - start < SLOWEST_DECODE


def _inputs(valid):
    return st.binary(max_size=64) | bst.mutated(valid)


_axdr_bytes = bst.encoded_data
_apdu_bytes = bst.encoded_apdus


@FUZZ
@given(_inputs(_axdr_bytes))
def test_axdr_decode_never_crashes(data):
    _survives(axdr.decode, data)


@FUZZ
@given(_inputs(_apdu_bytes))
def test_apdu_decode_never_crashes(data):
    _survives(apdu.decode, data)


@FUZZ
@given(_inputs(bst.aarqs.map(lambda a: a.encode())))
def test_aarq_decode_never_crashes(data):
    _survives(acse.AARQ.decode, data)


@FUZZ
@given(_inputs(bst.aares.map(lambda a: a.encode())))
def test_aare_decode_never_crashes(data):
    _survives(acse.AARE.decode, data)


@FUZZ
@given(_inputs(bst.rlrqs.map(lambda a: a.encode()) | bst.rlres.map(lambda a: a.encode())))
def test_release_decode_never_crashes(data):
    _survives(acse.RLRQ.decode, data)
    _survives(acse.RLRE.decode, data)


@FUZZ
@given(_inputs(bst.initiate_requests.map(lambda a: a.encode()) | bst.initiate_responses.map(lambda a: a.encode())))
def test_initiate_decode_never_crashes(data):
    _survives(xdlms.InitiateRequest.decode, data)
    _survives(xdlms.InitiateResponse.decode, data)


@FUZZ
@given(st.text(max_size=30) | st.text("0123456789.-:*& ", max_size=30) | bst.obis_codes.map(lambda o: o.iec()[:-1]))
def test_obis_parse_never_crashes(text):
    _survives(Obis.parse, text)


_frames = bst.wrapper_frames(st.binary(max_size=100))


@FUZZ
@given(_inputs(_frames))
def test_wrapper_decode_frame_never_crashes(data):
    _survives(wrapper.decode_frame, data)


@FUZZ
@given(st.lists(_inputs(_frames), max_size=5))
def test_wrapper_connection_never_crashes(chunks):
    conn = wrapper.WrapperConnection(1, 16)
    start = time.thread_time()
    try:
        for c in chunks:
            conn.receive_data(c)
            while conn.next_event() is not wrapper.NEED_DATA:
                pass
    except DlmsError:
        pass
    assert time.thread_time() - start < SLOWEST_DECODE


def test_worst_case_inputs_are_bounded():
    """Large claimed counts and lengths fail on the bytes present, not after allocating."""
    cases = [
        (axdr.decode, b"\x01\x84\xff\xff\xff\xff" + b"\x00" * 10),
        (axdr.decode, b"\x04\x84\xff\xff\xff\xff"),
        (axdr.decode, b"\x13\x01\xff\xff\x01\xff\xff\x11\x00"),
        (axdr.decode, b"\x02\x01" * 10_000),
        (apdu.decode, b"\xc0\x03\xc1\x84\xff\xff\xff\xff"),
        (apdu.decode, b"\xc4\x03\xc1\x82\xff\xff" + b"\x00\x00" * 1000),
    ]
    for decode, data in cases:
        _survives(decode, data)
