"""Metrology benchmark for `bijli bench firmware`: how many times faster than real time
the metering core processes 4096 Hz sample blocks (target: 200x one phase, 70x three).

Blocks are generated before timing (the source is not what is measured) and are the
meter's usual size: 1024 samples, a quarter second.
"""

from __future__ import annotations

from bijli.firmware.metrology import Metrology, MetrologyConfig
from bijli.hal.samples import SyntheticSource
from bijli.tools.commands.bench import BenchResult, rate

SAMPLE_RATE = 4096
BLOCK = 1024


def realtime_factor(phases: int, seconds: int = 2, min_seconds: float = 0.5) -> float:
    """Seconds of signal processed per second of CPU (wall clock)."""
    src = SyntheticSource(sample_rate=SAMPLE_RATE, phases=phases, current=10.0, pf=0.9,
                          harmonics=[(3, 0.02, 0.1), (5, 0.01, 0.05)], noise_rms=(0.2, 0.01), seed=7)
    blocks = [src.read_block(BLOCK) for _ in range(seconds * SAMPLE_RATE // BLOCK)]
    meter = Metrology(MetrologyConfig(sample_rate=SAMPLE_RATE, phases=phases))

    def one_pass() -> None:
        for b in blocks:
            meter.process(b)

    return rate(one_pass, min_seconds=min_seconds, batch=5) * seconds


def bench() -> list[BenchResult]:
    return [
        BenchResult("metrology real-time factor, single phase", realtime_factor(1), "x", target=200),
        BenchResult("metrology real-time factor, three phase", realtime_factor(3), "x", target=70),
    ]


if __name__ == "__main__":
    from bijli.tools.commands.bench import format_rows

    print(format_rows(bench()))
