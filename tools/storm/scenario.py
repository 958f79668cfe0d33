"""``bijli storm --scenario bakrid``: the seed's week, replayed on a simulated fleet clock.

June 2024, North Bihar: prepaid meters held supply through a Saturday, a Sunday and
Monday 17 June (Id-ul-Zuha, Bakrid), were cut on Tuesday at 11:00 when the
no-disconnection stretch ended, and their recharges then had to get through at once.

The scenario runs the week on the fleet engine: ``--processes P`` shard processes
(``bijli fleet --shard K/P``, :mod:`tools.storm.shards`), simulated clock standing still
(``--clock sim --rate 0``), each meter with its own household load (``--load-profile
random``) and at its own loopback address 127.x.y.z:4059, on a configuration whose
``[prepaid]`` table names the friendly calendar explicitly: friendly hours 17:30-11:00,
friendly days Saturday and Sunday, and the special day 2024-06-17 (IS 15959 practice;
the meter's special-days table 0.0.11.0.0.255 shows it). Then:

1. Friday 14 June 2024 17:00 IST: a storm gives every meter a small credit;
2. every shard's clock is stepped through Saturday, Sunday and Monday to Tuesday 10:59,
   then 11:00; at each checkpoint every shard's console ``summary`` walks its meters to
   the checkpoint (one commit group per slice; as many shards at once as the host has
   cores) and reads, in the same pass, each meter's supply, debt and control event log
   (one pass per meter, one JSON line per shard: :mod:`tools.fleet.summary`). Supply and
   debt per checkpoint come from it, and so do the load-switch disconnections by time since Friday 17:00, each
   judged by the meter against its own friendly calendar; none may fall in friendly time;
3. Tuesday 11:00: every meter's relay and balance are read over DLMS in the meter-reader
   association (the head-end's view, independent of the shards' own report): every meter
   in debt must be cut, and none without debt; every disconnection since Friday must be
   at 11:00:00;
4. every consumer recharges at once (the same amount each: the fleet's largest debt plus
   ``--amount``, so every recharge clears its debt) and a storm delivers without reading
   back; then the same storm's journal is run again, which only verifies (reads every
   meter back over DLMS: credited exactly once, relay on), so delivery and read-back are
   measured apart. The time from the recharge to supply back (the relay state read right
   after each token) is the distribution reported.

Each phase (start, each checkpoint's walk, the storms, the reads) is measured: wall
time, the shards' CPU and the head-end's CPU (``phases`` in the report).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import TextIO

from bijli.firmware.prepaid import PrepaidConfig
from bijli.tools.fleet.descriptors import shards_that_fit
from bijli.tools.storm import DeliveryError, ScenarioError
from bijli.tools.storm.delivery import CreditReading, MeterTarget, read_credit
from bijli.tools.storm.engine import Options, in_waves
from bijli.tools.storm.run import run_storm, waves
from bijli.tools.storm.shards import Shards

FRIDAY = datetime(2024, 6, 14, 17, 0)
TUESDAY_CUT = datetime(2024, 6, 18, 11, 0)
PREPAID = {
    "friendly_start": "17:30",
    "friendly_end": "11:00",
    "friendly_days": ["sat", "sun"],
    "holidays": {"2024-06-17": "Id-ul-Zuha (Bakrid)"},
}
CHECKPOINTS = (datetime(2024, 6, 14, 17, 29), datetime(2024, 6, 15, 12, 0), datetime(2024, 6, 16, 12, 0),
               datetime(2024, 6, 17, 12, 0), datetime(2024, 6, 18, 10, 59), TUESDAY_CUT)
NAMED = 20  # meters named per broken rule in the text report; --json names up to tools.fleet.summary.NAMED


def config_text() -> str:
    holidays = ", ".join(f'"{d}" = "{n}"' for d, n in PREPAID["holidays"].items())
    days = ", ".join(f'"{d}"' for d in PREPAID["friendly_days"])
    return ("# bijli storm --scenario bakrid: the friendly calendar of the seed's week, explicitly\n"
            "[prepaid]\n"
            f'friendly_start = "{PREPAID["friendly_start"]}"\n'
            f'friendly_end = "{PREPAID["friendly_end"]}"\n'
            f"friendly_days = [{days}]\n"
            f"holidays = {{ {holidays} }}\n")


def fleet_args(work: Path, count: int, config: Path, tcp: str | None, cache: int | None) -> list[str]:
    """The shards' ``bijli fleet`` arguments (each adds its ``--shard``, manifest and console)."""
    args = ["--count", str(count), "--state", str(work / "meters"), "--clock", "sim", "--rate", "0",
            "--start", FRIDAY.isoformat(), "--load-profile", "random", "--config", str(config)]
    if tcp is not None:  # a host named (tests: 127.0.0.1:0); by default each meter's own loopback address
        args += ["--tcp", tcp]
    if cache is not None:
        args += ["--cache", str(cache)]
    return args


