"""The storm's scheduler: deliver every journaled token with a bounded number of
concurrent associations, retry with back-off, show progress, then verify every meter.

``concurrency`` workers take meters from one queue (a task per worker, not per meter:
250,000 meters are a list, not 250,000 tasks). A delivery that fails in a way another
try can mend (connection refused or reset, a timeout, the decoder locked out) waits
``min(cap, base * 2**attempt)`` scaled by a random factor in [0.5, 1.0) ("equal
jitter", so a fleet process that comes back is not hit by every retry at once) and
tries again, up to ``retries`` more times; a meter still undelivered stays in doubt in
the journal and the next run resumes it. After the deliveries, every meter with a
token is read back (:func:`~bijli.tools.storm.delivery.read_credit`): its total
recharged must be exactly the total before plus the token's value.

Both phases take the meters in *waves* when the manifest says its shards share one
host (``shards`` and ``host_cores``, :mod:`tools.fleet.manifest`): the meters of
``shards_at_once`` shard processes (by default one per core of that host) first, then
the next few, so that the concurrent associations keep a few processes busy rather
than every one of them. Spread over 14 shard processes on two cores, each process woke
for one request at a time with its caches cold: a meter cost a shard 12.8 ms of CPU
where, taken shard by shard, it cost 6.9 (28,000 meters, the same storm, side by side).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

from bijli.tools.storm import DeliveryError
from bijli.tools.storm.delivery import DELIVERED_WORDS, FINAL_REFUSALS, MeterTarget, deliver, read_credit
from bijli.tools.storm.journal import Journal, MeterState

BACKOFF_BASE = 0.05  # seconds
BACKOFF_CAP = 5.0


@dataclass(frozen=True)
class Options:
    concurrency: int = 32
    retries: int = 5
    timeout: float = 10.0
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP
    verify: bool = True
    shards: int = 1  # the fleet's N: meter i is served by shard i % N
    shards_at_once: int | None = None  # the shards whose meters are taken at a time (None: all of them)


def in_waves(targets: list[MeterTarget], shards: int, at_once: int | None) -> list[MeterTarget]:
    """``targets`` in the order the storm takes them: the meters of shards 0..at_once-1,
    interleaved by index, then those of the next ``at_once`` shards, and so on (shard
    ``index % shards``); as they are when every shard is taken at once."""
    if shards <= 1 or at_once is None or at_once >= shards:
        return list(targets)
    return sorted(targets, key=lambda t: ((t.index % shards) // at_once, t.index))


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """The pause before retry ``attempt`` (1-based): exponential, capped, equal jitter."""
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + rng.random() / 2)


@dataclass(slots=True)
class Delivery:
    """One meter's delivery in this run, for the summary and the plot (one per meter: slots)."""

    serial: str
    word: str | None = None
    attempts: int = 0
    started: float | None = None  # monotonic, when this run took the meter up
    answered: float | None = None  # monotonic, verdict read
    relay_on: bool | None = None
    error: str | None = None

    @property
    def latency(self) -> float | None:
        return None if self.started is None or self.answered is None else self.answered - self.started


@dataclass
class Stats:
    total: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0
    retries: int = 0
    latencies: list[float] = field(default_factory=list)  # in the order the verdicts came
    # ``latencies`` sorted, up to ``_sorted_n`` of them: the progress line asks for two
    # quantiles every 0.25 s on a terminal, and sorting 250,000 latencies afresh each time
    # was a tenth of a second of the storm's CPU per line; a sorted run with the new ones
    # after it is merged by the sort in about the time of one pass
    _sorted: list[float] = field(default_factory=list, init=False, repr=False)
    _sorted_n: int = field(default=0, init=False, repr=False)

    def quantile(self, q: float) -> float | None:
        xs, n = self._sorted, len(self.latencies)
        if not n:
            return None
        if self._sorted_n != n:
            if self._sorted_n > n:  # the list was replaced or cut: start again
                xs.clear()
                self._sorted_n = 0
            xs.extend(self.latencies[self._sorted_n:])
            xs.sort()
            self._sorted_n = n
        return xs[min(n - 1, int(q * n))]

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        ms = lambda x: "-" if x is None else f"{x * 1000:.0f} ms"  # noqa: E731
        return (f"storm: {self.done}/{self.total} delivered, {self.done / elapsed:.1f}/s, p50 {ms(p50)}, "
                f"p99 {ms(p99)}, {self.retries} retries, {self.failed} failed, {elapsed:.1f} s")


