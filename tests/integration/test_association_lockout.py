"""Issue 14 items 4 and 5 on a whole meter served over the wrapper on real TCP sockets.

Item 5, nobody locked out: wrong passwords from one peer (a client on 127.0.0.2) make
that peer back off, with a wait that grows, while the right password from another peer
(127.0.0.1) is accepted at once; a flood of junk glo-initiate-requests for the utility
SAP does not lock the utility out; and the back-off survives a restart of the meter
(its record is in the meter's memory, a real sqlite file).

Both transports on TCP count one address as one peer, and so does a fleet meter that is
evicted to its dormant record and hydrated again.

Item 4, nothing lost: after a magnet event, 150 bad AARQs for the utility association
(a known client system title, a garbage tag, a stale counter) leave the magnet event in
the "other" log, write nothing there, and show up in the security log as a handful of
rows, the repeats as one aggregated record.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace

from datetime import datetime

import pytest

from bijli.dlms import acse
from bijli.dlms.acse import AssociationResult
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.errors import AssociationError
from bijli.dlms.link.hdlc import HdlcAddress
from bijli.dlms.lockout import PeerState
from bijli.firmware.cosem.associations import LOCKOUT_KEY
from bijli.firmware.events import EventCode, LogKind
from bijli.firmware.shard import ShardStore
from bijli.hal import tcp
from bijli.hal.clock import SimClock
from bijli.hal.tcp_line import SocketLine
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node import config as config_mod
from bijli.tools.node import links
from bijli.tools.node.client_transports import WrapperTransport
from bijli.tools.node.hdlc_transport import HdlcTransport
from tests.integration.whole_meter import whole_meter
from tests.peers.loop_thread import ServedMeter

OWNER, STRANGER = "127.0.0.1", "127.0.0.2"


class LineFrom(SocketLine):
    """A client line whose connection leaves from a chosen loopback address (another peer)."""

    def __init__(self, source: str, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.name = f"{host}:{port} from {source}"


class Served(ServedMeter):
    """The served meter, reached from a chosen loopback address (a peer of its own)."""

    def transport(self, source: str, sap: int) -> WrapperTransport:
        return WrapperTransport(LineFrom(source, "127.0.0.1", self.port), sap)

    def aare(self, source: str, sap: int, **kw) -> acse.AARE:
        """One AARQ from ``source`` on a fresh connection; the AARE."""
        client = self.client(source, sap, **kw)
        try:
            return acse.AARE.decode(client.transport.request(client.session.aarq()))
        finally:
            client.transport.close()

    def client(self, source: str, sap: int, **kw) -> Client:
        if sap == 48:
            kw.setdefault("invocation_counter", self.call(lambda: self.node.security.counters.expected_rx(b"BJLCLT01")))
        return Client(self.transport(source, sap), ClientSettings.for_association(sap, **kw))

    def events(self, kind: LogKind):
        return self.call(lambda: self.node.meter.events.events(self.node.storage, kind))


@pytest.fixture
def meter(tmp_path):
    state = tmp_path / "state"
    started = []

    def start() -> Served:
        s = Served(whole_meter(state))
        started.append(s)
        return s

    yield start
    for s in started:
        if not s.stopped:
            s.stop()
            s.node.storage.close()


def _stop(served: Served) -> None:
    """Stop serving and shut the meter down, as ``bijli meter`` does at ``quit``."""
    served.stop()
    served.node.shutdown()


def test_wrong_passwords_from_one_peer_do_not_keep_the_owner_out(meter):
    served = meter()
    for _ in range(3):
        assert served.aare(STRANGER, 32, password=b"guess123").result == AssociationResult.REJECTED_PERMANENT
    # the stranger now backs off: even the right password is refused unjudged, for a while
    assert served.aare(STRANGER, 32).result == AssociationResult.REJECTED_TRANSIENT
    owner = served.client(OWNER, 32)
    owner.associate()  # the owner's right password is accepted at once
    assert owner.get(1, "0.0.96.1.0.255", 2).value == "BJL0000001"
    owner.release()
    owner.transport.close()


def test_a_failing_peer_waits_longer_each_time(meter):
    served = meter()
    lockout = served.node.server.lockout
    served.call(lambda: setattr(lockout, "policy", replace(lockout.policy, base_delay=0.4)))
    waits = []
    for round_ in range(3):
        for _ in range(3 if round_ == 0 else 1):  # the allowance, then one judged try after each wait
            assert served.aare(STRANGER, 32, password=b"guess123").result != AssociationResult.ACCEPTED
        (peer,) = served.call(lambda: lockout.snapshot(time.monotonic())).peers
        assert peer.state is PeerState.WAITING and peer.peer == f"tcp {STRANGER}"
        waits.append(round(peer.wait_s + peer.idle_s, 6))  # the wait this failure started
        time.sleep(peer.wait_s + 0.05)
    assert waits == [0.4, 0.8, 1.6]
    assert served.aare(STRANGER, 32).result == AssociationResult.ACCEPTED  # after its wait, judged
    assert served.call(lambda: lockout.snapshot(time.monotonic())).peers == ()  # and forgotten


def test_the_back_off_survives_a_restart(meter):
    served = meter()
    lockout = served.node.server.lockout
    served.call(lambda: setattr(lockout, "policy", replace(lockout.policy, base_delay=120.0)))
    for _ in range(3):
        served.aare(STRANGER, 32, password=b"guess123")
    _stop(served)
    again = meter()  # a new process, for the meter: the same memory
    kept = again.node.storage.get(LOCKOUT_KEY)
    assert [p["state"] for p in kept["peers"]] == [PeerState.WAITING]
    assert again.aare(STRANGER, 32).result == AssociationResult.REJECTED_TRANSIENT
    assert 100.0 < again.call(lambda: again.node.server.lockout.waiting(f"tcp {STRANGER}", 32,
                                                                        time.monotonic())) <= 120.0
    assert again.aare(OWNER, 32).result == AssociationResult.ACCEPTED


def _bad_utility_aarqs(served: Served, n: int) -> None:
    """``n`` AARQs for the utility association from the stranger: a known client system
    title, then a garbage tag or a stale invocation counter, all on one connection."""
    genuine = served.client(STRANGER, 48)
    aarq = genuine.session.aarq()
    genuine.associate()  # spends this AARQ's counter: sent again, it is a replay
    genuine.release()
    genuine.transport.close()
    forged = aarq[:-1] + bytes((aarq[-1] ^ 0x55,))
    transport = served.transport(STRANGER, 48)
    try:
        for i in range(n):
            answer = acse.AARE.decode(transport.request(forged if i % 2 else aarq))
            assert answer.result != AssociationResult.ACCEPTED
    finally:
        transport.close()


def test_a_junk_glo_initiate_flood_does_not_lock_the_utility_out(meter):
    served = meter()
    _bad_utility_aarqs(served, 60)
    utility = served.client(OWNER, 48)
    utility.associate()
    assert utility.get(1, "0.0.96.1.0.255", 2).value == "BJL0000001"
    utility.release()
    utility.transport.close()


def test_bad_aarqs_cannot_push_tamper_evidence_out_of_the_event_logs(meter):
    served = meter()
    served.call(lambda: served.node.meter.record_event(EventCode.MAGNET, tamper=True, detail="hall sensor"))
    _bad_utility_aarqs(served, 160)
    other = served.events(LogKind.OTHER)
    assert [e.code for e in other] == [EventCode.MAGNET]  # still there, and nothing else written there
    security = served.events(LogKind.SECURITY)
    assert [e.code for e in security] == [EventCode.AUTHENTICATION_FAILURE, EventCode.LOCKOUT]
    assert security[0].detail.startswith(f"client SAP 48 tcp {STRANGER}: glo-initiate-request refused")
    # the window ends: the repeats are logged as one aggregated record
    served.call(lambda: served.node.step(16 * 60))
    security = served.events(LogKind.SECURITY)
    repeated = [e.detail for e in security if e.code is EventCode.SECURITY_EVENTS_REPEATED]
    assert [d for d in repeated if " 351 " in d] == [d for d in repeated if d.startswith(
        f"159 more 351 from client SAP 48 tcp {STRANGER}, ")]
    assert len([d for d in repeated if " 351 " in d]) == 1 and len(security) <= 4
    assert [e.code for e in served.events(LogKind.OTHER)] == [EventCode.MAGNET]


def test_a_fleet_meter_keeps_its_back_off_when_it_is_evicted(tmp_path):
    """The fleet engine evicts meters to compact records; the lockout is in the meter's
    memory (the shard), so the rehydrated meter's server still makes the peer wait."""
    store = ShardStore.open(tmp_path / "fleet.db")
    engine = FleetEngine(config_mod.load(None), [0, 1], store, SimClock(datetime(2024, 6, 10, 10, 0), rate=0),
                         cache_size=1)
    try:
        with engine.observe(0) as node:
            for _ in range(3):
                node.server.lockout.failed(f"tcp {STRANGER}", 32, time.monotonic())
        with engine.observe(1):
            pass  # meter 0 is evicted to its dormant record
        assert engine.hydrated == 1
        with engine.observe(0) as node:
            assert node.server.lockout.waiting(f"tcp {STRANGER}", 32, time.monotonic()) > 3.0
            assert node.server.lockout.waiting(f"tcp {OWNER}", 32, time.monotonic()) == 0.0
    finally:
        engine.shutdown()
        store.close()


