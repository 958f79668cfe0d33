"""The campaign: every part in turn within one time budget, and the one table.

:data:`PARTS` lists the parts with their targets at ``scale = 1`` (issue 14's counts:
10^6 hostile DLMS inputs over the three links, 1,000 SIGKILLs, 1,000 malformed configs,
and the rest sized to match) and their share of the time. Parts run one after another;
each gets its share of the time still left, so a part that reaches its target early
leaves its time to the parts after it. ``scale`` multiplies every target (the test
suite's slice runs at a small scale with a small budget and a fixed seed).
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

from bijli.tools.soak.report import SoakRow


@dataclass(frozen=True)
class Part:
    name: str
    module: str  # in bijli.tools.soak
    unit: str
    target: int  # at scale 1
    share: float  # of the time budget
    link: str = ""  # the DLMS link, for dlms_fuzz


PARTS: tuple[Part, ...] = (
    Part("dlms-wrapper", "dlms_fuzz", "inputs", 850_000, 22.0, "wrapper"),
    Part("dlms-hdlc-tcp", "dlms_fuzz", "inputs", 120_000, 9.0, "hdlc"),
    Part("dlms-serial-pty", "dlms_fuzz", "inputs", 30_000, 3.0, "serial"),
    Part("sigkill-tokens", "kills", "kills", 1_000, 40.0),
    Part("disk-full", "disk_full", "faults", 30, 1.0),  # 10 faults an episode
    Part("damaged-db", "damage", "files", 100, 8.0),
    Part("flood-slow-peers", "flood", "peers", 6_000, 3.0),
    Part("console-fuzz", "console_fuzz", "lines", 20_000, 6.0),
    Part("malformed-configs", "configs", "configs", 1_000, 8.0),
)
NAMES = tuple(p.name for p in PARTS)
DEFAULT_MINUTES = 120.0  # the full counts on this 2-core machine with room to spare (README "Reliability")


def run(minutes: float = DEFAULT_MINUTES, *, seed: int = 1, scale: float = 1.0, parts: tuple[str, ...] = NAMES,
        work: Path, progress=None) -> list[SoakRow]:
    """Run ``parts`` against fresh meters under ``work``; the rows in :data:`PARTS` order."""
    chosen = [p for p in PARTS if p.name in parts]
    budget_end = time.monotonic() + minutes * 60.0
    rows = []
    for i, part in enumerate(chosen):
        left = budget_end - time.monotonic()
        weight = sum(p.share for p in chosen[i:])
        deadline = time.monotonic() + max(0.0, left) * part.share / weight
        row = SoakRow(part.name, part.unit, max(1, math.ceil(part.target * scale)))
        started = time.monotonic()
        module = importlib.import_module(f"bijli.tools.soak.{part.module}")
        folder = work / part.name
        try:
            if part.link:
                module.run(part.link, row, seed, folder, deadline)
            else:
                module.run(row, seed, folder, deadline)
        except Exception as exc:  # noqa: BLE001 - a part that breaks is a finding, not the end of the campaign
            row.fail("tracebacks", f"the campaign part itself failed: {type(exc).__name__}: {exc}")
        row.seconds = time.monotonic() - started
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows
