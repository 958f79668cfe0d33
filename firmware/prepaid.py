"""The prepayment account: credit, charges, emergency and friendly credit, and
the one question the relay asks of them, "may the supply stay on now?".

Modelled on the COSEM payment classes Account (IC 111), Credit (IC 112) and
Charge (IC 113) and on the IS 15959-2 prepaid data objects 0.0.94.96.19-25.255
(metering mode, payment mode, last token recharge amount and time, total amount
at last recharge, current balance amount and time). The account is one signed
balance in the credit unit (INR by default, or kWh): every charge subtracts,
every recharge adds, a clear-credit token zeroes it, and nothing else touches
it, so ``balance == total_recharged - total_charged - total_cleared`` always.
Emergency credit (IC 112 type 2) is a loan on top of that balance; friendly
credit is a calendar during which running below zero never disconnects.
What the balance owes below zero is recovered first from the next recharge:
the friendly-period debt beyond the emergency credit first, then the emergency
credit used, then the rest becomes credit. Pure: ``now`` is always passed in
(naive local meter time); the meter commits the returned state with the
token's TID in one transaction.

Decisions, so they are written down once:

* Friendly credit has no limit by default (IS practice: no disconnection in the
  friendly period, however far below zero). ``max_debt`` caps it: when the debt
  beyond the emergency credit *exceeds* the cap the supply is cut even in a
  friendly period (reason ``MAX_DEBT``).
* :func:`supply_decision` is a pure function of config, account and time: in a
  friendly period it allows supply even to a meter that was cut earlier. Whether
  such a cut comes back in a friendly period is the meter's policy (by default
  it does not: ``firmware.meter`` keeps a cut for credit until credit is back,
  see ``relay.reconnect_in_friendly_period``); whether reconnection needs a
  button press is the disconnect control's mode (IC 70).
* Low-credit and out-of-credit events compare *available* credit (balance plus
  invoked emergency credit) with the thresholds; each fires once when crossed
  downwards and is re-armed when the credit rises back to the threshold.
* Emergency credit ends at the first recharge that brings the balance back to
  zero or above (it is then fully paid back); it may be invoked again later.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Callable, Mapping

from bijli.firmware.calendar import (
    DEMO_HOLIDAYS,
    FriendlyCalendar,
    FriendlyReason,
    SpecialDays,
    TimeWindow,
    parse_time,
    parse_weekdays,
)
from bijli.firmware.errors import ConfigError, FirmwareError, StorageError
from bijli.firmware.records import NOT_STORED, from_record, to_record
from bijli.firmware.sts.results import (ClearCredit, ClearTamper, CreditKind, CreditTransfer, Effect, KeyChanged,
                                        KeyChangeSection, SetMaxPowerLimit, TestDisplay, TokenResultCode)
from bijli.firmware.tariff import ZERO, parse_amount, to_decimal

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.relay import LoadLimiter

__all__ = [
    "PrepaidAccount", "AccountEvent", "EmergencyState", "EmergencyRefusal", "EmergencyRefused",
    "FriendlyReason", "PaymentPlan", "PrepaidConfig", "PrepaidError", "RechargeOutcome",
    "RechargeStatus", "SupplyDecision", "SupplyReason", "TokenApplied", "TokenTargets", "apply_token",
    "is_friendly", "next_friendly_boundary", "supply_decision",
]


class PrepaidError(FirmwareError):
    """A charge or recharge that makes no sense (negative, not a number, finer
    than the credit unit's resolution)."""


class EmergencyRefusal(enum.Enum):
    NOT_CONFIGURED = "no emergency credit is configured"
    ALREADY_INVOKED = "emergency credit is already invoked"
    ABOVE_THRESHOLD = "credit is not yet below the emergency credit threshold"
    DEBT_TOO_LARGE = "the debt already exceeds the emergency credit"


class EmergencyRefused(PrepaidError):
    """Emergency credit cannot be invoked now; ``reason`` says why."""

    def __init__(self, reason: EmergencyRefusal):
        super().__init__(reason.value)
        self.reason = reason


class PaymentPlan(enum.IntEnum):
    """How the consumer pays: the value of IS 15959-2 payment mode 0.0.94.96.20.255 as used
    in the field (not COSEM Account's payment_mode, which numbers credit 1, prepayment 2)."""

    POSTPAID = 0
    PREPAID = 1


class EmergencyState(enum.Enum):
    """Where the emergency credit stands. The binding wing shows it as the COSEM Credit
    (IC 112) credit_status of the emergency credit instance."""

    ENABLED = "enabled"  # configured, but not selectable now (credit above the threshold)
    SELECTABLE = "selectable"  # the consumer may invoke it
    INVOKED = "invoked"  # invoked, the balance still positive
    IN_USE = "in_use"  # invoked and being spent
    CONSUMED = "consumed"  # spent to the last paisa


class AccountEvent(enum.Enum):
    RECHARGED = "recharged"
    LOW_CREDIT_1 = "low_credit_1"
    LOW_CREDIT_2 = "low_credit_2"
    OUT_OF_CREDIT = "out_of_credit"
    CREDIT_RESTORED = "credit_restored"
    EMERGENCY_INVOKED = "emergency_invoked"
    EMERGENCY_IN_USE = "emergency_in_use"
    EMERGENCY_PAID_BACK = "emergency_paid_back"
    MAX_DEBT_EXCEEDED = "max_debt_exceeded"
    CREDIT_CLEARED = "credit_cleared"


class SupplyReason(enum.Enum):
    CREDIT = "credit"
    EMERGENCY = "emergency"
    FRIENDLY_HOURS = "friendly_hours"
    FRIENDLY_DAY = "friendly_day"
    HOLIDAY = "holiday"
    POSTPAID = "postpaid"
    OUT_OF_CREDIT = "out_of_credit"
    MAX_DEBT = "max_debt"


_FRIENDLY_SUPPLY = {
    FriendlyReason.FRIENDLY_HOURS: SupplyReason.FRIENDLY_HOURS,
    FriendlyReason.FRIENDLY_DAY: SupplyReason.FRIENDLY_DAY,
    FriendlyReason.HOLIDAY: SupplyReason.HOLIDAY,
}


@dataclass(frozen=True)
class SupplyDecision:
    allowed: bool
    reason: SupplyReason


class RechargeStatus(enum.Enum):
    ACCEPTED = "accepted"
    OVERFLOW = "overflow"  # the balance would exceed max_balance: keep the token unused


@dataclass(frozen=True)
class RechargeOutcome:
    status: RechargeStatus
    amount: Decimal
    to_debt: Decimal = ZERO
    to_emergency: Decimal = ZERO
    to_balance: Decimal = ZERO
    events: tuple[AccountEvent, ...] = ()


# --------------------------------------------------------------------------- config

# Defaults per credit unit: a demo INR meter, or an STS-style kWh meter.
_UNIT_DEFAULTS: dict[str, dict[str, Any]] = {
    "INR": {"decimals": 2, "low_credit_1": "100", "low_credit_2": "50", "emergency_credit": "50",
            "emergency_threshold": "20", "max_balance": "200000"},
    "kWh": {"decimals": 1, "low_credit_1": "20", "low_credit_2": "10", "emergency_credit": "5",
            "emergency_threshold": "2", "max_balance": "100000"},
}

_KEYS = frozenset({
    "payment_mode", "metering_mode", "unit", "decimals", "low_credit_1", "low_credit_2",
    "emergency_credit", "emergency_threshold", "emergency_auto", "max_balance", "max_debt",
    "friendly_start", "friendly_end", "friendly_days", "holidays",
})


@dataclass(frozen=True)
class PrepaidConfig:
    payment_mode: PaymentPlan
    metering_mode: int  # IS 15959-2 0.0.94.96.19.255, passed through to the object list
    unit: str  # "INR" (currency) or "kWh"
    decimals: int  # resolution of recharges and of the display
    low_credit_1: Decimal  # first warning, the higher threshold
    low_credit_2: Decimal  # second warning
    emergency_credit: Decimal  # 0 disables emergency credit
    emergency_threshold: Decimal  # emergency credit is selectable only below this balance
    emergency_auto: bool  # invoke it without asking when credit runs out
    max_balance: Decimal  # a recharge beyond this is refused as overflow
    max_debt: Decimal | None  # None: friendly credit without limit
    friendly: FriendlyCalendar

    @classmethod
    def from_table(cls, table: Mapping[str, Any], prefix: str = "prepaid") -> "PrepaidConfig":
        """Build from the ``[prepaid]`` TOML table; ``{}`` gives the demo meter."""
        if not isinstance(table, Mapping):
            raise ConfigError(prefix, "expected a table")
        for k in table:
            if k not in _KEYS:
                raise ConfigError(f"{prefix}.{k}", "unknown key")

        def key(name: str) -> str:
            return f"{prefix}.{name}"

        mode_v = table.get("payment_mode", "prepaid")
        modes = {"prepaid": PaymentPlan.PREPAID, "postpaid": PaymentPlan.POSTPAID, 1: PaymentPlan.PREPAID,
                 0: PaymentPlan.POSTPAID}
        if isinstance(mode_v, bool) or mode_v not in modes:
            raise ConfigError(key("payment_mode"), f"expected 'prepaid' or 'postpaid', got {mode_v!r}")
        metering = table.get("metering_mode", 0)
        if isinstance(metering, bool) or not isinstance(metering, int) or not 0 <= metering <= 255:
            raise ConfigError(key("metering_mode"), f"expected an integer 0..255, got {metering!r}")
        unit = table.get("unit", "INR")
        if not isinstance(unit, str) or unit not in _UNIT_DEFAULTS:
            raise ConfigError(key("unit"), f"expected 'INR' or 'kWh', got {unit!r}")
        defaults = _UNIT_DEFAULTS[unit]
        decimals = table.get("decimals", defaults["decimals"])
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
            raise ConfigError(key("decimals"), f"expected an integer 0..6, got {decimals!r}")

        def amount(name: str) -> Decimal:
            return parse_amount(table.get(name, defaults[name]), key(name))

        low1, low2 = amount("low_credit_1"), amount("low_credit_2")
        if low2 > low1:
            raise ConfigError(key("low_credit_2"), f"the second warning ({low2}) must not be above the first ({low1})")
        emergency = amount("emergency_credit")
        threshold = amount("emergency_threshold")
        auto = table.get("emergency_auto", False)
        if not isinstance(auto, bool):
            raise ConfigError(key("emergency_auto"), f"expected true or false, got {auto!r}")
        max_balance = parse_amount(table.get("max_balance", defaults["max_balance"]), key("max_balance"),
                                   minimum=Decimal(1))
        max_debt_v = table.get("max_debt")
        # TOML has no null: leave the key out (or write false) for "no limit".
        max_debt = None if max_debt_v is None or max_debt_v is False else parse_amount(max_debt_v, key("max_debt"))

        start = parse_time(table.get("friendly_start", "17:30"), key("friendly_start"))
        end = parse_time(table.get("friendly_end", "11:00"), key("friendly_end"))
        days = parse_weekdays(table.get("friendly_days", ["sat", "sun"]), key("friendly_days"))
        holidays = SpecialDays.parse(table.get("holidays", DEMO_HOLIDAYS), key("holidays"))
        return cls(
            payment_mode=modes[mode_v], metering_mode=metering, unit=unit, decimals=decimals,
            low_credit_1=low1, low_credit_2=low2, emergency_credit=emergency,
            emergency_threshold=threshold, emergency_auto=auto, max_balance=max_balance,
            max_debt=max_debt, friendly=FriendlyCalendar(TimeWindow(start, end), days, holidays),
        )

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)

    def display(self, amount: Decimal) -> str:
        """An amount as the meter shows it, e.g. ``'-12.35 INR'``."""
        return f"{amount.quantize(self.quantum, rounding=ROUND_HALF_UP)} {self.unit}"


