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

A console ``step`` is cooperative (:func:`run_cooperatively`): simulated time
advances in slices of at most :data:`STEP_SLICE_S` of meter time, and between
slices, every :data:`STEP_YIELD_S` of real time, the event loop runs, so DLMS
keeps answering during ``step 100000d`` and a SIGTERM or Ctrl-C ends the step
within a slice, the state saved as at any stop. A long step reports its progress
on stderr (stdout carries the replies). A synchronous caller (:meth:`MeterNode.step`,
the Host protocol) still gets the whole step at once.

The clock a node starts with (:func:`start_clock`): a state directory that already
holds a meter resumes the simulated clock at the meter's saved time; ``--start``
on such a directory would move the meter's clock silently, so it is refused unless
``--reset-clock`` asks for it (the meter then logs the clock adjustment).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import select
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Awaitable, Callable, Iterable, Iterator

from bijli.dlms import axdr
from bijli.dlms.cosem.base import Context
from bijli.dlms.cosem.security_setup import SecuritySetup
from bijli.dlms.errors import CounterStoreError, DlmsError
from bijli.dlms.obis import Obis
from bijli.dlms.security import SecuritySettings
from bijli.dlms.server import Notice, Server, ServerEvent
from bijli.firmware.console import Console, LineAssembler, Reply, parse_duration
from bijli.firmware.errors import CommandError, FirmwareError, StorageError
from bijli.firmware.events import EventCode
from bijli.firmware.meter import Meter, saved_time
from bijli.firmware.metrology import SteadyLoad
from bijli.firmware.cosem.associations import StoredCounters, lockout, policies, security_settings
from bijli.firmware.cosem.catalogue import UTILITY_SECURITY_SETUP
from bijli.firmware.cosem.object_list import ObjectList
from bijli.firmware.cosem.results import host_refusal
from bijli.firmware.storage import DB_NAME, Storage
from bijli.firmware.sts.crc import DEFAULT_CURRENCY_CRC
from bijli.hal.clock import RealClock, SimClock, TimeSource, meter_local
from bijli.hal.samples import open_source
from bijli.tools.errors import UsageError


TICK = 0.25  # seconds of real time between metering blocks
MAX_BLOCK_SECONDS = 1.0  # a longer gap is integrated at steady load, not sample by sample

STEP_SLICE_S = 900.0  # meter time per slice of a console step: one block, at most one capture
STEP_YIELD_S = 0.01  # real time a step runs before the event loop gets its turn (DLMS, signals)
#: steady loads' measurements (SteadyLoad) kept per process (a load change to one of them measures nothing:
#: MeterNode._apply_load); about 3 KB each (the pending part cycle), so at most about 50 MB; emptied when full
STEADY_CACHE = 1 << 14
_STEADY: dict = {}
STEP_PROGRESS_S = 1.0  # a step running longer than this reports its progress on stderr, this often

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


def holds_meter(state_dir: str | Path) -> bool:
    """Whether ``state_dir`` already holds a meter's memory (not merely exists: tools put
    their manifest and logs beside it)."""
    return (Path(state_dir) / DB_NAME).is_file()


