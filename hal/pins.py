"""The meter's discrete I/O: relay coil and feedback, LEDs, button, tamper switches.

Every pin goes through gpiozero, so the same code drives a Raspberry Pi rig
(the default or a named pin factory) and the emulator (gpiozero's MockFactory).
On mock pins the relay feedback contact follows the coil like a healthy
latching relay, and a fault can be injected (:meth:`MeterPins.simulate_relay_weld`)
so the meter's check that the supply really is disconnected (the "relay
welded" event of the IS 15959 control event log) can be exercised.

Inputs are wired the usual way for field switches, to ground with a pull-up, so
"active" means "switch closed"; any role can be inverted in the pin map.
gpiozero calls input callbacks from its own threads; :meth:`MeterPins.attach_loop`
turns them into :class:`PinEvent` values on an asyncio queue, which is how the
single-threaded firmware loop sees them.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from dataclasses import dataclass
from typing import Callable, Mapping

from bijli.hal.errors import BackendError, HalError

__all__ = ["ROLES", "PinEvent", "PinEventKind", "MeterPins", "make_factory", "parse_pin"]

ROLES = ("relay", "relay_feedback", "pulse_led", "alarm_led", "button", "cover", "magnet")
_INPUT_ROLES = ("relay_feedback", "button", "cover", "magnet")

DEFAULT_PIN_MAP = {"relay": 17, "relay_feedback": 27, "pulse_led": 22, "alarm_led": 23,
                   "button": 24, "cover": 25, "magnet": 5}


class PinEventKind(enum.Enum):
    BUTTON = "button"
    COVER = "cover"    # value: True = cover opened
    MAGNET = "magnet"  # value: True = magnet present


@dataclass(frozen=True)
class PinEvent:
    kind: PinEventKind
    value: bool


def make_factory(name: str):
    """A gpiozero pin factory by config name: mock, native, rpigpio, lgpio, pigpio, default."""
    name = (name or "default").lower()
    try:
        if name == "mock":
            # connected mock pins: an output can drive an input, as a keypad's row drives
            # its columns when a key is held (plain mock pins behave the same otherwise)
            from gpiozero.pins.mock import MockConnectedPin, MockFactory
            return MockFactory(pin_class=MockConnectedPin)
        if name == "default":
            from gpiozero import Device
            return Device._default_pin_factory()
        modules = {
            "native": ("gpiozero.pins.native", "NativeFactory"),
            "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
            "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
            "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
        }
        if name not in modules:
            raise BackendError(f"unknown pin factory {name!r} (mock, native, rpigpio, lgpio, pigpio, default)")
        module_name, cls_name = modules[name]
        import importlib
        return getattr(importlib.import_module(module_name), cls_name)()
    except BackendError:
        raise
    except ImportError as exc:
        raise BackendError(f"pin factory {name!r} needs a library that is not installed: {exc}") from exc
    except Exception as exc:  # gpiozero raises RuntimeError subclasses off a Pi (PinUnknownPi, ...)
        raise BackendError(f"pin factory {name!r} cannot start here: {exc}") from exc


def parse_pin(value) -> int | str:
    """A pin number from the config: 17, "17", "gpio:17", or a gpiozero name ("GPIO17", "BOARD11")."""
    if isinstance(value, bool):
        raise BackendError(f"pin {value!r} is not a pin number or name")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower().startswith("gpio:"):
            text = text[5:]
        if text.isdigit():
            return int(text)
        if text:
            return text
    raise BackendError(f"pin {value!r} is not a pin number or name")


class MeterPins:
    """The meter's pins from a role -> pin map; roles left out are simply absent.

    ``inverted`` lists roles whose electrical sense is the opposite of the
    default (outputs active-high; inputs active when pulled to ground).
    """

    def __init__(self, pin_map: Mapping[str, object] | None = None, factory: str | object = "mock", *,
                 inverted: frozenset[str] | set[str] = frozenset(), pulse_seconds: float = 0.04,
                 bounce_time: float | None = None) -> None:
        from gpiozero import LED, Button, DigitalInputDevice, DigitalOutputDevice
        from gpiozero.exc import GPIOZeroError

        pin_map = dict(DEFAULT_PIN_MAP if pin_map is None else pin_map)
        unknown = set(pin_map) - set(ROLES)
        if unknown:
            raise BackendError(f"unknown pin roles {sorted(unknown)}; known: {', '.join(ROLES)}")
        self.factory_name = factory if isinstance(factory, str) else type(factory).__name__
        self._factory = make_factory(factory) if isinstance(factory, str) else factory
        self._mock = type(self._factory).__name__ == "MockFactory"
        self._inverted = frozenset(inverted)
        self._pulse_seconds = pulse_seconds
        self._devices: dict[str, object] = {}
        self._callbacks: dict[PinEventKind, list[Callable]] = {k: [] for k in PinEventKind}
        self._stuck: bool | None = None  # simulated relay contact fault (mock only)
        self._lock = threading.Lock()
        kw = {"pin_factory": self._factory}
        try:
            for role, raw in pin_map.items():
                if raw is None:
                    continue
                pin = parse_pin(raw)
                inv = role in self._inverted
                if role == "relay":
                    dev = DigitalOutputDevice(pin, active_high=not inv, initial_value=False, **kw)
                elif role in ("pulse_led", "alarm_led"):
                    dev = LED(pin, active_high=not inv, initial_value=False, **kw)
                elif role == "button":
                    dev = Button(pin, pull_up=not inv, bounce_time=bounce_time, **kw)
                else:
                    dev = DigitalInputDevice(pin, pull_up=not inv, bounce_time=bounce_time, **kw)
                self._devices[role] = dev
        except BackendError:
            self.close()
            raise
        except (GPIOZeroError, ValueError, TypeError) as exc:
            self.close()
            raise BackendError(f"cannot claim pin for role {role!r} ({raw!r}) on {self.factory_name}: {exc}") from exc

        if "button" in self._devices:
            self._devices["button"].when_pressed = lambda: self._fire(PinEventKind.BUTTON, True)
        for role, kind in (("cover", PinEventKind.COVER), ("magnet", PinEventKind.MAGNET)):
            if role in self._devices:
                dev = self._devices[role]
                dev.when_activated = lambda kind=kind: self._fire(kind, True)
                dev.when_deactivated = lambda kind=kind: self._fire(kind, False)
        self._follow_coil()

    @property
    def factory(self):
        """The gpiozero pin factory, for other devices on the same header (the keypad)."""
        return self._factory

    # ---- outputs -------------------------------------------------------
    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self._devices)

    def set_relay(self, closed: bool) -> None:
        """Energise the coil for "supply connected" (closed contacts)."""
        dev = self._devices.get("relay")
        if dev is None:
            return
        if closed:
            dev.on()
        else:
            dev.off()
        self._follow_coil()

    def relay_commanded(self) -> bool | None:
        dev = self._devices.get("relay")
        return None if dev is None else bool(dev.value)

    def pulse(self) -> None:
        """One flash of the metrology LED (imp/kWh); gpiozero times it in the background."""
        led = self._devices.get("pulse_led")
        if led is not None:
            led.blink(on_time=self._pulse_seconds, off_time=0, n=1, background=True)

    def set_alarm(self, on: bool) -> None:
        led = self._devices.get("alarm_led")
        if led is not None:
            led.value = bool(on)

    # ---- inputs --------------------------------------------------------
    def relay_feedback(self) -> bool | None:
        """True if the feedback contact reports the relay closed; None without one."""
        dev = self._devices.get("relay_feedback")
        return None if dev is None else bool(dev.value)

    def check_feedback(self, expected: bool) -> bool:
        """False when the feedback contact disagrees with ``expected`` (a welded or stuck relay)."""
        fb = self.relay_feedback()
        return fb is None or fb == bool(expected)

    def cover_open(self) -> bool | None:
        dev = self._devices.get("cover")
        return None if dev is None else bool(dev.value)

    def magnet_present(self) -> bool | None:
        dev = self._devices.get("magnet")
        return None if dev is None else bool(dev.value)

    def on_button(self, callback: Callable[[], None]) -> None:
        self._callbacks[PinEventKind.BUTTON].append(lambda _value: callback())

    def on_cover(self, callback: Callable[[bool], None]) -> None:
        self._callbacks[PinEventKind.COVER].append(callback)

    def on_magnet(self, callback: Callable[[bool], None]) -> None:
        self._callbacks[PinEventKind.MAGNET].append(callback)

    def attach_loop(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        """Deliver every input change as a :class:`PinEvent` on ``queue`` in ``loop``."""
        def hand_over(kind):
            def cb(value=True):
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, PinEvent(kind, bool(value)))
                except RuntimeError:
                    pass  # loop already closed at shutdown; the event has no one to go to
            return cb
        self.on_button(hand_over(PinEventKind.BUTTON))
        self.on_cover(hand_over(PinEventKind.COVER))
        self.on_magnet(hand_over(PinEventKind.MAGNET))

    def _fire(self, kind: PinEventKind, value: bool) -> None:
        for cb in list(self._callbacks[kind]):
            cb(value)

    # ---- simulation (mock pins only) ---------------------------------------
    def _input_pin(self, role: str):
        if not self._mock:
            raise HalError(f"simulating {role} needs the mock pin factory, not {self.factory_name}")
        dev = self._devices.get(role)
        if dev is None:
            raise HalError(f"no {role} pin configured")
        return dev.pin

    def _drive(self, role: str, active: bool) -> None:
        pin = self._input_pin(role)
        # default wiring is active-low (switch to ground, pull-up); inverted is active-high
        high = active if role in self._inverted else not active
        if high:
            pin.drive_high()
        else:
            pin.drive_low()

    def _follow_coil(self) -> None:
        """On mock pins, move the feedback contact like a relay would."""
        if not self._mock or "relay_feedback" not in self._devices:
            return
        with self._lock:
            closed = self._stuck if self._stuck is not None else bool(self.relay_commanded())
            self._drive("relay_feedback", closed)

    def simulate_relay_weld(self, welded: bool = True) -> None:
        """Weld the contacts closed (feedback stays closed whatever the coil does)."""
        self.simulate_relay_stuck(True if welded else None)

    def simulate_relay_stuck(self, state: bool | None) -> None:
        """Contacts stuck closed (True), stuck open (False), or healthy (None)."""
        self._input_pin("relay_feedback")
        self._stuck = state
        self._follow_coil()

    def simulate_button(self) -> None:
        """A press and release of the push button."""
        self._drive("button", True)
        self._drive("button", False)

    def simulate_cover(self, opened: bool) -> None:
        self._drive("cover", opened)

    def simulate_magnet(self, present: bool) -> None:
        self._drive("magnet", present)

    # ---- lifetime ------------------------------------------------------
    def close(self) -> None:
        for dev in self._devices.values():
            dev.close()
        self._devices.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
