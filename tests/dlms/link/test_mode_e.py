"""IEC 62056-21 mode E opening, meter and client side, and garbage on the line."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.errors import ModeEError
from bijli.dlms.link.mode_e import (
    NEED_DATA,
    OPENING,
    BaudSwitch,
    ClientPhase,
    Identification,
    ModeEClient,
    ModeEServer,
    OpeningFailed,
    Phase,
    RequestReceived,
)


def drain(m):
    out = []
    while (ev := m.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def test_opening_byte_for_byte():
    m = ModeEServer()
    m.receive_data(b"/?!\r\n", now=0)
    assert m.data_to_send() == b"/BJL5\\2bijli\r\n"
    assert drain(m) == [RequestReceived("")]
    m.receive_data(b"\x062" b"5" b"2\r\n", now=0.5)
    assert drain(m) == [BaudSwitch(9600, 8, "N", 1)]
    assert m.phase is Phase.HDLC and m.data_to_send() == b""
    m.reset()
    assert drain(m) == [OPENING] and OPENING == BaudSwitch(300, 7, "E", 1)
    assert m.phase is Phase.IDLE


def test_addressed_requests():
    m = ModeEServer(device_address="12345678")
    m.receive_data(b"/?87654321!\r\n", now=0)
    assert m.data_to_send() == b"" and drain(m) == []
    m.receive_data(b"/?0012345678!\r\n", now=0)  # leading zeros are not significant
    assert m.data_to_send().startswith(b"/BJL5\\2")
    plain = ModeEServer()
    plain.receive_data(b"/?42!\r\n", now=0)
    assert plain.data_to_send() == b""


def test_garbage_before_the_request_and_parity_bit_stripped():
    m = ModeEServer()
    with_parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in b"/?!\r\n")  # even parity in bit 7
    m.receive_data(b"\x00\xff noise \x7e" + with_parity, now=0)
    assert m.data_to_send() == b"/BJL5\\2bijli\r\n"


@pytest.mark.parametrize("ack", [b"\x06050\r\n", b"\x06051\r\n", b"\x06262\r\n", b"\x0629 2\r\n", b"\x06X52\r\n"])
def test_unsupported_option_select_is_ignored(ack):
    m = ModeEServer(baud_code="5")
    m.receive_data(b"/?!\r\n", now=0)
    drain(m)
    m.receive_data(ack, now=0.2)
    assert drain(m) == [] and m.phase is Phase.IDLE and m.settings == OPENING


def test_lower_baud_is_honoured():
    m = ModeEServer(baud_code="6")
    assert m.identification == "bijli"
    m.receive_data(b"/?!\r\n", now=0)
    assert m.data_to_send() == b"/BJL6\\2bijli\r\n"
    m.receive_data(b"\x06242\r\n", now=0.1)
    assert drain(m)[-1] == BaudSwitch(4800, 8, "N", 1)


def test_ack_timeout_and_hdlc_idle_timeout():
    m = ModeEServer(ack_timeout=1.5, hdlc_idle_timeout=10.0)
    m.receive_data(b"/?!\r\n", now=0)
    m.poll(2.0)
    assert m.phase is Phase.IDLE
    m.receive_data(b"\x06252\r\n", now=2.1)  # too late: no longer expected
    assert m.phase is Phase.IDLE
    m.receive_data(b"/?!\r\n", now=3)
    m.receive_data(b"\x06252\r\n", now=3.5)
    assert m.phase is Phase.HDLC
    m.receive_data(b"\x7e\xa0", now=10)  # HDLC traffic keeps it switched
    m.poll(19.9)
    assert m.phase is Phase.HDLC
    drain(m)
    m.poll(20.1)
    assert m.phase is Phase.IDLE and drain(m) == [OPENING]


def test_bad_configuration():
    for kw in ({"manufacturer": "AB"}, {"baud_code": "9"}, {"identification": ""}, {"device_address": "a!"}):
        with pytest.raises(ModeEError):
            ModeEServer(**kw)


def test_client_and_server_together():
    server, client = ModeEServer(device_address="42"), ModeEClient(device_address="42")
    client.start(now=0)
    server.receive_data(client.data_to_send(), now=0.1)
    client.receive_data(server.data_to_send(), now=0.2)
    evs = drain(client)
    assert evs == [Identification("BJL", "5", True, "bijli"), BaudSwitch(9600, 8, "N", 1)]
    server.receive_data(client.data_to_send(), now=0.3)
    assert drain(server) == [RequestReceived("42"), BaudSwitch(9600, 8, "N", 1)]
    assert client.phase is ClientPhase.HDLC


def test_client_retries_then_fails():
    c = ModeEClient(timeout=1.0, retries=1)
    c.start(now=0)
    assert c.data_to_send() == b"/?!\r\n"
    c.poll(1.1)
    assert c.data_to_send() == b"/?!\r\n"
    c.poll(2.2)
    assert drain(c) == [OpeningFailed("no identification")]


def test_client_refuses_a_meter_without_mode_e():
    c = ModeEClient()
    c.start(now=0)
    c.receive_data(b"/?!\r\n/ABC5METER\r\n", now=0.1)  # our own echo first, then a mode C meter
    assert drain(c) == [Identification("ABC", "5", False, "METER"), OpeningFailed("the meter does not offer mode E")]
    assert c.data_to_send() == b"/?!\r\n"  # only the request; no ACK


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=12), st.lists(st.floats(0, 3), min_size=12, max_size=12))
def test_server_fed_random_bytes_never_raises(chunks, steps):
    m = ModeEServer(device_address="7")
    t = 0.0
    for chunk, dt in zip(chunks, steps):
        t += dt
        m.receive_data(chunk, now=t)
        m.poll(t)
        drain(m)
        assert len(m.data_to_send()) <= 64
        if m.phase is Phase.HDLC and dt > 2:
            m.reset()


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b"/", b"?", b"!", b"7", b"\r\n", b"\x06", b"2", b"5", b"\x00", b"\xaf"]), max_size=40))
def test_server_fed_shuffled_tokens_never_raises(tokens):
    m = ModeEServer(device_address="7")
    m.receive_data(b"".join(tokens), now=0)
    drain(m)
    c = ModeEClient()
    c.start(now=0)
    c.receive_data(b"".join(tokens), now=0.1)
    drain(c)
