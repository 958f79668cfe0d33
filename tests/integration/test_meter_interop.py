"""gurux-dlms against `bijli meter` running as a subprocess, on the transports the
command line opens: a load profile of several hundred rows read by range and by
entry (so block transfer is exercised, over the wrapper and over HDLC with its
128-byte frames), the disconnect control invoked by the utility association and
seen on the meter's console, and the optical port with the mode E opening."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import GXDLMSClock, GXDLMSData, GXDLMSDisconnectControl, GXDLMSProfileGeneric

from tests.peers.gurux_client import GuruxPeer, SerialTransport, TcpTransport

START = datetime(2024, 6, 10, 0, 0)  # a Monday
IST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture(scope="module")
def meter(tmp_path_factory):
    from bijli.tools.testing import RunningMeter

    # every port: the wrapper, HDLC over TCP, the serial and the optical pty
    m = RunningMeter.start(tmp_path_factory.mktemp("state"), start=START.isoformat())
    m.console("load 5")
    assert m.console("token " + _token("5000")).startswith("accepted")
    assert m.console("step 5d") == "2024-06-15T00:00:00"  # 480 quarter-hour rows of block load
    yield m
    m.stop()


def _token(amount: str) -> str:
    from decimal import Decimal

    from bijli.firmware.meter import MeterConfig
    from bijli.firmware.sts.vend import vend_credit

    key = MeterConfig.from_dict({}).sts.vend_key()
    return vend_credit(key, Decimal(amount), subclass=4, time=datetime(2024, 6, 9, 23, 0)).digits


_ic = {"next": 10_000}


def peer(meter, transport: str, sap: int) -> GuruxPeer:
    kw = {}
    if sap == 32:
        kw = {"authentication": Authentication.LOW, "password": b"12345678"}
    elif sap == 48:
        kw = {"authentication": Authentication.HIGH_GMAC, "invocation_counter": _ic["next"]}
        _ic["next"] += 10_000
    if transport == "wrapper":
        return GuruxPeer(TcpTransport("127.0.0.1", meter.endpoints.wrapper_port), client_sap=sap, **kw)
    address = GXDLMSClient.getServerAddress(1, 16)
    if transport == "hdlc-tcp":
        line = TcpTransport("127.0.0.1", int(meter.endpoints.hdlc.rsplit(":", 1)[1]))
    elif transport == "serial":
        line = SerialTransport(meter.endpoints.serial)
    else:
        line = SerialTransport(meter.endpoints.optical, mode_e=True)
    return GuruxPeer(line, client_sap=sap, interface=InterfaceType.HDLC, server_address=address, **kw)


def _close(p: GuruxPeer) -> None:
    try:
        p.release()
    finally:
        p.transport.close()


@pytest.mark.parametrize("transport", ("wrapper", "hdlc-tcp"))
def test_block_load_profile_by_range_and_by_entry(meter, transport):
    p = peer(meter, transport, 32)
    try:
        p.connect()
        profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        p.read(profile, 3)  # capture objects: the clock first, then V, I and the block energies
        assert profile.captureObjects[0][0].logicalName == "0.0.1.0.0.255"
        p.read(profile, 7)
        assert profile.entriesInUse == 480

        # the bounds carry their UTC offset; the meter keeps IST (time_zone -330, Blue Book sign) and converts
        reply = p.exchange(p.client.readRowsByRange(profile, datetime(2024, 6, 11, 0, 0, tzinfo=IST),
                                                    datetime(2024, 6, 13, 23, 45, tzinfo=IST)))
        rows = p.client.updateValue(profile, 2, reply.value)
        assert len(rows) == 3 * 96  # three whole days of quarter hours
        times = [r[0].value for r in rows]
        assert times[0].replace(tzinfo=None) == datetime(2024, 6, 11, 0, 0)
        assert times[-1].replace(tzinfo=None) == datetime(2024, 6, 13, 23, 45)
        # each quarter hour at 230 V x 5 A is 287.5 Wh of import (whole Wh per block)
        energies = [r[3] for r in rows]
        assert all(287 <= e <= 288 for e in energies), energies[:8]

        reply = p.exchange(p.client.readRowsByEntry(profile, 1, 300))
        rows = p.client.updateValue(profile, 2, reply.value)
        assert len(rows) == 300
        assert rows[0][0].value.replace(tzinfo=None) == datetime(2024, 6, 10, 0, 15)
    finally:
        _close(p)


def test_daily_profile_and_billing_registers(meter):
    p = peer(meter, "wrapper", 32)
    try:
        p.connect()
        daily = GXDLMSProfileGeneric("1.0.99.2.0.255")
        p.read(daily, 3)
        reply = p.exchange(p.client.readRowsByEntry(daily, 1, 0))
        rows = p.client.updateValue(daily, 2, reply.value)
        assert len(rows) == 5  # midnights of 11..15 June
        import_wh = [r[1] for r in rows]
        assert all(b - a == 27600 for a, b in zip(import_wh, import_wh[1:]))  # 1.15 kW x 24 h
        balance = GXDLMSData("0.0.94.96.24.255")
        p.read(balance, 2)
        assert 0 < int(balance.value) < 500_000  # paisa: the 5000 INR token less five days
    finally:
        _close(p)


def test_utility_association_disconnects_and_reconnects_the_relay(meter):
    p = peer(meter, "hdlc-tcp", 48)
    try:
        p.connect()
        relay = GXDLMSDisconnectControl("0.0.96.3.10.255")
        p.read(relay, 4)
        assert int(relay.controlMode) == 6
        p.exchange(relay.remoteDisconnect(p.client))
        p.read(relay, 2)
        p.read(relay, 3)
        assert relay.outputState is False and int(relay.controlState) == 0
        assert meter.console("relay") == "disconnected"
        p.exchange(relay.remoteReconnect(p.client))
        p.read(relay, 3)
        # mode 6: remote reconnect arms the relay (ready); the customer's button closes it
        assert int(relay.controlState) == 2
        assert meter.console("relay") == "ready"
        assert meter.console("relay press") == "connected"
        p.read(relay, 2)
        assert relay.outputState is True
    finally:
        _close(p)


def test_serial_line_without_mode_e(meter):
    p = peer(meter, "serial", 32)
    try:
        p.connect()
        clock = GXDLMSClock("0.0.1.0.0.255")
        p.read(clock, 2)
        assert clock.time.value.replace(tzinfo=None) == datetime(2024, 6, 15, 0, 0)
    finally:
        _close(p)


def test_optical_port_with_mode_e_opening(meter):
    p = peer(meter, "optical", 16)
    try:
        p.connect()
        clock = GXDLMSClock("0.0.1.0.0.255")
        p.read(clock, 2)
        assert clock.time.value.replace(tzinfo=None) == datetime(2024, 6, 15, 0, 0)
    finally:
        _close(p)
    # the port goes back to 300 baud for the next probe: a second session opens the same way
    time.sleep(0.2)
    again = peer(meter, "optical", 16)
    try:
        again.connect()
    finally:
        _close(again)


def test_billing_profile_by_range_when_the_clock_is_not_the_first_column(meter):
    """IS 15959's billing profile starts with the billing date (a register), not the
    clock: a range read restricts on that column. The billing reset script makes a row."""
    utility = peer(meter, "wrapper", 48)
    try:
        utility.connect()
        from gurux_dlms.objects import GXDLMSScriptTable

        scripts = GXDLMSScriptTable("0.0.10.0.1.255")
        reply = utility.exchange(scripts.execute(utility.client, 1))  # end of billing: MD reset
        assert reply.error == 0
    finally:
        _close(utility)
    p = peer(meter, "wrapper", 32)
    try:
        p.connect()
        billing = GXDLMSProfileGeneric("1.0.98.1.0.255")
        p.read(billing, 3)
        first = billing.captureObjects[0][0]
        assert first.logicalName == "0.0.0.1.2.255" and first.objectType == 3  # the billing date register
        reply = p.exchange(p.client.readRowsByRange(billing, datetime(2024, 6, 14, 0, 0, tzinfo=IST),
                                                    datetime(2024, 6, 16, 0, 0, tzinfo=IST)))
        rows = p.client.updateValue(billing, 2, reply.value)
        assert len(rows) == 1
        # gurux cannot know a register's octet-string is a date-time: decode it ourselves
        from bijli.dlms.axdr import CosemDateTime

        assert CosemDateTime.decode(bytes(rows[0][0])).to_datetime().replace(tzinfo=None) == datetime(2024, 6, 15)
        reply = p.exchange(p.client.readRowsByRange(billing, datetime(2024, 6, 1, 0, 0, tzinfo=IST),
                                                    datetime(2024, 6, 14, 0, 0, tzinfo=IST)))
        assert p.client.updateValue(billing, 2, reply.value) == []
    finally:
        _close(p)


# --- general-block-transfer streaming (issue 16): a window of 4 blocks per acknowledgement ---

class _Recording:
    """A client transport that keeps every APDU it sent and received."""

    def __init__(self, inner):
        self.inner, self.sent, self.received = inner, [], []

    def request(self, data: bytes) -> bytes:
        self.sent.append(data)
        return self._got(self.inner.request(data))

    def receive(self) -> bytes:
        return self._got(self.inner.receive())

    def _got(self, data: bytes) -> bytes:
        self.received.append(data)
        return data

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("transport", ("wrapper", "hdlc-tcp"))
def test_our_client_reads_the_load_profile_with_gbt_window_4(meter, transport):
    from bijli.dlms.client import DEFAULT_CONFORMANCE, Client, ClientSettings
    from bijli.dlms.xdlms import Conformance
    from bijli.tools.node.client_transports import open_client_transport

    if transport == "wrapper":
        line = open_client_transport(meter.endpoints.wrapper, 48)
    else:
        port = int(meter.endpoints.hdlc.rsplit(":", 1)[1])
        line = open_client_transport(f"tcp://127.0.0.1:{port}", 48, hdlc_over_tcp=True)
    recording = _Recording(line)
    settings = ClientSettings.for_association(48, gbt_window=4, invocation_counter=_ic["next"],
                                              conformance=DEFAULT_CONFORMANCE | Conformance.GENERAL_BLOCK_TRANSFER)
    _ic["next"] += 10_000
    c = Client(recording, settings)
    try:
        c.associate()
        assert c.session.negotiated_conformance & Conformance.GENERAL_BLOCK_TRANSFER
        recording.sent.clear()
        recording.received.clear()
        _, rows = c.profile_by_entry("1.0.99.1.0.255", 1, 0)
        assert len(rows) == 480
        from bijli.dlms.axdr import CosemDateTime

        assert CosemDateTime.decode(rows[0][0].value).to_datetime().replace(tzinfo=None) == datetime(2024, 6, 10, 0, 15)
        assert len({r[0].value for r in rows}) == 480  # every quarter hour once
        blocks = [r for r in recording.received if r[0] == 0xE0]
        acks = [s for s in recording.sent if s[0] == 0xE0 and s[6:7] == b"\x00"]  # empty block data
        assert len(blocks) > 12  # the 480 rows do not fit one window
        # the capture-objects read and the buffer read each begin with one request block;
        # every acknowledgement brings a window of 4 (the last window of each answer may be short)
        assert len(acks) <= len(blocks) // 4 + 2
        c.release()
    finally:
        c.transport.close()


class _CountingTcp(TcpTransport):
    """gurux's TCP line, counting what it sends."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sends = 0

    def send(self, data: bytes) -> None:
        self.sends += 1
        super().send(data)