# --------------------------------------------------------------------------- account


def _amount(value: Any, what: str) -> Decimal:
    if isinstance(value, float):
        raise PrepaidError(f"{what} must be a Decimal, not a float ({value!r}): money is exact")
    try:
        d = to_decimal(value, what)
    except ConfigError:
        raise PrepaidError(f"{what} must be a number, got {value!r}") from None
    if d < 0:
        raise PrepaidError(f"{what} must not be negative, got {d}")
    return d


@dataclass(frozen=True)
class PrepaidAccount:
    """The prepayment account's state (commit it whole). ``balance`` may be negative (debt).
    The binding wing shows it as COSEM Account, Credit and Charge (IC 111-113)."""

    cfg: PrepaidConfig = field(repr=False, compare=False, metadata=NOT_STORED)
    balance: Decimal
    balance_time: dt.datetime
    emergency_invoked: bool = False
    last_recharge_amount: Decimal = ZERO
    last_recharge_time: dt.datetime | None = None
    total_recharged: Decimal = ZERO
    total_charged: Decimal = ZERO
    total_cleared: Decimal = ZERO
    low_credit_1: bool = False
    low_credit_2: bool = False
    out_of_credit: bool = False
    max_debt_exceeded: bool = False

    @classmethod
    def initial(cls, cfg: PrepaidConfig, now: dt.datetime) -> "PrepaidAccount":
        """A new account with no credit (the first token brings it to life)."""
        return _with_flags(cls(cfg=cfg, balance=ZERO, balance_time=now), [])[0]

    def with_config(self, cfg: PrepaidConfig) -> "PrepaidAccount":
        return replace(self, cfg=cfg)

    # ---- derived values (IC 111 / IC 112 attributes)

    @property
    def emergency_limit(self) -> Decimal:
        return self.cfg.emergency_credit if self.emergency_invoked else ZERO

    @property
    def available_credit(self) -> Decimal:
        return self.balance + self.emergency_limit

    @property
    def emergency_used(self) -> Decimal:
        return min(max(-self.balance, ZERO), self.emergency_limit)

    @property
    def debt(self) -> Decimal:
        """What is owed beyond the emergency credit (IC 111 aggregated_debt)."""
        return max(-self.balance - self.emergency_limit, ZERO)

    @property
    def emergency_status(self) -> EmergencyState:
        if self.emergency_invoked:
            if self.balance > 0:
                return EmergencyState.INVOKED
            return EmergencyState.IN_USE if self.available_credit > 0 else EmergencyState.CONSUMED
        return EmergencyState.SELECTABLE if self.emergency_refusal() is None else EmergencyState.ENABLED

    # IS 15959-2 names for the prepaid data objects 0.0.94.96.21..25.255
    @property
    def total_amount_at_last_recharge(self) -> Decimal:
        return self.total_recharged

    @property
    def current_balance_amount(self) -> Decimal:
        return self.balance

    @property
    def current_balance_time(self) -> dt.datetime:
        return self.balance_time

    # ---- operations

    def charge(self, amount: Decimal, now: dt.datetime) -> tuple["PrepaidAccount", tuple[AccountEvent, ...]]:
        """Take a consumption or standing charge; may invoke emergency credit
        automatically (``emergency_auto``) when the credit runs out."""
        amount = _amount(amount, "charge")
        new = replace(self, balance=self.balance - amount, balance_time=now,
                      total_charged=self.total_charged + amount)
        events: list[AccountEvent] = []
        if (self.cfg.emergency_auto and not new.emergency_invoked and new.available_credit <= 0
                and new.emergency_refusal() is None):
            new = replace(new, emergency_invoked=True)
            events.append(AccountEvent.EMERGENCY_INVOKED)
        if self.emergency_invoked and new.emergency_invoked and self.balance > 0 >= new.balance:
            events.append(AccountEvent.EMERGENCY_IN_USE)
        return _with_flags(new, events, old=self)

    def recharge(self, amount: Decimal, now: dt.datetime) -> tuple["PrepaidAccount", RechargeOutcome]:
        """Apply token credit: debt first, then emergency credit, then balance.
        Overflow leaves the account unchanged so the token stays unused."""
        amount = _amount(amount, "recharge")
        if amount == 0:
            raise PrepaidError("a recharge of zero is not a recharge")
        if amount % self.cfg.quantum != 0:
            raise PrepaidError(f"recharge {amount} is finer than the {self.cfg.quantum} {self.cfg.unit} resolution")
        if self.balance + amount > self.cfg.max_balance:
            return self, RechargeOutcome(RechargeStatus.OVERFLOW, amount)
        to_debt = min(amount, self.debt)
        to_emergency = min(amount - to_debt, self.emergency_used)
        to_balance = amount - to_debt - to_emergency
        new = replace(
            self, balance=self.balance + amount, balance_time=now, last_recharge_amount=amount,
            last_recharge_time=now, total_recharged=self.total_recharged + amount,
        )
        events = [AccountEvent.RECHARGED]
        if new.emergency_invoked and new.balance >= 0:
            new = replace(new, emergency_invoked=False)
            events.append(AccountEvent.EMERGENCY_PAID_BACK)
        new, all_events = _with_flags(new, events, old=self)
        return new, RechargeOutcome(RechargeStatus.ACCEPTED, amount, to_debt, to_emergency, to_balance,
                                    all_events)

    def emergency_refusal(self) -> EmergencyRefusal | None:
        """Why emergency credit cannot be invoked now, or None if it can."""
        if self.cfg.emergency_credit <= 0:
            return EmergencyRefusal.NOT_CONFIGURED
        if self.emergency_invoked:
            return EmergencyRefusal.ALREADY_INVOKED
        if self.balance >= self.cfg.emergency_threshold:
            return EmergencyRefusal.ABOVE_THRESHOLD
        if self.balance + self.cfg.emergency_credit <= 0:
            return EmergencyRefusal.DEBT_TOO_LARGE
        return None

    def invoke_emergency(self, now: dt.datetime) -> tuple["PrepaidAccount", tuple[AccountEvent, ...]]:
        """IC 112 invoke_credit from the keypad or console; raises
        :class:`EmergencyRefused` (state unchanged) when not allowed."""
        refusal = self.emergency_refusal()
        if refusal is not None:
            raise EmergencyRefused(refusal)
        new = replace(self, emergency_invoked=True, balance_time=now)
        events = [AccountEvent.EMERGENCY_INVOKED]
        if new.balance <= 0:
            events.append(AccountEvent.EMERGENCY_IN_USE)
        return _with_flags(new, events, old=self)

    def clear_credit(self, now: dt.datetime) -> tuple["PrepaidAccount", tuple[AccountEvent, ...]]:
        """STS class 2 subclass 1: the balance (credit or debt) becomes zero and
        any emergency credit ends; the amount cleared is kept for the audit."""
        new = replace(self, balance=ZERO, balance_time=now, emergency_invoked=False,
                      total_cleared=self.total_cleared + self.balance)
        return _with_flags(new, [AccountEvent.CREDIT_CLEARED], old=self)

    # ---- persistence (firmware.records converts by field type)

    def to_dict(self) -> dict[str, Any]:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], cfg: PrepaidConfig) -> "PrepaidAccount":
        acct = from_record(cls, d, cfg=cfg)  # StorageError naming PrepaidAccount when it does not fit
        if acct.balance != acct.total_recharged - acct.total_charged - acct.total_cleared:
            raise StorageError("prepaid account state is corrupt: balance does not match its totals")
        return acct