class Progress:
    """A live line on a terminal (rewritten in place), plain lines every ``every`` s otherwise."""

    def __init__(self, stats: Stats, out: TextIO | None = sys.stderr, every: float | None = None):
        self.stats, self.out = stats, out
        self.tty = bool(out is not None and out.isatty())
        self.every = every if every is not None else (0.25 if self.tty else 5.0)

    async def run(self, stop: asyncio.Event) -> None:
        if self.out is None:
            return
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.every)
            except asyncio.TimeoutError:
                pass
            self.show(final=stop.is_set())

    def show(self, final: bool = False) -> None:
        if self.out is None:
            return
        if self.tty:
            self.out.write("\r\x1b[K" + self.stats.line() + ("\n" if final else ""))
        else:
            self.out.write(self.stats.line() + "\n")
        self.out.flush()


class Storm:
    def __init__(self, targets: list[MeterTarget], journal: Journal, options: Options, *,
                 progress_out: TextIO | None = sys.stderr, progress_every: float | None = None,
                 rng: random.Random | None = None, on_delivered: Callable[[Delivery], None] | None = None):
        self.targets = targets
        self.journal = journal
        self.options = options
        self.rng = rng or random.Random()
        self.deliveries: dict[str, Delivery] = {}
        self._order = in_waves(targets, options.shards, options.shards_at_once)  # both phases take them so
        pending = [t for t in self._order if journal.meter(t.serial).state in (MeterState.VENDED, MeterState.IN_DOUBT)]
        self.stats = Stats(len(pending))
        self._pending = pending
        self.progress = Progress(self.stats, progress_out, progress_every)
        self.on_delivered = on_delivered
        self.wall_started = time.time()
        self.mono_started = time.monotonic()
        self.delivery_cpu = self.verify_cpu = 0.0

    async def run(self) -> dict[str, dict]:
        """Deliver what is pending, then verify; per meter its verification record."""
        stop = asyncio.Event()
        cpu = time.process_time()
        shown = asyncio.create_task(self.progress.run(stop))
        queue: asyncio.Queue[MeterTarget] = asyncio.Queue()
        for t in self._pending:
            queue.put_nowait(t)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(max(1, min(self.options.concurrency,
                                                                                       len(self._pending) or 1)))]
        try:
            await asyncio.gather(*workers)
            await self.journal.sync()  # the deferred verdicts on disk before the phase counts as done
        finally:
            stop.set()
            await shown
        self.delivered_at = time.monotonic()
        self.delivery_cpu = time.process_time() - cpu  # this process (head-end + journal), delivery phase only
        if not self.options.verify:
            return {}
        cpu = time.process_time()
        verified = await self.verify()
        self.verify_cpu = time.process_time() - cpu  # the read-back phase, likewise
        return verified

    async def _worker(self, queue: "asyncio.Queue[MeterTarget]") -> None:
        while True:
            try:
                target = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await self._deliver(target)

    async def _deliver(self, target: MeterTarget) -> None:
        rec = self.journal.meter(target.serial)
        d = self.deliveries[target.serial] = Delivery(target.serial)
        assert rec.token is not None
        d.started = time.monotonic()  # latency counts failed attempts and back-off too
        for attempt in range(1, self.options.retries + 2):
            d.attempts = attempt
            if attempt > 1:
                self.stats.retries += 1
                await asyncio.sleep(backoff(attempt - 1, self.options.backoff_base, self.options.backoff_cap, self.rng))

            async def on_before(total: int) -> None:
                await self.journal.commit({"kind": "before", "meter": target.serial, "total": total})

            # whether the token may have reached the meter before this attempt: only then is
            # 'used' our own earlier delivery; on a first send it is another token's TID
            sent_before = rec.state is MeterState.IN_DOUBT
            try:
                verdict = await deliver(target, rec.token, timeout=self.options.timeout,
                                        on_before=None if sent_before else on_before)
            except DeliveryError as exc:
                d.error = str(exc)
                if not exc.retry:
                    break
                continue
            d.word = verdict.word
            if verdict.word in DELIVERED_WORDS or verdict.word in FINAL_REFUSALS:
                delivered = verdict.word in DELIVERED_WORDS and (verdict.word != "used" or sent_before)
                kind = "delivered" if delivered else "refused"
                # deferred (journal module): a verdict lost to a crash leaves the meter in doubt,
                # and the same token sent again is answered 'used'
                await self.journal.commit({"kind": kind, "meter": target.serial, "word": verdict.word,
                                           "attempts": attempt}, durable=False)
                d.answered, d.relay_on, d.error = verdict.answered, verdict.relay_on, None
                if kind == "delivered":
                    self.stats.done += 1
                    self.stats.latencies.append(verdict.answered - d.started)
                    if self.on_delivered:
                        self.on_delivered(d)
                elif verdict.word == "used":
                    d.error = ("the meter had used this TID before the storm first sent the token: another "
                               "token with the same TID reached it (a vend journal not shared?)")
                    self.stats.failed += 1
                else:
                    d.error = f"the meter refused the token: {verdict.word}"
                    self.stats.failed += 1
                return
            d.error = f"the meter answered {verdict.word!r}"  # locked_out or unknown: try again later
        self.stats.failed += 1

    async def verify(self) -> dict[str, dict]:
        """Read every meter with a token back; exact means total == before + value."""
        results: dict[str, dict] = {}
        queue: asyncio.Queue[MeterTarget] = asyncio.Queue()
        for t in self._order:
            if self.journal.meter(t.serial).token is not None:
                queue.put_nowait(t)

        async def worker() -> None:
            while True:
                try:
                    t = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                results[t.serial] = await self._verify_one(t)

        await asyncio.gather(*(worker() for _ in range(max(1, self.options.concurrency))))
        await self.journal.sync()
        return results

    async def _verify_one(self, t: MeterTarget) -> dict:
        rec = self.journal.meter(t.serial)
        reading, error = None, None
        for attempt in range(1, self.options.retries + 2):
            if attempt > 1:
                await asyncio.sleep(backoff(attempt - 1, self.options.backoff_base, self.options.backoff_cap, self.rng))
            try:
                reading = await read_credit(t, timeout=self.options.timeout)
                break
            except DeliveryError as exc:
                error = str(exc)
                if not exc.retry:
                    break
        out = {"kind": "verify", "meter": t.serial, "index": t.index, "state": rec.state.value, "word": rec.word,
               "before": rec.before, "value": rec.value_paisa}
        if reading is None:
            out.update(ok=False, verdict="unreadable", error=error)
        else:
            out.update(total=reading.total_recharged, balance=reading.balance, relay_on=reading.relay_on)
            out.update(judge(rec.state, rec.before, rec.value_paisa, reading.total_recharged))
        await self.journal.commit(out, durable=False)  # a record of what was read: read again if lost
        return out


def judge(state: MeterState, before: int | None, value: int | None, total: int) -> dict:
    """Whether one meter got exactly its token: nothing lost, nothing doubled."""
    if before is None or value is None:
        return {"ok": False, "verdict": "never sent"}
    got = total - before
    if got == value:
        return {"ok": state is MeterState.DELIVERED, "verdict": "exact" if state is MeterState.DELIVERED
                else f"credited but {state.value}"}
    if got == 0:
        return {"ok": False, "verdict": "lost" if state is MeterState.DELIVERED else f"not credited ({state.value})"}
    if got > value:
        return {"ok": False, "verdict": f"over-credited by {got - value} paisa"}
    return {"ok": False, "verdict": f"credited {got} paisa of {value}"}
