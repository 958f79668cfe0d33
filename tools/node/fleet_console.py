"""The fleet console: one command table for every fleet, whole meters or an engine shard.

``bijli fleet`` (:class:`tools.node.fleet.Fleet`, every meter whole on its own file) and
``bijli fleet --shard K/N`` (:class:`tools.fleet.console.ShardConsole`, over a fleet
engine) answer the same words with the same replies: ``status``, ``meter I COMMAND``,
``step``, ``time``, ``help``, ``quit``. This class holds the words, their parsing and
their replies; a fleet supplies its meters (:meth:`FleetCommands.rows`,
:meth:`FleetCommands.meter_reply`) and its time (:meth:`FleetCommands.step_slices`).

A line that runs long (a ``step``, a shard's ``advance``) is checked when it is read
and run after it, as a meter's own console runs a ``step``: whole by :meth:`execute`,
or slice by slice by :meth:`execute_async`, which lets every meter's DLMS in between
and ends early when the fleet is stopping (a signal ends it within a second). A
meter's own console, reached through ``meter I``, is fitted to the fleet by
:func:`fit_member_console`: its ``step`` moves the shared clock, its ``quit`` belongs to
the fleet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from abc import ABC, abstractmethod
from typing import Callable, Iterator

from bijli.firmware.console import Console, Reply, parse_duration
from bijli.firmware.errors import CommandError, FirmwareError
from bijli.hal.clock import TimeSource
from bijli.tools.node.meter_node import run_cooperatively

MEMBER_QUIT = "error: quit stops the whole fleet: type quit at the fleet prompt"
_OVERRIDES = " (overrides the fleet's load profile)"


def fit_member_console(console: Console, fleet_step: Callable[[list[str]], Reply],
                       on_load: Callable[[], None]) -> None:
    """A member's own console, fitted to its fleet: ``step`` moves the shared clock (so
    every meter, through the fleet), a typed ``load`` overrides the fleet's load profile
    (``on_load`` is told once it is drawn) and ``quit`` is refused (the fleet's own quit
    stops it)."""
    load_handler, load_usage, load_text = console.commands["load"]

    def load(words: list[str]) -> str:
        out = load_handler(words)
        on_load()
        return out

    if not load_text.endswith(_OVERRIDES):  # fitted once: a hydrated meter's console may be fitted again
        console.register("load", load, load_usage, load_text + _OVERRIDES)
    console.register("step", fleet_step, "step DURATION", "advance the shared simulated clock: every meter steps")
    console.register("quit", lambda words: Reply(MEMBER_QUIT, ok=False), "quit",
                     "(in a fleet: stop the fleet with its own quit)")


@dataclasses.dataclass(frozen=True)
class _LongLine:
    """A long line, checked and waiting to run: its label (progress lines), its slices
    (each yields the fraction done) and the reply once they all ran."""

    label: str
    slices: Callable[[], Iterator[float]]
    done: Callable[[], str]


class FleetCommands(ABC):
    """The fleet console's words over the fleet a subclass supplies."""

    def __init__(self, clock: TimeSource):
        self.clock = clock
        self._pending: _LongLine | None = None
        self.commands = {
            "help": (self._help, "help", "this list"),
            "status": (self._status, "status [--json]", "one line per meter: serial, port, relay, credit, energy, power"),
            "meter": (self._meter, "meter I COMMAND ...", "run a meter's console command on meter I (0-based); "
                                                          "'meter I help' lists them"),
            "step": (self._step, "step DURATION", "advance the shared simulated clock for all meters (90s, 15m, 6h, 3d)"),
            "time": (self._time, "time", "the shared clock"),
            "quit": (self._quit, "quit", "stop every meter (state is saved)"),
        }

    # --- what a fleet supplies -------------------------------------------------------------
    @abstractmethod
    def rows(self) -> list[dict]:
        """One dict per meter: index, port, load_profile and the meter's status."""

    @abstractmethod
    def meter_reply(self, index: int, line: str) -> Reply:
        """Meter ``index``'s own console answering ``line`` (CommandError: no such meter)."""

    @abstractmethod
    def step_slices(self, seconds: float) -> Iterator[float]:
        """Advance the shared simulated clock by ``seconds``, yielding the fraction done."""

    def step(self, seconds: float) -> None:
        """Advance the shared simulated clock, all of it at once."""
        for _ in self.step_slices(seconds):
            pass

    def add_command(self, name: str, handler, usage: str, text: str) -> None:
        """A word of this fleet's own, listed before ``quit``."""
        quit_entry = self.commands.pop("quit")
        self.commands[name] = (handler, usage, text)
        self.commands["quit"] = quit_entry

    def run_later(self, label: str, slices: Callable[[], Iterator[float]], done: Callable[[], str]) -> Reply:
        """Called by a handler: run ``slices`` once the line is answered (see the module text)."""
        self._pending = _LongLine(label, slices, done)
        return Reply("")

    # --- running lines -------------------------------------------------------------------
    def execute(self, line: str) -> Reply:
        """One fleet console line; a step runs whole."""
        reply = self._execute(line)
        pending, self._pending = self._pending, None
        if pending is None:
            return reply
        for _ in pending.slices():
            pass
        return Reply(pending.done())

    async def execute_async(self, line: str, stopping: asyncio.Event) -> Reply:
        """One fleet console line; a step lets every meter's DLMS in between its slices and
        ends early when ``stopping`` is set."""
        reply = self._execute(line)
        pending, self._pending = self._pending, None
        if pending is None:
            return reply
        if not await run_cooperatively(pending.slices(), stopping, pending.label, self.clock.now):
            return Reply(f"{pending.label} stopped at {self.clock.now().isoformat(timespec='seconds')}", ok=False)
        return Reply(pending.done())

    def _execute(self, line: str) -> Reply:
        words = line.split()
        if not words:
            return Reply("")
        entry = self.commands.get(words[0].lower())
        if entry is None:
            return Reply(f"error: unknown command {words[0]!r}; type help", ok=False)
        handler, usage, _ = entry
        # 'meter I ...' hands the rest of the line on as typed (its quoting included)
        args = line.strip().split(None, 2)[1:] if handler == self._meter else words[1:]
        try:
            out = handler(args)
        except (FirmwareError, ValueError) as exc:
            self._pending = None
            return Reply(f"error: {exc}\nusage: {usage}", ok=False)
        return out if isinstance(out, Reply) else Reply(out)

    # --- the words -----------------------------------------------------------------------
    def _help(self, words: list[str]) -> str:
        width = max(len(u) for _, u, _ in self.commands.values())
        return "\n".join(f"{usage:<{width}}  {text}" for _, usage, text in self.commands.values())

    def _status(self, words: list[str]) -> str:
        if words == ["--json"]:
            return json.dumps(self.rows(), sort_keys=True)
        if words:
            raise CommandError("status takes only --json")
        lines = [f"{'#':>3}  {'serial':<12} {'port':>5}  {'relay':<12} {'credit':>10} {'kWh':>10} "
                 f"{'W':>8} {'A':>7}  load"]
        for r in self.rows():
            lines.append(f"{r['index']:>3}  {r['serial']:<12} {r['port'] or '-':>5}  {r['relay']:<12} "
                         f"{r['credit']:>10} {r['energy_import_kwh']:>10.3f} {r['power_w']:>8.1f} "
                         f"{r['current']:>7.2f}  {r['load_profile']}")
        return "\n".join(lines)

    def _meter(self, words: list[str]) -> Reply:
        if len(words) != 2:
            raise CommandError("meter needs an index and a command")
        try:
            index = int(words[0])
        except ValueError:
            raise CommandError(f"not a meter index: {words[0]!r}") from None
        reply = self.meter_reply(index, words[1])
        return dataclasses.replace(reply, quit=False)

    def _step(self, words: list[str]) -> Reply:
        """Checked here, run by :meth:`execute` or :meth:`execute_async` after the line."""
        if len(words) != 1:
            raise CommandError("step needs one DURATION")
        if not self.clock.simulated:
            raise CommandError("step needs the simulated clock (--clock sim)")
        seconds = parse_duration(words[0])
        return self.run_later(f"fleet step {words[0]}", lambda: self.step_slices(seconds),
                              lambda: self.clock.now().isoformat(timespec="seconds"))

    def _time(self, words: list[str]) -> str:
        return self.clock.now().isoformat(timespec="seconds")

    def _quit(self, words: list[str]) -> Reply:
        return Reply("stopping the fleet", quit=True)
