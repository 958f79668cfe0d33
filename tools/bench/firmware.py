"""`bijli bench firmware`: simulated-time speed and durable token commits.

Both run the real Meter on a real sqlite file in a temporary directory: the
simulated month walks every block-load capture, midnight and friendly-hour
boundary (one jump: one commit group of savepoints, one fsync); each token commit is one fsync'd transaction (WAL, synchronous=FULL)
carrying the TID, the credit and the event row.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal

from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.storage import Storage
from bijli.firmware.sts.vend import vend_credit
from bijli.hal.samples import SyntheticSource
from bijli.tools.commands.bench import BenchResult

START = datetime(2024, 6, 1)


def _meter(state: str, config: MeterConfig) -> Meter:
    source = SyntheticSource(sample_rate=config.metrology.sample_rate)
    source.set_load(10.0)
    meter = Meter(config, Storage.open(state), START)
    meter.on_samples(source.read_block(config.metrology.sample_rate // 5), START)
    return meter


def simulated_days_per_second(days: int = 31) -> float:
    config = MeterConfig.from_dict({})
    with tempfile.TemporaryDirectory() as state:
        meter = _meter(state, config)
        meter.enter_token(vend_credit(config.sts.vend_key(), Decimal(100000), subclass=4, time=START).digits)
        t0 = time.perf_counter()
        meter.advance_to(START + timedelta(days=days))
        elapsed = time.perf_counter() - t0
        meter.storage.close()
    return days / elapsed


def token_commits_per_second(n: int = 400) -> float:
    config = MeterConfig.from_dict({"sts": {"tid_window": 100}})
    key = config.sts.vend_key()
    tokens = [vend_credit(key, Decimal(10), subclass=4, time=START - timedelta(days=1) + timedelta(minutes=i)).digits
              for i in range(n)]
    with tempfile.TemporaryDirectory() as state:
        meter = _meter(state, config)
        t0 = time.perf_counter()
        for digits in tokens:
            if not meter.enter_token(digits).accepted:
                raise RuntimeError("a bench token was refused")
        elapsed = time.perf_counter() - t0
        meter.storage.close()
    return n / elapsed


def bench() -> list[BenchResult]:
    days = simulated_days_per_second()
    return [
        BenchResult("simulated time, 31-day month at constant load (meter-days/s)", days, "days/s",
                    target=31 / 10),
        BenchResult("token commits with full durability (per s)", token_commits_per_second(), "tokens/s",
                    target=300),
    ]


if __name__ == "__main__":
    from bijli.tools.commands.bench import format_rows

    print(format_rows(bench()))
