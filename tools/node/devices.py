"""The meter's devices: pins, LCD and keypad from the ``[hal]`` config, joined to the firmware.

The firmware decides (relay, tokens, tamper) and the hal drives and senses
(coil, feedback contact, LEDs, switches, LCD); this module is the seam. Pin
callbacks arrive on gpiozero's threads and are handed to the asyncio loop
through a queue, so the firmware only ever runs on the loop. The same code
drives gpiozero's mock pins in the emulator and real pins on a Pi.
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from bijli.firmware.errors import CommandError
from bijli.firmware.events import EventCode
from bijli.hal.display import ConsoleDisplay, Display, DisplayItem, Hd44780Display
from bijli.hal.keypad import DisplayText, EmergencyRequested, EntryError, KeypadEntry, ScrollRequested, TokenEntered, \
    feed_text
from bijli.hal.keypad import MatrixKeypad
from bijli.hal.pins import MeterPins, PinEventKind, make_factory

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter
    from bijli.tools.node.config import HalConfig

ENTRY_SHOWN_S = 60.0  # the typed digits stay up this long (the keypad's own timeout ends entry sooner)
MAX_PULSES_PER_TICK = 20  # the LED can blink only so fast; the count is kept by metrology


class Devices:
    def __init__(self, meter: "Meter", hal: "HalConfig"):
        self.meter = meter
        self.pins = MeterPins(hal.pins, hal.pin_factory) if hal.pins else None
        self.display = _display(meter, hal.display)
        # the entry state machine is the same whether keys come from the console or a
        # GPIO matrix; a matrix also needs scanning (see scan_keypad)
        self.keypad = KeypadEntry() if hal.keypad != "none" else None
        self.matrix = None
        if hal.keypad.startswith("matrix:"):
            from bijli.tools.node.config import keypad_pins

            rows, cols = keypad_pins(hal.keypad)
            factory = self.pins.factory if self.pins is not None else make_factory(hal.pin_factory)
            self.matrix = MatrixKeypad(rows, cols, factory)
        self.feedback_ok = True
        self._queue: asyncio.Queue | None = None

    # --- outputs ---------------------------------------------------------------------
    def relay_changed(self, closed: bool) -> None:
        """The firmware's relay decision reaches the coil. The feedback contact is
        checked on the next tick: a real relay takes milliseconds to move, and the
        firmware is still inside its step here."""
        if self.pins is not None:
            self.pins.set_relay(closed)

    def check_feedback(self) -> bool:
        """A feedback contact that disagrees with the coil is logged once per episode."""
        if self.pins is None or self.pins.relay_feedback() is None:
            return True
        ok = self.pins.check_feedback(self.meter.relay.output_state)
        if not ok and self.feedback_ok:
            self.meter.record_event(EventCode.RELAY_FEEDBACK_MISMATCH,
                                    detail=f"commanded {'closed' if self.meter.relay.output_state else 'open'}")
        self.feedback_ok = ok
        return ok

    def tick(self) -> None:
        """Once per metering tick: pulse LED, alarm LED, feedback, display scroll."""
        if self.pins is not None:
            for _ in range(min(self.meter.metrology.take_pulse_edges(), MAX_PULSES_PER_TICK)):
                self.pins.pulse()
            self.pins.set_alarm(self.meter.progress.tamper or not self.meter.relay.output_state)
            self.check_feedback()
        else:
            self.meter.metrology.take_pulse_edges()
        self.display.tick(time.monotonic())

    # --- inputs ----------------------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
        self._queue = asyncio.Queue()
        if self.pins is not None:
            self.pins.attach_loop(loop, self._queue)
        return self._queue

    def handle_pin(self, event) -> None:
        if event.kind is PinEventKind.BUTTON:
            self.meter.press_button()
        elif event.kind is PinEventKind.COVER and event.value:
            self.meter.record_event(EventCode.COVER_OPEN, tamper=True)
        elif event.kind is PinEventKind.MAGNET:
            self.meter.record_event(EventCode.MAGNET if event.value else EventCode.MAGNET_RESTORED,
                                    tamper=bool(event.value))

    def keys(self, line: str) -> str:
        """Keys typed on the (console) keypad: digits, '#' enter, '*' backspace, 'e', 's'."""
        if self.keypad is None:
            return "no keypad configured"
        if not line.strip():
            raise CommandError("k needs keys: digits, # enter, * backspace, e emergency, s scroll")
        # a key that changes nothing shown (a backspace on an empty entry) still gets an answer:
        # a console client waits for one per line
        return self._entry_events(feed_text(self.keypad, line, time.monotonic())) or "entry empty"

    def scan_keypad(self) -> str:
        """One scan of a GPIO matrix keypad (call every 10-30 ms): what its keys did."""
        if self.matrix is None or self.keypad is None:
            return ""
        now = time.monotonic()
        events = [ev for key in self.matrix.scan() for ev in self.keypad.press(key, now)]
        events += self.keypad.tick(now)  # a half-typed token times out
        return self._entry_events(events) if events else ""

    def _entry_events(self, events) -> str:
        replies = []
        echo = None
        for ev in events:
            if isinstance(ev, DisplayText):
                echo = ev.text  # what the LCD shows while typing; only the last matters
                if ev.text:  # the digits so far, on the LCD as they are typed (the last groups that fit)
                    groups = ev.text.split()
                    while len(" ".join(groups)) > self.display.width:
                        groups.pop(0)
                    self.display.message(f"TOKEN {len(ev.text.replace(' ', ''))}/20", time.monotonic(),
                                         seconds=ENTRY_SHOWN_S, second_line=" ".join(groups))
            elif isinstance(ev, TokenEntered):
                echo = None
                outcome = self.meter.enter_token(ev.digits, "keypad")
                replies.append(outcome.word + (f": {outcome.message}" if outcome.message else ""))
                self.display.message(outcome.word.replace("_", " ").upper(), time.monotonic(),
                                     second_line=outcome.message)
            elif isinstance(ev, EntryError):
                replies.append(f"entry error: {ev.reason}")
                # replaces whatever was up (the previous token's ACCEPTED, the digits typed)
                self.display.message("ENTRY ERROR", time.monotonic(), second_line=str(ev.reason))
            elif isinstance(ev, EmergencyRequested):
                replies.append(self.meter.invoke_emergency())
            elif isinstance(ev, ScrollRequested):
                replies.append(" | ".join(self.display.next(time.monotonic())))
        if echo:
            replies.append(echo)
        return "; ".join(replies)

    def lcd(self) -> str:
        return " | ".join(line.rstrip() for line in self.display.page())

    def close(self) -> None:
        if self.matrix is not None:
            self.matrix.close()
        if self.pins is not None:
            self.pins.close()


def _display(meter: "Meter", spec: str) -> Display:
    """The LCD scroll list; with display = "none" it is still kept (the console's
    ``lcd`` command shows it) but drawn nowhere."""
    backend = None
    if spec == "console":
        backend = ConsoleDisplay(sys.stderr)
    elif spec != "none":
        _, bus, addr = spec.split(":")
        backend = Hd44780Display(int(bus), int(addr, 0))
    unit = meter.config.prepaid.unit
    decimals = meter.config.prepaid.decimals  # one format for credit wherever it is shown

    def token_text() -> str:
        t = meter.last_token
        return "-" if t is None else t.word.replace("_", " ")

    def tid_text() -> str:
        t = meter.last_token
        return "-" if t is None or t.result.tid is None else str(t.result.tid)

    items = [
        DisplayItem("01", f"Balance {unit}", lambda: f"{Decimal(meter.status()['credit']):.{decimals}f}"),
        DisplayItem("02", "Energy kWh", lambda: f"{meter.energy.active_import_wh / 1000:.2f}"),
        DisplayItem("03", "Voltage V", lambda: f"{meter.measurements.phases[0].v_rms:.1f}"),
        DisplayItem("04", "Current A", lambda: meter.status()["current"]),
        DisplayItem("05", "Relay", lambda: meter.status()["relay"]),
        DisplayItem("06", "Last token", token_text),
        DisplayItem("07", "Token TID", tid_text),
        DisplayItem("08", "Keypad", lambda: "LOCKED" if meter.sts.locked_out(meter.now) else "ready"),
    ]
    return Display(items, backend)
