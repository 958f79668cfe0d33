"""A real ``bijli meter`` (or ``bijli fleet``) process for a test, and its handles.

The process is started exactly as a user would start it, with every port on
127.0.0.1 picked by the kernel, and found through the lines it prints at start
and the manifest it writes. Nothing here reaches into the meter's memory: a
test talks to it over DLMS, its service console (a pty) and its state files,
as a head-end, a rig engineer or a vending system would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

DEFAULT_START = "2024-06-14T17:00:00"  # a Friday evening in IST: friendly hours, supply on
STARTUP_TIMEOUT = 60.0
CONSOLE_TIMEOUT = 120.0  # seconds for one console reply


class MeterStartError(RuntimeError):
    """The meter or fleet process did not come up; the message carries its output."""


@dataclass(frozen=True)
class Endpoints:
    """Where a running meter listens. Paths are ptys; targets are ``bijli`` ``--target`` values."""

    wrapper: str                 # tcp://127.0.0.1:PORT, the IEC 62056-47 wrapper
    hdlc: str | None = None      # tcp://127.0.0.1:PORT, HDLC over TCP
    serial: str | None = None    # pty path: HDLC at 9600 8N1
    optical: str | None = None   # pty path: IEC 62056-21 mode E opening at 300 7E1, then HDLC
    console: str | None = None   # pty path: the service console

    @property
    def wrapper_port(self) -> int:
        return int(self.wrapper.rsplit(":", 1)[1])


class _Child(subprocess.Popen):
    """The meter's process, its stdout and stderr copied into ``<name>.out`` / ``.err`` by
    two threads of ours. Not the files themselves as its stdio: a test may make the
    meter's own file writes fail (RLIMIT_FSIZE for a full disk) and must still see what
    it says."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None) -> None:
        super().__init__(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, env=env)
        files = (open(log, "wb"), open(log.with_suffix(".err"), "wb"))  # emptied before it is read
        self.drains = [threading.Thread(target=_drain, args=(pipe, out), daemon=True)
                       for pipe, out in zip((self.stdout, self.stderr), files)]
        for t in self.drains:
            t.start()

    def join_output(self, timeout: float = 5.0) -> None:
        """Wait until what the process wrote is in its files (it has exited)."""
        for t in self.drains:
            t.join(timeout)


def _drain(pipe, out) -> None:
    with pipe, out:
        while chunk := pipe.read1(65536):
            out.write(chunk)
            out.flush()


def _stop_group(proc: subprocess.Popen, grace: float) -> int:
    """SIGTERM (the meter saves its state), then SIGKILL of the whole process group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind in its session
    except (ProcessLookupError, PermissionError):
        pass
    status = proc.wait()
    if isinstance(proc, _Child):
        proc.join_output()
    return status


def _wait_for_lines(proc: subprocess.Popen, log: Path, done, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
        if done(lines):
            return lines
        if proc.poll() is not None or time.monotonic() > deadline:
            err = log.with_suffix(".err")
            why = "exited" if proc.poll() is not None else "did not start in time"
            raise MeterStartError(f"{why}: {lines[-20:]}\n{err.read_text() if err.exists() else ''}")
        time.sleep(0.05)


@dataclass
class RunningMeter:
    """One ``bijli meter`` process. Start with :meth:`start`, stop with :meth:`stop`
    (or use it as a context manager)."""

    proc: subprocess.Popen
    state: Path
    endpoints: Endpoints
    manifest: dict
    simulated: bool
    banner: tuple[str, ...] = ()  # the lines it printed at start: every listener and port it opened
    _console: object = field(default=None, repr=False)
    chaos_banner: str | None = None  # a hostile meter's first line: its seed and how to replay it

    @classmethod
    def start(cls, state: "str | Path", *, config: "str | Path | None" = None, clock: str = "sim",
              start: str | None = DEFAULT_START, rate: float = 0.0, hdlc: bool = True, serial: bool = True,
              optical: bool = True, console: "bool | str | Path" = True, extra: tuple[str, ...] = (),
              python: str = sys.executable, env: dict | None = None,
              timeout: float = STARTUP_TIMEOUT, chaos: "int | str | None" = None,
              chaos_kinds: "str | tuple[str, ...] | list[str] | None" = None,
              chaos_rate: float | None = None) -> "RunningMeter":
        """Start a meter on ``state`` (created if new). ``clock="sim"`` with ``rate=0``
        (the default) is a clock that stands still until :meth:`step` or :meth:`set_time`;
        ``start`` sets it for a new state, and a state that already holds a meter resumes
        its own clock (as ``bijli meter`` does; pass ``extra=("--reset-clock",)`` to move it).
        ``chaos=SEED`` starts a hostile meter (``bijli meter --chaos``) showing
        ``chaos_kinds`` (names of :mod:`bijli.tools.chaos.kinds`, default all) on a share
        ``chaos_rate`` of its TCP answers; :attr:`chaos_banner` is the line it printed
        (seed and replay options).

