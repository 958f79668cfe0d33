"""Power cuts during token entry: SIGKILL of ``bijli meter`` while tokens arrive.

Tokens arrive by the three ways a meter takes them: the service console (``token
DIGITS``), the keypad (``k DIGITS#``, typed as console keypad lines) and the DLMS token
gateway (0.0.19.40.0.255 method 1 in the utility association, IEC 62056-6-2 clause
4.6.5, the meter's word read back as ``bijli token deliver`` does). A thread enters a
batch of fresh tokens, each an STS credit token (IEC 62055-41) with its own TID; the
meter's process group is killed at a random instant while it works through them, then
started again on the same state directory. A token counts as *acknowledged* when the
meter's answer ``accepted`` reached the sender before the cut. After each restart:

- the credit gained must lie between the acknowledged tokens' sum and the whole batch's
  (less is a lost token, more a doubled one);
- every token not acknowledged is entered again: ``used`` means it had been committed,
  ``accepted`` that it had not, and then the total recharged must be the whole batch;
- one acknowledged token is entered again and must answer ``used``.

The meter runs with ``sts.lockout_after = 0``: the re-entries are runs of ``used``, and
the keypad lockout (issue 14 item 1) is not what this part measures.
"""

from __future__ import annotations

import random
import threading
import time
import tomllib
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bijli.firmware.meter import MeterConfig
from bijli.firmware.sts.vend import vend_credit
from bijli.tools.soak.report import SoakRow
from bijli.tools.soak.subject import SoakMeter

CONFIG = "[sts]\nlockout_after = 0\n"
CHANNELS = ("console", "keypad", "gateway")
START = "2024-06-03T12:00:00"  # a Monday noon: no friendly period, every token counts
FIRST_TID = datetime(2024, 5, 20, 0, 0)


class Tokens:
    """Fresh credit tokens for the demo meter, one TID (minute) each, amounts 10..16 INR."""

    def __init__(self, rng: random.Random):
        self.key = MeterConfig.from_dict(tomllib.loads(CONFIG)).sts.vend_key()
        self.rng = rng
        self.issued = 0

    def next(self) -> tuple[str, Decimal]:
        amount = Decimal(10 + self.rng.randrange(7))
        when = FIRST_TID + timedelta(minutes=self.issued)
        self.issued += 1
        return vend_credit(self.key, amount, subclass=4, time=when).digits, amount


def _enter(meter: SoakMeter, channel: str, batch, acked: list, ready: threading.Event) -> None:
    """Enter ``batch`` by ``channel``; append the digits the meter answered ``accepted`` to."""
    try:
        if channel == "gateway":
            from bijli.tools.commands.dlms import enter_token

            client = meter.meter.client(48)
            ready.set()
            try:
                for digits, _ in batch:
                    accepted, _word = enter_token(client, digits.encode("ascii"))
                    if accepted:
                        acked.append(digits)
            finally:
                client.transport.close()
        else:
            ready.set()
            for digits, _ in batch:
                reply = meter.ask(f"token {digits}" if channel == "console" else f"k {digits}#")
                if reply.startswith("accepted"):
                    acked.append(digits)
    except Exception:  # noqa: BLE001 - the cut ends the conversation at any point
        pass
    finally:
        ready.set()


def _total(meter: SoakMeter) -> Decimal:
    return Decimal(meter.status()["total_recharged"])


def run(row: SoakRow, seed: int, work: Path, deadline: float) -> SoakRow:
    rng = random.Random(f"kills-{seed}")
    tokens = Tokens(rng)
    meter = SoakMeter(work / "kills", CONFIG, start=START, hdlc=False, serial=False, optical=False)
    try:
        total = _total(meter)
        while row.inputs < row.target and time.monotonic() < deadline:
            channel = CHANNELS[row.inputs % len(CHANNELS)]
            batch = [tokens.next() for _ in range(rng.randint(1, 4))]
            where = f"seed {seed} kill {row.inputs} ({channel}, {len(batch)} tokens)"
            acked: list[str] = []
            ready = threading.Event()
            sender = threading.Thread(target=_enter, args=(meter, channel, batch, acked, ready), daemon=True)
            sender.start()
            ready.wait(30)
            # a console token takes a few ms, a gateway one (ACTION and two GETs) a few more
            time.sleep(rng.uniform(0.0, (0.012 if channel != "gateway" else 0.03) * len(batch)))
            snapshot = list(acked)
            meter.meter.kill()
            sender.join(10)
            row.inputs += 1
            meter.restart()
            amounts = dict(batch)
            gained = _total(meter) - total
            low, high = sum(amounts[d] for d in snapshot), sum(amounts.values())
            if gained < low:
                row.fail("credit", f"{where}: {gained} credited, {low} acknowledged")
            elif gained > high:
                row.fail("credit", f"{where}: {gained} credited for tokens worth {high}")
            for digits, amount in batch:
                if digits in snapshot:
                    continue
                word = meter.ask(f"token {digits}").split(":")[0]
                if word not in ("used", "accepted"):
                    row.fail("wrong", f"{where}: token {digits} entered again: {word}")
            after = _total(meter)
            if after != total + high:
                row.fail("credit", f"{where}: total recharged {after}, expected {total + high}")
            if snapshot:
                word = meter.ask(f"token {rng.choice(snapshot)}").split(":")[0]
                if word != "used":
                    row.fail("credit", f"{where}: an acknowledged token entered again answered {word}")
            total = _total(meter)
            meter.check(row, where, probe=row.inputs % 50 == 0)
    finally:
        meter.stop()
    return row
