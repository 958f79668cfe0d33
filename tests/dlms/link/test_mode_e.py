"""IEC 62056-21 mode E opening, meter and client side, and garbage on the line."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.errors import ModeEError
from bijli.dlms.link.mode_e import (
    CLIENT_TABLE,
    NEED_DATA,
    OPENING,
    SERVER_TABLE,
    BaudSwitch,
    ClientInput,
    ClientPhase,
    Identification,
    ModeEClient,
    ModeEServer,
    OpeningFailed,
    Phase,
    RequestReceived,
    ServerInput,
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


# --- the tables, every pair ------------------------------------------------------------------
def test_tables_cover_every_pair_with_an_action_reference():
    for table, cls, phases, inputs in ((SERVER_TABLE, ModeEServer, Phase, ServerInput),
                                       (CLIENT_TABLE, ModeEClient, ClientPhase, ClientInput)):
        assert set(table) == {(p, i) for p in phases for i in inputs}
        for action, nxt in table.values():
            assert getattr(cls, action.__name__) is action and nxt in phases


_SERVER_LINES = {ServerInput.REQUEST: b"/?!\r\n", ServerInput.FOREIGN_REQUEST: b"/?99!\r\n",
                 ServerInput.HDLC_SELECT: b"\x06252\r\n", ServerInput.OTHER_SELECT: b"\x06050\r\n",
                 ServerInput.ACTIVITY: b"\x7e\xa0"}


def check_server_pair(phase, event):
    m = ModeEServer(ack_timeout=1.5, hdlc_idle_timeout=10.0)
    if phase is not Phase.IDLE:
        m.receive_data(b"/?!\r\n", now=0)
    if phase is Phase.HDLC:
        m.receive_data(b"\x06252\r\n", now=0.1)
    assert m.phase is phase
    drain(m), m.data_to_send()
    action, expected = SERVER_TABLE[(phase, event)]
    if event is ServerInput.TIMEOUT:
        m.poll(100.0)
    elif event is ServerInput.RESET:
        m.reset()
    else:
        m.receive_data(_SERVER_LINES[event], now=0.5)
    assert m.phase is expected, (phase, event)
    events, out = drain(m), m.data_to_send()
    if action is ModeEServer._identify:
        assert events == [RequestReceived("")] and out.startswith(b"/BJL5\\2")
    elif action is ModeEServer._switch:
        assert events == [BaudSwitch(9600, 8, "N", 1)] and out == b""
    elif action is ModeEServer._reopen:
        assert events == ([OPENING] if phase is Phase.HDLC else []) and m.settings == OPENING
    else:
        assert events == [] and out == b""


_CLIENT_LINES = {ClientInput.MODE_E_OFFERED: b"/BJL5\\2bijli\r\n", ClientInput.NO_MODE_E: b"/ABC5METER\r\n"}


def check_client_pair(phase, event):
    c = ModeEClient(timeout=1.0, retries=2)
    if phase is not ClientPhase.IDLE:
        c.start(now=0)
    if phase in (ClientPhase.HDLC, ClientPhase.FAILED):
        c.receive_data(_CLIENT_LINES[ClientInput.MODE_E_OFFERED if phase is ClientPhase.HDLC
                                     else ClientInput.NO_MODE_E], now=0.1)
    assert c.phase is phase
    drain(c), c.data_to_send()
    action, expected = CLIENT_TABLE[(phase, event)]
    if event is ClientInput.START:
        c.start(now=0.5)
    elif event is ClientInput.RESET:
        c.reset()
    elif event in (ClientInput.RETRY, ClientInput.GIVE_UP):
        c.retries = 2 if event is ClientInput.RETRY else 0
        c.poll(10.0)
    else:
        c.receive_data(_CLIENT_LINES[event], now=0.5)
    assert c.phase is expected, (phase, event)
    events, out = drain(c), c.data_to_send()
    if action in (ModeEClient._first_request, ModeEClient._send_request):
        assert events == [] and out == b"/?!\r\n"
    elif action is ModeEClient._select:
        assert events[-1] == BaudSwitch(9600, 8, "N", 1) and out == b"\x06252\r\n"
    elif action is ModeEClient._not_mode_e:
        assert events[-1] == OpeningFailed("the meter does not offer mode E") and out == b""
    elif action is ModeEClient._no_answer:
        assert events == [OpeningFailed("no identification")] and out == b""
    elif action is ModeEClient._reopen:
        assert events == ([OPENING] if phase is ClientPhase.HDLC else []) and c.settings == OPENING
    else:
        assert events == [] and out == b""


def test_every_pair_does_what_the_tables_say():
    for phase, event in SERVER_TABLE:
        check_server_pair(phase, event)
    for phase, event in CLIENT_TABLE:
        check_client_pair(phase, event)


@settings(max_examples=100)
@given(st.sampled_from(sorted(SERVER_TABLE, key=lambda k: (k[0].name, k[1].name))))
def test_every_server_pair_hypothesis(pair):
    check_server_pair(*pair)


@settings(max_examples=100)
@given(st.sampled_from(sorted(CLIENT_TABLE, key=lambda k: (k[0].name, k[1].name))))
def test_every_client_pair_hypothesis(pair):
    check_client_pair(*pair)


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
