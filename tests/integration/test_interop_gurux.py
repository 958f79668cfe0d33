"""Interoperability with the gurux-dlms client over every transport and association.

The meter here is the real stack (firmware Meter, firmware.cosem, dlms.server
with security suite 0) served by the real I/O shells of tools.node.links on an
asyncio loop in a thread: the wrapper on TCP, HDLC on TCP, and HDLC on two real
pseudo-terminal pairs (one plain at 9600, one optical with the mode E opening
at 300 baud). gurux, a client we did not write, connects to each with the
public client (16), the meter reader (32, LLS) and the utility settings
association (48, HLS-GMAC, authenticated and encrypted).
"""

from __future__ import annotations

import re
from argparse import Namespace
from datetime import datetime

import pytest

import gurux_dlms as gurux  # a test dependency: its absence is an error, not a skip

from gurux_dlms import GXDLMSClient  # noqa: E402
from gurux_dlms.enums import Authentication, Conformance as GxConformance, InterfaceType, Security  # noqa: E402
from gurux_dlms.enums import ExceptionServiceError, StateError  # noqa: E402
from gurux_dlms.objects import GXDLMSClock, GXDLMSData, GXDLMSRegister  # noqa: E402

import bijli.firmware.meter as fm  # noqa: E402
from bijli.dlms.security import MemoryCounterStore, SecuritySettings  # noqa: E402
from bijli.dlms.server import Server, ServerEvent  # noqa: E402
from bijli.firmware.cosem.associations import policies  # noqa: E402
from bijli.firmware.cosem.object_list import build_objects  # noqa: E402
from bijli.firmware.storage import Storage  # noqa: E402
from bijli.hal import tcp  # noqa: E402
from tests.peers.gurux_client import GuruxPeer, SerialTransport, TcpTransport  # noqa: E402
from bijli.tools.node import config as config_mod  # noqa: E402
from bijli.tools.node import links  # noqa: E402
from tests.peers.loop_thread import LoopThread

START = datetime(2024, 6, 17, 10, 0, 0)


class LiveMeter:
    """A meter served on an asyncio loop in a thread, on all four transports."""

    def __init__(self, state_dir):
        self.cfg = config_mod.load(None)
        self.meter = fm.Meter(self.cfg.meter, Storage.open(state_dir), START)
        self.objects = build_objects(self.meter, set_clock=self.meter.set_time)
        dl = self.cfg.meter.dlms
        self.notices = []
        self.counter_store = MemoryCounterStore()
        self.server = Server(self.objects, policies(self.meter), max_pdu=dl.max_pdu, on_notice=self.notices.append,
                             lockout_after=dl.lockout_after, lockout_seconds=dl.lockout_minutes * 60,
                             security=SecuritySettings(system_title=self.cfg.meter.identity.system_title,
                                                       encryption_key=dl.encryption_key,
                                                       authentication_key=dl.authentication_key,
                                                       counter_store=self.counter_store))
        self.lines: list[str] = []

        async def main():
            w = await tcp.serve("127.0.0.1", 0, lambda s: links.wrapper_session(s, self.server))
            self.wrapper_port = w.sockets[0].getsockname()[1]
            args = Namespace(hdlc_tcp=["127.0.0.1:0"], serial=["pty"], optical=["pty"])
            self.running = await links.start_transports(args, self.server, self.cfg, echo=self.lines.append)
            self._listener = w

        self.loop_thread = LoopThread(main)
        self.hdlc_port = int(re.search(r"HDLC listening on [\d.]+:(\d+)", self.lines[0]).group(1))
        self.serial_path = re.search(r"DLMS serial on (\S+)", self.lines[1]).group(1)
        self.optical_path = re.search(r"DLMS optical on (\S+)", self.lines[2]).group(1)

    def stop(self):
        async def close():
            for r in self.running:
                r.close()
            self._listener.close()

        self.loop_thread.stop(close)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    m = LiveMeter(tmp_path_factory.mktemp("state"))
    yield m
    m.stop()


TRANSPORTS = ("wrapper", "hdlc-tcp", "pty", "pty-mode-e")
_ic = {"next": 1}  # gurux's IC across tests: the meter refuses any value it has seen


