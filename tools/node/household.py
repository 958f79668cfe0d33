"""Synthetic household loads: what one home draws through the day, for emulated meters.

A fleet of emulated meters that all drew the same current would read alike, and a
head-end under test would never see a realistic spread. A :class:`HouseholdLoad`
is a pure function of meter time and a seed (the meter's index in the fleet): a
daily shape with a night base load, a morning and a larger evening peak, scaled
to the home's size and shifted by its habits, varied slot by slot, with the odd
kettle or water heater. The day is cut into 15-minute slots and the load is
constant within one, so a simulated-time step can hold it steady slot by slot,
and the same seed and instant always give the same load (a restarted fleet draws
what it drew before). :class:`ConstantLoad` is the same for every meter.

A load is drawn to :data:`AMPS_STEP` (0.1 A, 23 W at 230 V: finer than any appliance
a home switches) at a power factor to :data:`PF_STEP`. That is a model's resolution,
not a meter's: the meter measures whatever it is given to the last bit. It is chosen
so that a fleet's homes draw from a few thousand distinct loads, whatever their
number: a load change measures its steady block once per process and shares it
(:class:`firmware.metrology.SteadyLoad`, ``tools.node.meter_node.STEADY_CACHE``),
where at 0.01 A and 0.001 nearly every slot of every home was a load never seen
(nine load changes in ten measured anew, a third of a household meter-day's CPU).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

SLOT = timedelta(minutes=15)
PROFILES = ("random", "constant")
AMPS_STEP = 0.1  # a household load's resolution (see above): about 230 currents a home can draw
PF_STEP = 0.01  # a home's power factor's: 14 of them between 0.86 and 0.99

# fraction of the home's peak current, by hour of the day
_SHAPE = (0.12, 0.10, 0.10, 0.10, 0.10, 0.15, 0.45, 0.80, 0.70, 0.45, 0.35, 0.35,
          0.45, 0.45, 0.35, 0.30, 0.35, 0.55, 0.85, 1.00, 0.95, 0.80, 0.50, 0.25)


@dataclass(frozen=True)
class LoadPoint:
    """A steady load: amps rms at a power factor, lagging (inductive) or leading."""

    amps: float
    pf: float = 1.0
    lagging: bool = True


def slot_start(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)


def next_slot(t: datetime) -> datetime:
    """The first slot boundary after ``t``."""
    return slot_start(t) + SLOT


def slot_edges(after: datetime, before: datetime) -> Iterator[datetime]:
    """Every slot boundary strictly between ``after`` and ``before``, in order."""
    edge = next_slot(after)
    while edge < before:
        yield edge
        edge += SLOT


def follow(load: "HouseholdLoad | ConstantLoad", applied: datetime | None,
           now: datetime) -> tuple[datetime, LoadPoint | None]:
    """The slot ``now`` is in, and the load to draw from ``now`` on if that is not the
    slot ``applied`` (None when the load of ``now``'s slot is already drawn)."""
    slot = slot_start(now)
    return slot, (None if slot == applied else load.at(now))


@dataclass(frozen=True)
class ConstantLoad:
    amps: float = 5.0
    pf: float = 1.0

    name = "constant"

    def at(self, t: datetime) -> LoadPoint:
        return LoadPoint(self.amps, self.pf)


@functools.lru_cache(maxsize=4096)
def _home(seed: int) -> tuple[float, float, float]:
    """The home's size, habits and power factor, drawn from its seed (kept for the homes
    drawn lately: a catch-up asks for every slot of one home in a row)."""
    rng = random.Random(f"home:{seed}")
    peak = rng.uniform(3.0, 14.0)  # amps at the evening peak: a flat to a house with AC
    shift = rng.uniform(-1.0, 1.0)  # hours earlier or later than the average home
    pf = rng.uniform(0.86, 0.99)
    return peak, shift, pf


@dataclass(frozen=True)
class HouseholdLoad:
    """One home's load, seeded: its size, habits and power factor are drawn once from
    the seed; each slot's variation from the seed, the date and the slot."""

    seed: int
    name = "random"

    @property
    def _home(self) -> tuple[float, float, float]:
        return _home(self.seed)

    def at(self, t: datetime) -> LoadPoint:
        peak, shift, pf = self._home
        start = slot_start(t)
        hours = (start.hour + start.minute / 60.0 - shift) % 24.0
        h0 = int(hours)
        frac = hours - h0
        shape = _SHAPE[h0] * (1.0 - frac) + _SHAPE[(h0 + 1) % 24] * frac
        rng = random.Random(f"slot:{self.seed}:{start.isoformat()}")
        amps = peak * shape * rng.uniform(0.7, 1.3)
        if rng.random() < 0.06:  # a kettle, an iron, a water heater for a while
            amps += rng.uniform(4.0, 9.0)
        return LoadPoint(_to_step(amps, AMPS_STEP), _to_step(pf, PF_STEP))


def _to_step(value: float, step: float) -> float:
    """``value`` to the nearest multiple of ``step``, as the shortest float that prints it
    (0.30000000000000004 would be a load of its own beside 0.3)."""
    return round(round(value / step) * step, 6)


def profile(kind: str, index: int) -> HouseholdLoad | ConstantLoad:
    """The load of meter ``index`` for ``--load-profile kind``."""
    if kind == "random":
        return HouseholdLoad(index)
    if kind == "constant":
        return ConstantLoad()
    raise ValueError(f"load profile must be one of {', '.join(PROFILES)}, not {kind!r}")
