"""The meter's keypad: 20-digit STS token entry as a state machine, and its key sources.

An STS token (IEC 62055-41) is 20 decimal digits typed on the meter's keypad and
confirmed with ENTER; the customer sees them echoed in groups of four as printed
on the receipt. :class:`KeypadEntry` is the pure part: keys and the time in,
events out, with the rules in one table ``{(state, trigger): (action, next)}``.
Key sources feed it: :func:`parse_keys` reads a console line (``k 1234...#``),
and :class:`MatrixKeypad` scans a 4x4 membrane keypad on GPIO pins through
gpiozero (rows driven low one at a time, columns read with pull-ups), called
from the event loop, so no thread of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Sequence

from bijli.hal.errors import BackendError, HalError

__all__ = [
    "TOKEN_DIGITS", "Key", "KeypadError", "EntryState", "EntryTrigger", "TRANSITIONS",
    "TokenEntered", "EntryError", "EntryErrorReason", "EmergencyRequested", "ScrollRequested",
    "DisplayText", "KeypadEntry", "parse_keys", "MatrixKeypad", "DEFAULT_LAYOUT", "DEFAULT_KEYMAP",
]

TOKEN_DIGITS = 20


class KeypadError(HalError):
    """A key name or key source that does not exist."""


class Key(enum.Enum):
    D0 = "0"
    D1 = "1"
    D2 = "2"
    D3 = "3"
    D4 = "4"
    D5 = "5"
    D6 = "6"
    D7 = "7"
    D8 = "8"
    D9 = "9"
    BACKSPACE = "BACKSPACE"
    ENTER = "ENTER"
    EMERGENCY = "EMERGENCY"
    SCROLL = "SCROLL"

    @classmethod
    def of(cls, key: "Key | str") -> "Key":
        if isinstance(key, Key):
            return key
        try:
            return cls(key.upper() if isinstance(key, str) else key)
        except ValueError:
            raise KeypadError(f"no key {key!r}") from None

    @property
    def digit(self) -> str | None:
        return self.value if self.value.isdigit() else None


# ---- events ---------------------------------------------------------------
@dataclass(frozen=True)
class TokenEntered:
    digits: str


class EntryErrorReason(enum.StrEnum):
    TOO_SHORT = "too short"   # ENTER before 20 digits
    TIMEOUT = "timeout"       # a half-typed token left alone


@dataclass(frozen=True)
class EntryError:
    reason: EntryErrorReason
    digits_typed: int = 0


@dataclass(frozen=True)
class EmergencyRequested:
    pass


@dataclass(frozen=True)
class ScrollRequested:
    pass


@dataclass(frozen=True)
class DisplayText:
    """What the entry line should show now ("" when entry ends)."""
    text: str


Event = TokenEntered | EntryError | EmergencyRequested | ScrollRequested | DisplayText


# ---- the state machine ------------------------------------------------------
class EntryState(enum.Enum):
    IDLE = "idle"
    ENTERING = "entering"   # 1..19 digits
    FULL = "full"           # 20 digits, waiting for ENTER


class EntryTrigger(enum.Enum):
    DIGIT = "digit"               # a digit that does not fill the token
    FINAL_DIGIT = "final digit"   # the 20th digit
    BACKSPACE = "backspace"       # removes a digit, some remain
    ERASE_LAST = "erase last"     # removes the only digit
    ENTER = "enter"
    EMERGENCY = "emergency"
    SCROLL = "scroll"
    TIMEOUT = "timeout"


def group_digits(digits: str) -> str:
    """1234 5678 ... as printed on an STS receipt."""
    return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


class KeypadEntry:
    """Token entry: ``press(key, now)`` and ``tick(now)`` return the events they cause.

    Time is passed in (seconds, any monotonic origin); ``timeout`` seconds
    after the last key a half-typed token is dropped.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.state = EntryState.IDLE
        self.digits = ""
        self._last_key: float | None = None

    def press(self, key: Key | str, now: float) -> list[Event]:
        key = Key.of(key)
        events = self.tick(now)
        self._last_key = now
        return events + self._step(self._trigger(key), key)

    def tick(self, now: float) -> list[Event]:
        if self.state is not EntryState.IDLE and self._last_key is not None \
                and now - self._last_key >= self.timeout:
            return self._step(EntryTrigger.TIMEOUT, None)
        return []

    def _trigger(self, key: Key) -> EntryTrigger:
        if key.digit is not None:
            return EntryTrigger.FINAL_DIGIT if len(self.digits) == TOKEN_DIGITS - 1 else EntryTrigger.DIGIT
        if key is Key.BACKSPACE:
            return EntryTrigger.ERASE_LAST if len(self.digits) <= 1 else EntryTrigger.BACKSPACE
        return {Key.ENTER: EntryTrigger.ENTER, Key.EMERGENCY: EntryTrigger.EMERGENCY,
                Key.SCROLL: EntryTrigger.SCROLL}[key]

    def _step(self, trigger: EntryTrigger, key: Key | None) -> list[Event]:
        action, next_state = TRANSITIONS[(self.state, trigger)]
        events = action(self, key)
        self.state = next_state
        return events

    # actions: each returns the events; the table sets the next state
    def _ignore(self, key):
        return []

    def _append(self, key):
        self.digits += key.digit
        return [DisplayText(group_digits(self.digits))]

    def _erase(self, key):
        self.digits = self.digits[:-1]
        return [DisplayText(group_digits(self.digits))]

    def _submit(self, key):
        digits, self.digits = self.digits, ""
        return [TokenEntered(digits), DisplayText("")]

    def _too_short(self, key):
        n, self.digits = len(self.digits), ""
        return [EntryError(EntryErrorReason.TOO_SHORT, n), DisplayText("")]

    def _time_out(self, key):
        n, self.digits = len(self.digits), ""
        return [EntryError(EntryErrorReason.TIMEOUT, n), DisplayText("")]

    def _emergency(self, key):
        # Typed digits are kept: a stray press should not cost the customer 19 digits.
        return [EmergencyRequested()]

    def _scroll(self, key):
        return [ScrollRequested()]


