"""`bijli bench`: the performance figures the issues set targets for.

These are benchmarks, not timed tests: they print what this machine does so a
change that slows a hot path shows up in a number, and CI never fails on speed.
Each area (dlms, sts, firmware) contributes a function returning
:class:`BenchResult` rows; this module only times, collects and prints them.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

# area name -> "module:function" returning an iterable of BenchResult
AREAS: dict[str, list[str]] = {
    "dlms": ["bijli.tools.bench.dlms:bench", "bijli.tools.bench.hdlc:bench", "bijli.tools.bench.server:bench",
             "bijli.tools.bench.server_cost:bench"],
    "sts": ["bijli.tools.bench.sts:bench"],
    "firmware": ["bijli.tools.bench.metrology:bench", "bijli.tools.bench.firmware:bench"],
    "fleet": ["bijli.tools.bench.fleet:bench"],
}


@dataclass(frozen=True)
class BenchResult:
    name: str
    value: float
    unit: str
    target: float | None = None  # the target, same unit; None when there is none
    higher_is_better: bool = True

    @property
    def meets_target(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def rate(fn: Callable[[], object], *, min_seconds: float = 0.5, batch: int = 100) -> float:
    """Calls per second of ``fn``, measured over at least ``min_seconds``."""
    fn()  # warm caches and lazy imports outside the timed loop
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed


def collect(areas: Iterable[str]) -> list[BenchResult]:
    rows: list[BenchResult] = []
    for area in areas:
        for ref in AREAS[area]:
            module_name, func_name = ref.split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    continue  # that area has no benchmarks yet
                raise
            rows.extend(getattr(module, func_name)())
    return rows


def format_rows(rows: list[BenchResult]) -> str:
    lines = []
    for r in rows:
        verdict = {None: "", True: "  ok", False: "  BELOW TARGET"}[r.meets_target]
        target = "" if r.target is None else f"  (target {'>=' if r.higher_is_better else '<='} {r.target:,.0f})"
        lines.append(f"{r.name:<58} {r.value:>14,.1f} {r.unit}{target}{verdict}")
    return "\n".join(lines)


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure the performance figures (dlms, sts, firmware)")
    # no argparse choices: with nargs="*" Python 3.11 rejects the empty default against them
    p.add_argument("areas", nargs="*", metavar="AREA", help=f"areas to run: {', '.join(sorted(AREAS))} (default: all)")
    p.add_argument("--json", action="store_true", help="print rows as JSON")
    p.set_defaults(func=_main)


def _main(args) -> int:
    unknown = [a for a in args.areas if a not in AREAS]
    if unknown:
        print(f"bijli bench: unknown area {unknown[0]!r} (use {', '.join(sorted(AREAS))})", file=sys.stderr)
        return 2
    rows = collect(args.areas or sorted(AREAS))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print(format_rows(rows))
    return 0