``console`` is a pty of its own, or a path: the pty is linked there, as on a rig
        (``--console pty:LINK``). Ports opened by the config (``[hal]``) are found too."""
        state = Path(state)
        if start and (state / "meter.db").exists() and "--reset-clock" not in extra:
            start = None  # a meter that has lived resumes its own clock, as `bijli meter` does
        state.mkdir(parents=True, exist_ok=True)
        manifest_path = state / "manifest.json"
        manifest_path.unlink(missing_ok=True)
        args = [python, "-m", "bijli.tools.cli", "meter", "--state", str(state), "--tcp", "127.0.0.1:0",
                "--manifest", str(manifest_path), "--clock", clock,
                "--console", (f"pty:{console}" if not isinstance(console, bool) else "pty") if console else "none"]
        if clock == "sim":
            args += ["--rate", str(rate)] + (["--start", start] if start else [])
        if hdlc:
            args += ["--hdlc-tcp", "127.0.0.1:0"]
        if serial:
            args += ["--serial", "pty"]
        if optical:
            args += ["--optical", "pty"]
        if config is not None:
            args += ["--config", str(config)]
        if chaos is not None:
            args += ["--chaos", str(chaos)]
            if chaos_kinds is not None:
                args += ["--chaos-kinds", chaos_kinds if isinstance(chaos_kinds, str) else ",".join(chaos_kinds)]
            if chaos_rate is not None:
                args += ["--chaos-rate", str(chaos_rate)]
        args += list(extra)
        log = state / "meter.out"
        proc = _Child(args, log, env)
        try:
            ready = "service console on" if console else "DLMS wrapper listening on"
            lines = _wait_for_lines(proc, log, lambda ls: any(ready in line for line in ls)
                                    and manifest_path.exists(), timeout)
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except BaseException:
            _stop_group(proc, 5)
            raise

        def find(pattern: str) -> str | None:
            for line in lines:
                m = re.search(pattern, line)
                if m:
                    return m.group(1)
            return None

        hdlc_port = find(r"DLMS HDLC listening on [\d.]+:(\d+)")
        endpoints = Endpoints(
            wrapper=manifest["target"],
            hdlc=f"tcp://127.0.0.1:{hdlc_port}" if hdlc_port else None,
            serial=find(r"DLMS serial on (\S+)"),
            optical=find(r"DLMS optical on (\S+)"),
            console=find(r"service console on (\S+)") if console else None,
        )
        meter = cls(proc, state, endpoints, manifest, clock == "sim", tuple(lines))
        meter.chaos_banner = next((line for line in lines if line.startswith("HOSTILE METER")), None)
        return meter

    # --- what a vending system and a head-end need ------------------------------------
    @property
    def keys(self) -> dict:
        """The DLMS secrets: reader password, encryption and authentication keys (hex)."""
        return self.manifest["dlms"]

    @property
    def vend_args(self) -> list[str]:
        """The flags that make ``bijli token vend`` vend for this meter."""
        return list(self.manifest["vend_args"])

    def vend(self, *args: str) -> str:
        """A token for this meter, e.g. ``vend("credit", "--amount", "100")``: its 20 digits."""
        # the vend journal (no TID twice for one meter) lives with this meter, not in the user's home
        env = dict(os.environ, BIJLI_VEND_JOURNAL=str(self.state / "vend-journal.json"))
        proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "token", "vend", *self.vend_args, *args],
                              capture_output=True, text=True, timeout=60, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"bijli token vend failed: {proc.stderr.strip()}")
        return proc.stdout.split()[0]

    def client(self, sap: int = 16, *, hdlc: bool = False, timeout: float = 10.0):
        """A connected, associated :class:`bijli.dlms.client.Client` in association ``sap``
        (16 public, 32 reader, 48 utility, ciphered). A utility client starts at the
        invocation counter the meter expects next (read from 0.0.43.1.3.255), as a
        head-end resynchronises. ``timeout``: how long it waits for each answer. Close it
        (or use ``with``)."""
        from bijli.dlms.client import Client, ClientSettings
        from bijli.tools.node.client_transports import open_client_transport

        keys = self.keys
        kw = {"password": keys["reader_password"].encode("latin-1"),
              "encryption_key": bytes.fromhex(keys["encryption_key"]),
              "authentication_key": bytes.fromhex(keys["authentication_key"])}
        if sap == 48:
            with self.client(16, hdlc=hdlc, timeout=timeout) as public:
                kw["invocation_counter"] = public.get(1, "0.0.43.1.3.255", 2).to_python()
        target = self.endpoints.hdlc if hdlc else self.endpoints.wrapper
        client = Client(open_client_transport(target, sap, hdlc_over_tcp=hdlc, timeout=timeout),
                        ClientSettings.for_association(sap, **kw))
        try:
            client.associate()
        except BaseException:
            client.close()
            raise
        return client

    # --- the service console and the clock ---------------------------------------------
    def console(self, command: str) -> str:
        """Run one service console command and return its reply (all of it)."""
        if self.endpoints.console is None:
            raise RuntimeError("this meter was started without a console")
        if self._console is None:
            from bijli.tools.commands.console import ConsoleLine
            # a step of days on a busy machine takes longer than an interactive reply
            self._console = ConsoleLine(self.endpoints.console, timeout=CONSOLE_TIMEOUT)
        return self._console.ask(command)

    def status(self) -> dict:
        return json.loads(self.console("status --json"))

    def now(self) -> datetime:
        return datetime.fromisoformat(self.status()["time"])

    def step(self, duration: str) -> str:
        """Advance the simulated clock (``"90s"``, ``"15m"``, ``"6h"``, ``"3d"``) through
        metering, tariff, friendly hours, profiles and billing."""
        return self.console(f"step {duration}")

    def set_time(self, when: datetime) -> str:
        return self.console(f"time set {when.isoformat(timespec='seconds')}")

    def load(self, amps: float, pf: str = "1.0") -> str:
        return self.console(f"load {amps} {pf}")

    # --- the end ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> int:
        """Stop the meter (its state is saved) and everything it started; the exit status."""
        if self._console is not None:
            try:
                self._console.close()
            except OSError:
                pass
            self._console = None
        return _stop_group(self.proc, grace)

    def stderr(self) -> str:
        """What the meter wrote on stderr so far (all of it once it has stopped)."""
        err = self.state / "meter.err"
        return err.read_text(encoding="utf-8", errors="replace") if err.exists() else ""

    def kill(self) -> int:
        """A power cut: SIGKILL, no chance to save (what was committed survives)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.stop(0)

    def __enter__(self) -> "RunningMeter":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class RunningFleet:
    """One ``bijli fleet`` process and its manifest (a row per meter, as a vending system reads it)."""

    proc: subprocess.Popen
    state: Path
    manifest: dict

    @classmethod
    def start(cls, state: "str | Path", count: int, *, config: "str | Path | None" = None,
              start: str | None = DEFAULT_START, rate: float = 0.0, load_profile: str = "constant",
              extra: tuple[str, ...] = (), python: str = sys.executable,
              timeout: float = STARTUP_TIMEOUT) -> "RunningFleet":
        state = Path(state)
        if start and any((state / "meters").glob("*/meter.db")):
            start = None  # meters that have lived resume their own clocks, as `bijli fleet` does
        state.mkdir(parents=True, exist_ok=True)
        manifest_path = state / "fleet.json"
        manifest_path.unlink(missing_ok=True)
        args = [python, "-m", "bijli.tools.cli", "fleet", "--count", str(count), "--tcp", "127.0.0.1:0",
                "--state", str(state / "meters"), "--clock", "sim", "--rate", str(rate),
                "--load-profile", load_profile, "--manifest", str(manifest_path), "--console", "none"]
        if start:
            args += ["--start", start]
        if config is not None:
            args += ["--config", str(config)]
        args += list(extra)
        log = state / "fleet.out"
        proc = _Child(args, log)
        try:
            _wait_for_lines(proc, log, lambda ls: manifest_path.exists() and any("manifest in" in line for line in ls),
                            timeout)
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except BaseException:
            _stop_group(proc, 5)
            raise
        return cls(proc, state, manifest)

    @property
    def meters(self) -> list[dict]:
        return self.manifest["meters"]

    def stop(self, grace: float = 15.0) -> int:
        return _stop_group(self.proc, grace)

    def __enter__(self) -> "RunningFleet":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
