"""The IEC 62056-47 wrapper: frames round-trip, and a TCP stream cut anywhere yields
the same APDUs in order (partial headers, several frames in one read)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.errors import DlmsError, LocalProtocolError, WrapperError
from bijli.dlms.link import wrapper
from bijli.tools.testing.strategies.link import wrapper_messages

messages = wrapper_messages()


@given(messages)
def test_frame_round_trip(m):
    raw = wrapper.encode_frame(m.source_wport, m.destination_wport, m.apdu)
    assert raw[:2] == b"\x00\x01" and int.from_bytes(raw[6:8], "big") == len(m.apdu)
    assert wrapper.decode_frame(raw) == m


@st.composite
def chunked_stream(draw):
    msgs = draw(st.lists(messages, max_size=8))
    stream = b"".join(wrapper.encode_frame(m.source_wport, m.destination_wport, m.apdu) for m in msgs)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    return msgs, chunks


@settings(max_examples=300)
@given(chunked_stream(), st.lists(st.sampled_from([bytes, bytearray, memoryview]), min_size=13, max_size=13))
def test_any_chunking_of_a_stream_yields_the_same_apdus(case, kinds):
    # a chunk is kept as it came while it is all there is: whatever buffer type a caller
    # hands over (and reuses afterwards), the APDUs come out as bytes of their own
    msgs, chunks = case
    conn = wrapper.WrapperConnection(1, 16)
    got = []
    for chunk, kind in zip(chunks, kinds):
        given_buffer = bytearray(chunk)
        conn.receive_data(kind(given_buffer) if kind is not bytes else chunk)
        given_buffer[:] = b"\xff" * len(given_buffer)  # the caller reuses its buffer
        while (ev := conn.next_event()) is not wrapper.NEED_DATA:
            assert type(ev.apdu) is bytes
            got.append(ev)
    assert got == msgs
    assert conn.buffered == 0


def test_several_apdus_in_one_read_and_a_split_header():
    a = wrapper.encode_frame(16, 1, b"\xc0\x01")
    b = wrapper.encode_frame(16, 1, b"\xc0\x02\x03")
    conn = wrapper.WrapperConnection(1, 16)
    conn.receive_data(a + b[:3])
    assert conn.next_event() == wrapper.ApduReceived(16, 1, b"\xc0\x01")
    assert conn.next_event() is wrapper.NEED_DATA
    conn.receive_data(b[3:])
    assert conn.next_event() == wrapper.ApduReceived(16, 1, b"\xc0\x02\x03")
    assert conn.next_event() is wrapper.NEED_DATA


def test_send_frames_with_our_wport():
    conn = wrapper.WrapperConnection(1, 16)
    assert conn.send(b"\x61\x00") == bytes.fromhex("0001 0001 0010 0002 6100")
    assert conn.send(b"", destination_wport=48)[:6] == bytes.fromhex("0001 0001 0030")
    with pytest.raises(LocalProtocolError):
        wrapper.WrapperConnection(1).send(b"x")
    with pytest.raises(LocalProtocolError):
        wrapper.encode_frame(1, 16, bytes(0x10000))


def test_bad_version_poisons_the_stream():
    conn = wrapper.WrapperConnection(1, 16)
    conn.receive_data(bytes.fromhex("0002 0010 0001 0000"))
    with pytest.raises(WrapperError):
        conn.next_event()
    conn.receive_data(wrapper.encode_frame(16, 1, b"ok"))
    with pytest.raises(WrapperError):  # no way to resynchronise a byte stream after a bad header
        conn.next_event()


def test_oversized_length_is_refused_before_buffering_it():
    conn = wrapper.WrapperConnection(1, 16, max_apdu=1024)
    conn.receive_data(bytes.fromhex("0001 0010 0001 ffff"))
    with pytest.raises(WrapperError):
        conn.next_event()


@pytest.mark.parametrize("datagram", ["", "000100100001", "0002001000010000", "0001001000010002aa", "0001001000010000bb"])
def test_udp_datagram_must_be_exactly_one_frame(datagram):
    with pytest.raises(WrapperError):
        wrapper.decode_frame(bytes.fromhex(datagram))
    assert issubclass(WrapperError, DlmsError)


def test_many_small_frames_in_one_read_is_linear():
    import time

    frame = wrapper.encode_frame(16, 1, b"\xc0\x01\xc1")
    conn = wrapper.WrapperConnection(1, 16)
    conn.receive_data(frame * 50_000)
    start = time.thread_time()
    n = 0
    while conn.next_event() is not wrapper.NEED_DATA:
        n += 1
    assert n == 50_000
    assert time.thread_time() - start < 2.0
