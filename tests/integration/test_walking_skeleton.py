"""The walking skeleton: a real `bijli meter` process read by the gurux-dlms client."""

from __future__ import annotations

from gurux_dlms.objects import GXDLMSClock, GXDLMSData, GXDLMSRegister

from tests.peers.gurux_client import GuruxPeer, TcpTransport


def test_public_client_reads_clock_and_energy_that_grows_under_load(bijli_meter_factory):
    meter = bijli_meter_factory(start="2024-06-14T18:00:00")
    peer = GuruxPeer(TcpTransport("127.0.0.1", meter.endpoints.wrapper_port), client_sap=16)
    try:
        peer.connect()
        clock = GXDLMSClock("0.0.1.0.0.255")
        peer.read(clock, 2)
        assert clock.time.value.year == 2024 and clock.time.value.month == 6

        ldn = GXDLMSData("0.0.42.0.0.255")
        peer.read(ldn, 2)
        assert bytes(ldn.value).decode() == "BJL0000001"

        register = GXDLMSRegister("1.0.1.8.0.255")
        peer.read(register, 3)  # scaler and unit: 10^0 Wh
        assert register.scaler == 1 and int(register.unit) == 30
        peer.read(register, 2)
        before = register.value

        assert meter.console("load 10") == "load 10 A at PF 1"
        assert meter.console("step 1h") == "2024-06-14T19:00:00"
        assert meter.status()["power_w"] > 2000

        peer.read(register, 2)
        after = register.value
        # 230 V x 10 A for one hour is 2300 Wh (class 1: within 1 %)
        assert 2277 <= after - before <= 2323
    finally:
        peer.close()
    assert meter.stop() == 0


def test_sigterm_saves_energy_and_restart_restores_it(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    first = bijli_meter_factory(state=state, start="2024-01-01T00:00:00")
    first.console("load 20")
    first.step("30m")
    energy = first.status()["energy_import_kwh"]
    assert energy > 2.0
    assert first.stop() == 0

    second = bijli_meter_factory(state=state)  # a saved meter resumes its own clock
    status = second.status()
    assert status["energy_import_kwh"] >= energy
    assert status["time"] >= "2024-01-01T00:30:00"
