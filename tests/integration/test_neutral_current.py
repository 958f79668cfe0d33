"""The IS 15959 single-phase neutral current (1.0.91.7.0.255), end to end (issue 11 item 16).

A whole meter as ``bijli meter`` builds it: the console's ``earth`` emulates earth
leakage in the synthetic installation, the neutral CT's channel carries the phase
current less that earth current, and the register and the instantaneous profile show
the measurement, to our client in-process and to gurux-dlms over a real TCP socket, in
the associations that read the phase current. An open relay carries neither.
"""

from __future__ import annotations

import pytest

from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSRegister

from bijli.dlms import axdr
from bijli.dlms.errors import DlmsError
from bijli.firmware.cosem import catalogue
from tests.integration.test_interop_gurux import _ic
from tests.integration.whole_meter import client, whole_meter
from tests.peers.gurux_client import GuruxPeer, TcpTransport
from tests.peers.loop_thread import ServedMeter


@pytest.fixture
def node(tmp_path):
    node = whole_meter(tmp_path)
    yield node
    node.shutdown()


def _amps(c, obis) -> float:
    value = c.get(3, obis, 2)
    assert c.get(3, obis, 3) == axdr.Structure((axdr.Integer(-2), axdr.Enum(33)))  # 10^-2 A
    return value.value / 100


def test_earth_leakage_from_the_console_shows_in_the_neutral_register(node):
    assert node.execute("load 10 0.8L").ok
    c = client(node, 32)
    assert _amps(c, catalogue.NEUTRAL_CURRENT) == pytest.approx(10.0, abs=0.02)  # healthy: the phase current
    assert _amps(c, catalogue.PHASE_CURRENT) == pytest.approx(10.0, abs=0.02)
    reply = node.execute("earth 2.5")
    assert reply.ok and reply.text == "earth current 2.5 A: the neutral carries 2.5 A less than the phase"
    assert _amps(c, catalogue.PHASE_CURRENT) == pytest.approx(10.0, abs=0.02)
    assert _amps(c, catalogue.NEUTRAL_CURRENT) == pytest.approx(7.5, abs=0.02)
    assert node.meter.status()["neutral_current"] == pytest.approx(7.5, abs=0.005)
    assert node.execute("get 1.0.91.7.0.255").text == "750"
    assert node.execute("earth -1").text == "earth current -1 A: the neutral carries 1 A more than the phase"
    assert _amps(c, catalogue.NEUTRAL_CURRENT) == pytest.approx(11.0, abs=0.02)
    assert node.execute("earth 0").text == "earth current 0 A: the neutral carries the phase current"
    assert _amps(c, catalogue.NEUTRAL_CURRENT) == pytest.approx(10.0, abs=0.02)


def test_a_refused_earth_current_changes_nothing(node):
    assert node.execute("load 5").ok and node.execute("earth 1").ok
    for line, word in (("earth", "earth needs AMPS"), ("earth x", "AMPS must be a number"),
                       ("earth nan", "finite"), ("earth 61", "beyond the meter's maximum current of 60 A"),
                       ("earth -61", "beyond"), ("earth 1 2", "earth needs AMPS")):
        reply = node.execute(line)
        assert not reply.ok and word in reply.text, line
    assert node.earth_current == 1.0 and node.source.earth_current == 1.0
    assert node.meter.status()["neutral_current"] == pytest.approx(4.0, abs=0.005)


def test_an_open_relay_carries_no_neutral_current(node):
    assert node.execute("load 8").ok and node.execute("earth 3").ok
    c = client(node, 48)
    c.action(70, catalogue.DISCONNECT_CONTROL, 1, axdr.Integer(0))  # remote disconnect
    node.tick()
    assert node.meter.relay.output_state is False
    node.execute("status")  # one more tick: the open relay's samples
    assert _amps(c, catalogue.NEUTRAL_CURRENT) == pytest.approx(0.0, abs=0.005)
    assert node.meter.status()["neutral_current"] == 0.0
    c.action(70, catalogue.DISCONNECT_CONTROL, 2, axdr.Integer(0))  # remote reconnect: ready (mode 6)
    node.execute("relay press")  # the consumer closes it
    assert node.meter.relay.output_state is True
    assert _amps(c, catalogue.NEUTRAL_CURRENT) == pytest.approx(5.0, abs=0.02)  # the leak is back with the load