@pytest.mark.parametrize("peername, identity", [
    (("127.0.0.2", 40001), "tcp 127.0.0.2"),
    (("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 4059, 0, 0), "tcp 2001:db8:1:2::/64"),  # one subscriber's prefix
    (("::ffff:10.1.2.3", 4059, 0, 0), "tcp 10.1.2.3"),
    (("fe80::1%eth0", 4059, 0, 2), "tcp fe80::/64"),
    (None, "tcp None"),
])
def test_a_tcp_peer_is_its_address_not_its_port(peername, identity):
    assert links.peer_identity(peername) == identity


def test_hdlc_over_tcp_and_the_wrapper_count_the_same_peer(meter):
    served = meter()

    async def hdlc():
        return await tcp.serve("127.0.0.1", 0, lambda s: links.hdlc_tcp_session(s, served.node.server))

    listener = asyncio.run_coroutine_threadsafe(hdlc(), served.loop_thread.loop).result(5)
    try:
        port = listener.sockets[0].getsockname()[1]
        for _ in range(3):
            transport = HdlcTransport(LineFrom(STRANGER, "127.0.0.1", port), 32, HdlcAddress(1, 16))
            transport.connect()
            client = Client(transport, ClientSettings.for_association(32, password=b"guess123"))
            with pytest.raises(AssociationError):
                client.associate()
            transport.close()
        # the same address on the wrapper: backing off; the owner on the wrapper: in
        assert served.aare(STRANGER, 32).result == AssociationResult.REJECTED_TRANSIENT
        assert served.aare(OWNER, 32).result == AssociationResult.ACCEPTED
    finally:
        served.call(listener.close)
