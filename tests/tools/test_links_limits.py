"""The TCP shells under hostile peers (issue 14 items 6 and 7), on real sockets on 127.0.0.1.

A real dlms Server (one register, the public and utility associations) is served by
hal.tcp.serve, and again by hal.tcp.listen (a fleet's plain sockets), with the tools.node.links shells, on an event loop in a thread; the
peers are plain blocking sockets that behave badly: they never associate, trickle
bytes, name thousands of source wPorts, flood the endpoint, or never read.
"""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest

from bijli.dlms import apdu, axdr
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.cosem.association import AssociationLN, AssociationPolicy, read_only
from bijli.dlms.cosem.data import Register
from bijli.dlms.link import wrapper
from bijli.dlms.link.hdlc import HdlcAddress
from bijli.dlms.obis import Obis
from bijli.dlms.server import Server
from bijli.hal import tcp
from bijli.hal.tcp_line import SocketLine
from bijli.tools.node import links
from bijli.tools.node.client_transports import WrapperTransport
from tests.peers.loop_thread import LoopThread

REGISTER = Obis(1, 0, 1, 8, 0, 255)
GET = apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(3, REGISTER, 2)).encode()


def _server() -> Server:
    objects = [Register(REGISTER, lambda: axdr.DoubleLongUnsigned(123456), 0, 30)]
    objects.append(AssociationLN("0.0.40.0.0.255", None, lambda: objects))
    return Server(objects, [AssociationPolicy(16, "public", rights=read_only)])


class Served:
    """Listeners on a loop in a thread; ``shells`` holds every handler made. ``kind``:
    ``serve`` (an asyncio server per endpoint, ``bijli meter``) or ``listen`` (plain
    sockets, a fleet's): the same connection path, so the same answers to every peer."""

    def __init__(self, kind: str = "serve", **options):
        self.server = _server()
        self.shells: list = []
        self.listeners: dict[str, tcp.Listener] = {}

        def wrap(conn):
            shell = links.wrapper_session(conn, self.server)
            self.shells.append(shell)
            return shell

        def hdlc(conn):
            return links.hdlc_tcp_session(conn, self.server)

        async def main():
            if kind == "listen":
                self.listeners["wrapper"], self.listeners["hdlc"] = tcp.listen(
                    [("127.0.0.1", 0, wrap), ("127.0.0.1", 0, hdlc)], **options)
                return
            self.listeners["wrapper"] = await tcp.serve("127.0.0.1", 0, wrap, **options)
            self.listeners["hdlc"] = await tcp.serve("127.0.0.1", 0, hdlc, **options)

        self.loop_thread = LoopThread(main, timeout=5)

    def port(self, kind: str = "wrapper") -> int:
        return self.listeners[kind].sockets[0].getsockname()[1]

    def call(self, fn):
        """Run ``fn()`` on the loop's thread and return its result."""
        return self.loop_thread.call(fn)

    def stop(self):
        async def close():
            for listener in self.listeners.values():
                listener.close()

        self.loop_thread.stop(close)


