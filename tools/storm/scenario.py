"""``bijli storm --scenario bakrid``: the seed's week, replayed on a simulated fleet clock.

June 2024, North Bihar: prepaid meters held supply through a Saturday, a Sunday and
Monday 17 June (Id-ul-Zuha, Bakrid), were cut on Tuesday at 11:00 when the
no-disconnection stretch ended, and their recharges then had to get through at once.

The scenario starts its own ``bijli fleet`` (simulated clock standing still, each meter
with its own household load, ``--load-profile random``) on a configuration whose
``[prepaid]`` table names the friendly calendar explicitly: friendly hours 17:30-11:00,
friendly days Saturday and Sunday, and the special day 2024-06-17 (IS 15959 practice;
the meter's special-days table 0.0.11.0.0.255 shows it). Then, from the fleet's console
(on a pipe) and over DLMS:

1. Friday 14 June 2024 17:00 IST: a storm gives every meter a small credit;
2. the fleet clock steps through Saturday, Sunday and Monday to Tuesday 10:59, then 11:00;
   at each checkpoint every meter's relay and balance are read over DLMS;
3. every meter's event log (the fleet console's ``meter I events``) says when its load
   switch opened; none may open in a friendly period;
4. Tuesday 11:00: every meter in debt at 10:59 must be cut; then every consumer
   recharges at once (the same amount each: the fleet's largest debt plus ``--amount``,
   so every recharge clears its debt) and a storm delivers; the time from the recharge to supply back
   (the relay state read right after each token) is the distribution reported.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from bijli.firmware.prepaid import PrepaidConfig
from bijli.tools.storm import DeliveryError, ScenarioError
from bijli.tools.storm.delivery import MeterTarget, read_credit
from bijli.tools.storm.engine import Options
from bijli.tools.storm.run import run_storm

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
DISCONNECTED = 301  # IS 15959 control event: load switch disconnected
CONNECTED = 302
_END = "#end-of-reply"  # an unknown command: its one-line error marks the end of the reply before it
STARTUP_TIMEOUT = 120.0


def config_text() -> str:
    holidays = ", ".join(f'"{d}" = "{n}"' for d, n in PREPAID["holidays"].items())
    days = ", ".join(f'"{d}"' for d in PREPAID["friendly_days"])
    return ("# bijli storm --scenario bakrid: the friendly calendar of the seed's week, explicitly\n"
            "[prepaid]\n"
            f'friendly_start = "{PREPAID["friendly_start"]}"\n'
            f'friendly_end = "{PREPAID["friendly_end"]}"\n'
            f"friendly_days = [{days}]\n"
            f"holidays = {{ {holidays} }}\n")


class FleetConsole:
    """A ``bijli fleet`` child process with its console on a pipe."""

    def __init__(self, work: Path, count: int, config: Path):
        self.manifest_path = work / "fleet.json"
        self.manifest_path.unlink(missing_ok=True)
        args = [sys.executable, "-m", "bijli.tools.cli", "fleet", "--count", str(count), "--tcp", "127.0.0.1:0",
                "--state", str(work / "meters"), "--clock", "sim", "--rate", "0", "--start", FRIDAY.isoformat(),
                "--load-profile", "random", "--config", str(config), "--manifest", str(self.manifest_path),
                "--console", "stdio"]
        self.err = open(work / "fleet.err", "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.close()
                raise ScenarioError(f"the fleet did not start: see {work / 'fleet.err'}")
            if "fleet console on this terminal" in line:
                break
        self.manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def ask(self, command: str) -> list[str]:
        """The reply lines of one console command."""
        self.proc.stdin.write(f"{command}\n{_END}\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ScenarioError(f"the fleet stopped during {command!r}")
            line = line.rstrip("\n")
            if _END in line and line.startswith("error: unknown command"):
                return lines
            lines.append(line)

    def now(self) -> datetime:
        return datetime.fromisoformat(self.ask("time")[0])

    def step_to(self, when: datetime) -> None:
        seconds = (when - self.now()).total_seconds()
        if seconds > 0:
            reply = self.ask(f"step {int(seconds)}s")
            if not reply or reply[0].startswith("error"):
                raise ScenarioError(f"step to {when}: {reply}")

    def events(self, index: int, n: int = 500) -> list[tuple[datetime, int]]:
        out = []
        for line in self.ask(f"meter {index} events {n}"):
            parts = line.split(None, 2)
            if len(parts) >= 2 and parts[1].isdigit():
                try:
                    out.append((datetime.fromisoformat(parts[0]), int(parts[1])))
                except ValueError:
                    continue
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.err.close()


async def _read_all(targets: list[MeterTarget], opts: Options) -> dict[str, object]:
    sem = asyncio.Semaphore(opts.concurrency)

    async def one(t: MeterTarget):
        async with sem:
            for _ in range(opts.retries + 1):
                try:
                    return await read_credit(t, timeout=opts.timeout)
                except DeliveryError as exc:
                    error = exc
            raise ScenarioError(f"meter {t.serial}: cannot read it: {error}")

    readings = await asyncio.gather(*(one(t) for t in targets))
    return {t.serial: r for t, r in zip(targets, readings)}


def bakrid(work: Path, count: int, opts: Options, *, amount: str = "100", small_credit: str = "20",
           plot: str | None = None, progress_every: float | None = None) -> dict:
    """Run the week; a summary whose ``ok`` holds the scenario's three promises."""
    config = work / "bakrid.toml"
    if work.exists() and any(work.iterdir()):
        if not config.exists():
            raise ScenarioError(f"{work} is not empty and holds no earlier Bakrid week (no bakrid.toml): "
                                "give --work a new or empty directory")
        import shutil  # an earlier week of this scenario: a week starts with fresh meters and journals

        shutil.rmtree(work / "meters", ignore_errors=True)
        for old in ("friday.jsonl", "tuesday.jsonl", "vend-journal.json", "fleet.json"):
            (work / old).unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text(), encoding="utf-8")
    friendly = PrepaidConfig.from_table(PREPAID).friendly
    fleet = FleetConsole(work, count, config)
    try:
        rows = fleet.manifest["meters"]
        targets = [MeterTarget.from_row(r, i) for i, r in enumerate(rows)]
        vj = work / "vend-journal.json"
        friday = run_storm(rows, small_credit, work / "friday.jsonl", opts, vend_time=FRIDAY, vend_journal=vj,
                           progress_out=None)
        friday.pop("_storm")
        if not friday["ok"]:
            raise ScenarioError(f"the Friday storm did not credit every meter: {friday['problems'] or friday['failed']}")
        checkpoints = []
        for when in CHECKPOINTS:
            fleet.step_to(when)
            readings = asyncio.run(_read_all(targets, opts))
            checkpoints.append({"time": when.isoformat(), "friendly": friendly.reason_at(when) is not None,
                                "supplied": sum(1 for r in readings.values() if r.relay_on),
                                "in_debt": sum(1 for r in readings.values() if r.balance < 0), "_r": readings})
        before_cut, at_cut = checkpoints[-2]["_r"], checkpoints[-1]["_r"]
        in_debt = {s for s, r in before_cut.items() if r.balance < 0}
        cut = {s for s, r in at_cut.items() if not r.relay_on}
        cut_times: Counter = Counter()
        friendly_cuts = []
        for t in targets:
            for when, code in fleet.events(t.index):
                if code != DISCONNECTED or when <= FRIDAY:
                    continue  # at the start a meter has no credit yet (not a friendly time): the Friday storm's job
                if friendly.reason_at(when) is not None:
                    friendly_cuts.append({"meter": t.serial, "time": when.isoformat()})
                cut_times[when.isoformat()] += 1
        # Tuesday 11:00: every consumer recharges at once, the same amount each: enough to clear the
        # largest debt of the fleet and leave ``amount`` (a recharge that does not clear the debt
        # rightly leaves the supply off, which is not what this scenario is about)
        worst = max((-r.balance for r in at_cut.values()), default=0)
        recharge = str(Decimal(amount) + (Decimal(max(worst, 0)) / 100).to_integral_value(rounding=ROUND_CEILING))
        tuesday = run_storm(rows, recharge, work / "tuesday.jsonl", opts, vend_time=TUESDAY_CUT, vend_journal=vj,
                            progress_every=progress_every, plot=plot)
        storm = tuesday.pop("_storm")
        restore = sorted(d.answered - storm.mono_started for s, d in storm.deliveries.items()
                         if s in cut and d.relay_on and d.answered is not None)
        final = {s: r for s, r in asyncio.run(_read_all(targets, opts)).items()}
        not_restored = sorted(s for s in cut if not final[s].relay_on)
    finally:
        fleet.close()
    for c in checkpoints:
        c.pop("_r")

    def q(p: float) -> float | None:
        return None if not restore else round(restore[min(len(restore) - 1, int(p * len(restore)))], 3)

    result = {
        "meters": count,
        "friendly_calendar": PREPAID,
        "checkpoints": checkpoints,
        "in_debt_at_10_59": len(in_debt),
        "cut_at_11_00": len(cut),
        "cut_times": dict(sorted(cut_times.items())),
        "cut_during_friendly_time": friendly_cuts,
        "in_debt_not_cut": sorted(in_debt - cut),
        "cut_without_debt": sorted(cut - in_debt),
        "largest_debt_paisa": worst,
        "recharge_inr": tuesday["amount_per_token"],
        "recharge_storm": {k: tuesday[k] for k in ("delivered_now", "deliveries_per_s", "p50_ms", "p99_ms",
                                                   "exact", "problems", "failed", "ok")},
        "restore_s": {"count": len(restore), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                      "max": None if not restore else round(restore[-1], 3)},
        "not_restored": not_restored,
        "plot": tuesday.get("plot"),
    }
    result["ok"] = (not friendly_cuts and not result["in_debt_not_cut"] and set(cut_times) <= {TUESDAY_CUT.isoformat()}
                    and tuesday["ok"] and not not_restored and len(restore) == len(cut))
    return result


