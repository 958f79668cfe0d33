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

import concurrent.futures
import copy
import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from bijli.firmware.config import DlmsSettings, Identity
from bijli.firmware.console import Reply
from bijli.firmware.errors import CommandError, ConfigError, FirmwareError
from bijli.firmware.sts.errors import KeyMaterialError
from bijli.firmware.sts import StsConfig
from bijli.firmware.sts.keys import Pan
from bijli.hal.clock import TimeSource
from bijli.tools.node import config as config_mod
from bijli.tools.node import household
from bijli.tools.node.config import PIN_ROLES
from bijli.tools.node.devices import Devices
from bijli.tools.node.fleet_console import FleetCommands, fit_member_console
from bijli.tools.node.meter_node import ClockView, MeterNode, open_samples

# Per tick a member measures this much of its waveform and integrates the rest of
# the gap at the same steady load: a fleet's loads are synthetic and constant
# within a 15-minute slot, so a short block measures them as well as a long one,
# and fifty meters on a real clock stay at a few per cent of one core.
FLEET_BLOCK_SECONDS = 0.1
SHUTDOWN_THREADS = 32  # members closed side by side at exit (their fsyncs overlap)


def member_config(base: config_mod.Config, index: int) -> config_mod.Config:
    """The configuration of member ``index``: the base one with its own serial, PAN
    and pin-less devices.

    Only the ``[meter]`` identity's serial and the ``[sts]`` PAN (hence the decoder key)
    differ between members (:func:`member_identity`), so every other section is parsed
    once per base and shared by every member (frozen values: a fleet engine derives a
    meter's configuration at each hydration, and parsing it whole was a third of a
    hydration), and the member's identity and STS settings are member 0's with its own
    serial and PAN put in (:func:`member_settings`). What it returns equals
    ``config.parse`` of :func:`member_raw` (tests/tools/test_fleet.py checks)."""
    settings = member_settings(base, index)
    template = _template(base)
    meter = dataclasses.replace(template.meter, identity=settings.identity, sts=settings.sts)
    return config_mod.Config(meter, template.hal, template.upgrade,
                             _member_raw(base, settings.identity.serial, settings.sts.vending.pan))


class MemberSettings(NamedTuple):
    """The settings of a member that a manifest row reads (``identity``, ``sts``, ``dlms``,
    as a :class:`~firmware.meter.MeterConfig` has them), without the member's whole
    configuration: a fleet's manifest derives 125,000 per shard at start-up, and building
    each member's ``MeterConfig`` (``dataclasses.replace`` over all its fields) and
    configuration document was a third of that."""

    identity: Identity
    sts: StsConfig
    dlms: DlmsSettings


def member_settings(base: config_mod.Config, index: int) -> MemberSettings:
    """Member ``index``'s identity and STS settings (member 0's, with its own serial and PAN
    put in and its decoder key derived, as ``StsConfig.from_table`` derives it) and the
    shared DLMS settings. :func:`member_config` is built on it."""
    serial, pan = member_identity(base, index)
    template = _template(base).meter
    vending = dataclasses.replace(template.sts.vending, pan=pan)
    try:
        key = vending.decoder_key()
    except KeyMaterialError as exc:  # as StsConfig.from_table names it
        raise ConfigError("sts.vending_key", str(exc)) from None
    return MemberSettings(dataclasses.replace(template.identity, serial=serial),
                          dataclasses.replace(template.sts, decoder_key=key, vending=vending), template.dlms)


# base id -> (base, the parse of its member 0): the sections all members share
_TEMPLATES: dict[int, tuple[config_mod.Config, config_mod.Config]] = {}


def _template(base: config_mod.Config) -> config_mod.Config:
    entry = _TEMPLATES.get(id(base))
    if entry is None or entry[0] is not base:
        if len(_TEMPLATES) >= 16:
            _TEMPLATES.clear()
        entry = _TEMPLATES[id(base)] = (base, config_mod.parse(member_raw(base, 0)))
    return entry[1]


