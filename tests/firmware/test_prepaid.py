"""Prepaid account: friendly credit over a holiday weekend, emergency credit,
debt recovery, low-credit events, conservation of money."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

from bijli.firmware.calendar import FriendlyReason
from bijli.firmware.errors import ConfigError, StorageError
from bijli.firmware.prepaid import (
    PrepaidAccount,
    AccountEvent,
    EmergencyState,
    EmergencyRefusal,
    EmergencyRefused,
    PrepaidConfig,
    PrepaidError,
    RechargeStatus,
    SupplyReason,
    is_friendly,
    next_friendly_boundary,
    supply_decision,
)
from bijli.firmware.tariff import Tariff, TariffState

H = dt.timedelta(hours=1)
E = AccountEvent


def test_credit_running_out_on_friday_evening_before_a_holiday_monday():
    """June 2024: Friday 14th, weekend, Monday 17th is Bakrid, Tuesday 18th is
    the next working day. The supply stays on until friendly hours end at 11:00
    on Tuesday, and comes back the moment a recharge clears the debt."""
    cfg = PrepaidConfig.from_table({})  # demo: 17:30-11:00, Sat+Sun, Indian holidays incl. 2024-06-17
    # a flat 10 INR per kWh, no fixed charge or duty: 1 kWh an hour costs 10.00
    tariff = Tariff.from_table({"kind": "flat", "flat_rate": "10", "fixed_charge_per_day": "0", "duty_percent": "0"})
    t = dt.datetime(2024, 6, 14, 9)  # Friday
    tstate = TariffState.initial(t)
    acct, outcome = PrepaidAccount.initial(cfg, t).recharge(D("100"), t)
    assert outcome.status is RechargeStatus.ACCEPTED

    seen: dict[dt.datetime, tuple[bool, SupplyReason]] = {}
    cut_at = None
    while t < dt.datetime(2024, 6, 18, 12):
        cost, tstate = tariff.charge_energy(tstate, D("1000"), t, t + H)
        t += H
        acct, _ = acct.charge(cost, t)
        decision = supply_decision(cfg, acct, t)
        seen[t] = (decision.allowed, decision.reason)
        if not decision.allowed and cut_at is None:
            cut_at = t

    # 100.00 lasts ten hours: credit until Friday 19:00, when friendly hours carry on
    assert seen[dt.datetime(2024, 6, 14, 18)] == (True, SupplyReason.CREDIT)
    assert seen[dt.datetime(2024, 6, 14, 19)] == (True, SupplyReason.FRIENDLY_HOURS)
    assert acct.balance < 0
    assert seen[dt.datetime(2024, 6, 15, 14)] == (True, SupplyReason.FRIENDLY_DAY)  # Saturday afternoon
    assert seen[dt.datetime(2024, 6, 16, 14)] == (True, SupplyReason.FRIENDLY_DAY)  # Sunday afternoon
    assert seen[dt.datetime(2024, 6, 17, 14)] == (True, SupplyReason.HOLIDAY)  # Bakrid, a Monday
    assert seen[dt.datetime(2024, 6, 18, 10)] == (True, SupplyReason.FRIENDLY_HOURS)  # Tuesday morning
    assert cut_at == dt.datetime(2024, 6, 18, 11)  # the first working hour without friendly credit
    assert seen[cut_at] == (False, SupplyReason.OUT_OF_CREDIT)
    # and not a second earlier: at 10:59:59 the supply is still on
    assert supply_decision(cfg, acct, dt.datetime(2024, 6, 18, 10, 59, 59)).allowed
    # the meter knows on Friday evening when to look again
    assert next_friendly_boundary(cfg, dt.datetime(2024, 6, 14, 19)) == dt.datetime(2024, 6, 18, 11)

    # By hand: hourly charges of 10.00 from Fri 10:00 to Tue 12:00:
    # Fri 10..23 (14) + Sat 24 + Sun 24 + Mon 24 + Tue 00..12 (13) = 99 hours = 990.00,
    # against 100.00 recharged: a debt of 890.00.
    assert acct.balance == D("-890.00") and acct.debt == D("890.00")

    t = dt.datetime(2024, 6, 18, 12, 5)
    assert not supply_decision(cfg, acct, t).allowed
    acct, outcome = acct.recharge(D("1000"), t)
    assert (outcome.to_debt, outcome.to_emergency, outcome.to_balance) == (D("890.00"), D("0"), D("110.00"))
    assert E.CREDIT_RESTORED in outcome.events
    assert supply_decision(cfg, acct, t).allowed  # at once, not at the next scheduled check
    assert supply_decision(cfg, acct, t).reason is SupplyReason.CREDIT
    assert acct.last_recharge_amount == D("1000") and acct.last_recharge_time == t
    assert acct.total_amount_at_last_recharge == D("1100")
    assert acct.current_balance_amount == D("110.00") and acct.current_balance_time == t


def test_friendly_calendar_edges():
    cfg = PrepaidConfig.from_table({})
    wed = dt.date(2024, 6, 19)  # an ordinary Wednesday
    at = lambda h, m=0, s=0: dt.datetime.combine(wed, dt.time(h, m, s))  # noqa: E731
    assert is_friendly(cfg, at(10, 59, 59)) is FriendlyReason.FRIENDLY_HOURS
    assert is_friendly(cfg, at(11)) is None
    assert is_friendly(cfg, at(17, 29, 59)) is None
    assert is_friendly(cfg, at(17, 30)) is FriendlyReason.FRIENDLY_HOURS
    assert next_friendly_boundary(cfg, at(12)) == at(17, 30)
    assert next_friendly_boundary(cfg, at(17, 30)) == at(11) + dt.timedelta(days=1)
    # every-year national holidays and dated festivals
    assert is_friendly(cfg, dt.datetime(2031, 1, 26, 14)) is FriendlyReason.HOLIDAY
    assert is_friendly(cfg, dt.datetime(2024, 3, 25, 14)) is FriendlyReason.HOLIDAY  # Holi 2024
    assert is_friendly(cfg, dt.datetime(2025, 3, 25, 14)) is None  # a Tuesday, not Holi in 2025
    # a meter that is never friendly has no boundary to wait for
    never = PrepaidConfig.from_table({"friendly_start": "00:00", "friendly_end": "00:00", "friendly_days": [],
                                      "holidays": {}})
    assert next_friendly_boundary(never, at(12)) is None


@settings(max_examples=200, deadline=None)
@given(minutes=st.integers(0, 3 * 366 * 24 * 60))
def test_next_friendly_boundary_is_the_first_change(minutes):
    cfg = PrepaidConfig.from_table({})
    now = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=minutes, seconds=minutes % 60)
    b = next_friendly_boundary(cfg, now)
    assert b is not None and b > now
    before = is_friendly(cfg, now) is not None
    assert (is_friendly(cfg, b) is not None) != before
    for probe in (now + (b - now) / 3, now + (b - now) / 2, b - dt.timedelta(microseconds=1)):
        assert (is_friendly(cfg, probe) is not None) == before


def test_emergency_credit_invoked_and_paid_back_from_the_next_recharge():
    cfg = PrepaidConfig.from_table({"emergency_credit": "50", "emergency_threshold": "20"})
    t = dt.datetime(2024, 6, 19, 12)  # Wednesday noon: not friendly
    acct, _ = PrepaidAccount.initial(cfg, t).recharge(D("100"), t)
    with pytest.raises(EmergencyRefused) as info:
        acct.invoke_emergency(t)
    assert info.value.reason is EmergencyRefusal.ABOVE_THRESHOLD
    assert acct.emergency_status is EmergencyState.ENABLED

    acct, _ = acct.charge(D("85"), t)  # 15.00 left: below the 20.00 threshold
    assert acct.emergency_status is EmergencyState.SELECTABLE
    acct, events = acct.invoke_emergency(t)
    assert events == (E.EMERGENCY_INVOKED,)
    assert acct.available_credit == D("65") and acct.emergency_status is EmergencyState.INVOKED
    with pytest.raises(EmergencyRefused) as info:
        acct.invoke_emergency(t)
    assert info.value.reason is EmergencyRefusal.ALREADY_INVOKED

    acct, events = acct.charge(D("35"), t)  # balance -20: living on emergency credit
    assert E.EMERGENCY_IN_USE in events and E.OUT_OF_CREDIT not in events
    assert acct.emergency_status is EmergencyState.IN_USE
    assert supply_decision(cfg, acct, t).reason is SupplyReason.EMERGENCY
    acct, events = acct.charge(D("30"), t)  # balance -50: emergency credit consumed
    assert E.OUT_OF_CREDIT in events
    assert acct.emergency_status is EmergencyState.CONSUMED
    assert supply_decision(cfg, acct, t).allowed is False

    acct, outcome = acct.recharge(D("200"), t)
    # By hand: 50.00 of emergency credit used, no friendly debt: 50 back, 150 credit
    assert (outcome.to_debt, outcome.to_emergency, outcome.to_balance) == (D("0"), D("50"), D("150"))
    assert E.EMERGENCY_PAID_BACK in outcome.events
    assert acct.emergency_invoked is False and acct.balance == D("150")
    assert acct.emergency_status is EmergencyState.ENABLED


def test_friendly_debt_is_recovered_before_emergency_credit():
    cfg = PrepaidConfig.from_table({})
    sat = dt.datetime(2024, 6, 22, 12)
    acct, _ = PrepaidAccount.initial(cfg, sat).recharge(D("10"), sat)
    acct, _ = acct.invoke_emergency(sat)
    acct, _ = acct.charge(D("90"), sat)  # 10 credit + 50 emergency + 30 friendly debt
    assert acct.balance == D("-80") and acct.emergency_used == D("50") and acct.debt == D("30")
    assert supply_decision(cfg, acct, sat).reason is SupplyReason.FRIENDLY_DAY
    acct, outcome = acct.recharge(D("40"), sat)
    assert (outcome.to_debt, outcome.to_emergency, outcome.to_balance) == (D("30"), D("10"), D("0"))
    assert acct.emergency_invoked and acct.available_credit == D("10")


def test_emergency_credit_invoked_automatically_when_configured():
    cfg = PrepaidConfig.from_table({"emergency_auto": True})
    t = dt.datetime(2024, 6, 19, 12)
    acct, _ = PrepaidAccount.initial(cfg, t).recharge(D("30"), t)
    acct, events = acct.charge(D("30"), t)
    assert E.EMERGENCY_INVOKED in events and E.OUT_OF_CREDIT not in events
    assert supply_decision(cfg, acct, t).reason is SupplyReason.EMERGENCY
    off = PrepaidConfig.from_table({"emergency_credit": "0"})
    acct = PrepaidAccount.initial(off, t)
    with pytest.raises(EmergencyRefused) as info:
        acct.invoke_emergency(t)
    assert info.value.reason is EmergencyRefusal.NOT_CONFIGURED


def test_low_credit_events_fire_once_per_crossing():
    cfg = PrepaidConfig.from_table({"low_credit_1": "100", "low_credit_2": "50", "emergency_credit": "0"})
    t = dt.datetime(2024, 6, 19, 12)
    acct, _ = PrepaidAccount.initial(cfg, t).recharge(D("200"), t)
    fired: list[AccountEvent] = []
    for _ in range(25):  # 200 -> -50 in steps of 10
        acct, events = acct.charge(D("10"), t)
        fired += events
    assert fired == [E.LOW_CREDIT_1, E.LOW_CREDIT_2, E.OUT_OF_CREDIT]
    acct, outcome = acct.recharge(D("300"), t)  # back to 250: every warning re-armed
    assert E.CREDIT_RESTORED in outcome.events
    fired = []
    for _ in range(21):  # 250 -> 40
        acct, events = acct.charge(D("10"), t)
        fired += events
    assert fired == [E.LOW_CREDIT_1, E.LOW_CREDIT_2]
    # a recharge that leaves the credit below both levels neither re-arms nor fires
    acct, outcome = acct.recharge(D("5"), t)
    assert outcome.events == (E.RECHARGED,)


def test_max_debt_cuts_even_in_a_friendly_period():
    cfg = PrepaidConfig.from_table({"max_debt": "100", "emergency_credit": "0"})
    sun = dt.datetime(2024, 6, 23, 14)
    acct, _ = PrepaidAccount.initial(cfg, sun).recharge(D("10"), sun)
    acct, _ = acct.charge(D("110"), sun)  # debt 100: at the cap, not beyond it
    assert supply_decision(cfg, acct, sun).reason is SupplyReason.FRIENDLY_DAY
    acct, events = acct.charge(D("0.01"), sun)
    assert events == (E.MAX_DEBT_EXCEEDED,)
    assert supply_decision(cfg, acct, sun).reason is SupplyReason.MAX_DEBT
    assert not supply_decision(cfg, acct, sun).allowed


def test_overflow_keeps_the_account_unchanged_and_resolution_is_checked():
    cfg = PrepaidConfig.from_table({"max_balance": "1000"})
    t = dt.datetime(2024, 6, 19, 12)
    acct, _ = PrepaidAccount.initial(cfg, t).recharge(D("600"), t)
    same, outcome = acct.recharge(D("400.01"), t)
    assert outcome.status is RechargeStatus.OVERFLOW and same is acct
    acct, outcome = acct.recharge(D("400"), t)
    assert outcome.status is RechargeStatus.ACCEPTED and acct.balance == D("1000")
    for bad in (D("10.005"), D("0"), D("-5"), 5.0, "x"):
        with pytest.raises(PrepaidError):
            acct.recharge(bad, t)
    with pytest.raises(PrepaidError):
        acct.charge(D("-1"), t)
    kwh = PrepaidConfig.from_table({"unit": "kWh"})
    with pytest.raises(PrepaidError):
        PrepaidAccount.initial(kwh, t).recharge(D("10.25"), t)  # STS kWh credit comes in 0.1 kWh
    assert PrepaidAccount.initial(kwh, t).recharge(D("10.2"), t)[0].balance == D("10.2")
    assert kwh.display(D("10.25")) == "10.3 kWh"


def test_clear_credit_zeroes_credit_or_debt():
    cfg = PrepaidConfig.from_table({})
    t = dt.datetime(2024, 6, 19, 12)
    acct, _ = PrepaidAccount.initial(cfg, t).recharge(D("500"), t)
    acct, events = acct.clear_credit(t)
    assert acct.balance == 0 and E.CREDIT_CLEARED in events and E.OUT_OF_CREDIT in events
    acct, _ = acct.charge(D("70"), t)
    acct, _ = acct.clear_credit(t)
    assert acct.balance == 0 and acct.total_cleared == D("430")
    assert acct.balance == acct.total_recharged - acct.total_charged - acct.total_cleared


def test_postpaid_never_disconnects():
    cfg = PrepaidConfig.from_table({"payment_mode": "postpaid"})
    t = dt.datetime(2024, 6, 19, 12)
    acct, _ = PrepaidAccount.initial(cfg, t).charge(D("5000"), t)
    assert supply_decision(cfg, acct, t).reason is SupplyReason.POSTPAID


@pytest.mark.parametrize(
    "table, key",
    [
        ({"unit": "USD"}, "prepaid.unit"),
        ({"payment_mode": "credit"}, "prepaid.payment_mode"),
        ({"low_credit_1": "10", "low_credit_2": "20"}, "prepaid.low_credit_2"),
        ({"emergency_credit": "-1"}, "prepaid.emergency_credit"),
        ({"emergency_auto": "yes"}, "prepaid.emergency_auto"),
        ({"max_debt": "lots"}, "prepaid.max_debt"),
        ({"max_balance": "0"}, "prepaid.max_balance"),
        ({"friendly_start": "25:00"}, "prepaid.friendly_start"),
        ({"friendly_days": ["sat", "funday"]}, "prepaid.friendly_days"),
        ({"holidays": {"2024-02-30": "nope"}}, "prepaid.holidays.2024-02-30"),
        ({"holidays": ["2024-01-01", "soon"]}, "prepaid.holidays[1]"),
        ({"decimals": 9}, "prepaid.decimals"),
        ({"emergency": "50"}, "prepaid.emergency"),
    ],
)
def test_config_errors_name_the_key(table, key):
    with pytest.raises(ConfigError) as info:
        PrepaidConfig.from_table(table)
    assert info.value.key == key


def test_state_round_trip_and_corruption():
    cfg = PrepaidConfig.from_table({})
    t = dt.datetime(2024, 6, 19, 12)
    acct, _ = PrepaidAccount.initial(cfg, t).recharge(D("15"), t)
    acct, _ = acct.invoke_emergency(t)
    acct, _ = acct.charge(D("20.37"), t + H)
    d = json.loads(json.dumps(acct.to_dict()))
    assert PrepaidAccount.from_dict(d, cfg) == acct
    with pytest.raises(StorageError):
        PrepaidAccount.from_dict({**d, "balance": "1000"}, cfg)  # does not match its totals
    with pytest.raises(StorageError):
        PrepaidAccount.from_dict({**d, "low_credit_1": "yes"}, cfg)
    with pytest.raises(StorageError):
        PrepaidAccount.from_dict({k: v for k, v in d.items() if k != "balance_time"}, cfg)


# ---------------------------------------------------------------- properties

amounts = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
ops = st.lists(
    st.tuples(st.sampled_from(["charge", "recharge", "emergency", "wait"]), amounts, st.integers(0, 36 * 60)),
    max_size=40,
)
configs = st.fixed_dictionaries({
    "emergency_auto": st.booleans(),
    "emergency_credit": st.sampled_from(["0", "50", "100"]),
    "max_balance": st.sampled_from(["1000", "200000"]),
}, optional={"max_debt": st.sampled_from(["0", "100", "2500"])})


@settings(max_examples=150, deadline=None)
@given(table=configs, steps=ops, start_minute=st.integers(0, 365 * 24 * 60))
def test_money_is_conserved_and_supply_follows_the_rules(table, steps, start_minute):
    cfg = PrepaidConfig.from_table(table)
    now = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=start_minute)
    acct = PrepaidAccount.initial(cfg, now)
    recharged = charged = D(0)
    for op, amount, minutes in steps:
        now += dt.timedelta(minutes=minutes)
        if op == "charge":
            acct, _ = acct.charge(amount, now)
            charged += amount
        elif op == "recharge":
            acct, outcome = acct.recharge(amount, now)
            if outcome.status is RechargeStatus.ACCEPTED:
                recharged += amount
                assert outcome.to_debt + outcome.to_emergency + outcome.to_balance == amount
            assert acct.balance <= cfg.max_balance
        elif op == "emergency":
            try:
                acct, _ = acct.invoke_emergency(now)
            except EmergencyRefused:
                pass
        # conservation: nothing but charges and recharges moves the balance
        assert acct.balance == recharged - charged
        assert acct.available_credit == acct.balance + acct.emergency_limit

        decision = supply_decision(cfg, acct, now)
        friendly = is_friendly(cfg, now) is not None
        capped = cfg.max_debt is not None and acct.debt > cfg.max_debt
        if not friendly and acct.available_credit <= 0:
            assert not decision.allowed
        if friendly and not capped:
            assert decision.allowed
        if acct.available_credit > 0:
            assert decision.allowed

        assert PrepaidAccount.from_dict(json.loads(json.dumps(acct.to_dict())), cfg) == acct


def test_apply_token_has_a_function_for_every_effect_that_changes_the_meter():
    """firmware.prepaid applies a token's effect: one function per effect type, by table;
    the effects a single-phase electricity meter has nothing to set for are accepted as is."""
    import typing
    from datetime import datetime

    from bijli.firmware.prepaid import TOKEN_EFFECTS, PrepaidConfig, TokenTargets, apply_token
    from bijli.firmware.relay import RelayConfig
    from bijli.firmware.sts.results import (ClearTamper, Effect, SetPhaseUnbalanceLimit, SetWaterMeterFactor,
                                            TokenResultCode)

    assert set(typing.get_args(Effect)) - set(TOKEN_EFFECTS) == {SetPhaseUnbalanceLimit, SetWaterMeterFactor}
    now = datetime(2024, 6, 14, 16, 0)
    cfg = PrepaidConfig.from_table({})
    targets = TokenTargets(PrepaidAccount.initial(cfg, now), RelayConfig().initial_limiter(), tamper=True)
    cleared = apply_token(ClearTamper(), targets, now)
    assert cleared.code is TokenResultCode.ACCEPT and cleared.targets.tamper is False
    assert cleared.targets.account == targets.account and cleared.message == "tamper cleared"
    kept = apply_token(SetWaterMeterFactor(1, 1), targets, now, "water factor 1")
    assert kept.targets == targets and kept.message == "water factor 1"


@pytest.mark.parametrize("table, key", [
    ({"prepaid": {"max_balance": "1e999999"}}, "prepaid.max_balance"),
    ({"prepaid": {"max_debt": "1e999999"}}, "prepaid.max_debt"),
    ({"prepaid": {"emergency_threshold": "1e999999"}}, "prepaid.emergency_threshold"),
    ({"prepaid": {"emergency_credit": "1e999999"}}, "prepaid.emergency_credit"),
    ({"tariff": {"fixed_charge_per_day": "1e999999"}}, "tariff.fixed_charge_per_day"),
    ({"tariff": {"kind": "flat", "flat_rate": "30000000"}}, "tariff.flat_rate"),
])
def test_an_amount_beyond_what_a_register_shows_is_a_config_error_naming_its_key(table, key):
    """Found by the soak's config part: "1e999999" was a valid balance limit."""
    from bijli.firmware.meter import MeterConfig

    with pytest.raises(ConfigError) as err:
        MeterConfig.from_dict(table)
    assert key in str(err.value) and "at most 21474836.47" in str(err.value)