def _with_flags(
    new: PrepaidAccount, events: list[AccountEvent], old: PrepaidAccount | None = None
) -> tuple[PrepaidAccount, tuple[AccountEvent, ...]]:
    """Recompute the warning flags; an event for each flag newly raised."""
    cfg = new.cfg
    available = new.available_credit
    flags = {
        "low_credit_1": available < cfg.low_credit_1,
        "low_credit_2": available < cfg.low_credit_2,
        "out_of_credit": available <= 0,
        "max_debt_exceeded": cfg.max_debt is not None and new.debt > cfg.max_debt,
    }
    before = old if old is not None else new
    raised = {
        "low_credit_1": AccountEvent.LOW_CREDIT_1,
        "low_credit_2": AccountEvent.LOW_CREDIT_2,
        "out_of_credit": AccountEvent.OUT_OF_CREDIT,
        "max_debt_exceeded": AccountEvent.MAX_DEBT_EXCEEDED,
    }
    out = list(events)
    if old is not None:
        for name, event in raised.items():
            if flags[name] and not getattr(before, name):
                out.append(event)
        if before.out_of_credit and not flags["out_of_credit"]:
            out.append(AccountEvent.CREDIT_RESTORED)
    return replace(new, **flags), tuple(out)


# --------------------------------------------------------------------------- supply


