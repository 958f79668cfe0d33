"""A shard's fleet console: the words of ``bijli fleet``'s console over a fleet engine.

``bijli fleet --shard K/N`` answers the console of the per-meter-file fleet
(:class:`tools.node.fleet_console.FleetCommands`: ``status``, ``meter I COMMAND``,
``step``, ``time``, ``help``, ``quit``) with the engine underneath: ``meter I`` observes
meter I (hydrated and advanced to now, then dormant again when the cache needs room),
``status`` observes every meter of the shard in turn, and ``step`` is the engine's
lazy step (a mark on the shared clock: instant, each meter catches up when next
observed). One word is the shard's own: ``advance``, every meter of the shard walked
to now, for a bench or a head-end's read-back that wants every meter's registers,
profiles and relay at the same instant without observing them one by one; it runs in
commit groups (:meth:`FleetEngine.advance_slices`) and stops within a second of a signal.
``summary [SINCE]`` is ``advance`` that also reads each meter in the same pass and answers
one JSON line for the whole shard (:mod:`tools.fleet.summary`: supply, debt, load-switch
events after SINCE by time): a fleet-wide check without a console line per meter.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterator

from bijli.firmware.console import Reply
from bijli.firmware.errors import CommandError
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.fleet.summary import ShardSummary
from bijli.tools.node.fleet_console import FleetCommands, fit_member_console


class ShardConsole(FleetCommands):
    """The fleet console over ``engine``; ``endpoints`` (index -> (host, port)) once served."""

    def __init__(self, engine: FleetEngine, endpoints: dict[int, tuple[str, int]] | None = None):
        super().__init__(engine.clock)
        self.engine = engine
        self.endpoints = endpoints or {}
        self.add_command("advance", self._advance, "advance",
                         "walk every meter of the shard to now (commit groups; what `step` leaves to each "
                         "meter's next observation)")
        self.add_command("summary", self._summary, "summary [SINCE]",
                         "advance, and one JSON line for the shard: supply, debt, load-switch events after "
                         "SINCE (ISO time) by time")

    def rows(self) -> list[dict]:
        out = []
        for index in self.engine.indices:
            with self.engine.observe(index) as node:
                out.append({"index": index, "port": self.endpoints.get(index, ("", None))[1],
                            "load_profile": self.engine.load_profile_of(index), **node.meter.status()})
        return out

    def meter_reply(self, index: int, line: str) -> Reply:
        with self.engine.observe(index) as node:
            # a hydrated meter's console is its own, made anew: fitted at each line
            fit_member_console(node.console, self._step, lambda: self.engine.typed_load(index))
            return node.execute(line)

    def step_slices(self, seconds: float) -> Iterator[float]:
        self.engine.step(seconds)
        yield 1.0

    def _advance(self, words: list[str]) -> Reply:
        if words:
            raise CommandError("advance takes no arguments")
        count = len(self.engine.indices)
        return self.run_later("fleet advance", self.engine.advance_slices,
                              lambda: f"{count} meters at {self.clock.now().isoformat(timespec='seconds')}")

    def _summary(self, words: list[str]) -> Reply:
        if len(words) > 1:
            raise CommandError("summary takes at most one SINCE (an ISO time)")
        since = None
        if words:
            try:
                since = datetime.fromisoformat(words[0])
            except ValueError:
                raise CommandError(f"not an ISO time: {words[0]!r}") from None
            if since.tzinfo is not None:
                raise CommandError("SINCE is the meters' local time, without a UTC offset")
        summary = ShardSummary(since)
        return self.run_later("fleet summary", lambda: self.engine.advance_slices(visit=summary.visit),
                              lambda: json.dumps({"time": self.clock.now().isoformat(timespec="seconds"),
                                                  **summary.as_dict()}, sort_keys=True))
