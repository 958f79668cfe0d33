"""The HDLC connection state machine (IEC 62056-46 NRM) under both roles: the
transition tables pair by pair, parameter negotiation, addressing, recovery."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.errors import LocalProtocolError
from bijli.dlms.link import hdlc
from bijli.dlms.link.hdlc import (
    CLIENT_TABLE,
    NEED_DATA,
    SERVER_TABLE,
    ApduReceived,
    Connected,
    Disconnected,
    Frame,
    FrameDropped,
    FrameType,
    HdlcAddress,
    HdlcConnection,
    HdlcParameters,
    Rejected,
    Role,
    State,
    HdlcTrigger,
    encode_frame,
    encode_parameters,
)
from bijli.tools.testing.strategies.link import hdlc_frames

from .test_hdlc_frame import _mutate, lay_out

SERVER = HdlcAddress(1, 16)
CLIENT = HdlcAddress(16)
LLC_REQ, LLC_RESP = b"\xe6\xe6\x00", b"\xe6\xe7\x00"


def events(conn):
    out = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def split_frames(wire: bytes) -> list[Frame]:
    reader = hdlc.FrameReader()
    reader.feed(wire)
    out = []
    while (f := reader.next()) is not None:
        assert isinstance(f, Frame)
        out.append(f)
    return out


def server(**kw):
    kw.setdefault("inactivity_timeout", 100.0)
    return HdlcConnection(Role.SERVER, server_address=SERVER, **kw)


def client(**kw):
    return HdlcConnection(Role.CLIENT, server_address=SERVER, client_address=16, **kw)


def to_server(kind, info=b"", pf=True, ns=0, nr=0, seg=False, dest=SERVER, src=CLIENT):
    return encode_frame(Frame(kind, dest, src, info, pf, ns, nr, seg))


def to_client(kind, info=b"", pf=True, ns=0, nr=0, seg=False):
    return encode_frame(Frame(kind, CLIENT, SERVER, info, pf, ns, nr, seg))


def connected_server(**kw):
    s = server(**kw)
    s.receive_data(to_server(FrameType.SNRM), now=0.0)
    s.data_to_send()
    events(s)
    return s


# --- the tables, every pair ---------------------------------------------------------------
class Driver:
    """Produces each trigger through the public API, the way a peer or the caller would."""

    def __init__(self, role):
        self.role = role
        self.now = 0.0
        self.conn = server() if role is Role.SERVER else client(response_timeout=3.0)

    def reach(self, state):
        c = self.conn
        if state is State.NDM:
            return
        if self.role is Role.SERVER:
            self.apply(HdlcTrigger.SNRM)
            return
        c.connect(now=self.now)
        if state is State.AWAIT_UA:
            return
        self.apply(HdlcTrigger.UA)
        if state is State.AWAIT_DISC_UA:
            c.disconnect(now=self.now)

    def apply(self, trigger):
        c = self.conn
        self.now += 0.01
        if trigger is HdlcTrigger.CONNECT:
            c.connect(now=self.now)
        elif trigger is HdlcTrigger.DISCONNECT:
            c.disconnect(now=self.now)
        elif trigger is HdlcTrigger.SEND_APDU:
            c.send_apdu(b"\x01\x02", now=self.now)
        elif trigger in (HdlcTrigger.TIMEOUT, HdlcTrigger.GIVE_UP):
            if self.role is Role.SERVER:
                self.now += 1000.0
            else:
                if c.state is State.NRM:
                    # make sure something is in flight, so the response timer runs
                    c.send_apdu(b"\x05", now=self.now)
                    c.data_to_send()
                c.max_retries, saved = (0 if trigger is HdlcTrigger.GIVE_UP else 1000), c.max_retries
                # a peer that said RNR is polled first (a poll, not a failure); the
                # unanswered poll is then the frame whose timeout gives up
                for _ in range(3):
                    self.now += 10.0
                    c.poll(self.now)
                    c.data_to_send()
                    if c.state is not State.NRM:
                        break
                c.max_retries = saved
                return
            c.poll(self.now)
        elif trigger is HdlcTrigger.BAD_SNRM:
            c.receive_data(to_server(FrameType.SNRM, b"\x81\x80\x01"), now=self.now)
        elif trigger is HdlcTrigger.STRANGER_POLL:
            c.receive_data(to_server(FrameType.RR, b"", True, src=HdlcAddress(17)), now=self.now)
        else:
            kind = FrameType[trigger.name]
            info = b""
            ns = nr = 0
            if kind is FrameType.I:
                info = (LLC_REQ if self.role is Role.SERVER else LLC_RESP) + b"\x07"
                ns, nr = c.receive_sequence, c.send_sequence
            elif kind in (FrameType.RR, FrameType.RNR):
                nr = c.send_sequence
            elif kind is FrameType.UA:
                info = encode_parameters(HdlcParameters())
            make = to_server if self.role is Role.SERVER else to_client
            c.receive_data(make(kind, info, True, ns, nr), now=self.now)
        c.data_to_send()


def _pairs(table):
    return sorted(table, key=lambda k: (k[0].name, k[1].name))


@pytest.mark.parametrize("role, table", [(Role.SERVER, SERVER_TABLE), (Role.CLIENT, CLIENT_TABLE)])
def test_tables_cover_every_pair(role, table):
    states = {State.NDM, State.NRM} if role is Role.SERVER else set(State)
    server_only = {HdlcTrigger.BAD_SNRM, HdlcTrigger.STRANGER_POLL}
    triggers = set(HdlcTrigger) - ({HdlcTrigger.GIVE_UP} if role is Role.SERVER else server_only)
    assert set(table) == {(s, t) for s in states for t in triggers}
    for action, next_state in table.values():
        # a reference to one of the connection's own actions, never a name to look up
        assert callable(action) and getattr(HdlcConnection, action.__name__) is action
        assert action.__name__.startswith("_do_")
        assert next_state in states


def check_step(driver, table, trigger):
    before = driver.conn.state
    action, expected = table[(before, trigger)]
    if action is HdlcConnection._do_refuse:
        with pytest.raises(LocalProtocolError):
            driver.apply(trigger)
        assert driver.conn.state is before
    else:
        driver.apply(trigger)
        assert driver.conn.state is expected, (before, trigger, action)


@pytest.mark.parametrize(
    "role, table, state, trigger",
    [(Role.SERVER, SERVER_TABLE, s, t) for s, t in _pairs(SERVER_TABLE)]
    + [(Role.CLIENT, CLIENT_TABLE, s, t) for s, t in _pairs(CLIENT_TABLE)],
)
def test_every_pair_does_what_the_table_says(role, table, state, trigger):
    d = Driver(role)
    d.reach(state)
    assert d.conn.state is state
    check_step(d, table, trigger)


_ALL_PAIRS = [(Role.SERVER, SERVER_TABLE, s, t) for s, t in _pairs(SERVER_TABLE)] + [
    (Role.CLIENT, CLIENT_TABLE, s, t) for s, t in _pairs(CLIENT_TABLE)]


@settings(max_examples=150)
@given(st.sampled_from(_ALL_PAIRS))
def test_every_pair_hypothesis(case):
    role, table, state, trigger = case
    d = Driver(role)
    d.reach(state)
    assert d.conn.state is state
    check_step(d, table, trigger)


@settings(max_examples=150)
@given(st.sampled_from([Role.SERVER, Role.CLIENT]), st.data())
def test_random_walks_follow_the_table(role, data):
    table = SERVER_TABLE if role is Role.SERVER else CLIENT_TABLE
    triggers = sorted({t for _, t in table}, key=lambda t: t.name)
    d = Driver(role)
    for trigger in data.draw(st.lists(st.sampled_from(triggers), max_size=30)):
        check_step(d, table, trigger)


# --- SNRM / UA ---------------------------------------------------------------------------------
def test_snrm_without_parameters_gets_the_defaults():
    s = server(max_info_length=512, window=7)
    s.receive_data(bytes.fromhex("7EA007032193 0F017E".replace(" ", "")), now=0)  # 1-byte server address
    (ev,) = events(s)
    assert ev == Connected(16, HdlcParameters(128, 128, 1, 1))
    (ua,) = split_frames(s.data_to_send())
    assert ua.kind is FrameType.UA and ua.poll_final
    assert ua.destination == CLIENT and ua.source == HdlcAddress(1)  # answered in the form it was called
    assert hdlc.decode_parameters(ua.info) == HdlcParameters(128, 128, 1, 1)


def test_ua_known_answer():
    s = server()
    s.receive_data(bytes.fromhex("7EA007032193 0F017E".replace(" ", "")), now=0)
    expected = lay_out((0x1E, False), bytes((0x21, 0x03, 0x73)),
                       bytes.fromhex("818012050180060180070400000001080400000001"))
    assert s.data_to_send() == expected


def test_negotiation_takes_the_smaller_values_from_each_viewpoint():
    s = server(max_info_length=256, window=3)
    proposal = HdlcParameters(max_info_tx=1000, max_info_rx=200, window_tx=7, window_rx=2)
    s.receive_data(to_server(FrameType.SNRM, encode_parameters(proposal)), now=0)
    (ev,) = events(s)
    # the server's viewpoint: it sends at most what the client receives, and vice versa
    assert ev.parameters == HdlcParameters(max_info_tx=200, max_info_rx=256, window_tx=2, window_rx=3)
    (ua,) = split_frames(s.data_to_send())
    c = client(max_info_length=1000, window=7)
    c.connect(proposal, now=0)
    c.data_to_send()
    c.receive_data(encode_frame(Frame(FrameType.UA, CLIENT, SERVER, ua.info)), now=0)
    (ev,) = events(c)
    assert ev.parameters == HdlcParameters(max_info_tx=256, max_info_rx=200, window_tx=3, window_rx=2)


def test_client_can_send_a_bare_snrm():
    c = client(max_info_length=512)
    c.connect(with_parameters=False, now=0)
    (snrm,) = split_frames(c.data_to_send())
    assert snrm.kind is FrameType.SNRM and snrm.info == b""


def test_malformed_snrm_parameters_get_dm():
    s = server()
    s.receive_data(to_server(FrameType.SNRM, bytes.fromhex("818003070100")), now=0)  # window 0
    assert isinstance(events(s)[0], FrameDropped)
    assert [f.kind for f in split_frames(s.data_to_send())] == [FrameType.DM]
    assert s.state is State.NDM


def test_dm_answers_the_snrm_rejected():
    c = client()
    c.connect(now=0)
    c.data_to_send()
    c.receive_data(to_client(FrameType.DM), now=0.1)
    assert events(c) == [Rejected("DM")]
    assert c.state is State.NDM


# --- addressing ------------------------------------------------------------------------------------
def test_frames_for_other_servers_and_from_servers_are_ignored():
    s = server()
    s.receive_data(to_server(FrameType.SNRM, dest=HdlcAddress(1, 17)), now=0)
    s.receive_data(to_server(FrameType.SNRM, dest=HdlcAddress(2, 16)), now=0)
    s.receive_data(to_server(FrameType.SNRM, dest=HdlcAddress(1, 16), src=HdlcAddress(1, 16)), now=0)
    assert events(s) == [] and s.data_to_send() == b""
    s.receive_data(to_server(FrameType.SNRM, dest=HdlcAddress(1, 16, 4)), now=0)  # same station, 4 bytes
    assert isinstance(events(s)[0], Connected)
    (ua,) = split_frames(s.data_to_send())
    assert ua.source == HdlcAddress(1, 16, 4)


def test_disconnected_server_answers_dm_to_polls():
    s = server()
    for kind in (FrameType.DISC, FrameType.RR, FrameType.I):
        s.receive_data(to_server(kind, LLC_REQ + b"x" if kind is FrameType.I else b""), now=0)
        assert [f.kind for f in split_frames(s.data_to_send())] == [FrameType.DM]
    s.receive_data(to_server(FrameType.RR, pf=False), now=0)  # not polled: not allowed to speak
    assert s.data_to_send() == b""
    assert events(s) == []


def test_another_client_on_a_connected_link_gets_dm():
    s = connected_server()
    s.receive_data(to_server(FrameType.I, LLC_REQ + b"x", src=HdlcAddress(32)), now=1)
    assert events(s) == []
    assert [f.kind for f in split_frames(s.data_to_send())] == [FrameType.DM]
    assert s.state is State.NRM and s.peer_client == 16


# --- data transfer and recovery ----------------------------------------------------------------------
def test_i_frame_is_delivered_and_answered_in_the_same_turn():
    s = connected_server()
    s.receive_data(to_server(FrameType.I, LLC_REQ + b"\xc0\x01", ns=0, nr=0), now=1)
    assert events(s) == [ApduReceived(16, b"\xc0\x01")]
    s.send_apdu(b"\xc4\x01")
    (f,) = split_frames(s.data_to_send())
    assert (f.kind, f.send_sequence, f.receive_sequence, f.poll_final) == (FrameType.I, 0, 1, True)
    assert f.info == LLC_RESP + b"\xc4\x01"
    assert encode_frame(f)[6] == 0x30  # after 7E, format, 21, 02 21: N(R)=1, F, N(S)=0


def test_duplicate_i_frame_is_re_acknowledged_not_delivered_twice():
    s = connected_server()
    frame = to_server(FrameType.I, LLC_REQ + b"\x01", ns=0, nr=0)
    s.receive_data(frame, now=1)
    assert len(events(s)) == 1
    first = split_frames(s.data_to_send())
    assert [(f.kind, f.receive_sequence) for f in first] == [(FrameType.RR, 1)]
    s.receive_data(frame, now=2)  # our RR was lost; the client resent
    assert events(s) == []
    assert [(f.kind, f.receive_sequence) for f in split_frames(s.data_to_send())] == [(FrameType.RR, 1)]


def test_repeated_rr_with_old_nr_makes_the_server_resend():
    s = connected_server(max_info_length=128, window=1)
    s.receive_data(to_server(FrameType.I, LLC_REQ + b"\x01", ns=0, nr=0), now=1)
    events(s)
    s.send_apdu(bytes(300))  # three segments
    (a,) = split_frames(s.data_to_send())
    assert a.segmented and a.send_sequence == 0
    s.receive_data(to_server(FrameType.RR, nr=0), now=2)  # the client never got it
    (again,) = split_frames(s.data_to_send())
    assert again == a
    s.receive_data(to_server(FrameType.RR, nr=1), now=3)
    (b,) = split_frames(s.data_to_send())
    assert b.send_sequence == 1 and b.segmented


def test_corrupted_frames_are_dropped_silently():
    s = connected_server()
    bad = bytearray(to_server(FrameType.I, LLC_REQ + b"abc", ns=0, nr=0))
    bad[-3] ^= 0xFF
    s.receive_data(bytes(bad), now=1)
    evs = events(s)
    assert len(evs) == 1 and isinstance(evs[0], FrameDropped) and "FCS" in evs[0].reason
    assert s.data_to_send() == b""
    assert s.receive_sequence == 0


def test_segmented_request_is_reassembled_with_rr_between_windows():
    s = connected_server()
    data = LLC_REQ + bytes(range(250))
    parts = [data[:128], data[128:]]
    s.receive_data(to_server(FrameType.I, parts[0], ns=0, nr=0, seg=True), now=1)
    assert events(s) == []
    assert [(f.kind, f.receive_sequence) for f in split_frames(s.data_to_send())] == [(FrameType.RR, 1)]
    s.receive_data(to_server(FrameType.I, parts[1], ns=1, nr=0), now=2)
    assert events(s) == [ApduReceived(16, bytes(range(250)))]


def test_inactivity_timeout_disconnects():
    s = connected_server(inactivity_timeout=5.0)
    s.poll(4.9)
    assert s.state is State.NRM
    s.poll(5.0)
    assert events(s) == [Disconnected(16, "inactivity timeout")]
    s.receive_data(to_server(FrameType.RR), now=6)
    assert [f.kind for f in split_frames(s.data_to_send())] == [FrameType.DM]


def test_disc_in_nrm():
    s = connected_server()
    s.receive_data(to_server(FrameType.DISC), now=1)
    assert events(s) == [Disconnected(16, "DISC")]
    (ua,) = split_frames(s.data_to_send())
    assert ua.kind is FrameType.UA and ua.info == b""


def test_client_resends_then_gives_up():
    c = client(response_timeout=1.0, max_retries=2)
    c.connect(now=0)
    assert [f.kind for f in split_frames(c.data_to_send())] == [FrameType.SNRM]
    c.poll(1.0)
    assert [f.kind for f in split_frames(c.data_to_send())] == [FrameType.SNRM]
    c.poll(2.0)
    c.data_to_send()
    c.poll(3.0)
    assert events(c) == [Disconnected(16, "no response")]
    assert c.state is State.NDM and c.data_to_send() == b""


def test_client_retransmits_unacknowledged_i_frames_on_timeout():
    c = client(response_timeout=1.0, window=1)
    c.connect(now=0)
    c.data_to_send()
    c.receive_data(to_client(FrameType.UA), now=0.1)
    events(c)
    c.send_apdu(b"\xc0\x01", now=0.2)
    (first,) = split_frames(c.data_to_send())
    c.poll(1.3)
    (again,) = split_frames(c.data_to_send())
    assert again == first


def test_send_apdu_when_disconnected_is_a_local_error():
    with pytest.raises(LocalProtocolError):
        server().send_apdu(b"x")
    with pytest.raises(LocalProtocolError):
        client().send_apdu(b"x")
    with pytest.raises(LocalProtocolError):
        server().connect()


# --- a server fed garbage never raises -----------------------------------------------------------------
def _session_bytes():
    chunks = [to_server(FrameType.SNRM, encode_parameters(HdlcParameters(128, 128, 7, 7)))]
    for ns in range(8):
        chunks.append(to_server(FrameType.I, LLC_REQ + bytes([ns]) * 40, pf=ns % 3 == 2, ns=ns % 8, nr=0, seg=ns % 2 == 0))
    chunks += [to_server(FrameType.RR, nr=1), to_server(FrameType.RNR), to_server(FrameType.UI, b"u"),
               to_server(FrameType.DISC)]
    return chunks


SESSION = _session_bytes()


def _drive_server(chunks, now_steps):
    s = server(inactivity_timeout=2.0, window=7)
    t = 0.0
    for chunk, dt in zip(chunks, now_steps):
        t += dt
        s.receive_data(chunk, now=t)
        for ev in events(s):
            if isinstance(ev, ApduReceived):
                s.send_apdu(ev.apdu * 3)
        s.data_to_send()
        s.poll(t)
    return s


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=200), max_size=10), st.lists(st.floats(0, 3), min_size=10, max_size=10))
def test_server_fed_random_bytes_never_raises(chunks, steps):
    _drive_server(chunks, steps)


@settings(max_examples=200)
@given(st.data(), st.lists(st.floats(0, 1), min_size=len(SESSION), max_size=len(SESSION)))
def test_server_fed_mutated_sessions_never_raises(data, steps):
    chunks = [data.draw(st.sampled_from([c, _mutate(c, data.draw)])) for c in SESSION]
    _drive_server(chunks, steps)


@settings(max_examples=100)
@given(st.lists(hdlc_frames(max_info=150), max_size=12))
def test_server_fed_arbitrary_well_formed_frames_never_raises(fs):
    # frames with every kind, address and sequence number, aimed at our address half the time
    chunks = [encode_frame(f) for f in fs]
    chunks += [to_server(f.kind, f.info, f.poll_final, f.send_sequence, f.receive_sequence, f.segmented) for f in fs]
    _drive_server(chunks, [0.1] * len(chunks))


def test_client_polls_again_when_the_answer_was_not_ready():
    s = connected_server()
    c = client(poll_interval=0.5, response_timeout=3.0)
    c.connect(now=0)
    s.receive_data(c.data_to_send(), now=0)
    events(s)
    c.receive_data(s.data_to_send(), now=0)
    events(c)
    c.send_apdu(b"\xc0\x01", now=1)
    s.receive_data(c.data_to_send(), now=1)
    assert events(s) == [ApduReceived(16, b"\xc0\x01")]
    c.receive_data(s.data_to_send(), now=1)  # a bare RR: the server's answer comes later
    assert c.data_to_send() == b""
    s.send_apdu(b"\xc4\x01")
    c.poll(1.6)
    (rr,) = split_frames(c.data_to_send())
    assert rr.kind is FrameType.RR and rr.poll_final
    s.receive_data(encode_frame(rr), now=1.6)
    c.receive_data(s.data_to_send(), now=1.6)
    assert events(c) == [ApduReceived(16, b"\xc4\x01")]
    c.poll(10)
    assert c.data_to_send() == b"" and c.state is State.NRM


def test_client_polls_a_busy_server_and_gives_up_on_a_silent_one():
    """Regression: after an RNR the client re-armed its poll timer forever without
    ever sending the RR poll, so it could neither learn that the server was ready
    nor notice that it had gone."""
    from bijli.dlms.link.hdlc_frame import FrameReader, client_address

    server_addr = HdlcAddress(1, 16)
    client = HdlcConnection(Role.CLIENT, server_address=server_addr, client_address=16, max_retries=2)
    server = HdlcConnection(Role.SERVER, server_address=server_addr)
    client.connect(now=0.0)
    server.receive_data(client.data_to_send(), now=0.0)
    client.receive_data(server.data_to_send(), now=0.0)
    assert client.state is State.NRM
    client.send_apdu(b"\xc0\x01\xc1\x00\x08\x00\x00\x01\x00\x00\xff\x02\x00", now=0.0)
    client.data_to_send()  # the request goes out; the server answers "busy"
    client.receive_data(encode_frame(Frame(FrameType.RNR, client_address(16), server_addr, b"", True, 0,
                                           client.send_sequence)), now=0.1)
    assert client.data_to_send() == b""  # busy: nothing to send yet, a poll timer runs

    def sent(now: float) -> list:
        client.poll(now)
        reader = FrameReader()
        reader.feed(client.data_to_send())
        frames = []
        while (f := reader.next()) is not None:
            frames.append(f)
        return frames

    polls = sent(0.1 + client.poll_interval + 0.01)
    assert [f.kind for f in polls] == [FrameType.RR] and polls[0].poll_final  # "are you ready now?"
    now = 0.2 + client.poll_interval
    for _ in range(10):  # the server never answers again
        now += client.response_timeout + 0.01
        sent(now)
        if client.state is State.NDM:
            break
    assert client.state is State.NDM  # retries exhausted: the link is given up
