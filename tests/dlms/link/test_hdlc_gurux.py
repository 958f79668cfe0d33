"""gurux-dlms as an independent peer (black box: only its public client API is
called, to produce and consume bytes): its SNRM and I frames decode field by
field, and it accepts our UA and our segmented I frames."""

import pytest

import gurux_dlms as gurux  # a test dependency: its absence is an error, not a skip

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData  # noqa: E402
from gurux_dlms.enums import Authentication, InterfaceType  # noqa: E402
from gurux_dlms.objects import GXDLMSData  # noqa: E402

from bijli.dlms.link.hdlc import (  # noqa: E402
    NEED_DATA,
    ApduReceived,
    Connected,
    FrameType,
    HdlcAddress,
    HdlcConnection,
    HdlcParameters,
    Role,
    decode_frame,
    decode_parameters,
)


def gx_client(server_address=1):
    return GXDLMSClient(True, 16, server_address, Authentication.NONE, None, InterfaceType.HDLC)


def drain(conn):
    out = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def test_gurux_default_snrm_is_the_classic_one():
    wire = bytes(gx_client().snrmRequest())
    assert wire == bytes.fromhex("7EA0070321930F017E")
    f = decode_frame(wire)
    assert (f.kind, f.destination, f.source, f.poll_final, f.info) == (
        FrameType.SNRM, HdlcAddress(1), HdlcAddress(16), True, b"")


def test_gurux_snrm_with_parameters_and_a_two_byte_address():
    c = gx_client(GXDLMSClient.getServerAddress(1, 17))
    h = c.hdlcSettings
    h.maxInfoTX, h.maxInfoRX, h.windowSizeTX, h.windowSizeRX = 200, 300, 3, 5
    f = decode_frame(bytes(c.snrmRequest()))
    assert f.destination == HdlcAddress(1, 17, 2) and f.source == HdlcAddress(16)
    assert decode_parameters(f.info) == HdlcParameters(200, 300, 3, 5)


def test_gurux_parses_our_ua_from_the_servers_viewpoint():
    c = gx_client()
    h = c.hdlcSettings
    h.maxInfoTX, h.maxInfoRX, h.windowSizeTX, h.windowSizeRX = 64, 300, 3, 5
    s = HdlcConnection(Role.SERVER, server_address=HdlcAddress(1, 16), max_info_length=256, window=7)
    s.receive_data(bytes(c.snrmRequest()), now=0)
    (ev,) = drain(s)
    assert ev == Connected(16, HdlcParameters(max_info_tx=256, max_info_rx=64, window_tx=5, window_rx=3))
    reply = GXReplyData()
    c.getData(GXByteBuffer(s.data_to_send()), reply)
    c.parseUAResponse(reply.data)
    assert (h.maxInfoTX, h.maxInfoRX, h.windowSizeTX, h.windowSizeRX) == (64, 256, 3, 5)


def test_gurux_request_and_our_segmented_response():
    c = gx_client()
    s = HdlcConnection(Role.SERVER, server_address=HdlcAddress(1, 16))
    s.receive_data(bytes(c.snrmRequest()), now=0)
    reply = GXReplyData()
    c.getData(GXByteBuffer(s.data_to_send()), reply)
    c.parseUAResponse(reply.data)
    drain(s)

    (request,) = c.read(GXDLMSData("0.0.96.1.0.255"), 2)
    f = decode_frame(bytes(request))
    assert (f.kind, f.send_sequence, f.receive_sequence, f.poll_final) == (FrameType.I, 0, 0, True)
    assert f.info[:3] == b"\xe6\xe6\x00"
    s.receive_data(bytes(request), now=1)
    (ev,) = drain(s)
    assert isinstance(ev, ApduReceived) and ev.apdu == f.info[3:]
    assert ev.apdu[:2] == b"\xc0\x01"  # get-request-normal

    # Get-Response-Normal carrying a 1024-byte octet-string: 9 I frames of <= 128 bytes
    payload = bytes(range(256)) * 4
    s.send_apdu(bytes.fromhex("C401C100098204 00") + payload)
    reply = GXReplyData()
    frames = 0
    for _ in range(20):
        wire = s.data_to_send()
        frames += 1
        assert len(decode_frame(wire).info) <= 128
        c.getData(GXByteBuffer(wire), reply)
        if not reply.isMoreData():
            break
        rr_wire = bytes(c.receiverReady(reply))  # gurux polls for the next segment
        rr = decode_frame(rr_wire)
        assert rr.kind is FrameType.RR and rr.poll_final and rr.receive_sequence == frames % 8
        s.receive_data(rr_wire, now=2)
    assert frames == 9
    assert bytes(reply.value) == payload