def peer_for(live: LiveMeter, transport: str, sap: int, **kw) -> GuruxPeer:
    if transport == "wrapper":
        t, interface, address = TcpTransport("127.0.0.1", live.wrapper_port), InterfaceType.WRAPPER, 1
    else:
        address = GXDLMSClient.getServerAddress(1, 16)
        interface = InterfaceType.HDLC
        if transport == "hdlc-tcp":
            t = TcpTransport("127.0.0.1", live.hdlc_port)
        else:
            t = SerialTransport(live.serial_path if transport == "pty" else live.optical_path,
                                mode_e=transport == "pty-mode-e")
    if sap == 32:
        kw.setdefault("authentication", Authentication.LOW)
        kw.setdefault("password", b"12345678")
    elif sap == 48:
        kw.setdefault("authentication", Authentication.HIGH_GMAC)
        kw.setdefault("invocation_counter", _ic["next"])
        _ic["next"] += 1000
    return GuruxPeer(t, client_sap=sap, interface=interface, server_address=address, **kw)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("sap", (16, 32, 48))
def test_gurux_reads_clock_register_and_object_list(live, transport, sap):
    peer = peer_for(live, transport, sap)
    try:
        peer.connect()
        clock = GXDLMSClock("0.0.1.0.0.255")
        peer.read(clock, 2)
        assert clock.time.value.year == 2024 and clock.time.value.month == 6

        register = GXDLMSRegister("1.0.1.8.0.255")
        peer.read(register, 3)
        assert register.scaler == 1 and int(register.unit) == 30  # 10^0 Wh
        peer.read(register, 2)
        assert register.value >= 0

        objects = peer.client.parseObjects(peer.exchange(peer.client.getObjectsRequest()).data, True)
        names = {o.logicalName for o in objects}
        assert "0.0.1.0.0.255" in names
        if sap == 16:
            assert "1.0.12.7.0.255" not in names  # the public client sees only a few objects
        else:
            assert "1.0.12.7.0.255" in names
            voltage = GXDLMSRegister("1.0.12.7.0.255")
            peer.read(voltage, 3)
            assert voltage.scaler == pytest.approx(0.01) and int(voltage.unit) == 35  # V, 10^-2
    finally:
        peer.close()


@pytest.mark.parametrize("transport", ("wrapper", "hdlc-tcp"))
def test_gurux_with_service_specific_glo_ciphering_writes_the_clock(live, transport):
    peer = peer_for(live, transport, 48)
    # without general-protection gurux uses glo-get/set-request instead of general-glo-ciphering
    peer.client.proposedConformance &= ~GxConformance.GENERAL_PROTECTION
    try:
        peer.connect()
        clock = GXDLMSClock("0.0.1.0.0.255")
        peer.read(clock, 2)
        before = live.meter.now
        from gurux_dlms import GXDateTime
        clock.time = GXDateTime(datetime(2024, 7, 1, 12, 30, 0))
        peer.write(clock, 2)
        peer.read(clock, 2)
        # gurux sends its own UTC offset; the meter keeps local time (IST), so compare the date only
        assert (clock.time.value.month, clock.time.value.day) == (7, 1)
        assert live.meter.now > before
    finally:
        # put the meter back for the other tests
        try:
            clock.time = GXDateTime(START)
            peer.write(clock, 2)
        finally:
            peer.close()


def test_public_client_cannot_write_the_clock(live):
    peer = peer_for(live, "wrapper", 16)
    try:
        peer.connect()
        clock = GXDLMSClock("0.0.1.0.0.255")
        peer.read(clock, 2)
        # SET is outside the public association's conformance: an exception-response (issue 11 item 17)
        with pytest.raises(gurux.GXDLMSExceptionResponse) as exc:
            peer.exchange(peer.client.write(clock, 2))
        assert (exc.value.exceptionStateError, exc.value.exceptionServiceError) == (
            StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.SERVICE_NOT_SUPPORTED)
        peer.read(clock, 2)  # and the association goes on
    finally:
        peer.close()


