"""A fleet of meters in one process: N meter nodes under one clock and one metering tick.

Each member is a full :class:`~tools.node.meter_node.MeterNode` with an identity of its own,
derived from the base configuration: serial ``<manufacturer><7 digits>`` (the base
serial's number plus the member's index), hence its own logical device name and
DLMS server system title (IEC 62056-5-3 clause 9.2.4.8.3: manufacturer id and
the serial's digits); its own STS PAN (IEC 62055-41: IIN and manufacturer code
of the base PAN, the serial number as the 8-digit meter number, both Luhn digits
computed), hence its own decoder key derived from the one vending key; its own
state directory, and a synthetic household load seeded by its index
(:mod:`tools.household`). Devices have no pins (fifty meters cannot share one
relay GPIO) but keep their keypad and LCD for the console.

This module opens no socket: :class:`Fleet` steps, reports and runs console
lines; ``tools.fleet_cmd`` serves it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator

from bijli.firmware.console import Reply, parse_duration
from bijli.firmware.errors import CommandError, ConfigError, FirmwareError
from bijli.firmware.sts.errors import KeyMaterialError
from bijli.firmware.sts.keys import Pan
from bijli.hal.clock import TimeSource
from bijli.tools.node import config as config_mod
from bijli.tools.node import household
from bijli.tools.node.config import PIN_ROLES
from bijli.tools.node.devices import Devices
from bijli.tools.node.meter_node import ClockView, MeterNode, open_samples, run_cooperatively

# Per tick a member measures this much of its waveform and integrates the rest of
# the gap at the same steady load: a fleet's loads are synthetic and constant
# within a 15-minute slot, so a short block measures them as well as a long one,
# and fifty meters on a real clock stay at a few per cent of one core.
FLEET_BLOCK_SECONDS = 0.1
SHUTDOWN_THREADS = 32  # members closed side by side at exit (their fsyncs overlap)


def member_config(base: config_mod.Config, index: int) -> config_mod.Config:
    """The configuration of member ``index``: the base one with its own serial, PAN
    and pin-less devices."""
    raw = copy.deepcopy(base.raw)
    ident = base.meter.identity
    digits = "".join(ch for ch in ident.serial if ch.isdigit())
    number = (int(digits) if digits else 1) + index
    if number >= 10**7:
        raise ConfigError("meter.serial", f"fleet serial numbers are 7 digits; {ident.serial} + {index} is too large")
    meter = raw.setdefault("meter", {})
    meter["serial"] = f"{ident.manufacturer}{number:07d}"
    meter.pop("logical_device_name", None)  # one per meter: derived from the serial
    vending = base.meter.sts.vending
    if vending is None:
        raise ConfigError("sts.decoder_key", "a fleet derives each meter's decoder key from [sts] vending_key and "
                                             "a PAN of its own; give vending key material, not decoder_key")
    try:
        pan = Pan.build(vending.pan.iain[:-9], f"{number:08d}", vending.pan.iin)
    except KeyMaterialError as exc:
        raise ConfigError("sts.pan", str(exc)) from None
    raw.setdefault("sts", {})["pan"] = pan.digits
    hal = raw.setdefault("hal", {})
    hal.update({role: "none" for role in PIN_ROLES})
    hal["display"] = "none"
    hal["console"] = "none"
    return config_mod.parse(raw)


@dataclass
class Member:
    index: int
    cfg: config_mod.Config
    node: MeterNode
    state_dir: Path
    load: household.HouseholdLoad | household.ConstantLoad
    port: int | None = None  # the wrapper port it listens on, once serving
    host: str = ""
    manual: bool = False  # a console 'load' took over from the profile
    slot: object = None  # the profile slot whose load is applied

    @property
    def serial(self) -> str:
        return self.cfg.meter.identity.serial

    def follow_profile(self) -> None:
        """Apply the household load of the slot the meter's time is in."""
        if self.manual:
            return
        now = self.node.meter.now
        slot = household.slot_start(now)
        if slot == self.slot:
            return
        self.slot = slot
        point = self.load.at(now)
        self.node.set_load(point.amps, point.pf, point.lagging, None)

    def manifest(self) -> dict:
        """What a head-end and a vending system need to talk to this meter and vend for it."""
        return {"index": self.index, **self.node.manifest(self.host, self.port), "state": str(self.state_dir),
                "load_profile": self.load.name}


