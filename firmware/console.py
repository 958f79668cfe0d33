"""The service console: one line in, text out, no I/O of its own.

A test-rig engineer types commands on a terminal, a UART or a pty; the tools
layer feeds each line to :meth:`Console.execute` and prints the reply. What the
console cannot do from inside the firmware (change the synthetic load, step the
simulated clock, stop the process) it asks of a :class:`Host` that the tools
layer provides, so the same console runs on a laptop and on a rig.

Commands are a table: name -> handler, usage and one line of help. The console
never dies on what it is fed: every line gets an answer, an error names what was
wrong, and a command whose usage names no argument refuses arguments. Values the
console hands to the simulated world (a load, a duration) are checked against the
meter's ratings first, so a typo cannot charge a consumer for a billion volts.
:class:`LineAssembler` is the one place that cuts a byte stream into console lines
(bounded: a line longer than :data:`MAX_LINE` is refused, not buffered), used by
every console shell.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Protocol

from bijli.firmware.errors import CommandError, FirmwareError

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter


log = logging.getLogger("bijli.console")

MAX_LINE = 64 * 1024  # bytes: a console line longer than this is refused (a paste gone wrong, an attack)
MAX_STEP_S = 100 * 365.25 * 86400  # the longest simulated step: a meter's whole service life and more
# The synthetic supply may sag to nothing (a voltage failure) or swell, but not beyond twice
# the nominal voltage: no meter is rated for more, and the firmware would charge for it.
MAX_VOLTAGE_RATIO = 2.0


class Host(Protocol):
    """What the console needs from the program it runs in."""

    def set_load(self, current: float, pf: float, lagging: bool, voltage: float | None) -> None: ...
    def set_earth_current(self, amps: float) -> None: ...
    def step(self, seconds: float) -> None: ...
    def set_time(self, when: datetime) -> None: ...
    def get(self, obis: str, attribute: int) -> str: ...
    @property
    def simulated(self) -> bool: ...


@dataclass(frozen=True)
class Reply:
    text: str
    ok: bool = True
    quit: bool = False


def parse_duration(text: str) -> float:
    """'90s', '15m', '6h', '3d', '1d12h' or plain seconds -> seconds (finite, at most
    :data:`MAX_STEP_S`)."""
    text = text.strip().lower()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise CommandError(f"not a duration: {text!r} (use e.g. 90s, 15m, 6h, 3d)")
        if value < 0:
            raise CommandError(f"negative duration: {text!r}")
        return _bounded_duration(text, value)
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)([smhdw])", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise CommandError(f"not a duration: {text!r} (use e.g. 90s, 15m, 6h, 3d)")
    return _bounded_duration(text, total)


def _bounded_duration(text: str, seconds: float) -> float:
    if not seconds <= MAX_STEP_S:
        raise CommandError(f"duration {text!r} is longer than 100 years")
    return seconds


def parse_number(text: str, what: str) -> float:
    """A finite decimal number typed for ``what`` (e.g. 'AMPS'), or a CommandError naming it."""
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise CommandError(f"{what} must be a finite number, not {text!r}")
    return value


def parse_count(text: str, what: str, lo: int, hi: int) -> int:
    """A whole number ``lo..hi`` typed for ``what``, or a CommandError naming it."""
    if not re.fullmatch(r"[+]?\d{1,9}", text.strip()):
        raise CommandError(f"{what} must be a whole number {lo}..{hi}, not {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise CommandError(f"{what} must be {lo}..{hi}, not {value}")
    return value


def parse_pf(text: str) -> tuple[float, bool]:
    """'1.0', '0.5L' (lagging, inductive) or '0.8C' (leading, capacitive) -> (pf, lagging)."""
    m = re.fullmatch(r"(-?\d{0,9}\.?\d{1,9})\s*([LlCc]?)", text.strip())
    if not m:
        raise CommandError(f"not a power factor: {text!r} (use 1.0, 0.5L or 0.8C)")
    pf = float(m.group(1))
    if not 0.0 <= abs(pf) <= 1.0:
        raise CommandError(f"power factor must be within -1..1, not {pf}")
    return pf, m.group(2).upper() != "C"


class Console:
    def __init__(self, meter: "Meter", host: Host):
        self.meter = meter
        self.host = host
        self.commands: dict[str, tuple[Callable[[list[str]], str | Reply], str, str]] = {
            "help": (self._help, "help [COMMAND]", "list commands, or explain one"),
            "status": (self._status, "status [--json]", "time, energy, voltage, current, power"),
            "load": (self._load, "load AMPS [PF] [VOLTS]", "set the synthetic load; PF as 1.0, 0.5L or 0.8C"),
            "earth": (self._earth, "earth AMPS",
                      "emulate earth leakage: AMPS of the load return by earth, not the neutral "
                      "(0 heals; negative: the neutral carries more than the phase)"),
            "time": (self._time, "time [set ISO-8601]", "show or set the meter clock"),
            "step": (self._step, "step DURATION", "advance simulated time (90s, 15m, 6h, 3d)"),
            "get": (self._get, "get OBIS[:ATTR]", "read a COSEM attribute as the utility association would"),
            "token": (self._token, "token DIGITS", "enter a 20-digit STS token (spaces and dashes allowed)"),
            "credit": (self._credit, "credit", "balance, debt, emergency credit and the supply decision"),
            "emergency": (self._emergency, "emergency", "invoke emergency credit"),
            "relay": (self._relay, "relay [press]", "relay state; press: the push button"),
            "events": (self._events, "events [N]", "the last N events of all logs (default 10)"),
            "quit": (self._quit, "quit", "stop the meter (state is saved)"),
        }

    def register(self, name: str, handler: Callable[[list[str]], "str | Reply"], usage: str, text: str) -> None:
        """Let other firmware parts add their commands (token, credit, relay, ...)."""
        self.commands[name] = (handler, usage, text)

    def execute(self, line: str) -> Reply:
        """One line in, one reply out; never raises (the console must keep serving)."""
        if len(line) > MAX_LINE:
            return Reply(f"error: line longer than {MAX_LINE} characters ignored", ok=False)
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return Reply(f"error: {exc}", ok=False)
        if not words:
            return Reply("")
        entry = self.commands.get(words[0].lower())
        if entry is None:
            return Reply(f"error: unknown command {_short(words[0])!r}; type help", ok=False)
        handler, usage, _ = entry
        if words[1:] and " " not in usage.strip():
            return Reply(f"error: {words[0].lower()} takes no arguments\nusage: {usage}", ok=False)
        try:
            out = handler(words[1:])
        except FirmwareError as exc:
            return Reply(f"error: {exc}\nusage: {usage}", ok=False)
        except Exception as exc:
            # an error of a layer the firmware does not import (a hal keypad refusing a key
            # it does not have) or a defect: either way the line gets an answer and the
            # console keeps serving; the traceback goes to the debug log
            log.debug("console command %r failed", _short(line), exc_info=True)
            return Reply(f"error: {exc or type(exc).__name__}\nusage: {usage}", ok=False)
        return out if isinstance(out, Reply) else Reply(out)

    # --- commands ------------------------------------------------------------------------
    def _help(self, args: list[str]) -> str:
        if args:
            entry = self.commands.get(args[0])
            if entry is None:
                raise CommandError(f"no command {args[0]!r}")
            return f"{entry[1]}\n  {entry[2]}"
        width = max(len(u) for _, u, _ in self.commands.values())
        return "\n".join(f"{usage:<{width}}  {text}" for _, usage, text in self.commands.values())

    def _status(self, args: list[str]) -> str:
        status = self.meter.status()
        if args == ["--json"]:
            return json.dumps(status, sort_keys=True)
        if args:
            raise CommandError("status takes only --json")
        return "\n".join(f"{k:<20} {v}" for k, v in status.items())

    def _load(self, args: list[str]) -> str:
        if not 1 <= len(args) <= 3:
            raise CommandError("load needs AMPS and optionally PF and VOLTS")
        rating = self.meter.config.metrology
        amps = parse_number(args[0], "AMPS")
        if amps < 0:
            raise CommandError("current cannot be negative (use a leading PF for export)")
        if amps > rating.max_current:
            raise CommandError(f"AMPS {amps:g} is above the meter's maximum current of {rating.max_current:g} A")
        pf, lagging = parse_pf(args[1]) if len(args) > 1 else (1.0, True)
        volts = parse_number(args[2], "VOLTS") if len(args) > 2 else None
        if volts is not None and volts < 0:
            raise CommandError("voltage cannot be negative")
        top = MAX_VOLTAGE_RATIO * rating.nominal_voltage
        if volts is not None and volts > top:
            raise CommandError(f"VOLTS {volts:g} is above {top:g} V, twice the meter's nominal "
                               f"{rating.nominal_voltage:g} V")
        self.host.set_load(amps, pf, lagging, volts)
        kind = "" if pf == 1.0 else (" lagging" if lagging else " leading")
        return f"load {amps:g} A at PF {pf:g}{kind}" + (f", {volts:g} V" if volts is not None else "")

    def _earth(self, args: list[str]) -> str:
        """The synthetic installation's earth current: the neutral CT then reads the phase
        current less AMPS (earth leakage, a load wired phase to earth, a partial neutral
        bypass), a negative AMPS more than it (a phase CT bypass)."""
        if len(args) != 1:
            raise CommandError("earth needs AMPS")
        amps = parse_number(args[0], "AMPS")
        top = self.meter.config.metrology.max_current
        if abs(amps) > top:
            raise CommandError(f"AMPS {amps:g} is beyond the meter's maximum current of {top:g} A")
        self.host.set_earth_current(amps)
        if amps == 0:
            return "earth current 0 A: the neutral carries the phase current"
        way = "less" if amps > 0 else "more"
        return f"earth current {amps:g} A: the neutral carries {abs(amps):g} A {way} than the phase"

    def _time(self, args: list[str]) -> str:
        if not args:
            return self.meter.now.isoformat(timespec="seconds")
        if args[0] != "set" or len(args) != 2:
            raise CommandError("use: time or time set ISO-8601")
        try:
            when = datetime.fromisoformat(args[1])
        except ValueError:
            raise CommandError(f"not an ISO-8601 time: {args[1]!r}") from None
        self.host.set_time(when.replace(tzinfo=None))
        return self.meter.now.isoformat(timespec="seconds")

    def _step(self, args: list[str]) -> str:
        if len(args) != 1:
            raise CommandError("step needs one DURATION")
        if not self.host.simulated:
            raise CommandError("step needs the simulated clock (--clock sim)")
        self.host.step(parse_duration(args[0]))
        return self.meter.now.isoformat(timespec="seconds")

    def _get(self, args: list[str]) -> str:
        if len(args) != 1:
            raise CommandError("get needs OBIS[:ATTR]")
        obis, sep, attr = args[0].partition(":")
        # attribute 1 is the logical name; COSEM attribute indices are 1..127 (Blue Book 4.1.2)
        return self.host.get(obis, parse_count(attr, "ATTR", 1, 127) if sep else 2)

    def _token(self, args: list[str]) -> Reply:
        digits = "".join(args).replace("-", "")
        if not digits:
            raise CommandError("token needs the 20 digits")
        outcome = self.meter.enter_token(digits, "console")
        text = outcome.word + (f": {outcome.message}" if outcome.message else "")
        return Reply(text, ok=outcome.accepted)

    def _credit(self, args: list[str]) -> str:
        s = self.meter.status()
        places = self.meter.config.prepaid.decimals
        unit = s["credit_unit"]

        def money(text) -> str:  # one format for every amount in the view: 0.00, not 0 beside 100.00
            return f"{Decimal(str(text)):.{places}f} {unit}"

        lines = [
            f"credit            {money(s['credit'])}",
            f"available         {money(s['available_credit'])}",
            f"debt              {money(s['debt'])}",
            f"emergency credit  {'in use' if s['emergency_credit_active'] else 'not invoked'}",
            f"supply            {s['supply_reason']}{' (friendly period)' if s['friendly_now'] else ''}",
            f"relay             {s['relay']}",
        ]
        return "\n".join(lines)

    def _emergency(self, args: list[str]) -> str:
        return self.meter.invoke_emergency()

    def _relay(self, args: list[str]) -> str:
        if args == ["press"]:
            return self.meter.press_button()
        if args:
            raise CommandError("use: relay or relay press")
        return self.meter.status()["relay"]

    def _events(self, args: list[str]) -> str:
        if len(args) > 1:
            raise CommandError("events takes at most one N")
        n = parse_count(args[0], "N", 1, 10_000) if args else 10
        events = self.meter.recent_events(n)
        if not events:
            return "no events"
        return "\n".join(f"{e.time.isoformat(timespec='seconds')} {int(e.code):3d} {e.code.description}"
                         + (f" [{e.detail}]" if e.detail not in (None, "") else "") for e in events)

    def _quit(self, args: list[str]) -> Reply:
        return Reply("bye", quit=True)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class LineAssembler:
    """Bytes from a terminal, pipe or UART -> console lines, bounded by :data:`MAX_LINE`.

    ``feed`` returns, in order, each complete line (str) and, for a line that grew past
    the limit, one ``None``: its bytes are dropped up to the next end of line, so a
    peer that never sends one cannot make the console hold more than the limit.
    CR, LF and CRLF all end a line (a serial terminal sends CR)."""

    def __init__(self, limit: int = MAX_LINE):
        self.limit = limit
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[str | None]:
        out: list[str | None] = []
        start = 0
        for m in re.finditer(rb"\r\n?|\n", data):
            self._take(data[start:m.start()], out)
            if self._skipping:
                self._skipping = False
            else:
                out.append(self._buf.decode("utf-8", "replace"))
            self._buf.clear()
            start = m.end()
        self._take(data[start:], out)
        return out

    def _take(self, part: bytes, out: list) -> None:
        if self._skipping:
            return
        self._buf += part
        if len(self._buf) > self.limit:
            self._buf.clear()
            self._skipping = True
            out.append(None)

    def flush(self) -> str | None:
        """At end of input: the last line if it had no end of line, else None."""
        line = None if self._skipping or not self._buf else self._buf.decode("utf-8", "replace")
        self._buf.clear()
        self._skipping = False
        return line

    def refusal(self) -> str:
        return f"error: line longer than {self.limit} bytes ignored"
