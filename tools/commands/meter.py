"""`bijli meter`: run a meter: firmware + DLMS server + hal backends on one event loop.

Wiring only: the clock, sample source and ports come from ``hal``, the meter
from ``firmware``, the protocol from ``dlms``; one :class:`tools.node.meter_node.MeterNode`
holds the meter, its objects, security and server. The metering loop ticks the
node every ``TICK`` seconds of real time, which hands the firmware a block of
samples sized to the meter time that passed, so the same loop serves a real
clock, a simulated one running faster than real time, and a console ``step``
(run cooperatively: DLMS answers and signals are heard while it runs).

A state directory that already holds a meter resumes its simulated clock at the
saved time; ``--start`` there is refused unless ``--reset-clock`` asks for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from bijli.firmware.console import LineAssembler, Reply
from bijli.firmware.events import EventCode
from bijli.firmware.cosem.upgrade import upgrade_objects
from bijli.firmware.upgrade.store import ImageStore
from bijli.hal import loop as hal_loop
from bijli.hal import statelock, systemd, tcp
from bijli.hal.tcp_line import parse_endpoint
from bijli.hal.clock import TimeSource, RealClock, SimClock, meter_local
from bijli.hal.serial import open_port
from bijli.tools.errors import UsageError
from bijli.tools.node import config as config_mod
from bijli.tools.node import launcher
from bijli.tools.node import push as push_shell
from bijli.tools.node.devices import Devices
from bijli.tools.node.links import add_transport_arguments, start_transports, tcp_options, wrapper_session
from bijli.tools.node.meter_node import TICK, MeterNode, console_answer, holds_meter, start_clock, stdio_console

KEYPAD_SCAN = 0.02  # seconds between scans of a GPIO matrix keypad
QUIT_LINGER = 1.0  # seconds a serial console stays open after 'quit'

_UPGRADE_EVENTS = {
    "verification_failed": EventCode.FIRMWARE_VERIFICATION_FAILED,
    "activation_scheduled": EventCode.FIRMWARE_ACTIVATION_SCHEDULED,
    "activated": EventCode.FIRMWARE_ACTIVATED,
    "activation_failed": EventCode.FIRMWARE_ACTIVATION_FAILED,
}

log = logging.getLogger("bijli.meter")


def register(subparsers) -> None:
    p = subparsers.add_parser("meter")
    p.add_argument("--config", metavar="FILE", help="TOML configuration (default: the demo meter)")
    p.add_argument("--tcp", metavar="HOST:PORT", default=None,
                   help="serve DLMS over the TCP wrapper (default 127.0.0.1:4059; port 0 picks a free one)")
    p.add_argument("--state", metavar="DIR", default="./state", help="non-volatile memory directory (default ./state)")
    p.add_argument("--console", default=None,
                   help="service console: stdio, none, pty, pty:LINKPATH, or a serial device / pyserial URL "
                        "such as serial:///dev/ttyAMA0 (default: config hal.console, stdio)")
    p.add_argument("--clock", choices=("real", "sim"), default=None, help="real or simulated clock (config hal.clock)")
    p.add_argument("--start", metavar="ISO-8601",
                   help="start of the simulated clock (default: now, or where a saved meter stopped)")
    p.add_argument("--reset-clock", action="store_true",
                   help="with --start on a state directory that already holds a meter: set its clock to "
                        "--start (the meter logs the adjustment); without it that is refused")
    p.add_argument("--rate", type=float, default=1.0, help="simulated clock speed, x real time (default 1)")
    p.add_argument("--log", default="warning", help="log level (debug, info, warning)")
    p.add_argument("--manifest", metavar="FILE",
                   help="write JSON: the meter's endpoint, system title, DLMS keys and STS vending parameters "
                        "(the same shape as one row of a fleet manifest)")
    add_transport_arguments(p)
    add_chaos_arguments(p)
    p.set_defaults(func=_main)


def add_chaos_arguments(parser) -> None:
    """The hostile mode (bijli.tools.chaos): off unless --chaos is given."""
    from bijli.tools.chaos.kinds import ALL, DESCRIPTIONS
    from bijli.tools.chaos.plan import DEFAULT_RATE

    kinds = "; ".join(f"{k.value}: {DESCRIPTIONS[k]}" for k in ALL)
    parser.add_argument("--chaos", metavar="SEED", default=None,
                        help="HOSTILE METER for fuzzing head-ends: answer on the TCP listeners (wrapper, HDLC) "
                             "with seeded, reproducible misbehaviour; SEED is an integer, or 'random' (the seed "
                             "is printed at start either way). Never use it on a real meter's config")
    parser.add_argument("--chaos-kinds", metavar="K1,K2", default=None,
                        help=f"with --chaos: the misbehaviours to show (default all). The kinds: {kinds}")
    parser.add_argument("--chaos-rate", metavar="P", type=float, default=DEFAULT_RATE,
                        help=f"with --chaos: the share of answers that misbehave, 0 < P <= 1 (default {DEFAULT_RATE})")


def hostile_meter(args):
    """The :class:`~bijli.tools.chaos.shell.HostileMeter` --chaos asks for, or None (a normal meter)."""
    if args.chaos is None:
        if args.chaos_kinds is not None:
            raise UsageError("--chaos-kinds needs --chaos SEED")
        return None
    import secrets

    from bijli.tools.chaos import ChaosPlan, parse_kinds
    from bijli.tools.chaos.shell import HostileMeter

    if args.chaos == "random":
        seed = secrets.randbelow(1 << 32)
    else:
        try:
            seed = int(args.chaos, 0)
        except ValueError:
            raise UsageError(f"--chaos: the seed is an integer or 'random', not {args.chaos!r}") from None
    return HostileMeter(ChaosPlan(seed, parse_kinds(args.chaos_kinds), args.chaos_rate))


def write_manifest(path, manifest: dict) -> None:
    """Write the manifest whole or not at all (a reader never sees half a file)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, target)


