"""Time-of-day registers: energy and maximum demand per tariff tier (IS 15959 TZ1..TZ8).

IS 15959 meters keep, beside the total registers, the cumulative active and apparent
import energy of each tariff zone (1.0.1.8.1-8.255, 1.0.9.8.1-8.255) and the maximum
demand of each zone in the billing period with when it occurred (1.0.1.6.1-8.255,
1.0.9.6.1-8.255, Extended register), so a head-end can bill time of day from the
billing profile. The zone of an instant is the tier the Activity calendar has in
force then (:meth:`bijli.firmware.tariff.Tariff.tier_shares`); a tariff without time
of day has one zone, tier 1.

:class:`TierRegisters` is the state (one record, committed with the meter's other
state at every step). Energy is added as the growth of the total registers since the
last addition, split over the tiers in the same proportions the tariff prices it, so
the tiers always sum to the totals' growth since the registers began. Demand is
noted per block (the demand integration period): a block's demand counts in the tier
in force when the block began. Demand resets when a billing period closes; energy is
cumulative for the meter's life, like the totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterable

from bijli.firmware.errors import FirmwareError
from bijli.firmware.records import from_record, to_record
from bijli.firmware.tariff import MAX_TIERS, TIERS


class TierError(FirmwareError):
    """A tier number outside 1..MAX_TIERS, or registers that do not hold every tier."""


def _zeros() -> tuple[float, ...]:
    return (0.0,) * MAX_TIERS


def _nones() -> tuple[datetime | None, ...]:
    return (None,) * MAX_TIERS


@dataclass(frozen=True)
class TierRegisters:
    """Per-tier cumulative import energy (Wh, VAh) and the billing period's per-tier
    maximum demand (W, VA, block averages) with its time. ``counted_wh`` and
    ``counted_vah`` are the total registers at the last addition: what the next
    addition's growth is measured from."""

    counted_wh: float
    counted_vah: float
    active_wh: tuple[float, ...] = field(default_factory=_zeros)
    apparent_vah: tuple[float, ...] = field(default_factory=_zeros)
    md_w: tuple[float, ...] = field(default_factory=_zeros)
    md_w_time: tuple[datetime | None, ...] = field(default_factory=_nones)
    md_va: tuple[float, ...] = field(default_factory=_zeros)
    md_va_time: tuple[datetime | None, ...] = field(default_factory=_nones)

    def __post_init__(self) -> None:
        for name in ("active_wh", "apparent_vah", "md_w", "md_w_time", "md_va", "md_va_time"):
            if len(getattr(self, name)) != MAX_TIERS:
                raise TierError(f"TierRegisters.{name} holds {MAX_TIERS} tiers, not {len(getattr(self, name))}")

    @classmethod
    def starting_at(cls, total_wh: float, total_vah: float) -> "TierRegisters":
        """Empty registers that count from the totals ``total_wh``, ``total_vah`` on (a new
        meter, or one whose state predates them: its earlier energy belongs to no tier)."""
        return cls(total_wh, total_vah)

    def add_energy(self, total_wh: float, total_vah: float, shares: Iterable[tuple[int, float]]) -> "TierRegisters":
        """The totals now read ``total_wh``, ``total_vah``: their growth since the last
        addition goes to the tiers by ``shares`` ((tier, fraction) summing to 1)."""
        wh = max(total_wh - self.counted_wh, 0.0)
        vah = max(total_vah - self.counted_vah, 0.0)
        if wh == 0 and vah == 0:
            return replace(self, counted_wh=total_wh, counted_vah=total_vah)
        active, apparent = list(self.active_wh), list(self.apparent_vah)
        for tier, share in shares:
            _check_tier(tier)
            active[tier - 1] += wh * share
            apparent[tier - 1] += vah * share
        return replace(self, counted_wh=total_wh, counted_vah=total_vah, active_wh=tuple(active),
                       apparent_vah=tuple(apparent))

    def note_demand(self, tier: int, watts: float, va: float, at: datetime) -> "TierRegisters":
        """One block's demand (average W and VA), in ``tier``: a new maximum replaces the old."""
        _check_tier(tier)
        i = tier - 1
        if watts <= self.md_w[i] and va <= self.md_va[i]:  # no new maximum: most blocks
            return self
        md_w, md_w_time = list(self.md_w), list(self.md_w_time)
        md_va, md_va_time = list(self.md_va), list(self.md_va_time)
        if watts > md_w[i]:
            md_w[i], md_w_time[i] = watts, at
        if va > md_va[i]:
            md_va[i], md_va_time[i] = va, at
        return replace(self, md_w=tuple(md_w), md_w_time=tuple(md_w_time), md_va=tuple(md_va),
                       md_va_time=tuple(md_va_time))

    def demand_reset(self) -> "TierRegisters":
        """A new billing period: every tier's maximum demand starts again (energy goes on)."""
        return replace(self, md_w=_zeros(), md_w_time=_nones(), md_va=_zeros(), md_va_time=_nones())

    def billing_values(self) -> dict:
        """The billing profile's time-of-day columns (see :func:`.profiles.tier_columns`)."""
        out: dict = {}
        for i, tier in enumerate(TIERS):
            out[f"active_import_tz{tier}"] = round(self.active_wh[i])
            out[f"apparent_import_tz{tier}"] = round(self.apparent_vah[i])
            out[f"md_active_import_tz{tier}"] = round(self.md_w[i])
            out[f"md_active_import_tz{tier}_time"] = self.md_w_time[i]
            out[f"md_apparent_import_tz{tier}"] = round(self.md_va[i])
            out[f"md_apparent_import_tz{tier}_time"] = self.md_va_time[i]
        return out

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TierRegisters":
        return from_record(cls, d)


def _check_tier(tier: int) -> None:
    if type(tier) is not int or not 1 <= tier <= MAX_TIERS:
        raise TierError(f"no tariff tier {tier!r}: tiers are 1..{MAX_TIERS}")
