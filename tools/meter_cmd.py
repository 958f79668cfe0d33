"""`bijli meter`: run a meter: firmware + DLMS server + hal backends on one event loop.

Wiring only: the clock, sample source and ports come from ``hal``, the meter
from ``firmware``, the protocol from ``dlms``. The metering loop hands the
firmware a block of samples every ``TICK`` seconds of real time, sized to the
meter time that passed, so the same loop serves a real clock, a simulated one
running faster than real time, and a console ``step``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from dlms import axdr
from dlms.cosem.base import Context
from dlms.obis import Obis
from dlms.server import Notice, Server, ServerEvent
from firmware.console import Console, Reply
from firmware.errors import FirmwareError
from firmware.events import EventCode
from firmware.meter import Meter
from dlms.cosem.security_setup import SecuritySetup
from firmware.objects import build_objects, policies, security_settings
from firmware.storage import Storage
from hal import systemd, tcp
from hal.clock import Clock, RealClock, SimClock
from hal.errors import HalError
from hal.samples import open_source
from hal.serial import open_port
from tools import config as config_mod
from tools.devices import Devices
from firmware.upgrade import ImageStore, upgrade_objects
from tools import launcher
from tools.links import add_transport_arguments, start_transports, wrapper_session

SECURITY_SETUP = "0.0.43.0.3.255"  # the utility association's security setup

_UPGRADE_EVENTS = {
    "verification_failed": EventCode.FIRMWARE_VERIFICATION_FAILED,
    "activation_scheduled": EventCode.FIRMWARE_ACTIVATION_SCHEDULED,
    "activated": EventCode.FIRMWARE_ACTIVATED,
    "activation_failed": EventCode.FIRMWARE_ACTIVATION_FAILED,
}

_NOTICE_EVENTS = {
    ServerEvent.AUTHENTICATION_FAILED: EventCode.AUTHENTICATION_FAILURE,
    ServerEvent.LOCKED_OUT: EventCode.LOCKOUT,
    ServerEvent.SECURITY_FAILURE: EventCode.AUTHENTICATION_FAILURE,
}

TICK = 0.25  # seconds of real time between metering blocks
MAX_BLOCK_SECONDS = 1.0  # a longer gap is integrated at steady load, not sample by sample

log = logging.getLogger("bijli.meter")


def register(subparsers) -> None:
    p = subparsers.add_parser("meter", help="run a meter (DLMS server, console, metering)")
    p.add_argument("--config", metavar="FILE", help="TOML configuration (default: the demo meter)")
    p.add_argument("--tcp", metavar="HOST:PORT", default=None,
                   help="serve DLMS over the TCP wrapper (default 127.0.0.1:4059; port 0 picks a free one)")
    p.add_argument("--state", metavar="DIR", default="./state", help="non-volatile memory directory (default ./state)")
    p.add_argument("--console", default=None,
                   help="service console: stdio, none, pty, pty:LINKPATH, or a serial device / pyserial URL "
                        "such as serial:///dev/ttyAMA0 (default: config hal.console, stdio)")
    p.add_argument("--clock", choices=("real", "sim"), default=None, help="real or simulated clock (config hal.clock)")
    p.add_argument("--start", metavar="ISO-8601", help="start of the simulated clock (default: now)")
    p.add_argument("--rate", type=float, default=1.0, help="simulated clock speed, x real time (default 1)")
    p.add_argument("--log", default="warning", help="log level (debug, info, warning)")
    add_transport_arguments(p)
    p.set_defaults(func=_main)


class MeterProgram:
    """Everything one running meter owns; also the console's Host."""

    def __init__(self, args, cfg: config_mod.Config):
        self.cfg = cfg
        clock_kind = args.clock or cfg.hal.clock
        if clock_kind == "sim":
            start = datetime.fromisoformat(args.start).replace(tzinfo=None) if args.start else datetime.now().replace(microsecond=0)
            self.clock: Clock = SimClock(start, rate=args.rate)
        else:
            self.clock = RealClock()
        self.storage = Storage.open(args.state)
        m = cfg.meter.metrology
        self.source = open_source(cfg.hal.samples, **({"sample_rate": m.sample_rate, "frequency": m.nominal_frequency,
                                                         "phases": m.phases} if cfg.hal.samples == "synthetic" else {}))
        if cfg.hal.samples == "synthetic":
            self.source.set_voltage(m.nominal_voltage)
        self._load = (0.0, 1.0, True)  # the load the consumer draws (behind the relay)
        self._relay_closed = True
        self.devices: Devices | None = None
        self.meter = Meter(cfg.meter, self.storage, self.clock.now(), on_relay=self._on_relay)
        self.devices = Devices(self.meter, cfg.hal)
        self.devices.relay_changed(self.meter.relay.output_state)
        self.security = security_settings(self.meter)
        self.upgrade_cfg = cfg.upgrade
        self.images = ImageStore(args.state, self.upgrade_cfg, now=lambda: self.meter.now,
                                 running_image=launcher.running_image())
        self.restart_for_upgrade = False
        self.objects = build_objects(self.meter, set_clock=self.set_time,
                                     extra=[SecuritySetup(SECURITY_SETUP, self.security),
                                            *upgrade_objects(self.images)])
        dl = cfg.meter.dlms
        self.server = Server(self.objects, policies(self.meter), max_pdu=dl.max_pdu,
                             lockout_after=dl.lockout_after, lockout_seconds=dl.lockout_minutes * 60,
                             on_notice=self._on_notice, security=self.security)
        self.console = Console(self.meter, self)
        self.console.register("k", lambda words: self.devices.keys(" ".join(words)), "k KEYS",
                              "type on the keypad: digits, # enter, * backspace, e emergency, s scroll")
        self.console.register("lcd", lambda words: self.devices.lcd(), "lcd", "what the LCD shows now")
        self.stopping = asyncio.Event()

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

    def _on_notice(self, notice: Notice) -> None:
        """Security events from the DLMS server go to the meter's event log."""
        code = _NOTICE_EVENTS.get(notice.event)
        if code is not None:
            self.meter.log_security(code, f"client SAP {notice.client_sap}: {notice.detail}")

    # --- Host for the console ------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        return self.clock.simulated

    def set_load(self, current: float, pf: float, lagging: bool, voltage: float | None) -> None:
        self._meter_tick()  # the old load's energy up to now
        if not hasattr(self.source, "set_load"):
            raise FirmwareError(f"the sample source {self.cfg.hal.samples!r} has no settable load")
        if voltage is not None:
            self.source.set_voltage(voltage)
        self._load = (current, abs(pf), lagging if pf >= 0 else not lagging)
        self._apply_load()

    def _on_relay(self, closed: bool) -> None:
        """The relay opened or closed: the consumer's load is behind it."""
        self._relay_closed = closed
        if self.devices is not None:
            self.devices.relay_changed(closed)
        if hasattr(self, "meter"):
            self._apply_load()

    def _apply_load(self) -> None:
        if not hasattr(self.source, "set_load"):
            return
        current, pf, lagging = self._load
        self.source.set_load(current if self._relay_closed else 0.0, pf=pf, lagging=lagging)
        # Measure the new load at once, so status and a following 'step' see it without
        # waiting for a tick. Two short blocks: the first window still holds the part
        # cycle sampled before the change; the second is the new load alone, and it is
        # the one a simulated-time step holds steady.
        n = self.cfg.meter.metrology.sample_rate // 10
        for _ in range(2):
            self.meter.on_samples(self.source.read_block(n), self.meter.now)

    def step(self, seconds: float) -> None:
        self._meter_tick()
        self.clock.step(seconds)
        self.meter.advance_to(self.clock.now())

    def set_time(self, when: datetime) -> None:
        self._meter_tick()
        self.clock.set(when)
        self.meter.set_time(self.clock.now())

    def get(self, obis: str, attribute: int) -> str:
        obj = self.server.objects.get(Obis.parse(obis))
        if obj is None:
            raise FirmwareError(f"no object {obis}")
        return describe(obj.get(attribute, None, Context(0)))

    # --- loops ---------------------------------------------------------------------------
    def _meter_tick(self) -> None:
        now = self.clock.now()
        seconds = (now - self.meter.now).total_seconds()
        if seconds <= 0:
            return
        rate = self.cfg.meter.metrology.sample_rate
        n = int(min(seconds, MAX_BLOCK_SECONDS) * rate)
        self.meter.on_samples(self.source.read_block(n) if n else (), now)

    async def metering_loop(self) -> None:
        watchdog = systemd.watchdog_interval()
        last_ping = 0.0
        while not self.stopping.is_set():
            self._meter_tick()
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
            self._meter_tick()
            self.devices.handle_pin(event)

    def _execute(self, line: str) -> Reply:
        self._meter_tick()
        return self.console.execute(line)

    async def console_loop(self) -> None:
        """The console on this process's stdin/stdout."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        interactive = sys.stdin.isatty()
        while not self.stopping.is_set():
            if interactive:
                print("bijli> ", end="", flush=True)
            line = await reader.readline()
            if not line:
                return  # stdin closed: keep metering, stop listening
            reply = self._execute(line.decode("utf-8", "replace"))
            if reply.text:
                print(reply.text, flush=True)
            if reply.quit:
                self.stopping.set()

    async def port_console_loop(self, port) -> None:
        """The console on a serial line or pty: a rig engineer's UART."""
        buf = bytearray()
        port.write(b"bijli console: type help\r\n> ")
        while not self.stopping.is_set():
            data = await port.read()
            if not data:
                return
            buf += data
            while True:
                cut = min((i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0), default=-1)
                if cut < 0:
                    break
                line, buf = bytes(buf[:cut]), buf[cut + 1:]
                if not line.strip():
                    port.write(b"> ")  # an empty line asks for the prompt (a terminal just opened)
                    continue
                reply = self._execute(line.decode("utf-8", "replace"))
                text = (reply.text + "\n" if reply.text else "") + ("" if reply.quit else "> ")
                port.write(text.replace("\n", "\r\n").encode("utf-8"))
                if reply.quit:
                    await port.drain()  # the goodbye reaches the engineer before the line closes
                    self.stopping.set()
                    return

    def shutdown(self) -> None:
        self._meter_tick()
        self.security.counters.flush()
        self.meter.shutdown()
        self.devices.close()
        self.storage.close()