_S, _T, _K = EntryState, EntryTrigger, KeypadEntry
TRANSITIONS: dict[tuple[EntryState, EntryTrigger], tuple[Callable, EntryState]] = {
    (_S.IDLE, _T.DIGIT): (_K._append, _S.ENTERING),
    (_S.IDLE, _T.FINAL_DIGIT): (_K._append, _S.FULL),       # only with a 1-digit token size
    (_S.IDLE, _T.BACKSPACE): (_K._ignore, _S.IDLE),
    (_S.IDLE, _T.ERASE_LAST): (_K._ignore, _S.IDLE),
    (_S.IDLE, _T.ENTER): (_K._too_short, _S.IDLE),
    (_S.IDLE, _T.EMERGENCY): (_K._emergency, _S.IDLE),
    (_S.IDLE, _T.SCROLL): (_K._scroll, _S.IDLE),
    (_S.IDLE, _T.TIMEOUT): (_K._ignore, _S.IDLE),
    (_S.ENTERING, _T.DIGIT): (_K._append, _S.ENTERING),
    (_S.ENTERING, _T.FINAL_DIGIT): (_K._append, _S.FULL),
    (_S.ENTERING, _T.BACKSPACE): (_K._erase, _S.ENTERING),
    (_S.ENTERING, _T.ERASE_LAST): (_K._erase, _S.IDLE),
    (_S.ENTERING, _T.ENTER): (_K._too_short, _S.IDLE),
    (_S.ENTERING, _T.EMERGENCY): (_K._emergency, _S.ENTERING),
    (_S.ENTERING, _T.SCROLL): (_K._ignore, _S.ENTERING),    # typing: the display stays on the entry
    (_S.ENTERING, _T.TIMEOUT): (_K._time_out, _S.IDLE),
    (_S.FULL, _T.DIGIT): (_K._ignore, _S.FULL),              # a 21st digit is not taken
    (_S.FULL, _T.FINAL_DIGIT): (_K._ignore, _S.FULL),
    (_S.FULL, _T.BACKSPACE): (_K._erase, _S.ENTERING),
    (_S.FULL, _T.ERASE_LAST): (_K._erase, _S.ENTERING),
    (_S.FULL, _T.ENTER): (_K._submit, _S.IDLE),
    (_S.FULL, _T.EMERGENCY): (_K._emergency, _S.FULL),
    (_S.FULL, _T.SCROLL): (_K._ignore, _S.FULL),
    (_S.FULL, _T.TIMEOUT): (_K._time_out, _S.IDLE),
}