class Fleet:
    """N members sharing one clock; ``execute`` is the fleet console."""

    def __init__(self, base: config_mod.Config, count: int, state_dir: str | Path, clock: TimeSource, *,
                 load_profile: str = "random", block_seconds: float = FLEET_BLOCK_SECONDS, resume: bool = False):
        if count < 1:
            raise ConfigError("--count", "a fleet has at least one meter")
        if base.hal.samples != "synthetic":
            raise ConfigError("hal.samples", "fleet meters draw synthetic household loads; use synthetic")
        self.clock = clock
        self.state_dir = Path(state_dir)
        self.load_profile = load_profile
        self.members: list[Member] = []
        self._pending_step: float | None = None
        try:
            for i in range(count):
                cfg = member_config(base, i)
                where = self.state_dir / cfg.meter.identity.serial
                node = MeterNode(cfg, where, ClockView(clock), open_samples(cfg, seed=i),
                                 max_block_seconds=block_seconds, resume_clock=resume)
                node.attach_devices(Devices(node.meter, cfg.hal))
                member = Member(i, cfg, node, where, household.profile(load_profile, i))
                self._wire_console(member)
                self.members.append(member)
                member.follow_profile()
        except BaseException:
            self.shutdown()
            raise
        self.commands = {
            "help": (self._help, "help", "this list"),
            "status": (self._status, "status [--json]", "one line per meter: serial, port, relay, credit, energy, power"),
            "meter": (self._meter, "meter I COMMAND ...", "run a meter's console command on meter I (0-based); "
                                                          "'meter I help' lists them"),
            "step": (self._step, "step DURATION", "advance the shared simulated clock for all meters (90s, 15m, 6h, 3d)"),
            "time": (self._time, "time", "the shared clock"),
            "quit": (self._quit, "quit", "stop every meter (state is saved)"),
        }

    def _wire_console(self, member: Member) -> None:
        """A member's own console, fitted to the fleet: a step moves the shared clock
        (so all meters, through the fleet), a typed load overrides the profile, and
        quit belongs to the fleet."""
        console = member.node.console
        load_handler, load_usage, load_text = console.commands["load"]

        def load(words: list[str]) -> str:
            out = load_handler(words)
            member.manual = True
            return out

        def step(words: list[str]) -> Reply:
            return self._step(words)

        def quit_(words: list[str]) -> Reply:
            return Reply("error: quit stops the whole fleet: type quit at the fleet prompt", ok=False)

        console.register("load", load, load_usage, load_text + " (overrides the fleet's load profile)")
        console.register("step", step, "step DURATION", "advance the shared simulated clock: every meter steps")
        console.register("quit", quit_, "quit", "(in a fleet: stop the fleet with its own quit)")

    # --- time ----------------------------------------------------------------------------
    def tick(self) -> None:
        """One metering tick for every member: samples up to now, the household load
        of the current slot, devices."""
        for m in self.members:
            m.node.tick()
            m.follow_profile()
            m.node.devices.tick()

    def step(self, seconds: float) -> None:
        """Advance the shared simulated clock, all of it at once."""
        for _ in self.step_slices(seconds):
            pass

    def step_slices(self, seconds: float) -> Iterator[float]:
        """Advance the shared simulated clock; meters walk it slot by slot, so each
        household's load changes on its slot boundaries, not once per step. Yields the
        fraction done after each meter's slot: a cooperative caller lets DLMS and signals
        in between. Each meter walks its slot first and the shared clock follows, so a step
        stopped part way leaves no meter behind its clock (nothing to catch up at a stop)."""
        if not self.clock.simulated:
            raise CommandError("step needs the simulated clock (--clock sim)")
        for m in self.members:
            m.node.tick()
        start = self.clock.now()
        end = start + timedelta(seconds=seconds)
        total = (end - start).total_seconds() * len(self.members)
        while (now := self.clock.now()) < end:
            nxt = min(end, household.next_slot(now))
            part = nxt - now
            for i, m in enumerate(self.members):
                m.node.meter.advance_to(m.node.clock.now() + part)
                m.follow_profile()
                yield ((now - start).total_seconds() * len(self.members) + part.total_seconds() * (i + 1)) / total
            self.clock.step(part.total_seconds())  # type: ignore[attr-defined]

    # --- console -------------------------------------------------------------------------
    def execute(self, line: str) -> Reply:
        """One fleet console line; a step runs whole."""
        reply = self._execute(line)
        seconds, self._pending_step = self._pending_step, None
        if seconds is None:
            return reply
        self.step(seconds)
        return Reply(self.clock.now().isoformat(timespec="seconds"))

    async def execute_async(self, line: str, stopping: asyncio.Event) -> Reply:
        """One fleet console line; a step lets every meter's DLMS in between its slices and
        ends early when ``stopping`` is set."""
        reply = self._execute(line)
        seconds, self._pending_step = self._pending_step, None
        if seconds is None:
            return reply
        label = f"fleet step {line.split()[-1]}"
        if not await run_cooperatively(self.step_slices(seconds), stopping, label, self.clock.now):
            return Reply(f"{label} stopped at {self.clock.now().isoformat(timespec='seconds')}", ok=False)
        return Reply(self.clock.now().isoformat(timespec="seconds"))

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
            return Reply(f"error: {exc}\nusage: {usage}", ok=False)
        return out if isinstance(out, Reply) else Reply(out)

    def _help(self, words: list[str]) -> str:
        width = max(len(u) for _, u, _ in self.commands.values())
        return "\n".join(f"{usage:<{width}}  {text}" for _, usage, text in self.commands.values())

    def rows(self) -> list[dict]:
        out = []
        for m in self.members:
            m.node.tick()
            s = m.node.meter.status()
            out.append({"index": m.index, "port": m.port, "load_profile": "manual" if m.manual else m.load.name, **s})
        return out

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
        if not 0 <= index < len(self.members):
            raise CommandError(f"no meter {index}: the fleet has 0..{len(self.members) - 1}")
        reply = self.members[index].node.execute(words[1])
        return dataclasses.replace(reply, quit=False)

    def _step(self, words: list[str]) -> str:
        """Checked here, run by :meth:`execute` or :meth:`execute_async` after the line."""
        if len(words) != 1:
            raise CommandError("step needs one DURATION")
        if not self.clock.simulated:
            raise CommandError("step needs the simulated clock (--clock sim)")
        self._pending_step = parse_duration(words[0])
        return ""

    def _time(self, words: list[str]) -> str:
        return self.clock.now().isoformat(timespec="seconds")

    def _quit(self, words: list[str]) -> Reply:
        return Reply("stopping the fleet", quit=True)

    # --- end -----------------------------------------------------------------------------
    def manifest(self) -> dict:
        return {"count": len(self.members), "clock": "sim" if self.clock.simulated else "real",
                "load_profile": self.load_profile, "meters": [m.manifest() for m in self.members]}

    def stop(self) -> None:
        """Save every member's state (:meth:`MeterNode.stop`: metering up to now, the
        invocation counters, the last step committed and sealed), leaving each meter's
        memory open; one that fails does not stop the others saving.

        What a stop must write is a commit and a seal per meter (two fsyncs). They run side
        by side on :data:`SHUTDOWN_THREADS` threads: sqlite and fsync release the
        interpreter lock, and the file system commits concurrent fsyncs together (one
        journal commit for many files: the group commit a per-meter file allows); past 8
        threads the stop is bound by the interpreter's own work (about 1 ms a meter). Each
        meter is touched by one thread only. ``bijli fleet`` ends the process after this
        (see :mod:`bijli.tools.commands.fleet`); :meth:`shutdown` also closes the files."""
        self._each(lambda node: node.stop())

    def shutdown(self) -> None:
        """:meth:`stop`, then close every meter's memory as ``bijli meter`` does at a clean
        stop (a verified backup taken, the write-ahead log checkpointed): a fleet used in
        a process that goes on (a test, a tool) releases its files."""
        self._each(lambda node: node.shutdown())

    def _each(self, close: Callable[[MeterNode], None]) -> None:
        errors: list[str] = []

        def one(m: Member) -> None:
            try:
                close(m.node)
            except Exception as exc:  # noqa: BLE001 - report after the others are saved
                errors.append(f"{m.serial}: {exc}")

        if len(self.members) == 1:
            one(self.members[0])
        else:
            with concurrent.futures.ThreadPoolExecutor(min(SHUTDOWN_THREADS, len(self.members)),
                                                       thread_name_prefix="bijli-fleet-close") as pool:
                list(pool.map(one, self.members))
        if errors:
            raise FirmwareError("; ".join(sorted(errors)))