def test_wrong_password_is_refused_and_the_meter_keeps_serving(live):
    bad = peer_for(live, "wrapper", 32, password=b"wrong-pw")
    with pytest.raises(Exception):
        bad.connect()
    bad.transport.close()
    assert any(n.event is ServerEvent.AUTHENTICATION_FAILED and n.client_sap == 32 for n in live.notices)
    good = peer_for(live, "hdlc-tcp", 32)
    try:
        good.connect()
        data = GXDLMSData("0.0.96.1.0.255")
        good.read(data, 2)
        assert str(data.value) == "BJL0000001"
    finally:
        good.close()


def test_wrong_keys_fail_hls_and_count_towards_lockout(live):
    before = sum(1 for n in live.notices if n.event is ServerEvent.AUTHENTICATION_FAILED)
    bad = peer_for(live, "wrapper", 48, authentication_key=bytes(16))
    with pytest.raises(Exception):
        bad.connect()
    bad.transport.close()
    after = sum(1 for n in live.notices if n.event is ServerEvent.AUTHENTICATION_FAILED)
    assert after == before + 1
    ok = peer_for(live, "wrapper", 48)
    try:
        ok.connect()  # one failure is below the lockout count: the right keys still get in
    finally:
        ok.close()


def test_replayed_ciphered_request_is_refused_and_the_meter_keeps_serving(live):
    peer = peer_for(live, "wrapper", 48)
    try:
        peer.connect()
        clock = GXDLMSClock("0.0.1.0.0.255")
        ic = peer.client.ciphering.invocationCounter
        (frame,) = peer.client.read(clock, 2)
        peer.transport.send(bytes(frame))
        first = peer.transport.recv()
        assert first[8] in (0xDB, 0xCC)  # a ciphered get-response
        failures = sum(1 for n in live.notices if n.event is ServerEvent.SECURITY_FAILURE)
        peer.transport.send(bytes(frame))  # the same bytes again: same invocation counter
        again = peer.transport.recv()
        # exception-response: service-not-allowed, invocation-counter-error with the IC the meter expects
        assert again[8:11] == bytes((0xD8, 1, 6))
        assert int.from_bytes(again[11:15], "big") == ic + 1
        assert sum(1 for n in live.notices if n.event is ServerEvent.SECURITY_FAILURE) == failures + 1
        assert peer.client.ciphering.invocationCounter == ic + 1
        peer.read(clock, 2)  # a fresh IC is served as before
        assert clock.time.value.year == 2024
    finally:
        peer.close()


def test_load_profile_by_range_and_entry(live):
    peer = peer_for(live, "wrapper", 32)
    try:
        peer.connect()
        objects = peer.client.parseObjects(peer.exchange(peer.client.getObjectsRequest()).data, True)
        profile = objects.findByLN(7, "1.0.99.1.0.255")
        assert profile is not None
        peer.read(profile, 3)
        reply = peer.exchange(peer.client.readRowsByEntry(profile, 1, 2))
        peer.client.updateValue(profile, 2, reply.value)
        reply = peer.exchange(peer.client.readRowsByRange(profile, datetime(2024, 1, 1), datetime(2025, 1, 1)))
        peer.client.updateValue(profile, 2, reply.value)
    finally:
        peer.close()


def test_disconnect_control(live):
    peer = peer_for(live, "wrapper", 48)
    try:
        peer.connect()
        objects = peer.client.parseObjects(peer.exchange(peer.client.getObjectsRequest()).data, True)
        relay = objects.findByLN(70, "0.0.96.3.10.255")
        assert relay is not None
        peer.exchange(relay.remoteDisconnect(peer.client))
        peer.read(relay, 3)
        assert int(relay.controlState) == 0
        assert live.meter.relay.output_state is False
        peer.exchange(relay.remoteReconnect(peer.client))
        peer.read(relay, 3)
        assert int(relay.controlState) == 2  # mode 6: ready for reconnection
    finally:
        peer.close()


def test_invocation_counters_are_persisted_in_steps(live):
    stored = live.counter_store.values
    assert stored["tx"] > live.server.security.counters._next["tx"] - 1
    assert any(k.startswith("rx:") for k in stored)
    assert live.counter_store.saves < 50  # not one write per APDU
    assert Security.AUTHENTICATION_ENCRYPTION == 0x30
