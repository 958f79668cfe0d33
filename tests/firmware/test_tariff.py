"""Tariff: bills to the paisa, time-of-day splits, slabs, passive activation."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

from bijli.firmware.errors import ConfigError, StorageError
from bijli.firmware.tariff import (
    EnergyKind,
    Tariff,
    TariffError,
    TariffState,
)

H = dt.timedelta(hours=1)

SLAB_TABLE = {
    "kind": "slabs",
    "slabs": [
        {"upto_kwh": 100, "rate": "4.50"},
        {"upto_kwh": 200, "rate": "5.50"},
        {"upto_kwh": 400, "rate": "7.00"},
        {"rate": "8.00"},
    ],
    "fixed_charge_per_day": "1.85",
    "duty_percent": "6",
    "billing_day": 1,
}


def _hourly_wh(hour: int) -> str:
    # night 150 Wh, day 300 Wh, evening 600.7 Wh per hour
    return "150" if hour < 6 else "300" if hour < 18 else "600.7"


def test_a_month_of_hourly_consumption_is_billed_to_the_paisa():
    tariff = Tariff.from_table(SLAB_TABLE)
    start = dt.datetime(2024, 6, 1)
    state = TariffState.initial(start)
    assert tariff.next_billing_time(state) == dt.datetime(2024, 7, 1)
    charges = []
    t = start
    while t < dt.datetime(2024, 7, 1):
        c, state = tariff.charge_energy(state, D(_hourly_wh(t.hour)), t, t + H)
        charges.append(c)
        t += H
        if t.hour == 0:
            c, state = tariff.charge_fixed(state, t)
            charges.append(c)
            # the state survives a trip through storage without losing a remainder
            state = TariffState.from_dict(json.loads(json.dumps(state.to_dict())))
    state, bill = tariff.close_billing_period(state, t)

    # By hand: a day is 6*150 + 12*300 + 6*600.7 = 900 + 3600 + 3604.2 = 8104.2 Wh,
    # June has 30 days: 243126 Wh = 243.126 kWh.
    assert bill.kwh == D("243.126")
    # slab 0-100:    100     kWh * 4.50 = 450.00
    # slab 100-200:  100     kWh * 5.50 = 550.00
    # slab 200-400:   43.126 kWh * 7.00 = 301.882  -> 301.88
    assert [(ln.label, ln.quantity, ln.amount) for ln in bill.lines if ln.kind == "energy"] == [
        ("0-100 kWh", D("100"), D("450.00")),
        ("100-200 kWh", D("100"), D("550.00")),
        ("200-400 kWh", D("43.126"), D("301.88")),
    ]
    assert bill.energy_charge == D("1301.88")
    # fixed: 30 days * 1.85 = 55.50
    assert bill.fixed_charge == D("55.50")
    # duty: 6 % of (1301.88 + 55.50 = 1357.38) = 81.4428 -> 81.44
    assert bill.duty == D("81.44")
    # total: 1357.38 + 81.44
    assert bill.total == D("1438.82")
    # and what the account was charged, hour by hour, adds up to the same paisa
    assert sum(charges) == D("1438.82")
    assert all(c >= 0 and c == c.quantize(D("0.01")) for c in charges)
    # an hourly charge is not a whole number of paisa (e.g. the first hour:
    # 0.150 kWh * 4.50 * 1.06 = 0.7155), so the paisa-exact sum is the remainders' doing
    assert charges[0] in (D("0.72"), D("0.71"))
    # the new period starts empty at the billing instant
    assert state.kwh == 0 and state.charged == 0 and state.period_start == dt.datetime(2024, 7, 1)
    assert tariff.next_billing_time(state) == dt.datetime(2024, 8, 1)
    assert bill.to_dict()["total"] == "1438.82"


def test_slab_boundary_inside_one_interval_is_split_by_kwh():
    tariff = Tariff.from_table({**SLAB_TABLE, "fixed_charge_per_day": "0", "duty_percent": "0"})
    state = TariffState.initial(dt.datetime(2024, 6, 1))
    _, state = tariff.charge_energy(state, D("99500"), dt.datetime(2024, 6, 1), dt.datetime(2024, 6, 5))
    c, state = tariff.charge_energy(state, D("1000"), dt.datetime(2024, 6, 5), dt.datetime(2024, 6, 5, 1))
    # 0.5 kWh * 4.50 = 2.25 left in slab 1, 0.5 kWh * 5.50 = 2.75 in slab 2
    assert c == D("5.00")
    assert [(ln.label, ln.quantity) for ln in state.lines] == [("0-100 kWh", D("100.0")), ("100-200 kWh", D("0.5"))]


def test_tod_boundaries_split_an_interval_in_proportion_to_time():
    tariff = Tariff.from_table({"kind": "tod", "duty_percent": "0", "fixed_charge_per_day": "0"})
    mon = dt.datetime(2024, 6, 3)  # a Monday, demo workday: normal, 09:00 solar, 17:00 peak, 23:00 normal
    state = TariffState.initial(mon)
    c, state = tariff.charge_energy(state, D("1000"), mon.replace(hour=16, minute=30), mon.replace(hour=17, minute=30))
    # 500 Wh solar * 4.80 = 2.40, 500 Wh peak * 7.20 = 3.60
    assert c == D("6.00")
    assert {ln.label: ln.quantity for ln in state.lines} == {"solar": D("0.5"), "peak": D("0.5")}

    state = TariffState.initial(mon)
    c, state = tariff.charge_energy(state, 1000.0, mon.replace(hour=8), mon.replace(hour=18))
    # 08-09 normal 100 Wh * 6.00 = 0.60; 09-17 solar 800 Wh * 4.80 = 3.84; 17-18 peak 100 Wh * 7.20 = 0.72
    assert {ln.label: ln.quantity for ln in state.lines} == {"normal": D("0.1"), "solar": D("0.8"), "peak": D("0.1")}
    assert c == D("5.16")

    # across midnight into Saturday (rest day: normal all day)
    fri = dt.datetime(2024, 6, 7, 22)
    state = TariffState.initial(fri)
    c, state = tariff.charge_energy(state, D("3000"), fri, fri + 3 * H)
    # 22-23 peak 1 kWh * 7.20; 23-24 normal 1 kWh * 6.00; Sat 00-01 normal 1 kWh * 6.00
    assert c == D("19.20")
    assert {ln.label: ln.quantity for ln in state.lines} == {"peak": D("1"), "normal": D("2")}


def test_tier_shares_split_where_the_prices_split_and_number_tiers_by_first_appearance():
    tariff = Tariff.from_table({"kind": "tod", "duty_percent": "0", "fixed_charge_per_day": "0"})
    # the demo calendar: workday normal (1), 09:00 solar (2), 17:00 peak (3); rest day normal
    assert tariff.active.tier_names == ("normal", "solar", "peak")
    mon = dt.datetime(2024, 6, 3)
    assert tariff.tier_shares(mon.replace(hour=8), mon.replace(hour=18)) == [(1, 0.1), (2, 0.8), (3, 0.1)]
    assert tariff.tier_shares(mon.replace(hour=12), mon.replace(hour=12)) == [(2, 1.0)]  # an instant
    assert tariff.tier_shares(dt.datetime(2024, 6, 8, 12), dt.datetime(2024, 6, 8, 13)) == [(1, 1.0)]  # Saturday
    # the shares price the same energy the bill does: solar's share of 1 kWh is its bill line
    _, state = tariff.charge_energy(TariffState.initial(mon), D("1000"), mon.replace(hour=8), mon.replace(hour=18))
    assert {ln.label: float(ln.quantity) for ln in state.lines} == {"normal": 0.1, "solar": 0.8, "peak": 0.1}
    # without time of day there is one zone
    flat = Tariff.from_table({"kind": "flat"})
    assert flat.active.tier_names == () and flat.tier_shares(mon, mon + H) == [(1, 1.0)]
    with pytest.raises(TariffError):
        tariff.tier_shares(mon + H, mon)


def test_a_calendar_of_more_than_eight_tiers_is_refused():
    days = {"d": [[f"{h:02d}:00", "5.00", f"tier{h}"] for h in range(9)]}
    with pytest.raises(ConfigError) as err:
        Tariff.from_table({"kind": "tod", "tod": {"days": days}})
    assert err.value.key == "tariff.tod.days" and "TZ1..TZ8" in str(err.value)
    days["d"].pop()
    assert len(Tariff.from_table({"kind": "tod", "tod": {"days": days}}).active.tier_names) == 8


def test_tod_special_day_uses_its_own_day_schedule():
    tariff = Tariff.from_table({"kind": "tod", "duty_percent": "0"})
    # 15 Aug 2024 is a Thursday; noon on a workday is solar (4.80), on the holiday normal (6.00)
    noon = dt.datetime(2024, 8, 15, 12)
    c, _ = tariff.charge_energy(TariffState.initial(noon), D("1000"), noon, noon + H)
    assert c == D("6.00")
    c, _ = tariff.charge_energy(TariffState.initial(noon), D("1000"), noon + dt.timedelta(days=1),
                                noon + dt.timedelta(days=1, hours=1))
    assert c == D("4.80")


def test_tod_seasons_wrap_round_the_year():
    tariff = Tariff.from_table({
        "kind": "tod", "duty_percent": "0",
        "tod": {
            "seasons": [{"start": "10-01", "week": "winter"}, {"start": "04-01", "week": "summer"}],
            "weeks": {"summer": ["s"] * 7, "winter": ["w"] * 7},
            "days": {"s": [["00:00", "7.00", "summer"]], "w": [["00:00", "5.00", "winter"]]},
        },
    })
    prices = {}
    for d in (dt.date(2024, 1, 15), dt.date(2024, 3, 31), dt.date(2024, 4, 1), dt.date(2024, 9, 30),
              dt.date(2024, 10, 1), dt.date(2024, 12, 31)):
        t = dt.datetime.combine(d, dt.time(12))
        prices[d.isoformat()] = tariff.charge_energy(TariffState.initial(t), D("1000"), t, t + H)[0]
    assert prices == {"2024-01-15": D("5.00"), "2024-03-31": D("5.00"), "2024-04-01": D("7.00"),
                      "2024-09-30": D("7.00"), "2024-10-01": D("5.00"), "2024-12-31": D("5.00")}


def test_passive_tariff_activates_at_its_time():
    tariff = Tariff.from_table({
        "kind": "flat", "flat_rate": "5.00", "fixed_charge_per_day": "1.00", "duty_percent": "0",
        "passive": {"activation_time": dt.datetime(2024, 7, 1), "flat_rate": "6.00", "fixed_charge_per_day": "2.00"},
    })
    t0 = dt.datetime(2024, 6, 30, 23)
    assert tariff.profile_at(t0).flat_rate == D("5.00")
    assert tariff.profile_at(dt.datetime(2024, 7, 1)).flat_rate == D("6.00")
    state = TariffState.initial(dt.datetime(2024, 6, 29))
    c, state = tariff.charge_energy(state, D("2000"), t0, t0 + 2 * H)
    # 1 kWh before 00:00 at 5.00 and 1 kWh after at 6.00
    assert c == D("11.00")
    c, state = tariff.charge_fixed(state, dt.datetime(2024, 7, 3, 8))
    # 29 and 30 June at 1.00, 1 and 2 July at 2.00
    assert c == D("6.00")
    assert tariff.activated(t0) is tariff
    promoted = tariff.activated(dt.datetime(2024, 7, 1))
    assert promoted.passive is None and promoted.active.flat_rate == D("6.00")
    assert Tariff.from_table(tariff.to_table()) == tariff


def test_fixed_charge_only_for_whole_days_and_close_requires_it():
    tariff = Tariff.from_table({**SLAB_TABLE, "duty_percent": "0"})
    state = TariffState.initial(dt.datetime(2024, 6, 1, 15))
    c, state = tariff.charge_fixed(state, dt.datetime(2024, 6, 1, 23, 59))
    assert c == 0
    with pytest.raises(TariffError):
        tariff.close_billing_period(state, dt.datetime(2024, 6, 3))
    c, state = tariff.charge_fixed(state, dt.datetime(2024, 6, 3))
    assert c == D("3.70")  # 1 and 2 June at 1.85
    state, bill = tariff.close_billing_period(state, dt.datetime(2024, 6, 3))
    assert bill.total == D("3.70") and bill.fixed_charge == D("3.70")


def test_bad_energy_and_time_are_refused():
    tariff = Tariff.from_table({})
    s = TariffState.initial(dt.datetime(2024, 1, 1))
    t = dt.datetime(2024, 1, 1, 1)
    with pytest.raises(TariffError):
        tariff.charge_energy(s, D("-1"), t, t + H)
    with pytest.raises(TariffError):
        tariff.charge_energy(s, float("nan"), t, t + H)
    with pytest.raises(TariffError):
        tariff.charge_energy(s, D("1"), t + H, t)
    # an instantaneous reading is charged at that instant's price
    c, _ = tariff.charge_energy(s, D("1000"), t, t)
    assert c == D("4.77")  # 1 kWh * 4.50 * 1.06


@pytest.mark.parametrize(
    "table, key",
    [
        ({"kind": "stepped"}, "tariff.kind"),
        ({"flat_rate": "-1"}, "tariff.flat_rate"),
        ({"flat_rate": "abc"}, "tariff.flat_rate"),
        ({"flat_rate": True}, "tariff.flat_rate"),
        ({"billing_day": 31}, "tariff.billing_day"),
        ({"colour": "red"}, "tariff.colour"),
        ({"duty_percent": "150"}, "tariff.duty_percent"),
        ({"slabs": [{"upto_kwh": 100, "rate": "1"}, {"upto_kwh": 50, "rate": "2"}, {"rate": "3"}]},
         "tariff.slabs[1].upto_kwh"),
        ({"slabs": [{"upto_kwh": 100, "rate": "1"}]}, "tariff.slabs[0].upto_kwh"),
        ({"slabs": [{"upto_kwh": 100}, {"rate": "1"}]}, "tariff.slabs[0].rate"),
        ({"kind": "tod", "tod": {"days": {"d": [["06:00", "1"]]}}}, "tariff.tod.days.d[0]"),
        ({"kind": "tod", "tod": {"days": {"d": [["00:00", "1"], ["00:00", "2"]]}}}, "tariff.tod.days.d[1]"),
        ({"kind": "tod", "tod": {"days": {"d": [["00:00", "1"]]}, "weeks": {"w": ["d"] * 6}}}, "tariff.tod.weeks.w"),
        ({"kind": "tod", "tod": {"days": {"d": [["00:00", "1"]]}, "special_days": {"2024-13-01": "d"}}},
         "tariff.tod.special_days.2024-13-01"),
        ({"kind": "tod", "tod": {"days": {"d": [["00:00", "1"]]}, "special_days": {"2024-01-01": "x"}}},
         "tariff.tod.special_days.2024-01-01"),
        ({"passive": {"flat_rate": "6"}}, "tariff.passive.activation_time"),
        ({"passive": {"activation_time": "soon"}}, "tariff.passive.activation_time"),
        ({"passive": {"activation_time": "2024-07-01T00:00", "flat_rate": "-6"}}, "tariff.passive.flat_rate"),
    ],
)
def test_config_errors_name_the_key(table, key):
    with pytest.raises(ConfigError) as info:
        Tariff.from_table(table)
    assert info.value.key == key


def test_demo_default_and_round_trips():
    for table in ({}, {"kind": "tod"}, {"kind": "flat", "flat_rate": 6.25}, SLAB_TABLE):
        tariff = Tariff.from_table(table)
        assert Tariff.from_table(json.loads(json.dumps(tariff.to_table()))) == tariff
    assert Tariff.from_table({}).active.kind is EnergyKind.SLABS


def test_corrupt_state_is_a_storage_error():
    tariff = Tariff.from_table({})
    t = dt.datetime(2024, 1, 1)
    _, s = tariff.charge_energy(TariffState.initial(t), D("1234"), t, t + H)
    d = s.to_dict()
    assert TariffState.from_dict(d) == s
    with pytest.raises(StorageError):
        TariffState.from_dict({**d, "charged": "999"})
    with pytest.raises(StorageError):
        TariffState.from_dict({**d, "kwh": "lots"})
    with pytest.raises(StorageError):
        TariffState.from_dict({k: v for k, v in d.items() if k != "lines"})


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["tod", "slabs", "flat"]),
    steps=st.lists(
        st.tuples(st.integers(0, 5_000_000), st.integers(0, 6 * 3600), st.booleans()), min_size=1, max_size=30
    ),
)
def test_charges_always_add_up_to_the_running_bill(kind, steps):
    tariff = Tariff.from_table({"kind": kind, "passive": {"activation_time": "2024-06-20T13:17", "flat_rate": "7.1",
                                                          "duty_percent": "5"}})
    t = dt.datetime(2024, 6, 18, 7, 3)
    state = TariffState.initial(t)
    total_charged = D(0)
    total_wh = D(0)
    for milli_wh, seconds, fixed in steps:
        wh = D(milli_wh) / 1000
        end = t + dt.timedelta(seconds=seconds)
        c, state = tariff.charge_energy(state, wh, t, end)
        assert c >= 0 and c == c.quantize(D("0.01"))
        total_charged += c
        total_wh += wh
        t = end
        if fixed:
            c, state = tariff.charge_fixed(state, t)
            assert c >= 0
            total_charged += c
    assert total_charged == tariff.bill_so_far(state) == state.charged
    assert state.kwh * 1000 == total_wh  # energy is conserved exactly across every split
    assert sum(ln.quantity for ln in state.lines if ln.kind == "energy") * 1000 == total_wh