def text(r: dict) -> str:
    lines = [f"Bakrid week, {r['meters']} meters: friendly {r['friendly_calendar']['friendly_start']}-"
             f"{r['friendly_calendar']['friendly_end']}, days {'/'.join(r['friendly_calendar']['friendly_days'])}, "
             f"holidays {', '.join(f'{d} {n}' for d, n in r['friendly_calendar']['holidays'].items())}"]
    for c in r["checkpoints"]:
        lines.append(f"  {c['time']}  {'friendly' if c['friendly'] else 'not friendly':<12}  supplied {c['supplied']:>6}"
                     f"  in debt {c['in_debt']:>6}")
    lines.append(f"cut during friendly time: {len(r['cut_during_friendly_time'])}")
    lines.append(f"in debt at Tuesday 10:59: {r['in_debt_at_10_59']}; cut at 11:00: {r['cut_at_11_00']}; "
                 f"in debt but not cut: {len(r['in_debt_not_cut'])}")
    lines.append("cuts by time: " + (", ".join(f"{t} x{n}" for t, n in r["cut_times"].items()) or "none"))
    rs, s = r["recharge_storm"], r["restore_s"]
    lines.append(f"every consumer recharges {r['recharge_inr']} INR at Tuesday 11:00 (largest debt "
                 f"{r['largest_debt_paisa'] / 100:.2f} INR)")
    lines.append(f"recharge storm: {rs['delivered_now']} delivered, {rs['exact']} exact, {rs['deliveries_per_s']}/s, "
                 f"p50 {rs['p50_ms']} ms, p99 {rs['p99_ms']} ms")
    lines.append(f"recharge to supply restored ({s['count']} meters): p50 {s['p50']} s, p90 {s['p90']} s, "
                 f"p99 {s['p99']} s, max {s['max']} s; not restored: {len(r['not_restored'])}")
    lines.append("the week behaved" if r["ok"] else "the week did NOT behave")
    return "\n".join(lines)
