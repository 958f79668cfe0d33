"""What a storm tells its operator: the summary (text or JSON) and the storm plot.

The summary counts deliveries of this run, meters already delivered by an earlier run
of the same journal, failures with the meter's word or the last error, the rate and
latency quantiles, and the verification: every meter whose total recharged is not
exactly before + sent, by name. The plot (``bijli.tools.plot``) is two files: the
time series of meters delivered and meters with supply restored, and beside it
``<name>-latency.<ext>``, the distribution of delivery latencies.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bijli.tools.storm.engine import Storm
from bijli.tools.storm.journal import MeterState

PLOT_POINTS = 200
LISTED = 20  # meters named in the text summary; --json names every one


def summary(storm: Storm, verified: dict[str, dict], elapsed: float) -> dict:
    states = {}
    for t in storm.targets:
        s = storm.journal.meter(t.serial).state.value
        states[s] = states.get(s, 0) + 1
    failed = [{"meter": d.serial, "word": d.word, "attempts": d.attempts, "error": d.error}
              for d in storm.deliveries.values() if storm.journal.meter(d.serial).state is not MeterState.DELIVERED]
    problems = [v for v in verified.values() if not v.get("ok")]
    st = storm.stats
    span = (storm.delivered_at - storm.stats.started) if st.done else 0.0
    return {
        "meters": len(storm.targets),
        "delivered_now": st.done,
        "already_delivered": sum(1 for t in storm.targets if t.serial not in storm.deliveries
                                 and storm.journal.meter(t.serial).state is MeterState.DELIVERED),
        "states": states,
        "retries": st.retries,
        "failed": failed,
        "deliveries_per_s": round(st.done / span, 2) if span > 0 else None,
        "p50_ms": None if st.quantile(0.5) is None else round(st.quantile(0.5) * 1000, 1),
        "p99_ms": None if st.quantile(0.99) is None else round(st.quantile(0.99) * 1000, 1),
        "delivery_s": round(span, 3),
        "elapsed_s": round(elapsed, 3),
        "journal_fsyncs": storm.journal.fsyncs,
        "client_cpu_s": round(storm.delivery_cpu, 3),
        "client_verify_cpu_s": round(storm.verify_cpu, 3),
        "verified": len(verified),
        "exact": sum(1 for v in verified.values() if v.get("ok")),
        "problems": problems,
        "ok": not problems and not failed and (not storm.options.verify or len(verified) == len(storm.targets)),
    }


def text(s: dict) -> str:
    lines = []
    if s.get("amount_per_token") and Decimal(s["amount_per_token"]) != Decimal(s["amount_requested"]):
        lines.append(f"asked {s['amount_requested']} INR a meter: no token carries that, each carries "
                     f"{s['amount_per_token']} INR")
    lines += [f"storm: {s['meters']} meters, {s['delivered_now']} delivered now, {s['already_delivered']} "
             f"delivered before, {s['retries']} retries, {len(s['failed'])} failed"]
    if s["deliveries_per_s"] is not None:
        lines.append(f"rate {s['deliveries_per_s']}/s over {s['delivery_s']} s, latency p50 {s['p50_ms']} ms, "
                     f"p99 {s['p99_ms']} ms; {s['journal_fsyncs']} journal fsyncs, head-end CPU {s['client_cpu_s']} s")
    for f in s["failed"][:LISTED]:
        lines.append(f"  not delivered: {f['meter']} after {f['attempts']} attempts: {f['error'] or f['word']}")
    if len(s["failed"]) > LISTED:
        lines.append(f"  ... and {len(s['failed']) - LISTED} more (--json lists them all)")
    lines.append(f"verified {s['verified']} meters: {s['exact']} exact")
    for p in s["problems"][:LISTED]:
        lines.append(f"  {p['meter']}: {p['verdict']} (before {p.get('before')}, sent {p.get('value')}, "
                     f"total now {p.get('total')} paisa)")
    if len(s["problems"]) > LISTED:
        lines.append(f"  ... and {len(s['problems']) - LISTED} more (--json lists them all)")
    lines.append("every meter exactly right" if s["ok"] else "NOT every meter is exactly right")
    return "\n".join(lines)


def plot(path: "str | Path", storm: Storm) -> list[Path]:
    """The storm plot: deliveries and restorations over time, and the latency histogram."""
    from bijli.tools import plot as plt

    done = sorted(d.answered - storm.mono_started for d in storm.deliveries.values()
                  if d.answered is not None and storm.journal.meter(d.serial).state is MeterState.DELIVERED)
    restored = sorted(d.answered - storm.mono_started for d in storm.deliveries.values()
                      if d.answered is not None and d.relay_on)
    end = max(done[-1] if done else 0.0, 1e-3)
    grid = [end * i / PLOT_POINTS for i in range(PLOT_POINTS + 1)]
    t0 = datetime.fromtimestamp(storm.wall_started).replace(microsecond=0)
    times = [t0 + timedelta(seconds=x) for x in grid]

    def cumulative(xs: list[float]) -> list[float]:
        out, i = [], 0
        for g in grid:
            while i < len(xs) and xs[i] <= g:
                i += 1
            out.append(float(i))
        return out

    p = Path(path)
    series = [plt.Series("delivered", "meters delivered", cumulative(done)),
              plt.Series("restored", "meters with supply on", cumulative(restored))]
    first = plt.time_series(p, times, series, title=f"recharge storm: {len(done)} tokens delivered")
    hist = p.with_name(f"{p.stem}-latency{p.suffix}")
    second = plt.histogram(hist, [x * 1000 for x in storm.stats.latencies] or [0.0],
                           title="delivery latency (connect to verdict, retries included)", unit="ms")
    return [first, second]
