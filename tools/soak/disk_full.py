"""A full disk under the meter, and then space again (issue 14 item 3).

No mock and no root: the meter process's RLIMIT_FSIZE is lowered from outside
(``prlimit(2)`` on its pid, as ``prlimit --fsize`` does), so every write the kernel would
take beyond that offset fails with EFBIG, which sqlite reports as "database or disk is
full", exactly where a full filesystem fails it. The limit sits just above the meter's
log files (so its stderr still shows a traceback) and below its database's pages.
While the disk is full the campaign enters tokens on the console, the keypad and the
DLMS token gateway, steps the clock under load and reads the energy; then it gives the
space back and expects the meter to recover by itself. A meter that keeps its promises:

- never answers ``accepted`` for a token it did not commit, and changes no credit in
  memory for one it refused (*credit*: the status shows credit the disk does not hold);
- refuses with a clear word and keeps its connections and console (*wrong*, *hang*);
- keeps measuring (*wrong*: energy frozen while the load runs);
- once space is back, accepts the tokens it refused, and after a SIGKILL holds exactly
  the tokens it acknowledged (*credit*).
"""

from __future__ import annotations

import random
import resource
import time
from decimal import Decimal
from pathlib import Path

from bijli.tools.soak.kills import CONFIG, START, Tokens
from bijli.tools.soak.report import SoakRow
from bijli.tools.soak.subject import SoakMeter

RECOVERY_S = 20.0  # how long a meter may take to notice the space is back
HEADROOM = 4096  # octets above the log files' ends that writes may still reach


def _ask(meter: SoakMeter, row: SoakRow, where: str, line: str) -> str | None:
    try:
        return meter.ask(line)
    except Exception as exc:  # noqa: BLE001 - no answer is the finding
        row.fail("hangs", f"{where}: `{line[:30]}` got no answer ({exc})")
        return None


def _gateway(meter: SoakMeter, digits: str) -> tuple[bool, str]:
    """The head-end's delivery; a new association the meter cannot keep counters for (its
    storage fails) is refused rejected-transient, its clear word for "not now"."""
    from bijli.dlms.acse import AssociationResult
    from bijli.dlms.errors import AssociationError
    from bijli.tools.commands.dlms import enter_token

    try:
        client = meter.meter.client(48)
    except AssociationError as exc:
        if AssociationResult.REJECTED_TRANSIENT.name not in str(exc):
            raise
        return False, "association refused for now (rejected-transient)"
    try:
        return enter_token(client, digits.encode("ascii"))
    finally:
        client.close()


def _energy(meter: SoakMeter) -> float:
    return float(meter.status()["energy_import_kwh"])


def episode(row: SoakRow, meter: SoakMeter, tokens: Tokens, where: str) -> None:
    m = meter.meter
    acked: dict[str, Decimal] = {}
    refused: dict[str, Decimal] = {}
    _ask(meter, row, where, "load 20")
    for _ in range(2):
        digits, amount = tokens.next()
        if (_ask(meter, row, where, f"token {digits}") or "").startswith("accepted"):
            acked[digits] = amount
    logs = [p.stat().st_size for p in (meter.state / "meter.out", meter.err_path) if p.exists()]
    limit = max(logs, default=0) + HEADROOM
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(m.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))
    try:
        for i in range(9):
            credit_before = Decimal(meter.status()["credit"])
            digits, amount = tokens.next()
            channel = ("console", "keypad", "gateway")[i % 3]
            row.inputs += 1
            at = f"{where}, disk full, {channel} token {digits}"
            try:
                if channel == "gateway":
                    accepted, word = _gateway(meter, digits)
                else:
                    word = _ask(meter, row, at, f"token {digits}" if channel == "console" else f"k {digits}#") or ""
                    accepted = word.startswith("accepted")
            except Exception as exc:  # noqa: BLE001
                row.fail("wrong", f"{at}: the gateway conversation broke ({type(exc).__name__}: {exc})")
                accepted, word = False, ""
            if accepted:
                acked[digits] = amount
                continue
            refused[digits] = amount
            credit_after = Decimal(meter.status()["credit"])
            if credit_after != credit_before:
                row.fail("credit", f"{at}: refused ({word[:40]}) yet credit {credit_before} -> {credit_after}")
        energy = _energy(meter)
        row.inputs += 1
        _ask(meter, row, where, "step 15m")
        if _energy(meter) <= energy:
            row.fail("wrong", f"{where}: energy frozen at {energy} kWh over 15 min at 20 A with the disk full")
    finally:
        resource.prlimit(m.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
    # space is back: the refused tokens go through, by themselves within RECOVERY_S
    deadline = time.monotonic() + RECOVERY_S
    for digits, amount in list(refused.items()):
        while True:
            word = _ask(meter, row, where, f"token {digits}") or ""
            if word.startswith("accepted") or time.monotonic() > deadline:
                break
            if word.startswith("used"):
                row.fail("wrong", f"{where}: token {digits} was refused while the disk was full, yet was credited")
                break
            time.sleep(1.0)
        if word.startswith("accepted") or word.startswith("used"):
            acked[digits] = amount
            refused.pop(digits)
        else:
            row.fail("wrong", f"{where}: token {digits} still refused ({word[:40]}) {RECOVERY_S:g} s after space came back")
    energy = _energy(meter)
    _ask(meter, row, where, "step 15m")
    if _energy(meter) <= energy:
        row.fail("wrong", f"{where}: metering did not resume once space came back")
    expected = Decimal(meter.status()["total_recharged"])
    m.kill()
    meter.restart()
    total = Decimal(meter.status()["total_recharged"])
    if total != expected:
        row.fail("credit", f"{where}: {total} recharged after a restart, {expected} before it")
    for digits in acked:
        word = (_ask(meter, row, where, f"token {digits}") or "").split(":")[0]
        if word != "used":
            row.fail("credit", f"{where}: acknowledged token {digits} entered again after the restart: {word}")
    meter.check(row, where)


def run(row: SoakRow, seed: int, work: Path, deadline: float) -> SoakRow:
    rng = random.Random(f"disk-full-{seed}")
    tokens = Tokens(rng)
    meter = SoakMeter(work / "disk-full", CONFIG, start=START, hdlc=False, serial=False, optical=False)
    try:
        episodes = 0
        while episodes == 0 or row.inputs < row.target and time.monotonic() < deadline:
            episode(row, meter, tokens, f"seed {seed} disk-full episode {episodes}")
            episodes += 1
        row.note = f"{episodes} episode(s) of a full disk; inputs are the tokens and steps tried while full"
        meter.check(row, f"seed {seed} disk-full at the end")
    finally:
        meter.stop()
    return row
