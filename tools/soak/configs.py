"""Malformed configuration files: each must be refused with an error naming its key.

The configuration is one TOML file (``bijli meter --config``; README "Configuration").
Each case takes one documented key (or table) and gives it a value no reading of the
documentation allows: a value of another type, a table or array where a scalar goes, NaN
and infinities, integers beyond any range, "NaN" in a money string, a date where a
number goes; or breaks the file itself (not TOML, cut short, arrays nested thousands
deep, a scalar where a table goes, an unknown key). The verdicts:

- *wrong*: the value was accepted, or refused without naming the key;
- *traceback*: anything but the typed :class:`~bijli.firmware.errors.ConfigError`;
- *hang*: no verdict within ``TIMEOUT`` seconds.

The cases are loaded by :func:`bijli.tools.node.config.load` (what ``bijli meter``
calls) in a worker process, so a hang is a kill and a new worker, not a stuck campaign;
every ``CLI_EVERY``-th case also goes through a real ``bijli meter --config``, which must
exit with status 2 and one line of error, no traceback.
"""

from __future__ import annotations

import json
import random
import select
import subprocess
import sys
import time
from pathlib import Path

from bijli.tools.soak.report import SoakRow

TIMEOUT = 10.0
CLI_EVERY = 50

# (dotted key, kind) for every documented key; kinds choose the bad values below
KEYS = (
    ("meter.serial", "str"), ("meter.manufacturer", "str"), ("meter.time_zone_minutes", "int"),
    ("dlms.max_pdu", "int"), ("dlms.reader_password", "str"), ("dlms.encryption_key", "hex"),
    ("dlms.authentication_key", "hex"), ("dlms.master_key", "hex"), ("dlms.hdlc_physical_address", "int"),
    ("dlms.lockout_after", "int"), ("dlms.lockout_minutes", "float"), ("dlms.inactivity_timeout_s", "float"),
    ("dlms.association_timeout_s", "float"), ("dlms.max_connections", "int"),
    ("storage.save_interval_s", "float"),
    ("metrology.sample_rate", "int"), ("metrology.nominal_frequency", "float"), ("metrology.phases", "int"),
    ("metrology.nominal_voltage", "float"), ("metrology.basic_current", "float"), ("metrology.max_current", "float"),
    ("metrology.meter_constant", "float"),
    ("tariff.kind", "choice"), ("tariff.billing_day", "int"), ("tariff.fixed_charge_per_day", "money"),
    ("tariff.duty_percent", "money"),
    ("prepaid.unit", "choice"), ("prepaid.low_credit_1", "money"), ("prepaid.low_credit_2", "money"),
    ("prepaid.emergency_credit", "money"), ("prepaid.emergency_threshold", "money"), ("prepaid.emergency_auto", "bool"),
    ("prepaid.max_balance", "money"), ("prepaid.max_debt", "money"), ("prepaid.friendly_start", "clock"),
    ("prepaid.friendly_end", "clock"), ("prepaid.friendly_days", "days"),
    ("sts.vending_key", "keyhex"), ("sts.pan", "str"), ("sts.sgc", "digits"), ("sts.ti", "digits"), ("sts.krn", "int"),
    ("sts.kt", "int"), ("sts.ea", "choice"), ("sts.dkga", "choice"), ("sts.base", "int"), ("sts.tid_window", "int"),
    ("sts.lockout_after", "int"), ("sts.lockout_minutes", "float"), ("sts.key_change_window_minutes", "float"),
    ("sts.currency_crc", "choice"),
    ("relay.control_mode", "int"), ("relay.load_limit_w", "float"), ("relay.min_over_threshold_s", "float"),
    ("relay.min_under_threshold_s", "float"), ("relay.disconnect_on_tamper", "bool"),
    ("relay.reconnect_in_friendly_period", "bool"),
    ("profiles.block_load_period", "int"), ("profiles.block_load_days", "int"), ("profiles.daily_load_days", "int"),
    ("profiles.billing_months", "int"),
    ("hal.clock", "choice"), ("hal.samples", "choice"), ("hal.pin_factory", "choice"), ("hal.relay", "choice"),
    ("hal.relay_feedback", "choice"), ("hal.pulse_led", "choice"), ("hal.button", "choice"), ("hal.cover", "choice"),
    ("hal.magnet", "choice"), ("hal.display", "choice"), ("hal.keypad", "choice"),
    ("upgrade.activation", "choice"), ("upgrade.block_size", "int"), ("upgrade.start_attempts", "int"),
    ("upgrade.healthy_after_s", "float"),
    ("push.client_sap", "int"), ("push.ciphered", "bool"), ("push.on_events", "bool"),
    ("push.randomisation_start_interval_s", "float"), ("push.retries", "int"), ("push.repetition_delay_s", "float"),
)