def start_clock(kind: str, start: str | None, rate: float, zone_minutes: int, *, existing: bool,
                reset_clock: bool, where: str) -> tuple[TimeSource, bool]:
    """The clock ``bijli meter`` and ``bijli fleet`` start with, and whether each meter
    resumes its simulated clock at its saved time (a state that ``existing`` holds
    meters, started without ``--start``). ``--start`` on existing meters is refused
    without ``reset_clock``: it would move their clocks without a word."""
    if reset_clock and not start:
        raise UsageError("--reset-clock sets the clock to --start: give --start ISO-8601 too")
    if kind != "sim":
        return RealClock(zone_minutes), False
    if start and existing and not reset_clock:
        raise UsageError(f"{where} already holds a meter, whose clock resumes where it stopped; "
                         f"--start {start} would move that clock. Add --reset-clock to set it to --start "
                         f"(logged as a clock adjustment), or give a new --state directory")
    try:
        when = meter_local(datetime.fromisoformat(start), zone_minutes) if start else None
    except ValueError:
        raise UsageError(f"--start: not an ISO-8601 time: {start!r}") from None
    clock = SimClock(when or RealClock(zone_minutes).now().replace(microsecond=0), rate=rate)
    return clock, existing and not start


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
                 resume_clock: bool = False, storage=None, resume: dict | None = None,
                 lazy_objects: bool = False):
        """``resume_clock``: a simulated clock carries on at the time the meter's memory last
        committed (a restart on a lived-in state); ``storage``: the meter's memory when it
        is not a file of its own under ``state_dir`` (a fleet's
        :class:`~firmware.shard.MeterMemory`); ``resume``: the RAM of a meter that kept
        power (:meth:`Meter.volatile`, a fleet's dormant meter), instead of a start-up;
        ``lazy_objects``: build the object list and DLMS server on first use, not now."""
        self.cfg = cfg
        self.clock = clock
        self.max_block_seconds = max_block_seconds
        self.storage = storage if storage is not None else Storage.open(state_dir)
        saved = saved_time(self.storage) if resume_clock and clock.simulated else None
        if saved is not None:  # a simulated meter carries on at the time it stopped
            self.clock.set(saved)
        self._pending_step: float | None = None
        self.source = source if source is not None else open_samples(cfg)
        self._load = (0.0, 1.0, True)  # the load the consumer draws (behind the relay)
        self._earth = 0.0  # A of that load returning by earth, not the neutral (behind the relay too)
        # the steady source's settings (SyntheticSource.steady_key) the meter's measurements are
        # of (see tick): RAM, kept by a fleet's dormant record
        self._held: tuple | None = None
        self._relay_closed = True
        self.devices = None
        if resume is None:
            self.meter = Meter(cfg.meter, self.storage, self.clock.now(), on_relay=self._on_relay)
        else:
            self.meter = Meter.resume(cfg.meter, self.storage, resume, on_relay=self._on_relay)
            self._relay_closed = self.meter.relay.output_state
        self.security = security_settings(self.meter)
        if resume is None and not lazy_objects:
            # a start writes anyway: reserve the counters' next step now, so the clients the
            # meter knows keep their ciphered associations if storage fails later
            self.security.counters.reserve_ahead()
        self.tcp_port = 4059  # the wrapper port, once a listener is bound (the TCP-UDP setup shows it)
        self._extra_objects = list(extra_objects)
        self._objects = None
        self._server: Server | None = None
        if not lazy_objects:
            # built now, whole: bijli meter serves at once, and its first association or
            # console line should not pay for the objects (only a fleet builds them by part)
            self._object_list().all()
            self.server  # noqa: B018
        self.console = Console(self.meter, self)
        _, usage, text = self.console.commands["step"]
        self.console.register("step", self._step_command, usage, text)

    @property
    def objects(self):
        """The COSEM object list (built on first use when the node is ``lazy_objects``: a
        fleet meter advanced at a boundary or given a console line needs the firmware only)."""
        return self._object_list().all()

    def _object_list(self) -> ObjectList:
        """The objects by name, each part built when first looked up: an association that
        reads a few objects (a storm's token delivery) builds only theirs."""
        if self._objects is None:
            self._objects = ObjectList(self.meter, set_clock=self.set_time,
                                       extra=[SecuritySetup(UTILITY_SECURITY_SETUP, self.security), *self._extra_objects],
                                       tcp_port=lambda: self.tcp_port,
                                       on_policy_change=lambda policy: self.server.replace_policy(policy))
        return self._objects

    @property
    def server(self) -> Server:
        if self._server is None:
            dl = self.cfg.meter.dlms
            objects = self._object_list()
            # a whole list is indexed by the server as before; a fleet meter's parts on lookup
            self._server = Server(objects.all() if objects.whole else objects, policies(self.meter),
                                  max_pdu=dl.max_pdu,
                                  on_notice=self._on_notice, security=self.security,
                                  lockout=lockout(self.meter, time.monotonic(), on_error=self._lockout_not_kept),
                                  host_refusal=host_refusal)
        return self._server

    def manifest(self, host: str, port: int | None) -> dict:
        """What a head-end and a vending system need to talk to this meter and vend for it
        (:func:`manifest_row` of its configuration and its security now). ``bijli meter
        --manifest`` writes it; ``bijli fleet`` writes one per meter."""
        return manifest_row(self.cfg.meter, self.security, host, port)

    def attach_devices(self, devices) -> None:
        """Pins, LCD and keypad (:class:`tools.node.devices.Devices`): the relay drives the
        coil from now on, and the console learns ``k`` and ``lcd``."""
        self.devices = devices
        devices.relay_changed(self.meter.relay.output_state)
        self.console.register("k", lambda words: devices.keys(" ".join(words)), "k KEYS",
                              "type on the keypad: digits, # enter, * backspace, e emergency, s scroll")
        self.console.register("lcd", lambda words: devices.lcd(), "lcd", "what the LCD shows now")

    def _on_notice(self, notice: Notice) -> None:
        """Security events from the DLMS server go to the meter's security log (rate-limited
        per source: the client SAP and the peer)."""
        code = _NOTICE_EVENTS.get(notice.event)
        if code is not None:
            source = f"client SAP {notice.client_sap}" + (f" {notice.peer}" if notice.peer else "")
            self.meter.log_security(code, notice.detail, source)

    def _lockout_not_kept(self, exc: Exception) -> None:
        # the table in RAM still holds the change; the next one is kept again
        print(f"bijli: the association lockout could not be saved: {exc}", file=sys.stderr, flush=True)

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
        self.draw(current, pf, lagging, voltage)

    def draw(self, current: float, pf: float, lagging: bool, voltage: float | None) -> None:
        """The consumer draws this load from the meter's own time on, metered up to there
        already: :meth:`set_load` without its tick (a fleet engine replaying a dormant
        meter's past applies each household slot's load at its edge, behind the clock)."""
        if not hasattr(self.source, "set_load"):
            raise FirmwareError(f"the sample source {self.cfg.hal.samples!r} has no settable load")
        if voltage is not None:
            self.source.set_voltage(voltage)
        self._load = (current, abs(pf), lagging if pf >= 0 else not lagging)
        self._apply_load()

    def load_state(self) -> tuple:
        """What :meth:`draw` and :meth:`set_earth_current` change besides the meter's RAM:
        kept by a jump that draws loads on the way (:class:`~firmware.meter.Stops`)."""
        return self._load, self._earth, self._held

    def restore_load_state(self, state: tuple) -> None:
        """Put back :meth:`load_state`: the load and earth current the consumer draws, set on
        the source again without measuring (the meter puts its own measurements back)."""
        self._load, self._earth, self._held = state
        if hasattr(self.source, "set_load"):
            current, pf, lagging = self._load
            self.source.set_load(current if self._relay_closed else 0.0, pf=pf, lagging=lagging)
            if hasattr(self.source, "set_earth_current"):
                self.source.set_earth_current(self._earth if self._relay_closed else 0.0)

    @property
    def earth_current(self) -> float:
        """A of the load that returns by earth rather than the neutral (0: healthy)."""
        return self._earth

    def set_earth_current(self, amps: float) -> None:
        """Host.set_earth_current: emulate earth leakage or a partial neutral bypass in the
        consumer's wiring (behind the relay, as the load is: an open relay carries none)."""
        self.tick()  # the old neutral's measurement up to now
        if not hasattr(self.source, "set_earth_current"):
            raise FirmwareError(f"the sample source {self.cfg.hal.samples!r} measures a real neutral: "
                                "its earth current cannot be set")
        self._earth = float(amps)
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
        if hasattr(self.source, "set_earth_current"):
            self.source.set_earth_current(self._earth if self._relay_closed else 0.0)
        # Measure the new load at once, so status and a following 'step' see it without
        # waiting for a tick: a short block of the new load alone, from the waveform's
        # rising zero (the source restarts there), measured as a meter just started
        # measures it; that is what a simulated-time step holds steady, and the next
        # block measures on from it. It is a pure function of the load and the
        # configuration, so it is measured once per distinct load and shared (a household
        # draws a new load every 15-minute slot: two blocks measured live at each was a
        # fifth of its meter-day). A noisy source measures live, two blocks: the first
        # window still holds the part cycle sampled before the change, the second is the
        # new load alone.
        key = self._steady_key()
        if key is None:
            n = self.cfg.meter.metrology.sample_rate // 10
            self._held = None
            for _ in range(2):
                self.meter.on_samples(self.source.read_block(n), self.meter.now)
            return
        self._take_steady(key)

    def _steady_key(self) -> tuple | None:
        """The source's :meth:`SyntheticSource.steady_key`; None for a noisy source or one of
        another kind (a CSV replay, an ADC): those are measured live."""
        return self.source.steady_key() if hasattr(self.source, "steady_key") else None

    def _take_steady(self, key: tuple) -> None:
        """The meter takes on the measurements of the steady source's settings ``key`` (its
        :meth:`SyntheticSource.steady_key`), measured apart once per process and shared."""
        metrology = self.cfg.meter.metrology
        n = metrology.sample_rate // 10
        cached = (metrology, n, key)
        steady = _STEADY.get(cached)
        if steady is None:
            if len(_STEADY) >= STEADY_CACHE:
                _STEADY.clear()
            steady = _STEADY[cached] = SteadyLoad.measure(metrology, self.source.steady_block(n))
        self.source.restart(n)
        self.meter.on_steady(steady)
        self._held = key

    def step(self, seconds: float) -> None:
        """Host.step: the whole step at once (a synchronous caller)."""
        for _ in self.step_slices(seconds):
            pass

    def step_slices(self, seconds: float) -> Iterator[float]:
        """Advance simulated time by ``seconds`` slice by slice; yields the fraction done
        after each. Stopped between slices, meter and clock agree on a time part way."""
        self.tick()
        done = 0.0
        while done < seconds:
            part = min(STEP_SLICE_S, seconds - done)
            self.clock.step(part)  # type: ignore[attr-defined]
            self.meter.advance_to(self.clock.now())
            done += part
            yield done / seconds

    def _step_command(self, words: list[str]) -> Reply:
        """The console's ``step``: checked here, run by :meth:`execute` or :meth:`execute_async`."""
        if len(words) != 1:
            raise CommandError("step needs one DURATION")
        if not self.simulated:
            raise CommandError("step needs the simulated clock (--clock sim)")
        self._pending_step = parse_duration(words[0])
        return Reply("")

    def set_time(self, when: datetime) -> None:
        self.tick()
        self.clock.set(when)
        self.meter.set_time(self.clock.now())

    def get(self, obis: str, attribute: int) -> str:
        """The console's ``get``: a protocol error (a bad OBIS, an attribute the class does not
        have) is a console error here, so the firmware console never sees a DLMS type."""
        try:
            obj = self.server.objects.get(Obis.parse(obis))
            if obj is None:
                raise CommandError(f"no object {obis}")
            return describe(obj.get(attribute, None, Context(0)))
        except DlmsError as exc:
            raise CommandError(str(exc)) from None

    # --- time passing --------------------------------------------------------------------
    def tick(self) -> None:
        """Meter the time since the last tick: one block of samples, at most
        ``max_block_seconds`` long, the rest of the gap at the same steady load.

        A steady source (noise-free: :meth:`SyntheticSource.steady_key` is not None) gives
        the same block for the same settings, so none is read: the gap is integrated at the
        measurements held, as a simulated step integrates it, and settings the meter has
        not measured yet (its first tick, a harmonic set on the source) are measured as a
        load change measures them (:meth:`_apply_load`: a just-started meter's block of
        them, measured once per process). A fleet meter observed on a real clock measured
        a live block at every observation: a tenth of a shard's CPU in a storm. A noisy
        source is measured live."""
        now = self.clock.now()
        seconds = (now - self.meter.now).total_seconds()
        if seconds <= 0:
            return
        key = self._steady_key()
        if key is not None:
            if key != self._held:
                self._take_steady(key)
            self.meter.on_samples((), now)
            return
        rate = self.cfg.meter.metrology.sample_rate
        n = int(min(seconds, self.max_block_seconds) * rate)
        self.meter.on_samples(self.source.read_block(n) if n else (), now)

    def execute(self, line: str) -> Reply:
        """One console line, after metering up to now; a ``step`` runs whole."""
        self.tick()
        reply = self.console.execute(line)
        seconds, self._pending_step = self._pending_step, None
        if seconds is None:
            return reply
        self.step(seconds)
        return Reply(self.meter.now.isoformat(timespec="seconds"))

    async def execute_async(self, line: str, stopping: asyncio.Event) -> Reply:
        """One console line; a ``step`` yields to the event loop between its slices and
        ends early when ``stopping`` is set."""
        self.tick()
        reply = self.console.execute(line)
        seconds, self._pending_step = self._pending_step, None
        if seconds is None:
            return reply
        label = f"step {line.split()[-1]}"
        if not await run_cooperatively(self.step_slices(seconds), stopping, label, lambda: self.meter.now):
            return Reply(f"{label} stopped at {self.meter.now.isoformat(timespec='seconds')}", ok=False)
        return Reply(self.meter.now.isoformat(timespec="seconds"))

    def stop(self) -> None:
        """Everything a stop must keep, leaving the memory open: metering up to now, the
        invocation counters' exact values, and the last step committed and sealed (on
        disk when this returns: a power cut after it loses nothing); the devices released.
        With storage failing the last save fails too: what the meter did since its last
        commit is lost, as at a power cut, and said so on stderr (the committed state is
        whole)."""
        self.tick()
        counters = self.security.counters
        exact = counters.unflushed()  # committed with the last step: one commit for the whole stop
        try:
            self.meter.shutdown({StoredCounters.KEY: counters.store.record(exact)} if exact else None)
            counters.flushed(exact)
        except (StorageError, CounterStoreError) as exc:  # the reserved counters and the last commit stand
            print(f"bijli meter: could not save at stop, the state is as at its last commit: {exc}",
                  file=sys.stderr, flush=True)
        if self.devices is not None:
            self.devices.close()

    def shutdown(self) -> None:
        """:meth:`stop`, then close the memory (a file of its own: a verified backup of it
        taken, its write-ahead log checkpointed)."""
        self.stop()
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


