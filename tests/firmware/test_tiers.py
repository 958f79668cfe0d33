"""The time-of-day registers (firmware.tiers): zones add up, demand keeps the highest, records."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from bijli.firmware.errors import StorageError
from bijli.firmware.tariff import MAX_TIERS
from bijli.firmware.tiers import TierError, TierRegisters

T0 = dt.datetime(2024, 6, 10, 9, 0)


def _shares(draw_tiers: list[int], weights: list[float]) -> list[tuple[int, float]]:
    total = sum(weights)
    return [(t, w / total) for t, w in zip(draw_tiers, weights)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5000), st.floats(0, 6000),
                          st.lists(st.tuples(st.integers(1, MAX_TIERS), st.floats(0.01, 1)), min_size=1, max_size=4)),
                max_size=30))
def test_the_zones_always_add_up_to_the_growth_of_the_totals(steps):
    regs = TierRegisters.starting_at(1000.0, 1200.0)  # energy before the registers began is in no zone
    wh, vah = 1000.0, 1200.0
    for d_wh, d_vah, parts in steps:
        wh, vah = wh + d_wh, vah + d_vah
        regs = regs.add_energy(wh, vah, _shares([t for t, _ in parts], [w for _, w in parts]))
    assert sum(regs.active_wh) == pytest.approx(wh - 1000.0, rel=1e-9, abs=1e-6)
    assert sum(regs.apparent_vah) == pytest.approx(vah - 1200.0, rel=1e-9, abs=1e-6)
    assert min(regs.active_wh) >= 0 and min(regs.apparent_vah) >= 0


def test_demand_keeps_each_zones_highest_block_and_resets_at_billing():
    regs = TierRegisters.starting_at(0.0, 0.0)
    regs = regs.note_demand(1, 2300.0, 2875.0, T0)
    regs = regs.note_demand(1, 1000.0, 3000.0, T0 + dt.timedelta(minutes=15))  # only the VA is higher
    regs = regs.note_demand(2, 4600.0, 5750.0, T0 + dt.timedelta(hours=9))
    assert (regs.md_w[0], regs.md_w_time[0]) == (2300.0, T0)
    assert (regs.md_va[0], regs.md_va_time[0]) == (3000.0, T0 + dt.timedelta(minutes=15))
    assert regs.md_w[1] == 4600.0 and regs.md_w[2:] == (0.0,) * (MAX_TIERS - 2)
    regs = regs.add_energy(100.0, 120.0, [(2, 1.0)])
    reset = regs.demand_reset()
    assert reset.md_w == (0.0,) * MAX_TIERS and reset.md_va_time == (None,) * MAX_TIERS
    assert reset.active_wh == regs.active_wh  # energy is cumulative: a billing date does not touch it


def test_a_tier_outside_one_to_eight_is_refused():
    regs = TierRegisters.starting_at(0.0, 0.0)
    for tier in (0, MAX_TIERS + 1, 1.0):
        with pytest.raises(TierError):
            regs.note_demand(tier, 1.0, 1.0, T0)
        with pytest.raises(TierError):
            regs.add_energy(10.0, 10.0, [(tier, 1.0)])


def test_the_record_round_trips_and_a_damaged_one_is_a_storage_error():
    regs = (TierRegisters.starting_at(5.0, 6.0).add_energy(105.0, 131.0, [(1, 0.25), (3, 0.75)])
            .note_demand(3, 4600.0, 5750.0, T0))
    assert TierRegisters.from_dict(regs.to_dict()) == regs
    record = regs.to_dict()
    with pytest.raises(StorageError):
        TierRegisters.from_dict({**record, "md_w": "lots"})
    with pytest.raises(StorageError):
        TierRegisters.from_dict({k: v for k, v in record.items() if k != "active_wh"})
    with pytest.raises(TierError):  # seven zones where the meter keeps eight
        TierRegisters.from_dict({**record, "active_wh": record["active_wh"][:-1]})
