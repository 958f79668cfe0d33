"""The meter under attack: a real ``bijli meter`` process and the checks every part makes.

A :class:`SoakMeter` is a :class:`bijli.tools.testing.RunningMeter` (the process as a user
starts it, ports picked by the kernel, found through its manifest) plus what a campaign
watches on it: its stderr for tracebacks (only the part written since the last look),
whether it is still running (a crash), and whether a head-end still gets an answer (a
public association reading the clock: no answer in time is a hang). The config is
written to the state directory, so a failure's meter can be started again by hand.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bijli.tools.soak.report import SoakRow
from bijli.tools.testing.meter import RunningMeter

PROBE_TIMEOUT = 10.0  # a head-end's patience for one read


class SoakMeter:
    """One meter process for one campaign part; :meth:`check` records what went wrong."""

    def __init__(self, state: Path, config: str = "", **options):
        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.config_text = config
        self.options = options
        self.config_path = self.state / "soak.toml"
        self.config_path.write_text(config, encoding="utf-8")
        self._err_seen = 0
        self.meter = self._start()

    def _start(self) -> RunningMeter:
        meter = RunningMeter.start(self.state, config=self.config_path, **self.options)
        self._err_seen = self.err_path.stat().st_size if self.err_path.exists() else 0
        return meter

    @property
    def err_path(self) -> Path:
        return self.state / "meter.err"

    def restart(self) -> None:
        """After a crash (or a kill): the same state, the same options."""
        self.meter.stop(2.0)
        self.meter = self._start()

    def new_stderr(self) -> str:
        """What the meter wrote on stderr since the last call."""
        try:
            with open(self.err_path, "rb") as f:
                f.seek(self._err_seen)
                data = f.read()
        except FileNotFoundError:
            return ""
        self._err_seen += len(data)
        return data.decode("utf-8", "replace")

    def probe(self, timeout: float = PROBE_TIMEOUT) -> str | None:
        """None when a public client reads the clock; else why not."""
        from bijli.dlms.client import Client, ClientSettings
        from bijli.tools.node.client_transports import open_client_transport

        try:
            client = Client(open_client_transport(self.meter.endpoints.wrapper, 16, timeout=timeout),
                            ClientSettings.for_association(16))
        except Exception as exc:  # noqa: BLE001 - every way of not answering is the finding
            return f"connect: {exc}"
        try:
            client.associate()
            client.get(8, "0.0.1.0.0.255", 2)
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc}"
        finally:
            client.close()
        return None

    def check(self, row: SoakRow, where: str, *, probe: bool = True) -> bool:
        """Count a crash, a traceback or a hang seen now (``where`` says after what input);
        restart a crashed meter. True when the meter was sound."""
        sound = True
        err = self.new_stderr()
        if "Traceback" in err:
            row.fail("tracebacks", f"{where}: {_last_line(err)}")
            sound = False
        if not self.meter.running:
            row.fail("crashes", f"{where}: exit status {self.meter.proc.poll()}: {_last_line(err)}")
            self.restart()
            return False
        if probe:
            why = self.probe()
            if why is not None:
                time.sleep(0.5)
                why = self.probe()
            if why is not None:
                row.fail("hangs", f"{where}: no answer to a clock read ({why})")
                self.restart()
                return False
        return sound

    def ask(self, line: str) -> str:
        return ask(self.meter, line)

    def status(self) -> dict:
        return status(self.meter)

    def stop(self) -> None:
        self.meter.stop(5.0)


def ask(meter: RunningMeter, line: str) -> str:
    """One console command's reply. A prompt that arrived after the console client had
    already found one (the meter answers the client's opening empty line with a prompt of
    its own, which may come after the banner's) is not part of the reply."""
    reply = meter.console(line)
    while reply.startswith("> "):
        reply = reply[2:]
    return reply


def status(meter: RunningMeter) -> dict:
    return json.loads(ask(meter, "status --json"))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