_ANY = ("{}", "[]", "[[1], [2]]", "{ a = 1 }", "1979-05-27T07:32:00", "[{}]")
BAD = {
    "int": _ANY + ('"12"', "true", "1.5", "nan", "inf", "-inf", "99999999999999999999999", "-99999999999999999999999"),
    "float": _ANY + ('"1.0"', "true", "nan", "+nan", "-nan", "inf", "-inf", "1e400"),
    "str": _ANY + ("5", "true", "1.5", "nan"),
    "hex": _ANY + ("5", "true", '"zz"', '"0x0102"', '"ABC"', '""', '"' + "0" * 4000 + '"'),
    "keyhex": _ANY + ("5", "true", '"zz"', '"0x0102"', '"ABC"', '""'),  # any length of key material is a key
    "digits": _ANY + ("true", "1.5", "nan", '"12a"', '"-1"', '""', "-5"),  # a number or a string of digits
    "bool": _ANY + ('"yes"', "1", "0", "nan"),
    "choice": _ANY + ("5", "true", "nan", '"no-such-choice"', '""', '"' + "x" * 5000 + '"'),
    "money": _ANY + ('"abc"', '"NaN"', '"sNaN"', '"Infinity"', '"-Infinity"', "true", '"1e999999"', '""'),
    "clock": _ANY + ('"25:00"', '"12:61"', '"ab"', "5", '"-1:00"', '""'),
    "days": ('["xyz"]', '"sat"', "5", "[{}]", "[[\"sat\"]]", "{}", "[1, 2]"),
}
TABLES = sorted({key.split(".")[0] for key, _ in KEYS})


def case(rng: random.Random) -> tuple[str, str]:
    """One malformed configuration: (TOML text, the key its error must name, or "" when
    any clean error will do: a file that is not TOML names no key)."""
    pick = rng.random()
    if pick < 0.80:
        key, kind = rng.choice(KEYS)
        table, name = key.split(".")
        return f"[{table}]\n{name} = {rng.choice(BAD[kind])}\n", key
    if pick < 0.85:
        table = rng.choice(TABLES)
        value = rng.choice(("5", "true", '"x"', "[1]", "nan"))
        return f"{table} = {value}\n", table
    if pick < 0.90:
        table = rng.choice(TABLES)
        name = "".join(rng.choice("abcxyz_") for _ in range(8))
        return f"[{table}]\n{name} = 1\n", f"{table}.{name}"
    if pick < 0.95:
        depth = rng.choice((50, 500, 5000, 50000))
        key, _ = rng.choice(KEYS)
        table, name = key.split(".")
        nest = rng.choice(("[", "{ a = "))
        close = "]" if nest == "[" else " }"
        return f"[{table}]\n{name} = {nest * depth}1{close * depth}\n", ""
    text = "[dlms]\nmax_pdu = 1024\n[sts]\nbase = 2014\n"
    cut = rng.randrange(len(text))
    broken = text[:cut] + rng.choice(("=", "[", "\"", "\x00", "]]", "\n=\n", "'''")) + text[cut:]
    return broken, ""


def worker() -> None:
    """The worker: a path per line on stdin, a JSON verdict per line on stdout."""
    from bijli.firmware.errors import ConfigError
    from bijli.tools.node.config import load

    for line in sys.stdin:
        path = line.strip()
        try:
            load(path)
            verdict = {"accepted": True}
        except ConfigError as exc:
            verdict = {"key": exc.key, "message": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - the finding
            verdict = {"traceback": f"{type(exc).__name__}: {exc}"[:300]}
        sys.stdout.write(json.dumps(verdict) + "\n")
        sys.stdout.flush()


class _Worker:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "from bijli.tools.soak.configs import worker; worker()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, path: Path) -> dict | None:
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"traceback": f"the worker died (status {self.proc.wait()})"}

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _named(verdict: dict, key: str) -> bool:
    return not key or verdict.get("key") == key or key in verdict.get("message", "")


def _cli(path: Path, state: Path) -> str | None:
    """None when ``bijli meter --config PATH`` refuses the file cleanly; else what went wrong."""
    try:
        r = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "meter", "--config", str(path), "--state",
                            str(state), "--tcp", "127.0.0.1:0", "--console", "none"], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "hangs"
    if "Traceback" in r.stderr:
        return "tracebacks"
    if r.returncode != 2 or len(r.stderr.strip().splitlines()) != 1:
        return "wrong"
    return None


def run(row: SoakRow, seed: int, work: Path, deadline: float) -> SoakRow:
    rng = random.Random(f"configs-{seed}")
    folder = work / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    worker_proc = _Worker()
    try:
        while row.inputs < row.target and time.monotonic() < deadline:
            index = row.inputs
            text, key = case(rng)
            path = folder / f"case-{index % 100}.toml"
            path.write_text(text, encoding="utf-8")
            row.inputs += 1
            where = f"seed {seed} config {index} ({text[:80]!r})"
            verdict = worker_proc.ask(path)
            if verdict is None:
                row.fail("hangs", where)
                worker_proc.close()
                worker_proc = _Worker()
                continue
            if "traceback" in verdict:
                row.fail("tracebacks", f"{where}: {verdict['traceback']}")
            elif verdict.get("accepted"):
                row.fail("wrong", f"{where}: accepted")
            elif not _named(verdict, key):
                row.fail("wrong", f"{where}: {verdict['message'][:120]} (does not name {key})")
            if index % CLI_EVERY == 0:
                kept = folder / f"cli-{index}.toml"
                kept.write_text(text, encoding="utf-8")
                why = _cli(kept, folder / "state")
                if why is not None:
                    row.fail(why, f"{where}: bijli meter --config")
                else:
                    kept.unlink()
    finally:
        worker_proc.close()
    return row