# ---- key sources ------------------------------------------------------------
# Console characters: digits, '#' ENTER and '*' BACKSPACE as on a phone-style
# keypad, 'e'/'!' EMERGENCY, 's'/'>' SCROLL; spaces and dashes separate groups.
_CHAR_KEYS = {"#": Key.ENTER, "\r": Key.ENTER, "\n": Key.ENTER, "*": Key.BACKSPACE,
              "\b": Key.BACKSPACE, "\x7f": Key.BACKSPACE, "e": Key.EMERGENCY,
              "!": Key.EMERGENCY, "s": Key.SCROLL, ">": Key.SCROLL}
_SEPARATORS = " \t-"


def parse_keys(text: str) -> list[Key]:
    """Keys from a console line: ``"k 1234-5678 ... #"`` or raw key characters."""
    body = text.strip(_SEPARATORS)
    if body[:2].lower() in ("k ", "k\t"):
        body = body[2:]
    keys = []
    for ch in body:
        if ch.isdigit() and ch.isascii():
            keys.append(Key(ch))
        elif ch.lower() in _CHAR_KEYS:
            keys.append(_CHAR_KEYS[ch.lower()])
        elif ch in _SEPARATORS:
            continue
        else:
            raise KeypadError(f"no key for {ch!r} (digits, # enter, * backspace, e emergency, s scroll)")
    return keys


def feed_text(entry: KeypadEntry, text: str, now: float) -> list[Event]:
    """Type a console line into ``entry``; all keys at the same instant."""
    events: list[Event] = []
    for key in parse_keys(text):
        events += entry.press(key, now)
    return events


DEFAULT_LAYOUT = ("123A", "456B", "789C", "*0#D")
DEFAULT_KEYMAP = {**{str(d): Key(str(d)) for d in range(10)},
                  "*": Key.BACKSPACE, "#": Key.ENTER, "A": Key.EMERGENCY, "B": Key.SCROLL}


class MatrixKeypad:
    """A row/column membrane keypad on GPIO, scanned by :meth:`scan`.

    Call ``scan()`` every 10-30 ms from the loop; it returns the keys newly
    pressed since the previous scan (one event per press, however long held).
    """

    def __init__(self, rows: Sequence[int | str], cols: Sequence[int | str], factory,
                 layout: Sequence[str] = DEFAULT_LAYOUT, keymap: dict[str, Key] | None = None) -> None:
        from gpiozero import DigitalInputDevice, DigitalOutputDevice
        from gpiozero.exc import GPIOZeroError

        if len(layout) != len(rows) or any(len(line) != len(cols) for line in layout):
            raise BackendError(f"keypad layout {list(layout)} does not match {len(rows)}x{len(cols)} pins")
        self._layout = list(layout)
        self._keymap = DEFAULT_KEYMAP if keymap is None else keymap
        self._rows = []
        self._cols = []
        try:
            # active_high=False: the selected row is pulled low; idle rows float high
            for pin in rows:
                self._rows.append(DigitalOutputDevice(pin, active_high=False, initial_value=False,
                                                      pin_factory=factory))
            for pin in cols:
                self._cols.append(DigitalInputDevice(pin, pull_up=True, pin_factory=factory))
        except (GPIOZeroError, ValueError, TypeError) as exc:
            self.close()
            raise BackendError(f"cannot claim keypad pins rows={list(rows)} cols={list(cols)}: {exc}") from exc
        self._down: set[tuple[int, int]] = set()

    def scan(self) -> list[Key]:
        down = set()
        for r, row in enumerate(self._rows):
            row.on()
            for c, col in enumerate(self._cols):
                if col.value:
                    down.add((r, c))
            row.off()
        pressed = sorted(down - self._down)
        self._down = down
        keys = []
        for r, c in pressed:
            key = self._keymap.get(self._layout[r][c])
            if key is not None:
                keys.append(key)
        return keys

    def close(self) -> None:
        for dev in self._rows + self._cols:
            dev.close()
        self._rows, self._cols = [], []
