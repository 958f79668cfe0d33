"""hal.pins on gpiozero's MockFactory: relay, feedback, LEDs, button and tamper switches."""

import asyncio
import time

import pytest

from bijli.hal.errors import BackendError, HalError
from bijli.hal.pins import DEFAULT_PIN_MAP, MeterPins, PinEvent, PinEventKind, parse_pin


@pytest.fixture
def pins():
    p = MeterPins(DEFAULT_PIN_MAP, "mock")
    yield p
    p.close()


def pin_of(pins, role):
    return pins._devices[role].pin  # the gpiozero MockPin, to read what reaches the wire


def test_relay_decision_drives_coil_pin(pins):
    coil = pin_of(pins, "relay")
    assert coil.state is False  # de-energised at start: supply off until firmware decides
    pins.set_relay(True)
    assert coil.state is True
    assert pins.relay_feedback() is True and pins.check_feedback(True)
    pins.set_relay(False)
    assert coil.state is False
    assert pins.relay_feedback() is False and pins.check_feedback(False)


def test_feedback_pin_electrically_follows_coil_active_low(pins):
    fb = pin_of(pins, "relay_feedback")
    pins.set_relay(True)
    assert fb.state is False  # contact closes to ground: low = closed
    pins.set_relay(False)
    assert fb.state is True


def test_welded_relay_detected(pins):
    pins.set_relay(True)
    pins.simulate_relay_weld(True)
    pins.set_relay(False)  # firmware disconnects for no credit ...
    assert pin_of(pins, "relay").state is False
    assert pins.relay_feedback() is True  # ... but the contacts stay closed
    assert pins.check_feedback(False) is False
    pins.simulate_relay_weld(False)
    assert pins.check_feedback(False) is True
    pins.simulate_relay_stuck(False)  # stuck open: connect does nothing
    pins.set_relay(True)
    assert pins.check_feedback(True) is False


def test_inverted_coil_and_missing_roles():
    with MeterPins({"relay": "gpio:17"}, "mock", inverted={"relay"}) as p:
        assert pin_of(p, "relay").state is True  # active-low driver board: idle high
        p.set_relay(True)
        assert pin_of(p, "relay").state is False
        assert p.relay_feedback() is None and p.check_feedback(False)
        p.pulse()
        p.set_alarm(True)  # absent roles are no-ops
        assert p.roles == {"relay"}
        with pytest.raises(HalError):
            p.simulate_cover(True)


def test_pulse_and_alarm_leds(pins):
    pins.set_alarm(True)
    assert pin_of(pins, "alarm_led").state is True
    pins.set_alarm(False)
    assert pin_of(pins, "alarm_led").state is False
    led = pin_of(pins, "pulse_led")
    led.clear_states()
    pins.pulse()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and [s.state for s in led.states][-2:] != [True, False]:
        time.sleep(0.01)
    assert [s.state for s in led.states][-2:] == [True, False]


def test_tamper_and_button_callbacks(pins):
    seen = []
    pins.on_cover(lambda opened: seen.append(("cover", opened)))
    pins.on_magnet(lambda present: seen.append(("magnet", present)))
    pins.on_button(lambda: seen.append(("button",)))
    pin_of(pins, "cover").drive_low()  # the switch itself: cover lifted
    pins.simulate_magnet(True)
    pins.simulate_magnet(False)
    pins.simulate_button()
    pin_of(pins, "cover").drive_high()
    assert seen == [("cover", True), ("magnet", True), ("magnet", False), ("button",), ("cover", False)]
    assert pins.cover_open() is False and pins.magnet_present() is False


def test_events_reach_asyncio_queue_from_other_thread(pins):
    async def main():
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        pins.attach_loop(loop, queue)
        # gpiozero calls back in its own threads on a Pi; do the same here
        await loop.run_in_executor(None, pins.simulate_cover, True)
        await loop.run_in_executor(None, pins.simulate_button)
        got = [await asyncio.wait_for(queue.get(), 2) for _ in range(2)]
        assert got == [PinEvent(PinEventKind.COVER, True), PinEvent(PinEventKind.BUTTON, True)]
    asyncio.run(main())


def test_bad_config_raises_backend_error():
    with pytest.raises(BackendError, match="unknown pin roles"):
        MeterPins({"relais": 17}, "mock")
    with pytest.raises(BackendError, match="unknown pin factory"):
        MeterPins({"relay": 17}, "nonsense")
    with pytest.raises(BackendError, match="relay_feedback"):
        MeterPins({"relay": 17, "relay_feedback": 17}, "mock")  # one pin claimed twice
    with pytest.raises(BackendError):
        parse_pin(True)
    assert parse_pin("gpio:27") == 27 and parse_pin("BOARD11") == "BOARD11"


def test_real_factory_off_a_pi_is_a_backend_error():
    from pathlib import Path
    if Path("/proc/device-tree/model").exists():
        pytest.skip("running on a board with a device tree")
    with pytest.raises(BackendError, match="native"):
        MeterPins({"relay": 17}, "native")