async def _read_all(targets: list[MeterTarget], opts: Options, say, every: float) -> dict[str, CreditReading]:
    """Every meter's credit and relay over DLMS: ``concurrency`` workers on one queue (a
    task per worker, not per meter), each meter retried up to ``retries`` times."""
    queue: asyncio.Queue[MeterTarget] = asyncio.Queue()
    for t in in_waves(targets, opts.shards, opts.shards_at_once):
        queue.put_nowait(t)
    out: dict[str, CreditReading] = {}

    async def worker() -> None:
        while not queue.empty():
            t = queue.get_nowait()
            error: DeliveryError | None = None
            for _ in range(opts.retries + 1):
                try:
                    out[t.serial] = await read_credit(t, timeout=opts.timeout)
                    break
                except DeliveryError as exc:
                    error = exc
                    if not exc.retry:
                        break
            if t.serial not in out:
                raise ScenarioError(f"meter {t.serial}: cannot read it: {error}")

    async def progress() -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(every)
            say(f"DLMS read: {len(out)}/{len(targets)} meters, {len(out) / (time.monotonic() - started):.0f}/s")

    shown = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(opts.concurrency, len(targets))))))
    finally:
        shown.cancel()
    return out


def _prepare(work: Path) -> Path:
    """A fresh week in ``work``: an earlier week's meters, journals and manifests go."""
    config = work / "bakrid.toml"
    if work.exists() and any(work.iterdir()):
        if not config.exists():
            raise ScenarioError(f"{work} is not empty and holds no earlier Bakrid week (no bakrid.toml): "
                                "give --work a new or empty directory")
        import shutil

        shutil.rmtree(work / "meters", ignore_errors=True)
        for old in [*work.glob("manifest-shard-*.json"), *work.glob("shard-*.err"),
                    *(work / n for n in ("friday.jsonl", "tuesday.jsonl", "vend-journal.json", "fleet.json"))]:
            old.unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text(), encoding="utf-8")
    return config