def is_friendly(cfg: PrepaidConfig, now: dt.datetime) -> FriendlyReason | None:
    """Why ``now`` is in a friendly (no-disconnection) period, or None."""
    return cfg.friendly.reason_at(now)


def next_friendly_boundary(cfg: PrepaidConfig, now: dt.datetime) -> dt.datetime | None:
    """The next instant a friendly period starts or ends (schedule a supply
    re-evaluation there), or None if that never changes."""
    return cfg.friendly.next_change(now)


def supply_decision(cfg: PrepaidConfig, acct: PrepaidAccount, now: dt.datetime) -> SupplyDecision:
    """May the supply be on at ``now``? (IC 111 account status -> IC 70.)"""
    if cfg.payment_mode is PaymentPlan.POSTPAID:
        return SupplyDecision(True, SupplyReason.POSTPAID)
    if acct.balance > 0:
        return SupplyDecision(True, SupplyReason.CREDIT)
    if acct.available_credit > 0:
        return SupplyDecision(True, SupplyReason.EMERGENCY)
    if cfg.max_debt is not None and acct.debt > cfg.max_debt:
        return SupplyDecision(False, SupplyReason.MAX_DEBT)
    friendly = cfg.friendly.reason_at(now)
    if friendly is not None:
        return SupplyDecision(True, _FRIENDLY_SUPPLY[friendly])
    return SupplyDecision(False, SupplyReason.OUT_OF_CREDIT)