def member_identity(base: config_mod.Config, index: int) -> tuple[str, Pan]:
    """What differs between members: the serial (the base serial's number plus ``index``)
    and the PAN (IIN and manufacturer code of the base PAN, that number as the 8-digit
    meter number, Luhn digits computed). The one definition :func:`member_raw` and
    :func:`member_config` use."""
    ident = base.meter.identity
    digits = "".join(ch for ch in ident.serial if ch.isdigit())
    number = (int(digits) if digits else 1) + index
    if number >= 10**7:
        raise ConfigError("meter.serial", f"fleet serial numbers are 7 digits; {ident.serial} + {index} is too large")
    vending = base.meter.sts.vending
    if vending is None:
        raise ConfigError("sts.decoder_key", "a fleet derives each meter's decoder key from [sts] vending_key and "
                                             "a PAN of its own; give vending key material, not decoder_key")
    try:
        pan = Pan.build(vending.pan.iain[:-9], f"{number:08d}", vending.pan.iin)
    except KeyMaterialError as exc:
        raise ConfigError("sts.pan", str(exc)) from None
    return f"{ident.manufacturer}{number:07d}", pan


def member_raw(base: config_mod.Config, index: int) -> dict:
    """The configuration document of member ``index`` (its serial and PAN, no pins)."""
    return _member_raw(base, *member_identity(base, index))


def _member_raw(base: config_mod.Config, serial: str, pan: Pan) -> dict:
    raw = copy.deepcopy(base.raw)
    meter = raw.setdefault("meter", {})
    meter["serial"] = serial
    meter.pop("logical_device_name", None)  # one per meter: derived from the serial
    raw.setdefault("sts", {})["pan"] = pan.digits
    hal = raw.setdefault("hal", {})
    hal.update({role: "none" for role in PIN_ROLES})
    hal["display"] = "none"
    hal["console"] = "none"
    return raw


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
        self.slot, point = household.follow(self.load, self.slot, self.node.meter.now)
        if point is not None:
            self.node.set_load(point.amps, point.pf, point.lagging, None)

    def manifest(self) -> dict:
        """What a head-end and a vending system need to talk to this meter and vend for it."""
        return {"index": self.index, **self.node.manifest(self.host, self.port), "state": str(self.state_dir),
                "load_profile": self.load.name}


class Fleet(FleetCommands):
    """N members sharing one clock; ``execute`` is the fleet console (:mod:`tools.node.fleet_console`)."""

    def __init__(self, base: config_mod.Config, count: int, state_dir: str | Path, clock: TimeSource, *,
                 load_profile: str = "random", block_seconds: float = FLEET_BLOCK_SECONDS, resume: bool = False):
        if count < 1:
            raise ConfigError("--count", "a fleet has at least one meter")
        if base.hal.samples != "synthetic":
            raise ConfigError("hal.samples", "fleet meters draw synthetic household loads; use synthetic")
        super().__init__(clock)
        self.state_dir = Path(state_dir)
        self.load_profile = load_profile
        self.members: list[Member] = []
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

    def _wire_console(self, member: Member) -> None:
        """A member's own console, fitted to the fleet: a step moves the shared clock
        (so all meters, through the fleet), a typed load overrides the profile, and
        quit belongs to the fleet."""
        fit_member_console(member.node.console, self._step, lambda: setattr(member, "manual", True))

    # --- time ----------------------------------------------------------------------------
    def tick(self) -> None:
        """One metering tick for every member: samples up to now, the household load
        of the current slot, devices."""
        for m in self.members:
            m.node.tick()
            m.follow_profile()
            m.node.devices.tick()

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

    # --- console (the words are tools.node.fleet_console's) --------------------------------
    def rows(self) -> list[dict]:
        out = []
        for m in self.members:
            m.node.tick()
            s = m.node.meter.status()
            out.append({"index": m.index, "port": m.port, "load_profile": "manual" if m.manual else m.load.name, **s})
        return out

    def meter_reply(self, index: int, line: str) -> Reply:
        if not 0 <= index < len(self.members):
            raise CommandError(f"no meter {index}: the fleet has 0..{len(self.members) - 1}")
        return self.members[index].node.execute(line)

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