@pytest.fixture(params=["serve", "listen"])
def served(request):
    started = []

    def start(**options) -> Served:
        s = Served(request.param, **options)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading and dropping what it sends); None if not."""
    start = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None


def _associated_client(port: int) -> Client:
    client = Client(WrapperTransport(SocketLine("127.0.0.1", port), 16), ClientSettings.for_association(16))
    client.associate()
    return client


def test_silent_and_never_associating_peers_are_closed_at_the_setup_timeout(served):
    s = served(inactivity_timeout=30.0, setup_timeout=0.4)
    silent = socket.create_connection(("127.0.0.1", s.port()))
    assert _closed_within(silent, 3.0) is not None
    # a peer that talks, but never associates (GETs refused): activity that does not count
    talker = socket.create_connection(("127.0.0.1", s.port()))
    frame = wrapper.encode_frame(16, 1, GET)
    start = time.monotonic()
    closed = None
    while closed is None and time.monotonic() - start < 3.0:
        try:
            talker.sendall(frame)
        except OSError:
            closed = time.monotonic() - start
            break
        closed = _closed_within(talker, 0.1)
    assert closed is not None and closed < 2.0


def test_a_peer_trickling_bytes_is_closed_too(served):
    s = served(inactivity_timeout=30.0, setup_timeout=0.4)
    peer = socket.create_connection(("127.0.0.1", s.port()))
    frame = wrapper.encode_frame(16, 1, GET)
    start = time.monotonic()
    gone = False
    for byte in frame * 10:  # one byte every 50 ms: never idle by bytes, never a whole request in time
        try:
            peer.sendall(bytes([byte]))
        except OSError:
            gone = True
            break
        if _closed_within(peer, 0.05) is not None:
            gone = True
            break
    assert gone and time.monotonic() - start < 2.5


def test_an_associated_peer_keeps_its_connection_while_it_reads_then_idles_out(served):
    s = served(inactivity_timeout=0.8, setup_timeout=0.3)
    client = _associated_client(s.port())
    for _ in range(8):  # 1.2 s of use, four times the set-up timeout
        assert client.get(3, REGISTER, 2) is not None
        time.sleep(0.15)
    assert _closed_within(client.transport.line.sock, 3.0) is not None  # then 0.8 s idle: closed


def test_hdlc_over_tcp_peers_that_never_associate_are_closed(served):
    from bijli.tools.node.hdlc_transport import HdlcTransport

    s = served(inactivity_timeout=30.0, setup_timeout=0.4)
    silent = socket.create_connection(("127.0.0.1", s.port("hdlc")))
    assert _closed_within(silent, 3.0) is not None
    # SNRM/UA, then nothing more: a link, no association
    t = HdlcTransport(SocketLine("127.0.0.1", s.port("hdlc")), 16, HdlcAddress(1, 16))
    t.connect()
    assert _closed_within(t.line.sock, 3.0) is not None


def test_connection_cap_closes_new_peers_and_logs_once_per_condition(served, caplog, monkeypatch):
    monkeypatch.setattr(tcp, "CAP_QUIET_S", 0.5)  # how long without a refusal ends the condition
    s = served(max_connections=5)
    with caplog.at_level(logging.WARNING, logger="bijli.hal.tcp"):
        kept = [socket.create_connection(("127.0.0.1", s.port())) for _ in range(5)]
        time.sleep(0.2)
        refused = [socket.create_connection(("127.0.0.1", s.port())) for _ in range(20)]
        for peer in refused:
            assert _closed_within(peer, 2.0) is not None
        assert s.call(lambda: len(s.listeners["wrapper"].connections)) == 5
        kept.pop().close()
        time.sleep(0.2)
        again = socket.create_connection(("127.0.0.1", s.port()))
        assert _closed_within(again, 0.5) is None  # below the cap: served again
        time.sleep(0.8)
    lines = [r.getMessage() for r in caplog.records if r.name == "bijli.hal.tcp"]
    assert len([m for m in lines if "the cap:" in m]) == 1
    assert len([m for m in lines if "below the cap" in m and "20 peers" in m]) == 1
    for peer in kept + refused + [again]:
        peer.close()


def test_sessions_per_connection_are_bounded(served):
    s = served()
    peer = socket.create_connection(("127.0.0.1", s.port()))
    # one AARQ-less GET from each of 3,000 source wPorts: each used to cost a session for good
    peer.sendall(b"".join(wrapper.encode_frame(100 + i, 1, GET) for i in range(3000)))
    peer.settimeout(5.0)
    got = b""
    while got.count(b"\x00\x01\x00\x01") < 3000 and len(got) < 3000 * 8:
        chunk = peer.recv(65536)
        assert chunk
        got += chunk
    shell = s.shells[-1]
    assert s.call(lambda: len(shell.sessions.by_sap)) <= links.MAX_SESSIONS
    # the connection still works for a real association
    peer.close()
    client = _associated_client(s.port())
    assert client.get(3, REGISTER, 2) is not None
    client.close()


def test_a_peer_that_does_not_read_is_not_buffered_without_bound(served):
    s = served()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the meter's sends stall soon
    sock.connect(("127.0.0.1", s.port()))
    line = SocketLine.__new__(SocketLine)
    line.sock, line.name = sock, "peer"
    client = Client(WrapperTransport(line, 16), ClientSettings.for_association(16))
    client.associate()
    frame = client.transport.conn.send(GET)
    sock.settimeout(1.0)
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:
            sock.sendall(frame * 2000)
            sent += len(frame) * 2000
    except socket.timeout:
        pass  # the meter stopped reading from a peer that does not read its answers
    assert sent < 64 * 1024 * 1024
    listener = s.listeners["wrapper"]
    held = s.call(lambda: max(c._transport.get_write_buffer_size() for c in listener.connections))
    assert held <= tcp.WRITE_HIGH_WATER + 128 * 1024  # the high-water mark plus one chunk's answers
    sock.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_closed_plain_listener_refuses_and_a_peer_that_resets_harms_no_other():
    """hal.tcp.listen: peers that reset at once end only themselves; closing one endpoint
    stops it accepting and leaves the other, and its open connection, serving; an endpoint
    that cannot be opened fails the call with nothing left open."""
    s = Served("listen")
    try:
        for _ in range(20):  # RST right after the handshake, before or after the accept
            rude = socket.socket()
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.connect(("127.0.0.1", s.port()))
            rude.close()
        client = _associated_client(s.port())
        assert client.get(3, REGISTER, 2) is not None
        hdlc_port = s.port("hdlc")
        s.call(lambda: s.listeners["hdlc"].close())
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", hdlc_port), timeout=2)
        assert client.get(3, REGISTER, 2) is not None
        client.close()
        free, taken = _free_port(), s.port()
        with pytest.raises(tcp.HalError, match=f"127.0.0.1:{taken}"):
            s.call(lambda: tcp.listen([("127.0.0.1", free, lambda c: None), ("127.0.0.1", taken, lambda c: None)]))
        with socket.socket() as again:  # the first endpoint of the failed call was closed
            again.bind(("127.0.0.1", free))
    finally:
        s.stop()