class MeterProgram:
    """One meter as a program: a :class:`~tools.node.meter_node.MeterNode` plus what only a
    process running a single meter has: devices from ``[hal]``, the firmware image
    store, the upgrade health check, the systemd watchdog and the consoles."""

    def __init__(self, args, cfg: config_mod.Config):
        self.cfg = cfg
        zone = cfg.meter.identity.time_zone_minutes  # the meter's zone, never the host's
        clock, resume = start_clock(args.clock or cfg.hal.clock, args.start, args.rate, zone,
                                    existing=holds_meter(args.state), reset_clock=args.reset_clock,
                                    where=f"state directory {args.state}")
        self.upgrade_cfg = cfg.upgrade
        self.images = ImageStore(args.state, self.upgrade_cfg, now=lambda: self.meter.now,
                                 running_image=launcher.running_image())
        self.restart_for_upgrade = False
        self.node = MeterNode(cfg, args.state, clock, extra_objects=upgrade_objects(self.images), resume_clock=resume)
        self.devices = Devices(self.node.meter, cfg.hal)
        self.node.attach_devices(self.devices)
        self.stopping = asyncio.Event()

    # the node's parts, by the names the loops below use
    @property
    def meter(self):
        return self.node.meter

    @property
    def server(self):
        return self.node.server

    @property
    def simulated(self) -> bool:
        return self.node.simulated

    def _log_upgrade_events(self) -> None:
        for event in self.images.take_events():
            code = _UPGRADE_EVENTS.get(event.kind)
            if code is not None:
                self.meter.record_event(code, detail=f"{event.identifier} {event.detail}".strip())

    async def health_check(self, state: str) -> None:
        """A new image is healthy once it has served for a while with time moving."""
        started = self.meter.now
        await asyncio.sleep(self.upgrade_cfg.healthy_after_s)
        if self.meter.now > started and launcher.mark_healthy(state):
            self.meter.record_event(EventCode.FIRMWARE_ACTIVATED, detail=launcher.running_image() or "")

    # --- loops ---------------------------------------------------------------------------
    async def metering_loop(self) -> None:
        watchdog = systemd.watchdog_interval()
        last_ping = 0.0
        while not self.stopping.is_set():
            self.node.tick()
            self.devices.tick()
            self._log_upgrade_events()
            if self.images.restart_due(self.meter.now):
                self.restart_for_upgrade = True  # stop cleanly, then the launcher starts the new image
                self.stopping.set()
            if watchdog and asyncio.get_running_loop().time() - last_ping >= watchdog / 2:
                systemd.watchdog_ping()
                last_ping = asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self.stopping.wait(), TICK)
            except asyncio.TimeoutError:
                pass

    async def pin_loop(self, queue: asyncio.Queue) -> None:
        while True:
            event = await queue.get()
            self.node.tick()
            self.devices.handle_pin(event)

    async def keypad_loop(self) -> None:
        """Scan a GPIO matrix keypad every 20 ms (a key press lasts 50 ms or more)."""
        while not self.stopping.is_set():
            await asyncio.sleep(KEYPAD_SCAN)
            if self.devices.scan_keypad():
                self.node.tick()

    def _execute(self, line: str):
        """One console line; a step runs cooperatively (an awaitable reply)."""
        return self.node.execute_async(line, self.stopping)

    async def console_loop(self) -> None:
        """The console on this process's stdin/stdout."""
        await stdio_console(self._execute, self.stopping)

    async def port_console_loop(self, port) -> None:
        """The console on a serial line or pty: a rig engineer's UART."""
        lines = LineAssembler()  # bounded: a peer that never ends a line cannot grow it
        port.write(b"bijli console: type help\r\n> ")
        while not self.stopping.is_set():
            data = await port.read()
            if not data:
                return
            for line in lines.feed(data):
                if line is not None and not line.strip():
                    port.write(b"> ")  # an empty line asks for the prompt (a terminal just opened)
                    continue
                reply = Reply(lines.refusal(), ok=False) if line is None else await console_answer(self._execute, line)
                text = (reply.text + "\n" if reply.text else "") + ("" if reply.quit else "> ")
                port.write(text.replace("\n", "\r\n").encode("utf-8"))
                if reply.quit:
                    # the goodbye reaches the engineer before the line closes: closing a
                    # pty (or a USB serial adapter) throws away what the far end has not
                    # read yet, so drain, then give the reader a moment
                    await port.drain()
                    await asyncio.sleep(QUIT_LINGER)
                    self.stopping.set()
                    return

    def shutdown(self) -> None:
        self.node.shutdown()