def bakrid(work: Path, count: int, opts: Options, *, amount: str = "100", small_credit: str = "20",
           plot: str | None = None, progress_every: float | None = None, processes: int | None = None,
           tcp: str | None = None, cache: int | None = None, progress_out: TextIO | None = sys.stderr) -> dict:
    """Run the week; a summary whose ``ok`` holds the scenario's three promises."""
    if count < 1:
        raise ScenarioError("--count must be at least 1")
    if processes is None:  # one per core, or as many more as the open-file limit needs
        processes = shards_that_fit(count, at_least=os.cpu_count() or 1)
    processes = min(count, processes)
    if processes < 1:
        raise ScenarioError("--processes must be at least 1")
    every = progress_every if progress_every is not None else 5.0
    # the shards share this host: the storms and reads take their meters a core's worth of
    # shards at a time (tools.storm.engine.in_waves), unless told how many
    opts = dataclasses.replace(opts, **waves({"shards": processes, "host_cores": os.cpu_count() or 1},
                                             opts.shards_at_once))
    config = _prepare(work)
    friendly = PrepaidConfig.from_table(PREPAID).friendly
    shards = Shards(work, processes, fleet_args(work, count, config, tcp, cache), progress_out=progress_out,
                    progress_every=every, walks_at_once=opts.shards_at_once)
    say = shards.say
    try:
        say(f"{count} meters on {processes} shard processes, state in {work / 'meters'}")
        with shards.phase("start"):
            rows = shards.start()["meters"]
        targets = [MeterTarget.from_row(r, i) for i, r in enumerate(rows)]
        serial = {t.index: t.serial for t in targets}
        vj = work / "vend-journal.json"
        with shards.phase("Friday storm"):
            friday = run_storm(rows, small_credit, work / "friday.jsonl", opts, vend_time=FRIDAY, vend_journal=vj,
                               progress_out=progress_out, progress_every=every)
        friday.pop("_storm")
        if not friday["ok"]:
            raise ScenarioError(f"the Friday storm did not credit every meter: {friday['problems'] or friday['failed']}")
        checkpoints = []
        for when in CHECKPOINTS:
            shards.step_to(when)
            label = f"walk to {when.isoformat(timespec='minutes')}"
            with shards.phase(label):
                s = shards.summary(FRIDAY, label)
            if s["meters"] != count:
                raise ScenarioError(f"the shards summarised {s['meters']} meters of {count}")
            checkpoints.append({"time": when.isoformat(), "friendly": friendly.reason_at(when) is not None,
                                "supplied": s["supplied"], "in_debt": s["in_debt"],
                                "disconnections": sum(s["disconnections"].values()), "_s": s})
        before_cut, at_cut = checkpoints[-2]["_s"], checkpoints[-1]["_s"]
        with shards.phase("DLMS read at 11:00"):
            readings = asyncio.run(_read_all(targets, opts, say, every))
        in_debt = {s for s, r in readings.items() if r.balance < 0}
        cut = {s for s, r in readings.items() if not r.relay_on}
        # a meter's own calendar says the time of a disconnection was friendly; the scenario's
        # calendar (the same table) says so for every distinct time: both must find none
        friendly_cuts = [{"meter": serial.get(i, str(i)), "time": t} for i, t in at_cut["friendly_disconnections"]]
        friendly_times = sorted(t for t in at_cut["disconnections"]
                                if friendly.reason_at(datetime.fromisoformat(t)) is not None)
        # Tuesday 11:00: every consumer recharges at once, the same amount each: enough to clear the
        # largest debt of the fleet and leave ``amount`` (a recharge that does not clear the debt
        # rightly leaves the supply off, which is not what this scenario is about)
        worst = max((-r.balance for r in readings.values()), default=0)
        recharge = str(Decimal(amount) + (Decimal(max(worst, 0)) / 100).to_integral_value(rounding=ROUND_CEILING))
        with shards.phase("recharge storm"):
            tuesday = run_storm(rows, recharge, work / "tuesday.jsonl", dataclasses.replace(opts, verify=False),
                                vend_time=TUESDAY_CUT, vend_journal=vj, progress_out=progress_out,
                                progress_every=progress_every, plot=plot)
        storm = tuesday.pop("_storm")
        with shards.phase("read-back"):  # the same journal again: nothing pending, so it verifies
            checked = run_storm(rows, recharge, work / "tuesday.jsonl", opts, vend_time=TUESDAY_CUT,
                                vend_journal=vj, progress_out=progress_out, progress_every=progress_every)
        again = checked.pop("_storm")
        # from the moment every consumer recharged (the first run's start) to the relay read on after
        # the token; a meter the first run missed and the second retried counts with its later answer
        deliveries = {**storm.deliveries, **{s: d for s, d in again.deliveries.items() if d.answered is not None}}
        restore = sorted(d.answered - storm.mono_started for s, d in deliveries.items()
                         if s in cut and d.relay_on and d.answered is not None)
        verified = {t.serial: again.journal.meter(t.serial).verified or {} for t in targets}
        not_restored = sorted(s for s in cut if not verified[s].get("relay_on"))
    finally:
        shards.close()
    for c in checkpoints:
        c.pop("_s")

    def q(p: float) -> float | None:
        return None if not restore else round(restore[min(len(restore) - 1, int(p * len(restore)))], 3)

    result = {
        "meters": count,
        "processes": processes,
        "friendly_calendar": PREPAID,
        "checkpoints": checkpoints,
        "in_debt_at_10_59": before_cut["in_debt"],
        "cut_at_11_00": len(cut),
        "cut_times": at_cut["disconnections"],
        "cut_during_friendly_time": friendly_cuts,
        "cut_during_friendly_time_count": at_cut["friendly_disconnections_count"],
        "friendly_cut_times": friendly_times,
        "in_debt_not_cut": sorted(in_debt - cut),
        "cut_without_debt": sorted(cut - in_debt),
        "largest_debt_paisa": worst,
        "recharge_inr": tuesday["amount_per_token"],
        "recharge_storm": {**{k: tuesday[k] for k in ("delivered_now", "deliveries_per_s", "p50_ms", "p99_ms",
                                                      "delivery_s", "failed")},
                           **{k: checked[k] for k in ("verified", "exact", "problems", "ok")},
                           "retried_in_read_back": checked["delivered_now"]},
        "restore_s": {"count": len(restore), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                      "max": None if not restore else round(restore[-1], 3)},
        "not_restored": not_restored,
        "phases": shards.phases,
        "plot": tuesday.get("plot"),
    }
    result["ok"] = (not friendly_cuts and not result["cut_during_friendly_time_count"] and not friendly_times
                    and not result["in_debt_not_cut"] and not result["cut_without_debt"]
                    and all(c["supplied"] == count for c in checkpoints[:-1])
                    and set(result["cut_times"]) <= {TUESDAY_CUT.isoformat()}
                    and checked["ok"] and not not_restored and len(restore) == len(cut))
    return result


