"""A shard's summary: what a fleet-wide check needs from every meter, read in one pass.

The Bakrid week (:mod:`tools.storm.scenario`) asks of every meter of a fleet: is its
supply on, is it in debt, and when did its load switch open (IS 15959 control events
301 "load switch disconnected" and 302 "connected", in the control event log
0.0.99.98.6.255)? A console line per meter (``meter I events``) costs a round trip and a
hydration per meter on top of its walk, and the same read over DLMS an association per
meter. The shard console's ``summary`` instead visits each meter once, in the pass that
walks it to now (:meth:`FleetEngine.advance_slices` with a visitor), and answers with
one JSON line whose size depends on the distinct event times, not on the meters:
counts, the disconnections and connections by time, and the meters that break a rule
named (at most :data:`NAMED` of each kind, with their count).

"Cut in friendly time" is judged here by each meter against its own friendly calendar
(:func:`firmware.prepaid.is_friendly` on its ``[prepaid]`` table: the meter's rule, IS
15959 practice), as the meter itself decided at the time.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal

from bijli.firmware.events import EventCode, LogKind
from bijli.firmware.prepaid import is_friendly

NAMED = 100  # meters named per rule broken; the count says how many in all


class ShardSummary:
    """Counts over the meters visited, and the control events after ``since`` (None: all)."""

    def __init__(self, since: datetime | None = None):
        self.since = since
        self.meters = 0
        self.supplied = 0
        self.in_debt = 0
        self.largest_debt = Decimal(0)
        self.disconnections: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.broken: dict[str, list] = {"friendly_disconnections": [], "cut_without_debt": [],
                                        "in_debt_supplied": []}
        self.broken_count: Counter[str] = Counter()

    def _name(self, rule: str, what) -> None:
        self.broken_count[rule] += 1
        if len(self.broken[rule]) < NAMED:
            self.broken[rule].append(what)

    def visit(self, index: int, node) -> None:
        """One meter, walked to now (``node`` a hydrated :class:`MeterNode`)."""
        meter = node.meter
        self.meters += 1
        on = meter.relay.output_state
        balance = meter.account.balance
        self.supplied += on
        if balance < 0:
            self.in_debt += 1
            self.largest_debt = max(self.largest_debt, -balance)
            if on:
                # supply on in debt: a friendly period or emergency credit; a scenario that knows
                # the time is not friendly reads this as a meter that should have been cut
                self._name("in_debt_supplied", index)
        elif not on:
            self._name("cut_without_debt", index)
        for event in meter.events.events(meter.storage, LogKind.CONTROL):
            if self.since is not None and event.time <= self.since:
                continue
            when = event.time.isoformat(timespec="seconds")
            if event.code is EventCode.LOAD_SWITCH_DISCONNECTED:
                self.disconnections[when] += 1
                if is_friendly(meter.config.prepaid, event.time) is not None:
                    self._name("friendly_disconnections", [index, when])
            elif event.code is EventCode.LOAD_SWITCH_CONNECTED:
                self.connections[when] += 1

    def as_dict(self) -> dict:
        return {"meters": self.meters, "supplied": self.supplied, "in_debt": self.in_debt,
                "largest_debt": str(self.largest_debt),
                "since": None if self.since is None else self.since.isoformat(timespec="seconds"),
                "disconnections": dict(sorted(self.disconnections.items())),
                "connections": dict(sorted(self.connections.items())),
                **{rule: named for rule, named in self.broken.items()},
                **{f"{rule}_count": self.broken_count[rule] for rule in self.broken}}


def merge(parts: list[dict]) -> dict:
    """The summaries of a fleet's shards as one: counts added, event times merged."""
    out: dict = {"meters": 0, "supplied": 0, "in_debt": 0, "largest_debt": "0",
                 "since": parts[0]["since"] if parts else None, "disconnections": Counter(), "connections": Counter()}
    rules = ("friendly_disconnections", "cut_without_debt", "in_debt_supplied")
    for rule in rules:
        out[rule], out[f"{rule}_count"] = [], 0
    for p in parts:
        for key in ("meters", "supplied", "in_debt", *(f"{r}_count" for r in rules)):
            out[key] += p[key]
        out["largest_debt"] = str(max(Decimal(out["largest_debt"]), Decimal(p["largest_debt"])))
        out["disconnections"].update(p["disconnections"])
        out["connections"].update(p["connections"])
        for rule in rules:
            out[rule].extend(p[rule])
    for key in ("disconnections", "connections"):
        out[key] = dict(sorted(out[key].items()))
    return out