def report_progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run_cooperatively(slices: Iterator[float], stopping: asyncio.Event, label: str,
                            now: Callable[[], datetime], report: Callable[[str], None] = report_progress) -> bool:
    """Run a step's ``slices`` (each yields the fraction done), letting the event loop run
    every STEP_YIELD_S of real time; True when done, False when ``stopping`` ended it.
    A step that takes longer than STEP_PROGRESS_S reports its progress through ``report``."""
    started = last_yield = time.monotonic()
    last_report = started
    try:
        for fraction in slices:
            t = time.monotonic()
            if t - last_yield >= STEP_YIELD_S:
                await asyncio.sleep(0)
                last_yield = time.monotonic()
            if stopping.is_set():
                report(f"{label}: stopped at {now().isoformat(timespec='seconds')} ({fraction:.1%} done)")
                return False
            if t - last_report >= STEP_PROGRESS_S:
                last_report = t
                report(f"{label}: {fraction:.1%} done, meter time {now().isoformat(timespec='seconds')}")
    finally:
        slices.close()  # type: ignore[attr-defined]
    if time.monotonic() - started >= STEP_PROGRESS_S:
        report(f"{label}: done in {time.monotonic() - started:.1f} s")
    return True


async def stdio_console(execute: Callable[[str], "Reply | Awaitable[Reply]"], stopping: asyncio.Event,
                        prompt: str = "bijli> ") -> None:
    """A console on this process's stdin/stdout: each line to ``execute``, its reply
    printed; a reply that quits sets ``stopping``. At end of input it stops listening
    (the program keeps running: a pipe closed by a test, a detached terminal, or stdin
    at /dev/null as under systemd).

    stdin is read by a daemon thread with plain blocking reads, not by an asyncio pipe
    transport: that transport sets O_NONBLOCK on the file description, which a terminal
    shares between stdin and stdout, so a long reply then came out cut short; and it
    cannot watch /dev/null or a regular file at all. Lines are cut by the bounded
    :class:`~firmware.console.LineAssembler`; every line gets an answer.

    When a person types (stdin and stdout both a terminal) the thread reads with the
    standard library's ``input()`` and readline, so the console has line editing and
    history as ``bijli console`` has; it asks for the next line only once the last one
    is answered, so the prompt always follows the reply."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)  # backpressure on a fast writer
    typed = _isatty(0) and _isatty(1) and _readline_available()
    answered = threading.Event()
    answered.set()
    pump, pump_args = (_pump_typed, (loop, chunks, prompt, answered)) if typed else (_pump_stdin, (loop, chunks))
    threading.Thread(target=pump, args=pump_args, name="bijli-stdin", daemon=True).start()
    assembler = LineAssembler()
    interactive = _isatty(0) and not typed  # readline writes its own prompt
    out = sys.stdout
    try:
        if interactive:
            _write_all(out, prompt)
        while not stopping.is_set():
            data = await chunks.get()
            lines = assembler.feed(data) if data else [assembler.flush()]
            for line in lines:
                if line is None and not data:
                    continue  # end of input with no partial line
                reply = Reply(assembler.refusal(), ok=False) if line is None else await console_answer(execute, line)
                if reply.text:
                    _write_all(out, reply.text + "\n")
                if reply.quit:
                    stopping.set()
                    return
            if not data:
                return
            if interactive:
                _write_all(out, prompt)
            answered.set()
    except (BrokenPipeError, ConnectionResetError):
        return  # the reader went away (`| head`): the meter keeps running without a console


async def console_answer(execute: Callable[[str], "Reply | Awaitable[Reply]"], line: str) -> Reply:
    """The console's reply (awaited when the command runs cooperatively, as a long ``step``
    does); a failure around it (metering up to now before the command) is an answer too,
    so the console keeps serving."""
    try:
        reply = execute(line)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply
    except Exception as exc:  # noqa: BLE001 - the console must never die
        return Reply(f"error: {exc or type(exc).__name__}", ok=False)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _pump_stdin(loop: asyncio.AbstractEventLoop, chunks: "asyncio.Queue[bytes]") -> None:
    """Blocking reads of fd 0 handed to the loop; b"" once at end of input (or an error)."""
    while True:
        try:
            data = os.read(0, 65536)
        except OSError:
            data = b""
        try:
            asyncio.run_coroutine_threadsafe(chunks.put(data), loop).result()
        except (RuntimeError, concurrent.futures.CancelledError):
            return  # the loop is gone: the program is stopping
        if not data:
            return


def _readline_available() -> bool:
    """Importing readline gives ``input()`` editing and history (absent on some builds)."""
    try:
        import readline  # noqa: F401
    except ImportError:  # pragma: no cover - a Python built without it
        return False
    return True


def _pump_typed(loop: asyncio.AbstractEventLoop, chunks: "asyncio.Queue[bytes]", prompt: str,
                answered: threading.Event) -> None:
    """Lines a person types, read with readline once the previous line has its answer;
    b"" at end of input (Ctrl-D) or when the terminal goes away."""
    while True:
        answered.wait()
        answered.clear()
        try:
            data = (input(prompt) + "\n").encode("utf-8", "surrogateescape")
        except UnicodeDecodeError:  # answered here: the loop is waiting for a line, not writing
            _write_all(sys.stdout, "error: the line is not UTF-8 text\n")
            answered.set()
            continue
        except (EOFError, OSError):
            data = b""
        try:
            asyncio.run_coroutine_threadsafe(chunks.put(data), loop).result()
        except (RuntimeError, concurrent.futures.CancelledError):
            return
        if not data:
            return


def _write_all(stream, text: str) -> None:
    """All of ``text`` on ``stream``'s descriptor, even if someone made it non-blocking."""
    stream.flush()  # what print() buffered goes first
    data = text.encode("utf-8", "replace")
    fd = stream.fileno()
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        data = data[n:]


