"""One running meter as a reusable piece: firmware, DLMS server and console host, wired.

A :class:`MeterNode` is built from a configuration, a state directory, a clock and
a sample source, and owns everything one meter is: the firmware
:class:`~firmware.meter.Meter` on its own non-volatile memory, the COSEM object
list, the security suite 0 settings (IEC 62056-5-3 clause 9.2.4), the DLMS
:class:`~dlms.server.Server`, the service :class:`~firmware.console.Console` (the
node is its Host), and the metering tick that hands the firmware a block of
samples sized to the meter time that passed. It opens no socket and reads no
terminal: ``bijli meter`` wraps one node with its stdio console, devices, DLMS
listeners, launcher and systemd; ``bijli fleet`` runs many on one event loop
under one shared clock. :func:`stdio_console` is the console's loop on stdin,
which both programs use.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterable

from bijli.dlms import axdr
from bijli.dlms.cosem.base import Context
from bijli.dlms.cosem.security_setup import SecuritySetup
from bijli.dlms.obis import Obis
from bijli.dlms.server import Notice, Server, ServerEvent
from bijli.firmware.console import Console, Reply
from bijli.firmware.errors import FirmwareError
from bijli.firmware.events import EventCode
from bijli.firmware.meter import Meter
from bijli.firmware.cosem.associations import policies, security_settings
from bijli.firmware.cosem.object_list import build_objects
from bijli.firmware.storage import Storage
from bijli.hal.clock import TimeSource
from bijli.hal.samples import open_source

SECURITY_SETUP = "0.0.43.0.3.255"  # the utility association's security setup

TICK = 0.25  # seconds of real time between metering blocks
MAX_BLOCK_SECONDS = 1.0  # a longer gap is integrated at steady load, not sample by sample

_NOTICE_EVENTS = {
    ServerEvent.AUTHENTICATION_FAILED: EventCode.AUTHENTICATION_FAILURE,
    ServerEvent.LOCKED_OUT: EventCode.LOCKOUT,
    ServerEvent.SECURITY_FAILURE: EventCode.AUTHENTICATION_FAILURE,
}


class ClockView(TimeSource):
    """One meter's view of a shared clock: shared time plus this meter's own setting.

    A head-end that sets one meter's clock over DLMS moves that meter only; a step
    of simulated time moves every view at once, because it steps the shared clock."""

    def __init__(self, shared: TimeSource):
        self.shared = shared
        self.offset = timedelta(0)

    @property
    def simulated(self) -> bool:  # type: ignore[override]
        return self.shared.simulated

    def now(self) -> datetime:
        return self.shared.now() + self.offset

    def monotonic(self) -> float:
        return self.shared.monotonic()

    def set(self, when: datetime) -> None:
        self.offset = when - self.shared.now()

    def step(self, seconds: float) -> datetime:
        self.shared.step(seconds)  # type: ignore[attr-defined]
        return self.now()


def open_samples(cfg, *, seed: int | None = None):
    """The sample source ``[hal] samples`` names, shaped by ``[metrology]``; a synthetic
    source starts at the nominal voltage with no load."""
    m = cfg.meter.metrology
    if cfg.hal.samples != "synthetic":
        return open_source(cfg.hal.samples)
    source = open_source("synthetic", sample_rate=m.sample_rate, frequency=m.nominal_frequency, phases=m.phases,
                         **({"seed": seed} if seed is not None else {}))
    source.set_voltage(m.nominal_voltage)
    return source


class MeterNode:
    """Everything one meter owns but its I/O; also the console's Host."""

    def __init__(self, cfg, state_dir: str | Path | None, clock: TimeSource, source=None, *,
                 extra_objects: Iterable = (), max_block_seconds: float = MAX_BLOCK_SECONDS,
                 storage=None, resume: dict | None = None, lazy_objects: bool = False):
        """``storage``: the meter's memory when it is not a file of its own under ``state_dir``
        (a fleet's :class:`~firmware.shard.MeterMemory`); ``resume``: the RAM of a meter that
        kept power (:meth:`Meter.volatile`, a fleet's dormant meter), instead of a start-up;
        ``lazy_objects``: build the object list and DLMS server on first use, not now."""
        self.cfg = cfg
        self.clock = clock
        self.max_block_seconds = max_block_seconds
        self.storage = storage if storage is not None else Storage.open(state_dir)
        self.source = source if source is not None else open_samples(cfg)
        self._load = (0.0, 1.0, True)  # the load the consumer draws (behind the relay)
        self._relay_closed = True
        self.devices = None
        if resume is None:
            self.meter = Meter(cfg.meter, self.storage, self.clock.now(), on_relay=self._on_relay)
        else:
            self.meter = Meter.resume(cfg.meter, self.storage, resume, on_relay=self._on_relay)
            self._relay_closed = self.meter.relay.output_state
        self.security = security_settings(self.meter)
        self.tcp_port = 4059  # the wrapper port, once a listener is bound (the TCP-UDP setup shows it)
        self._extra_objects = list(extra_objects)
        self._objects = None
        self._server: Server | None = None
        if not lazy_objects:
            self.server  # noqa: B018 - built now: bijli meter serves at once
        self.console = Console(self.meter, self)

    @property
    def objects(self):
        """The COSEM object list (built on first use when the node is ``lazy_objects``: a
        fleet meter advanced at a boundary or given a console line needs the firmware only)."""
        if self._objects is None:
            self._objects = build_objects(self.meter, set_clock=self.set_time,
                                          extra=[SecuritySetup(SECURITY_SETUP, self.security), *self._extra_objects],
                                          tcp_port=lambda: self.tcp_port,
                                          on_policy_change=lambda policy: self.server.replace_policy(policy))
        return self._objects

    @property
    def server(self) -> Server:
        if self._server is None:
            dl = self.cfg.meter.dlms
            self._server = Server(self.objects, policies(self.meter), max_pdu=dl.max_pdu,
                                  lockout_after=dl.lockout_after, lockout_seconds=dl.lockout_minutes * 60,
                                  on_notice=self._on_notice, security=self.security)
        return self._server

    def manifest(self, host: str, port: int | None) -> dict:
        """What a head-end and a vending system need to talk to this meter and vend for it:
        its address, identity, DLMS secrets, STS key parameters and ``vend_args`` (the flags
        that make ``bijli token vend`` vend for it). ``bijli meter --manifest`` writes it;
        ``bijli fleet`` writes one per meter."""
        v = self.cfg.meter.sts.vending
        if v is None:
            raise FirmwareError("this meter's config has no vending key: no manifest can be written")
        sec = self.security
        sts = {"vending_key": v.vk.hex().upper(), "pan": v.pan.digits, "sgc": v.sgc, "ti": v.ti, "krn": v.krn,
               "kt": v.kt, "ea": v.ea, "dkga": v.dkga, "base": v.base, "ken": v.ken,
               "decoder_key": self.cfg.meter.sts.decoder_key.key.hex().upper()}
        vend_args = ["--vk", sts["vending_key"], "--pan", v.pan.digits, "--sgc", v.sgc, "--ti", v.ti,
                     "--krn", str(v.krn), "--kt", str(v.kt), "--ea", v.ea, "--dkga", v.dkga,
                     "--base", str(v.base), "--ken", str(v.ken)]
        dl = self.cfg.meter.dlms
        return {
            "serial": self.cfg.meter.identity.serial,
            "logical_device_name": self.cfg.meter.identity.ldn,
            "host": host,
            "port": port,
            "target": f"tcp://{host}:{port}",
            "system_title": sec.system_title.hex().upper(),
            "pan": v.pan.digits,
            "drn": v.pan.iain,
            "sts": sts,
            "vend_args": vend_args,
            "dlms": {"server_sap": 1, "hdlc_physical_address": dl.hdlc_physical_address,
                     "reader_password": dl.reader_password.decode("latin-1"),
                     "encryption_key": sec.encryption_key.hex().upper(),
                     "authentication_key": sec.authentication_key.hex().upper()},
        }

    def attach_devices(self, devices) -> None:
        """Pins, LCD and keypad (:class:`tools.node.devices.Devices`): the relay drives the
        coil from now on, and the console learns ``k`` and ``lcd``."""
        self.devices = devices
        devices.relay_changed(self.meter.relay.output_state)
        self.console.register("k", lambda words: devices.keys(" ".join(words)), "k KEYS",
                              "type on the keypad: digits, # enter, * backspace, e emergency, s scroll")
        self.console.register("lcd", lambda words: devices.lcd(), "lcd", "what the LCD shows now")

    def _on_notice(self, notice: Notice) -> None:
        """Security events from the DLMS server go to the meter's event log."""
        code = _NOTICE_EVENTS.get(notice.event)
        if code is not None:
            self.meter.log_security(code, f"client SAP {notice.client_sap}: {notice.detail}")

    # --- Host for the console ------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        return self.clock.simulated

    @property
    def load(self) -> tuple[float, float, bool]:
        """(amps, power factor, lagging) the consumer draws when the relay is closed."""
        return self._load

    def set_load(self, current: float, pf: float, lagging: bool, voltage: float | None) -> None:
        self.tick()  # the old load's energy up to now
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
        self.tick()
        self.clock.step(seconds)  # type: ignore[attr-defined]
        self.meter.advance_to(self.clock.now())

    def set_time(self, when: datetime) -> None:
        self.tick()
        self.clock.set(when)
        self.meter.set_time(self.clock.now())

    def get(self, obis: str, attribute: int) -> str:
        obj = self.server.objects.get(Obis.parse(obis))
        if obj is None:
            raise FirmwareError(f"no object {obis}")
        return describe(obj.get(attribute, None, Context(0)))

    # --- time passing --------------------------------------------------------------------
    def tick(self) -> None:
        """Meter the time since the last tick: one block of samples, at most
        ``max_block_seconds`` long, the rest of the gap at the same steady load."""
        now = self.clock.now()
        seconds = (now - self.meter.now).total_seconds()
        if seconds <= 0:
            return
        rate = self.cfg.meter.metrology.sample_rate
        n = int(min(seconds, self.max_block_seconds) * rate)
        self.meter.on_samples(self.source.read_block(n) if n else (), now)

    def execute(self, line: str) -> Reply:
        """One console line, after metering up to now."""
        self.tick()
        return self.console.execute(line)

    def shutdown(self) -> None:
        self.tick()
        self.security.counters.flush()
        self.meter.shutdown()
        if self.devices is not None:
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


async def stdio_console(execute: Callable[[str], Reply], stopping: asyncio.Event, prompt: str = "bijli> ") -> None:
    """A console on this process's stdin/stdout: each line to ``execute``, its reply
    printed; a reply that quits sets ``stopping``. At end of input it stops listening
    (the program keeps running: a pipe closed by a test or a detached terminal)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    interactive = sys.stdin.isatty()
    while not stopping.is_set():
        if interactive:
            print(prompt, end="", flush=True)
        line = await reader.readline()
        if not line:
            return
        reply = execute(line.decode("utf-8", "replace"))
        if reply.text:
            print(reply.text, flush=True)
        if reply.quit:
            stopping.set()