# --------------------------------------------------------------------------- token effects


@dataclass(frozen=True)
class TokenTargets:
    """What an accepted token may change; the meter commits it with the token's TID."""

    account: PrepaidAccount
    limiter: "LoadLimiter"
    tamper: bool


@dataclass(frozen=True)
class TokenApplied:
    """The effect applied: the final result (ACCEPT, or OVERFLOW / FUNCTION_ERROR when the
    meter cannot take a credit, which leaves the token unused) and what it changed."""

    code: TokenResultCode
    targets: TokenTargets
    message: str
    credit_added: Decimal = ZERO


def _credit(effect: CreditTransfer, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    unit = t.account.cfg.unit
    wants = CreditKind.ELECTRICITY if unit == "kWh" else CreditKind.CURRENCY_ELECTRICITY
    if effect.kind is not wants:
        what = "kWh" if wants is CreditKind.ELECTRICITY else unit  # the meter's currency: INR
        return TokenApplied(TokenResultCode.FUNCTION_ERROR, t,
                            f"this meter takes {what} credit, not {effect.kind.name.lower()}")
    new, recharge = t.account.recharge(effect.value, now)
    if recharge.status is RechargeStatus.OVERFLOW:
        return TokenApplied(TokenResultCode.OVERFLOW, t, "credit register would overflow")
    msg = f"+{effect.value} {unit}"
    if recharge.to_debt:
        msg += f" ({recharge.to_debt} to debt)"
    if recharge.to_emergency:
        msg += f" ({recharge.to_emergency} repays emergency credit)"
    return TokenApplied(TokenResultCode.ACCEPT, replace(t, account=new), msg, effect.value)


def _power_limit(effect: SetMaxPowerLimit, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    return TokenApplied(TokenResultCode.ACCEPT, replace(t, limiter=t.limiter.set_max_power_limit(effect.watts)),
                        f"load limit {effect.watts} W")


def _clear_credit(effect: ClearCredit, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    account, _ = t.account.clear_credit(now)
    return TokenApplied(TokenResultCode.ACCEPT, replace(t, account=account), "credit cleared")


def _clear_tamper(effect: ClearTamper, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    return TokenApplied(TokenResultCode.ACCEPT, replace(t, tamper=False), "tamper cleared")


def _key_section(effect: KeyChangeSection, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    # the decoder holds the sections in its own state; nothing here changes until the last
    return TokenApplied(TokenResultCode.ACCEPT, t, effect.message)  # "section 3 of 4 (3 of 4 held)"


def _key_changed(effect: KeyChanged, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    return TokenApplied(TokenResultCode.ACCEPT, t, f"new key KRN {effect.krn} TI {effect.ti}"
                        + (" (rollover)" if effect.rollover else ""))


def _test_display(effect: TestDisplay, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    return TokenApplied(TokenResultCode.ACCEPT, t, "test: " + ", ".join(r.name.lower() for r in effect.requests))


def _accepted_only(effect: Effect, t: TokenTargets, now: dt.datetime, detail: str) -> TokenApplied:
    # a single-phase electricity meter has no phase unbalance limit or water factor to set
    return TokenApplied(TokenResultCode.ACCEPT, t, detail)


#: the function applying each kind of effect an accepted token carries
TOKEN_EFFECTS: dict[type, Callable[[Any, TokenTargets, dt.datetime, str], TokenApplied]] = {
    CreditTransfer: _credit,
    SetMaxPowerLimit: _power_limit,
    ClearCredit: _clear_credit,
    ClearTamper: _clear_tamper,
    KeyChangeSection: _key_section,
    KeyChanged: _key_changed,
    TestDisplay: _test_display,
}


def apply_token(effect: Effect | None, targets: TokenTargets, now: dt.datetime, detail: str = "") -> TokenApplied:
    """Apply an accepted token's effect to ``targets`` (pure: the meter commits the result).
    ``detail`` is the decoder's own message, kept for effects that change nothing here."""
    return TOKEN_EFFECTS.get(type(effect), _accepted_only)(effect, targets, now, detail)
