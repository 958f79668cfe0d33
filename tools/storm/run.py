"""One storm from a manifest to a verified summary: the sequence ``bijli storm`` and the
scenarios share. Vend what the journal lacks (all of it, before anything is sent, so
a crash never leaves a token sent that the journal does not know), deliver, verify.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from bijli.tools.storm import ManifestError
from bijli.tools.storm.engine import Options


def load_fleet_manifest(path: "str | Path") -> tuple[list[dict], dict]:
    """The meter rows of a fleet manifest (``meters``) or a single meter's manifest (one
    row), and its other fields (a fleet's ``shards`` and ``host_cores``; none for a
    single meter's)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from None
    fleet = isinstance(data, dict) and "meters" in data
    rows = data.get("meters") if fleet else [data]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ManifestError(f"{path}: no meters in the manifest")
    serials = [r.get("serial") for r in rows]
    if len(set(serials)) != len(serials):
        raise ManifestError(f"{path}: a serial appears twice")
    return rows, ({k: v for k, v in data.items() if k != "meters"} if fleet else {})


def waves(head: dict, at_once: int | None) -> dict:
    """The :class:`Options` fields that take a fleet's meters in waves of shards
    (:func:`~bijli.tools.storm.engine.in_waves`): ``at_once`` shards at a time when given,
    else one per core of the host its shards share, if the manifest says they share one."""
    shards = head.get("shards")
    if type(shards) is not int or shards < 2:
        return {}
    cores = head.get("host_cores")
    if at_once is None:
        at_once = cores if type(cores) is int and cores >= 1 else None
    return {"shards": shards, "shards_at_once": at_once}


def run_storm(rows: list[dict], amount: str, journal_path: "str | Path", opts: Options, *, vend_time: datetime,
              vend_journal: "str | Path", progress_out=sys.stderr, progress_every: float | None = None,
              plot: str | None = None) -> dict:
    """Vend what the journal lacks, deliver, verify; the summary (and the storm itself under ``_storm``)."""
    from bijli.tools.storm import report, vending
    from bijli.tools.storm.delivery import MeterTarget
    from bijli.tools.storm.engine import Storm
    from bijli.tools.storm.journal import Journal, MeterState

    begun = time.monotonic()
    credit = vending.plan(amount)
    targets = [MeterTarget.from_row(r, i) for i, r in enumerate(rows)]
    digest = hashlib.sha256("\n".join(t.serial for t in targets).encode()).hexdigest()[:16]
    journal = Journal.open(journal_path, {"manifest": digest, "meters": len(targets), "amount": str(credit.value)})
    try:
        new = [r for r in rows if journal.meter(r["serial"]).state is MeterState.NEW]
        if new:
            journal.append_now(vending.vend(new, credit, vend_time, vend_journal))  # sold before any is sent
        storm = Storm(targets, journal, opts, progress_out=progress_out, progress_every=progress_every)
        verified = asyncio.run(storm.run())
        out = report.summary(storm, verified, time.monotonic() - begun)
        out["vended_now"] = len(new)
        out["amount_requested"], out["amount_per_token"] = str(credit.requested), str(credit.value)
        if plot:
            out["plot"] = [str(p) for p in report.plot(plot, storm)]
        out["_storm"] = storm
        return out
    finally:
        journal.close()


def default_journal(manifest: str, amount: str) -> Path:
    m = Path(manifest)
    return m.with_name(f"{m.stem}.storm-{amount}.jsonl")


