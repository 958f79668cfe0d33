"""The meter's LCD: a scroll list of readings on a 2x16 character display.

Prepaid meters show their registers one page at a time, cycling on their own
and stepping on a button press (the "display parameters" list of IS 15959 /
utility specifications: balance, kWh, voltage, current, relay state, last token
result...). :class:`Display` owns that list and which page is up; values come
from callables the tools layer hands in, so hal never imports firmware.
Backends only put two lines of text on glass: :class:`ConsoleDisplay` for the
emulator, :class:`Hd44780Display` for an HD44780 module behind a PCF8574 I2C
backpack on a rig (4-bit mode as in the HD44780U datasheet, figure 24).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, TextIO

from bijli.hal.errors import BackendError

__all__ = ["DisplayItem", "Display", "DisplayBackend", "ConsoleDisplay", "Hd44780Display",
           "hd44780_text_bytes"]

WIDTH = 16
ROWS = 2


@dataclass(frozen=True)
class DisplayItem:
    """One page: a short code (as printed in the meter's manual), a label, a value.

    ``value`` is either the value itself or a zero-argument callable read each
    time the page is drawn.
    """

    code: str
    label: str
    value: object = ""

    def text(self) -> str:
        v = self.value
        if callable(v):
            try:
                v = v()
            except Exception:  # a broken reading must not blank the whole meter display
                return "Err"
        return "" if v is None else str(v)

    def lines(self, width: int = WIDTH) -> tuple[str, str]:
        top = f"{self.code} {self.label}" if self.code else self.label
        return _fit(top, width), _fit(self.text(), width, right=True)


def _fit(text: str, width: int, right: bool = False) -> str:
    text = text.replace("\n", " ")
    if len(text) > width:
        # keep the end of a value (the least significant digits matter most)
        text = text[-width:] if right else text[:width]
    return text.rjust(width) if right else text.ljust(width)


class DisplayBackend(Protocol):
    def show(self, lines: Sequence[str]) -> None: ...
    def close(self) -> None: ...


class Display:
    """The page list, auto-scroll and manual scroll; draws on ``backend`` when a page changes.

    ``tick(now)`` advances the auto-scroll every ``scroll_seconds`` and redraws
    the current page if its values changed; ``next(now)`` (the button) steps one
    page and holds auto-scroll for ``manual_hold`` seconds; ``message(...)``
    shows a transient message (token accepted, lockout) over the list.
    """

    def __init__(self, items: Sequence[DisplayItem], backend: DisplayBackend | None = None, *,
                 scroll_seconds: float = 6.0, manual_hold: float = 30.0, width: int = WIDTH) -> None:
        if not items:
            raise BackendError("a display needs at least one item")
        self.items = list(items)
        self.backend = backend
        self.scroll_seconds = scroll_seconds
        self.manual_hold = manual_hold
        self.width = width
        self.index = 0
        self._page_since: float | None = None
        self._hold_until = float("-inf")
        self._message: tuple[tuple[str, str], float] | None = None
        self._shown: tuple[str, str] | None = None

    def page(self) -> tuple[str, str]:
        """The two lines to show now (message if one is up)."""
        if self._message is not None:
            return self._message[0]
        return self.items[self.index].lines(self.width)

    def pages(self) -> list[tuple[str, str]]:
        return [item.lines(self.width) for item in self.items]

    def tick(self, now: float) -> tuple[str, str]:
        if self._page_since is None:
            self._page_since = now
        if self._message is not None and now >= self._message[1]:
            self._message = None
            self._page_since = now  # give the page under the message its full time
        if self._message is None and now >= self._hold_until \
                and now - self._page_since >= self.scroll_seconds:
            self.index = (self.index + 1) % len(self.items)
            self._page_since = now
        return self._draw()

    def next(self, now: float) -> tuple[str, str]:
        """The scroll button: dismiss a message, else show the next page."""
        if self._message is not None:
            self._message = None
        else:
            self.index = (self.index + 1) % len(self.items)
        self._page_since = now
        self._hold_until = now + self.manual_hold
        return self._draw()

    def show_code(self, code: str, now: float) -> tuple[str, str]:
        for i, item in enumerate(self.items):
            if item.code == code:
                self.index = i
                self._page_since = now
                self._hold_until = now + self.manual_hold
                return self._draw()
        raise BackendError(f"no display item with code {code!r}")

    def message(self, text: str, now: float, seconds: float = 5.0, second_line: str = "") -> tuple[str, str]:
        self._message = ((_fit(text, self.width), _fit(second_line, self.width)), now + seconds)
        return self._draw()

    def _draw(self) -> tuple[str, str]:
        lines = self.page()
        if lines != self._shown and self.backend is not None:
            self.backend.show(lines)
        self._shown = lines
        return lines


class ConsoleDisplay:
    """Draws the LCD as a framed box on a text stream (or just remembers it)."""

    def __init__(self, stream: TextIO | None = None, width: int = WIDTH) -> None:
        self.stream = stream
        self.width = width
        self.last: tuple[str, ...] = ()

    def render(self, lines: Sequence[str]) -> str:
        border = "+" + "-" * self.width + "+"
        body = "\n".join("|" + _fit(line, self.width) + "|" for line in lines)
        return f"{border}\n{body}\n{border}"

    def show(self, lines: Sequence[str]) -> None:
        self.last = tuple(lines)
        if self.stream is not None:
            self.stream.write(self.render(lines) + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


# ---- HD44780 over a PCF8574 backpack -----------------------------------------
# The common backpack wiring: P0 RS, P1 RW, P2 E, P3 backlight, P4..P7 -> D4..D7.
RS = 0x01
RW = 0x02
EN = 0x04
BACKLIGHT = 0x08

CLEAR = 0x01
ENTRY_MODE_INC = 0x06        # cursor moves right, no display shift
DISPLAY_ON = 0x0C            # display on, cursor off, blink off
FUNCTION_4BIT_2LINE = 0x28   # DL=0 (4-bit), N=1 (2 lines), F=0 (5x8)
SET_DDRAM = 0x80
ROW_OFFSETS = (0x00, 0x40, 0x14, 0x54)

# The A00 character ROM matches ASCII 0x20..0x7D except '\\' (yen) and '~' (arrow).
_ROM_SUBST = {"\\": "/", "~": "-"}


def _rom_bytes(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        ch = _ROM_SUBST.get(ch, ch)
        code = ord(ch)
        out.append(code if 0x20 <= code <= 0x7D else ord("?"))
    return bytes(out)


def _nibble_writes(value: int, rs: int, backlight: int) -> list[int]:
    """Expander bytes clocking one byte in as two nibbles, high first (E falls to latch)."""
    out = []
    for nibble in (value >> 4, value & 0x0F):
        b = (nibble << 4) | backlight | rs
        out += [b, b | EN, b]  # data set up with E low, E high, E low
    return out


def hd44780_text_bytes(row: int, text: str, width: int = WIDTH, backlight: bool = True) -> list[int]:
    """The expander writes that put ``text`` on ``row`` (address set, then characters)."""
    bl = BACKLIGHT if backlight else 0
    out = _nibble_writes(SET_DDRAM | ROW_OFFSETS[row], 0, bl)
    for code in _rom_bytes(_fit(text, width)):
        out += _nibble_writes(code, RS, bl)
    return out


class Hd44780Display:
    """An HD44780 LCD behind a PCF8574 at ``address`` on I2C ``bus``.

    ``write`` (one expander byte per call) and ``sleep`` are injectable: by
    default ``smbus2`` writes to the bus, imported only when this backend is
    used, so the emulator never needs it.
    """

    def __init__(self, bus: int = 1, address: int = 0x27, *, write: Callable[[int], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, width: int = WIDTH, rows: int = ROWS,
                 backlight: bool = True) -> None:
        self.width = width
        self.rows = rows
        self._sleep = sleep
        self._bl = BACKLIGHT if backlight else 0
        self._bus = None
        if write is None:
            try:
                import smbus2
            except ImportError as exc:
                raise BackendError("display 'hd44780' needs the smbus2 package (pip install smbus2)") from exc
            try:
                self._bus = smbus2.SMBus(bus)
            except OSError as exc:
                raise BackendError(f"display 'hd44780': cannot open /dev/i2c-{bus}: {exc}") from exc
            write = lambda b: self._bus.write_byte(address, b)  # noqa: E731
        self._write = write
        self._shown: list[str | None] = [None] * rows
        self._init()

    def _raw(self, values: list[int]) -> None:
        try:
            for b in values:
                self._write(b)
        except OSError as exc:
            raise BackendError(f"display 'hd44780': I2C write failed: {exc}") from exc

    def _init(self) -> None:
        # Power-on reset by instruction (datasheet fig. 24): three times "8-bit"
        # then "4-bit", each sent as a single nibble, with the waits it asks for.
        self._sleep(0.05)
        self._raw([self._bl])
        for wait in (0.0045, 0.0045, 0.00015):
            b = 0x30 | self._bl
            self._raw([b, b | EN, b])
            self._sleep(wait)
        b = 0x20 | self._bl
        self._raw([b, b | EN, b])
        for cmd in (FUNCTION_4BIT_2LINE, 0x08, CLEAR, ENTRY_MODE_INC, DISPLAY_ON):
            self._raw(_nibble_writes(cmd, 0, self._bl))
            if cmd == CLEAR:
                self._sleep(0.002)  # clear takes 1.52 ms

    def show(self, lines: Sequence[str]) -> None:
        # Rewrite only changed rows: each costs ~200 I2C writes (~20 ms at 100 kHz).
        for row in range(self.rows):
            text = _fit(lines[row] if row < len(lines) else "", self.width)
            if text != self._shown[row]:
                self._raw(hd44780_text_bytes(row, text, self.width, bool(self._bl)))
                self._shown[row] = text

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None