def text(r: dict) -> str:
    cal = r["friendly_calendar"]
    lines = [f"Bakrid week, {r['meters']} meters on {r['processes']} shard processes: friendly "
             f"{cal['friendly_start']}-{cal['friendly_end']}, days {'/'.join(cal['friendly_days'])}, "
             f"holidays {', '.join(f'{d} {n}' for d, n in cal['holidays'].items())}"]
    for c in r["checkpoints"]:
        lines.append(f"  {c['time']}  {'friendly' if c['friendly'] else 'not friendly':<12}  supplied {c['supplied']:>7}"
                     f"  in debt {c['in_debt']:>7}")
    lines.append(f"cut during friendly time: {r['cut_during_friendly_time_count']}"
                 + "".join(f"\n  {c['meter']} at {c['time']}" for c in r["cut_during_friendly_time"][:NAMED]))
    lines.append(f"in debt at Tuesday 10:59: {r['in_debt_at_10_59']}; cut at 11:00: {r['cut_at_11_00']}; "
                 f"in debt but not cut: {len(r['in_debt_not_cut'])}; cut without debt: {len(r['cut_without_debt'])}")
    for rule in ("in_debt_not_cut", "cut_without_debt"):
        if r[rule]:
            lines.append(f"  {rule.replace('_', ' ')}: {', '.join(r[rule][:NAMED])}"
                         + (" ..." if len(r[rule]) > NAMED else ""))
    lines.append("cuts by time: " + (", ".join(f"{t} x{n}" for t, n in r["cut_times"].items()) or "none"))
    rs, s = r["recharge_storm"], r["restore_s"]
    lines.append(f"every consumer recharges {r['recharge_inr']} INR at Tuesday 11:00 (largest debt "
                 f"{r['largest_debt_paisa'] / 100:.2f} INR)")
    lines.append(f"recharge storm: {rs['delivered_now']} delivered, {rs['exact']} of {rs['verified']} read back exact, "
                 f"{rs['deliveries_per_s']}/s, p50 {rs['p50_ms']} ms, p99 {rs['p99_ms']} ms")
    lines.append(f"recharge to supply restored ({s['count']} meters): p50 {s['p50']} s, p90 {s['p90']} s, "
                 f"p99 {s['p99']} s, max {s['max']} s; not restored: {len(r['not_restored'])}")
    lines.append("phases (wall s / fleet CPU s / head-end CPU s):")
    for p in r["phases"]:
        lines.append(f"  {p['phase']:<24} {p['wall_s']:>9.1f} {p['fleet_cpu_s'] if p['fleet_cpu_s'] is not None else '-':>9}"
                     f" {p['head_end_cpu_s']:>9}")
    lines.append("the week behaved" if r["ok"] else "the week did NOT behave")
    return "\n".join(lines)