async def _run(args, cfg: config_mod.Config, hostile=None) -> int:
    program = MeterProgram(args, cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, program.stopping.set)
    if hostile is not None:
        print(hostile.plan.banner(), flush=True)  # first, so a CI log holds the seed whatever follows
    transports = await start_transports(args, program.server, cfg, hostile=hostile)
    host, port = parse_endpoint(args.tcp or "127.0.0.1:4059")
    factory = lambda s: wrapper_session(s, program.server)  # noqa: E731
    if hostile is not None:
        factory = hostile.factory(wrapper_session, program.server)
    listener = await tcp.serve(host, port, factory, **tcp_options(cfg.meter.dlms))
    bound = listener.sockets[0].getsockname()
    program.node.tcp_port = bound[1]
    ident = cfg.meter.identity
    print(f"bijli meter {ident.serial} ({ident.ldn}), clock {'sim' if program.simulated else 'real'} at "
          f"{program.meter.now.isoformat(timespec='seconds')}, state in {Path(args.state).resolve()}", flush=True)
    print(f"DLMS wrapper listening on {bound[0]}:{bound[1]} (client SAP 16 public, 32 reader, 48 utility)", flush=True)
    if args.manifest:
        write_manifest(args.manifest, program.node.manifest(bound[0], bound[1]))
    tasks = [asyncio.create_task(program.metering_loop()),
             asyncio.create_task(program.pin_loop(program.devices.attach(loop))),
             asyncio.create_task(push_shell.serve(program.node, program.stopping))]
    console = args.console or cfg.hal.console
    port = None
    if console == "stdio":
        print("service console on this terminal: type help", flush=True)
        tasks.append(asyncio.create_task(program.console_loop()))
    elif console != "none":
        port = open_port(console.removeprefix("serial://"))
        where = getattr(port, "link_path", None) or getattr(port, "peer_path", None) or console
        print(f"service console on {where}", flush=True)
        tasks.append(asyncio.create_task(program.port_console_loop(port)))
    tasks.append(asyncio.create_task(program.health_check(args.state)))
    if program.devices.matrix is not None:
        tasks.append(asyncio.create_task(program.keypad_loop()))
    program._log_upgrade_events()  # what the launcher decided before this start (e.g. a rollback)
    systemd.ready()
    try:
        await program.stopping.wait()
    finally:
        systemd.stopping()
        listener.close()
        for t in transports:
            t.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if port is not None:
            port.close()
        program.shutdown()
    print("meter stopped, state saved", flush=True)
    if program.restart_for_upgrade:
        # the new image resumes the clock where this one stopped: no --start again
        launcher.restart(args.state, args.config, resume_argv(sys.argv[1:]))  # does not return
    return 0


def resume_argv(argv: list[str]) -> list[str]:
    """``argv`` without --start/--reset-clock: a restart of the same meter carries on its clock."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--start":
            skip = True
        elif not (word.startswith("--start=") or word == "--reset-clock"):
            out.append(word)
    return out


def _main(args) -> int:
    logging.basicConfig(level=args.log.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    hostile = hostile_meter(args)  # a bad --chaos is refused before anything starts
    lock = statelock.acquire(args.state)  # noqa: F841 (held until exit) one meter per state directory
    launcher.prepare(args.state, args.config, sys.argv[1:])  # may re-execute into an installed image
    cfg = config_mod.load(args.config)
    return hal_loop.run(_run(args, cfg, hostile))
