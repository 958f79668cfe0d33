"""The HDLC frame codec (IEC 62056-46 frame format type 3): round trips, known
answers laid out by hand from the standard's figure, and bad input."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.errors import DlmsError, FrameError, HdlcError
from bijli.dlms.link.hdlc_frame import (
    Frame,
    FrameEncoder,
    FrameReader,
    FrameType,
    HdlcAddress,
    HdlcParameters,
    decode_frame,
    decode_parameters,
    encode_frame,
    encode_parameters,
)
from bijli.tools.testing.strategies.link import hdlc_addresses, hdlc_frames

from .test_crc import bitwise_x25


def crc(data: bytes) -> bytes:
    return bitwise_x25(data).to_bytes(2, "little")


def lay_out(fmt_len_seg: tuple[int, bool], header: bytes, info: bytes = b"") -> bytes:
    """A frame built by hand: 7E, format, header, [HCS, info], FCS, 7E."""
    length, seg = fmt_len_seg
    fmt = bytes((0xA0 | (0x08 if seg else 0) | (length >> 8), length & 0xFF))
    body = fmt + header
    if info:
        body += crc(body) + info
    return b"\x7e" + body + crc(body) + b"\x7e"


SERVER_1 = HdlcAddress(1)
CLIENT_16 = HdlcAddress(16)


# --- known answers ---------------------------------------------------------------------
def test_classic_snrm_from_client_16_to_server_1():
    wire = bytes.fromhex("7EA007032193 0F017E".replace(" ", ""))
    assert wire == lay_out((7, False), bytes((0x03, 0x21, 0x93)))
    f = decode_frame(wire)
    assert f == Frame(FrameType.SNRM, SERVER_1, CLIENT_16, b"", True)
    assert encode_frame(f) == wire


def test_snrm_with_a_four_byte_server_address():
    # upper address 1 -> 00 02, lower address 17 -> 00 23 (extension bit on the last byte)
    head = bytes.fromhex("00020023") + b"\x21\x93"
    wire = lay_out((10, False), head)
    assert wire[:9] == bytes.fromhex("7EA00A000200232193")
    f = decode_frame(wire)
    assert f.destination == HdlcAddress(1, 17, 4)
    assert f.source == CLIENT_16 and f.kind is FrameType.SNRM and f.poll_final
    assert encode_frame(f) == wire


def test_two_byte_server_address():
    wire = lay_out((8, False), bytes.fromhex("0221") + b"\x21\x93")  # upper 1, lower 16
    assert decode_frame(wire).destination == HdlcAddress(1, 16, 2)


def test_i_frame_by_hand():
    # Get-Request-Normal for 0.0.96.1.0.255 attribute 2 behind the LLC header E6 E6 00
    apdu = bytes.fromhex("C001C100010000600100FF0200")
    info = b"\xe6\xe6\x00" + apdu
    # I frame N(S)=2, N(R)=5, P: control = 101 1 010 0
    control = (5 << 5) | 0x10 | (2 << 1)
    assert control == 0xB4
    length = 2 + 1 + 1 + 1 + 2 + len(info) + 2
    wire = lay_out((length, False), bytes((0x03, 0x21, control)), info)
    f = decode_frame(wire)
    assert f == Frame(FrameType.I, SERVER_1, CLIENT_16, info, True, 2, 5, False)
    assert encode_frame(f) == wire


def test_segmented_i_frame_sets_the_format_bit():
    info = bytes(range(128))
    f = Frame(FrameType.I, CLIENT_16, HdlcAddress(1, 16), info, False, 3, 1, True)
    wire = encode_frame(f)
    assert wire[1] & 0x08 and wire[1] >> 4 == 0xA
    assert wire == lay_out((len(wire) - 2, True), bytes((0x21, 0x02, 0x21, (1 << 5) | (3 << 1))), info)
    assert decode_frame(wire) == f


@pytest.mark.parametrize(
    "kind, control",
    [(FrameType.RR, 0x51), (FrameType.RNR, 0x55), (FrameType.DISC, 0x53), (FrameType.UA, 0x73),
     (FrameType.DM, 0x1F), (FrameType.FRMR, 0x97), (FrameType.UI, 0x13), (FrameType.SNRM, 0x93)],
)
def test_control_fields(kind, control):
    nr = 2 if kind in (FrameType.RR, FrameType.RNR) else 0
    f = Frame(kind, CLIENT_16, SERVER_1, b"", True, 0, nr)
    assert encode_frame(f)[5] == control
    assert decode_frame(encode_frame(f)) == f


def test_parameter_field_known_answer():
    field = encode_parameters(HdlcParameters(128, 128, 1, 1))
    assert field == bytes.fromhex("818012050180060180070400000001080400000001")
    assert decode_parameters(bytes.fromhex("8180140502 00AA 0602015E 070400000002 080400000006".replace(" ", ""))) == \
        HdlcParameters(0xAA, 0x15E, 2, 6)
    # absent parameters keep their defaults; an empty field is all defaults
    assert decode_parameters(bytes.fromhex("818003 070102")) == HdlcParameters(128, 128, 2, 1)
    assert decode_parameters(b"") == HdlcParameters(128, 128, 1, 1)
    # more than a frame or the modulo-8 count can carry is clamped, not refused
    big = bytes.fromhex("818010" "05021000" "060400010000" "070108" "080109")
    assert decode_parameters(big) == HdlcParameters(2047, 2047, 7, 7)


@pytest.mark.parametrize(
    "bad",
    ["8180", "828003070101", "818004070101", "8180020700", "818003070501", "818003070100",
     "8180040501000000"],
)
def test_bad_parameter_fields(bad):
    with pytest.raises(FrameError):
        decode_parameters(bytes.fromhex(bad))


# --- round trips -------------------------------------------------------------------------
@settings(max_examples=400)
@given(hdlc_frames())
def test_frame_round_trip(frame):
    wire = encode_frame(frame)
    assert wire[0] == wire[-1] == 0x7E
    assert ((wire[1] << 8 | wire[2]) & 0x7FF) == len(wire) - 2
    assert decode_frame(wire) == frame


@given(hdlc_addresses)
def test_address_round_trip(address):
    wire = encode_frame(Frame(FrameType.UA, address, address))
    f = decode_frame(wire)
    assert f.destination == address == f.source
    assert len(address.encode()) == address.size


@settings(max_examples=100)
@given(st.lists(hdlc_frames(max_info=100), max_size=8), st.data())
def test_reader_splits_a_stream_whatever_the_chunking(fs, data):
    if data.draw(st.booleans()):
        stream = b"".join(encode_frame(f) for f in fs)
    else:  # frames may share a flag: the closing flag of one opens the next
        stream = b"".join(encode_frame(f)[:-1] for f in fs) + b"\x7e"
    reader, got = FrameReader(), []
    i = 0
    while i < len(stream):
        n = data.draw(st.integers(1, 64))
        reader.feed(stream[i : i + n])
        i += n
        while (item := reader.next()) is not None:
            assert isinstance(item, Frame), item
            got.append(item)
    assert got == fs


@settings(max_examples=100)
@given(st.integers(0, 0xFFFF), st.integers(0, 0x1FFFF), st.data())
def test_parameters_round_trip(a, b, data):
    p = HdlcParameters(
        data.draw(st.integers(1, 2047)), data.draw(st.integers(1, 2047)),
        data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7)),
    )
    assert decode_parameters(encode_parameters(p)) == p
    assert p.seen_from_peer().seen_from_peer() == p


# --- bad input -----------------------------------------------------------------------------
def test_bad_crc_and_format_are_frame_errors():
    wire = bytearray(encode_frame(Frame(FrameType.I, SERVER_1, CLIENT_16, b"\xe6\xe6\x00abc")))
    for index, message in ((6, "HCS"), (9, "FCS"), (1, "format")):
        bad = bytearray(wire)
        bad[index] ^= 0x40
        with pytest.raises(FrameError, match=message):
            decode_frame(bytes(bad))
    with pytest.raises(FrameError, match="1, 2 or 4"):
        decode_frame(lay_out((9, False), bytes.fromhex("000221") + b"\x21\x93"))  # a 3-byte address


def test_invalid_frames_refused_on_encode():
    with pytest.raises(HdlcError):
        encode_frame(Frame(FrameType.I, SERVER_1, CLIENT_16, bytes(2040)))
    with pytest.raises(HdlcError):
        Frame(FrameType.UA, SERVER_1, CLIENT_16, send_sequence=1)
    with pytest.raises(HdlcError):
        HdlcAddress(200)
    with pytest.raises(HdlcError):
        HdlcAddress(1, 200, 2)


def _mutate(data: bytes, draw) -> bytes:
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        i = draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            b.insert(i, draw(st.integers(0, 255)))
        elif op == "delete" and b:
            del b[i]
        elif b:
            b[i] = draw(st.sampled_from([0x7E, 0x00, 0xFF, 0xA0, 0xA8, 0x01]))
    return bytes(b)


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_decode_random_bytes_raises_only_dlms_errors(data):
    for candidate in (data, b"\x7e" + data + b"\x7e", b"\x7e\xa0" + data + b"\x7e"):
        start = time.thread_time()  # CPU time: a busy machine does not make a decode slow
        try:
            decode_frame(candidate)
        except DlmsError:
            pass
        assert time.thread_time() - start < 0.05


@settings(max_examples=500)
@given(hdlc_frames(max_info=200), st.data())
def test_decode_mutated_frames_raises_only_dlms_errors(frame, data):
    bad = _mutate(encode_frame(frame), data.draw)
    try:
        decode_frame(bad)
    except DlmsError:
        pass
    reader = FrameReader()
    reader.feed(bad + bad)
    for _ in range(len(bad) * 2 + 2):  # each call consumes bytes or asks for more
        if reader.next() is None:
            break
    else:
        pytest.fail("the reader did not come to rest")


# --- the per-link encoder -------------------------------------------------------------------
@settings(max_examples=150)
@given(st.lists(hdlc_frames(max_info=300), min_size=1, max_size=30))
def test_frame_encoder_gives_the_bytes_encode_frame_gives(frames):
    # one encoder per pair of stations, used again and again as a link does: the kept
    # headers must never leak from one frame into another
    encoders = {}
    for f in frames + frames[::-1]:
        addresses = f.destination.encode() + f.source.encode()
        encoder = encoders.setdefault(addresses, FrameEncoder(addresses))
        wire = encoder.encode(f.control, f.info, f.segmented)
        assert wire == encode_frame(f)
        assert decode_frame(wire) == f


def test_frame_encoder_starts_again_when_its_headers_are_many():
    addresses = HdlcAddress(1, 16).encode() + HdlcAddress(16).encode()
    encoder = FrameEncoder(addresses)
    for round_ in range(2):
        for n in range(FrameEncoder.KEPT * 2):
            f = Frame(FrameType.I, HdlcAddress(1, 16), HdlcAddress(16), bytes(range(n % 200)) * (1 + n // 200), True,
                      n % 8, (n + round_) % 8)
            assert encoder.encode(f.control, f.info, f.segmented) == encode_frame(f)
            assert len(encoder._headers) <= FrameEncoder.KEPT


def test_frame_encoder_refuses_a_frame_too_long_for_the_length_field():
    encoder = FrameEncoder(HdlcAddress(1, 16).encode() + HdlcAddress(16).encode())
    with pytest.raises(HdlcError):
        encoder.encode(0x10, bytes(2040))