def test_gurux_reads_the_load_profile_with_gbt_window_4(meter):
    from gurux_dlms.enums import Conformance as GxConformance

    line = _CountingTcp("127.0.0.1", meter.endpoints.wrapper_port)
    p = GuruxPeer(line, client_sap=48, authentication=Authentication.HIGH_GMAC, invocation_counter=_ic["next"])
    _ic["next"] += 10_000
    p.client.proposedConformance |= GxConformance.GENERAL_BLOCK_TRANSFER
    p.client.setGbtWindowSize(4)  # (gurux spells the property gbtWndowSize)
    try:
        p.connect()
        assert p.client.negotiatedConformance & GxConformance.GENERAL_BLOCK_TRANSFER
        profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        p.read(profile, 3)
        before = line.sends
        reply = p.exchange(p.client.readRowsByEntry(profile, 1, 480))
        rows = p.client.updateValue(profile, 2, reply.value)
        assert len(rows) == 480
        assert rows[0][0].value.replace(tzinfo=None) == datetime(2024, 6, 10, 0, 15)
        # tens of kB in blocks of under 1 kB; the first window is one block (the meter does
        # not know gurux's window yet), then one acknowledgement per 4 blocks
        blocks = -(-len(reply.data.array()) // 1000)
        sends = line.sends - before
        assert blocks > 12 and 1 < sends <= blocks // 4 + 3, (sends, blocks)
    finally:
        _close(p)