def manifest_row(settings, security: SecuritySettings, host: str, port: int | None) -> dict:
    """A meter's manifest row: its address, identity, DLMS secrets (the utility
    association's keys as ``security`` holds them: changed over DLMS or configured), STS
    key parameters and ``vend_args`` (the flags that make ``bijli token vend`` vend for
    it). ``settings``: the meter's ``identity``, ``sts`` and ``dlms`` settings, a
    :class:`~firmware.meter.MeterConfig` or a fleet member's
    :class:`~tools.node.fleet.MemberSettings`. One implementation for
    :meth:`MeterNode.manifest` (a running meter) and a fleet's manifest
    (:func:`tools.fleet.serve.manifest`: no meter built)."""
    v = settings.sts.vending
    if v is None:
        raise FirmwareError("this meter's config has no vending key: no manifest can be written")
    sts = {"vending_key": v.vk.hex().upper(), "pan": v.pan.digits, "sgc": v.sgc, "ti": v.ti, "krn": v.krn,
           "kt": v.kt, "ea": v.ea, "dkga": v.dkga, "base": v.base, "ken": v.ken,
           "decoder_key": settings.sts.decoder_key.key.hex().upper(),
           # the CRC rule of currency tokens is a meter setting: a vending system must use the meter's
           "currency_crc": settings.sts.currency_crc.value}
    vend_args = ["--vk", sts["vending_key"], "--pan", v.pan.digits, "--sgc", v.sgc, "--ti", v.ti,
                 "--krn", str(v.krn), "--kt", str(v.kt), "--ea", v.ea, "--dkga", v.dkga,
                 "--base", str(v.base), "--ken", str(v.ken)]
    if settings.sts.currency_crc is not DEFAULT_CURRENCY_CRC:  # a vend from the manifest matches the meter
        vend_args += ["--currency-crc", sts["currency_crc"]]
    dl = settings.dlms
    return {
        "serial": settings.identity.serial,
        "logical_device_name": settings.identity.ldn,
        "host": host,
        "port": port,
        "target": f"tcp://{host}:{port}",
        "system_title": security.system_title.hex().upper(),
        "pan": v.pan.digits,
        "drn": v.pan.iain,
        "sts": sts,
        "vend_args": vend_args,
        "dlms": {"server_sap": 1, "hdlc_physical_address": dl.hdlc_physical_address,
                 "reader_password": dl.reader_password.decode("latin-1"),
                 "encryption_key": security.encryption_key.hex().upper(),
                 "authentication_key": security.authentication_key.hex().upper()},
    }
