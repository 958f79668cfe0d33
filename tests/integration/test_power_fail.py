"""Power cuts at random instants while tokens are being entered: `bijli meter` is
killed with SIGKILL, restarted on the same state directory, and must have
credited every token it committed exactly once and lost none."""

from __future__ import annotations

import json
import os
import random
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import serial

from bijli.firmware.meter import MeterConfig
from bijli.firmware.sts.vend import vend_credit

KEY = MeterConfig.from_dict({}).sts.vend_key()
START = datetime(2024, 6, 3, 12, 0)  # a Monday noon: no friendly period
CYCLES = int(os.environ.get("BIJLI_POWER_FAIL_CYCLES", "6"))


def _tokens(n: int) -> list[tuple[str, Decimal]]:
    out = []
    for i in range(n):
        amount = Decimal(10 + i % 7)  # whole rupees below 163.83: coded exactly
        out.append((vend_credit(KEY, amount, subclass=4, time=START - timedelta(hours=2) + timedelta(minutes=i)).digits,
                    amount))
    return out


def _status(meter) -> dict:
    return json.loads(meter.console("status --json"))


def test_sigkill_while_entering_tokens_never_loses_or_doubles_credit(bijli_meter_factory, tmp_path):
    rng = random.Random(2024)
    state = tmp_path / "state"
    # replaying every token below is a run of "used" results: lift the keypad lockout
    # (lockout_after = 0 disables it) so the check itself is not locked out
    config = tmp_path / "meter.toml"
    config.write_text("[sts]\nlockout_after = 0\n")
    tokens = _tokens(8 * CYCLES)
    batches = [tokens[i::CYCLES] for i in range(CYCLES)]

    def start():  # the first start sets the clock; a restart resumes it where it stopped
        return bijli_meter_factory(state=state, start=START.isoformat(), config=config)

    for batch in batches:
        meter = start()
        meter.console("load 10")
        # type the whole batch on the console line without waiting, then cut the power at a
        # random instant while the meter is still working through it
        with serial.Serial(meter.endpoints.console, 9600, timeout=10) as line:
            line.write("".join(f"token {digits}\r" for digits, _ in batch).encode())
            for _ in range(rng.randrange(len(batch))):
                line.readline()  # one reply a line
            time.sleep(rng.uniform(0.0, 0.004))
            meter.kill()

    meter = start()
    before = _status(meter)
    credited = Decimal(before["total_recharged"])
    assert Decimal(before["credit"]) == credited - Decimal(before["total_charged"])

    # re-enter every token: the ones the meter committed before a cut are refused as
    # used, the others are accepted now; together, each token counts exactly once
    was_credited = Decimal(0)
    for digits, amount in tokens:
        word = meter.console(f"token {digits}").split(":")[0]
        assert word in ("used", "accepted"), word
        if word == "used":
            was_credited += amount
    assert was_credited == credited, "credit committed before the cuts = tokens now refused as used"
    # the cuts did land in the middle of the batches (else this test proves little)
    assert 0 < credited < sum(a for _, a in tokens)

    after = _status(meter)
    assert Decimal(after["total_recharged"]) == sum(a for _, a in tokens)
    assert Decimal(after["credit"]) == Decimal(after["total_recharged"]) - Decimal(after["total_charged"])
    for digits, _ in tokens[:3]:
        assert meter.console(f"token {digits}") == "used"