def test_the_instantaneous_profile_carries_the_neutral_after_the_phase_current(node):
    assert node.execute("load 6").ok and node.execute("earth 1.5").ok
    c = client(node, 32)
    columns = [(s.value[0].value, bytes(s.value[1].value)) for s in c.get(7, "1.0.94.91.0.255", 3).value]
    lns = [ln for _, ln in columns]
    voltage, phase, neutral = (catalogue.VOLTAGE.to_bytes(), catalogue.PHASE_CURRENT.to_bytes(),
                               catalogue.NEUTRAL_CURRENT.to_bytes())
    assert lns[1:4] == [voltage, phase, neutral] and columns[3][0] == 3
    (row,) = c.get(7, "1.0.94.91.0.255", 2).value
    assert row.value[3] == axdr.DoubleLong(450) and row.value[2] == axdr.DoubleLong(600)
    (scalers,) = c.get(7, catalogue.INSTANTANEOUS_SCALERS, 2).value
    assert scalers.value[2] == axdr.Structure((axdr.Integer(-2), axdr.Enum(33)))  # the neutral's, as the phase's


def test_the_public_client_sees_no_neutral_current_as_it_sees_no_phase_current(node):
    c = client(node, 16)
    names = {e.logical_name for e in c.object_list()}
    assert catalogue.PHASE_CURRENT not in names and catalogue.NEUTRAL_CURRENT not in names
    with pytest.raises(DlmsError):
        c.get(3, catalogue.NEUTRAL_CURRENT, 2)
    names = {e.logical_name for e in client(node, 32).object_list()}
    assert {catalogue.PHASE_CURRENT, catalogue.NEUTRAL_CURRENT} <= names


@pytest.mark.parametrize("sap", (32, 48))
def test_gurux_reads_the_neutral_current(tmp_path, sap):
    node = whole_meter(tmp_path)
    served = ServedMeter(node)
    try:
        served.call(lambda: (node.execute("load 12 0.9L"), node.execute("earth 4")))
        kw = {"authentication": Authentication.LOW, "password": b"12345678"}
        if sap == 48:
            kw = {"authentication": Authentication.HIGH_GMAC, "invocation_counter": _ic["next"]}
            _ic["next"] += 1000
        peer = GuruxPeer(TcpTransport("127.0.0.1", served.port), client_sap=sap, **kw)
        peer.connect()
        try:
            neutral = GXDLMSRegister(str(catalogue.NEUTRAL_CURRENT))
            phase = GXDLMSRegister(str(catalogue.PHASE_CURRENT))
            for reg in (neutral, phase):
                peer.read(reg, 3)
                peer.read(reg, 2)
            assert neutral.scaler == phase.scaler == pytest.approx(0.01) and int(neutral.unit) == 33
            assert phase.value == pytest.approx(12.0, abs=0.02) and neutral.value == pytest.approx(8.0, abs=0.02)
        finally:
            peer.close()
    finally:
        served.stop()
        node.shutdown()


def _earth_events(node) -> list[tuple[int, str]]:
    from bijli.firmware.events import LogKind

    return [(int(e.code), e.detail) for e in node.meter.events.events(node.storage, LogKind.CURRENT)]


def test_earth_leakage_is_logged_as_earth_loading_once_and_restored_across_a_restart(tmp_path):
    node = whole_meter(tmp_path)
    try:
        assert node.execute("load 10").ok and node.execute("earth 3").ok
        node.execute("step 2m")  # the meter settles: the mismatch is judged
        assert _earth_events(node) == [(69, "phase 10.00 A, neutral 7.00 A")]
        c = client(node, 32)
        assert c.get(1, catalogue.TAMPER_COUNT, 2) == axdr.DoubleLongUnsigned(1)
        assert c.get(1, "0.0.96.11.1.255", 2) == axdr.LongUnsigned(69)  # the current log's last event
        node.execute("step 30m")
        assert len(_earth_events(node)) == 1  # one occurrence while it lasts
    finally:
        node.shutdown()
    node = whole_meter(tmp_path)  # a restart with the fault still there: not a second occurrence
    try:
        assert node.meter.earth_loading.active
        assert node.execute("load 10").ok and node.execute("earth 3").ok
        node.execute("step 2m")
        assert [code for code, _ in _earth_events(node)] == [69]
        assert node.execute("earth 0.5").ok  # 5 %: below the restoration threshold
        node.execute("step 2m")
        assert _earth_events(node)[-1] == (70, "phase 10.00 A, neutral 9.50 A")
        # restorations do not count
        assert client(node, 32).get(1, catalogue.TAMPER_COUNT, 2) == axdr.DoubleLongUnsigned(1)
    finally:
        node.shutdown()