def describe(value: axdr.Data) -> str:
    """A COSEM value as a person reads it."""
    if isinstance(value, axdr.OctetString):
        raw = value.value
        if len(raw) == 12:
            try:
                return axdr.CosemDateTime.decode(raw).to_datetime().isoformat()
            except Exception:
                pass
        if raw and all(32 <= b < 127 for b in raw):
            return raw.decode("ascii")
        return raw.hex()
    if isinstance(value, (axdr.Structure, axdr.Array)):
        return "[" + ", ".join(describe(v) for v in value.value) + "]"
    py = value.to_python()
    return str(py)


async def _run(args, cfg: config_mod.Config) -> int:
    program = MeterProgram(args, cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, program.stopping.set)
    transports = await start_transports(args, program.server, cfg)
    host, port = tcp.parse_endpoint(args.tcp or "127.0.0.1:4059")
    listener = await tcp.serve(host, port, lambda s: wrapper_session(s, program.server),
                               inactivity_timeout=cfg.meter.dlms.inactivity_timeout_s)
    bound = listener.sockets[0].getsockname()
    ident = cfg.meter.identity
    print(f"bijli meter {ident.serial} ({ident.ldn}), clock {'sim' if program.simulated else 'real'} at "
          f"{program.meter.now.isoformat(timespec='seconds')}, state in {Path(args.state).resolve()}", flush=True)
    print(f"DLMS wrapper listening on {bound[0]}:{bound[1]} (client SAP 16 public, 32 reader, 48 utility)", flush=True)
    tasks = [asyncio.create_task(program.metering_loop()),
             asyncio.create_task(program.pin_loop(program.devices.attach(loop)))]
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
        launcher.restart(args.state, args.config, sys.argv[1:])  # does not return
    return 0


def _main(args) -> int:
    logging.basicConfig(level=args.log.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        launcher.prepare(args.state, args.config, sys.argv[1:])  # may re-execute into an installed image
        cfg = config_mod.load(args.config)
        return asyncio.run(_run(args, cfg))
    except (FirmwareError, HalError, ValueError, OSError) as exc:
        print(f"bijli meter: {exc}", file=sys.stderr)
        return 2
