"""What energy costs at a given time: flat rate, time-of-day, Indian domestic
telescopic slabs, a daily fixed (standing) charge and an energy duty, with an
active and a passive tariff as COSEM Charge (IC 113) has them
(``unit_charge_active``, ``unit_charge_passive``, ``unit_charge_activation_time``)
and a time-of-day table shaped like the Activity calendar (IC 20: season
profile -> week profile -> day profile) with Special days (IC 11).

Money is :class:`~decimal.Decimal` rupees. Rounding happens only where a real
bill rounds, and nowhere else:

1. each bill line (one slab, one time-of-day tier, the fixed charge) is the
   exact quantity times its rate, rounded to the paisa (ROUND_HALF_UP);
2. the duty is ``duty_percent`` of the sum of those rounded lines, rounded to
   the paisa;
3. the total is the sum of the rounded lines and the rounded duty.

Every charge handed to the prepaid account is the growth of that running
"bill so far" since the last charge, so the sub-paisa remainders stay in the
exact line quantities, the charges of a month add up to the bill to the paisa,
and a rounding never happens twice. The billing period (monthly, from
``billing_day`` 00:00) resets the slab position; the meter closes it with
:meth:`Tariff.close_billing_period` at :meth:`Tariff.next_billing_time`.
Pure: every time is passed in as naive local meter time.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any, Iterator, Mapping

from bijli.firmware.calendar import DateSpec, SpecialDays, parse_datetime, parse_time
from bijli.firmware.errors import ConfigError, FirmwareError, StorageError
from bijli.firmware.records import from_record, to_record

PAISA = Decimal("0.01")
#: IS 15959 keeps eight time-of-day registers per quantity (tariff zones TZ1..TZ8:
#: 1.0.1.8.1-8, 1.0.9.8.1-8 and their maximum demands), so a calendar has at most eight tiers
MAX_TIERS = 8
TIERS = tuple(range(1, MAX_TIERS + 1))
ZERO = Decimal(0)
# Wide enough that splitting an interval's energy never rounds anything a bill
# could see; the paisa rounding above is explicit, never the context's.
_CTX = Context(prec=50)
_SPLIT_QUANTUM = Decimal("1e-12")  # kWh: the share of an interval's energy a segment gets


class TariffError(FirmwareError):
    """A charge that cannot be computed as asked (negative energy, time running
    backwards, a billing period closed before its fixed charges were taken)."""


def round_paisa(amount: Decimal) -> Decimal:
    """The one rounding a bill line makes: to 0.01 INR, half up."""
    return amount.quantize(PAISA, rounding=ROUND_HALF_UP)


def to_decimal(value: Any, key: str = "value") -> Decimal:
    """An exact Decimal from a Decimal, int, numeric string or float (a float
    goes through its shortest repr, so 0.1 becomes Decimal('0.1'))."""
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a number, got {value!r}")
    try:
        if isinstance(value, Decimal):
            d = value
        elif isinstance(value, int):
            d = Decimal(value)
        elif isinstance(value, float):
            d = Decimal(repr(value))
        elif isinstance(value, str):
            d = Decimal(value.strip())
        else:
            raise ConfigError(key, f"expected a number, got {value!r}")
    except InvalidOperation:
        raise ConfigError(key, f"expected a number, got {value!r}") from None
    if not d.is_finite():
        raise ConfigError(key, f"expected a finite number, got {value!r}")
    return d


#: the largest money a meter register shows: the COSEM Account and Credit amounts are
#: double-long (int32) in paisa (scaler -2), so 2^31 - 1 paisa; an amount beyond it in a
#: configuration is a typo ("1e999999"), not a setting
MAX_AMOUNT = Decimal(2**31 - 1).scaleb(-2)


def parse_amount(value: Any, key: str, *, minimum: Decimal | None = ZERO) -> Decimal:
    """A config amount (rate, charge, threshold): exact, not below ``minimum``, not
    beyond what the meter's registers can show (:data:`MAX_AMOUNT`)."""
    d = to_decimal(value, key)
    if minimum is not None and d < minimum:
        raise ConfigError(key, f"must be at least {minimum}, got {d}")
    if abs(d) > MAX_AMOUNT:
        raise ConfigError(key, f"must be at most {MAX_AMOUNT} (what a meter register shows), got {value!r}")
    return d


def _dec_str(d: Decimal) -> str:
    return format(d, "f")


# --------------------------------------------------------------------------- profiles


class EnergyKind(enum.Enum):
    FLAT = "flat"
    TOD = "tod"
    SLABS = "slabs"


@dataclass(frozen=True)
class Slab:
    """A telescopic slab: kWh of the billing period up to ``upto_kwh`` (None:
    no upper bound) beyond the previous slab's bound, at ``rate`` INR/kWh."""

    upto_kwh: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class DayAction:
    """One day-profile action (IC 20 day_schedule entry): from ``start`` the rate
    of tier ``name`` applies until the next action or midnight."""

    start: dt.time
    rate: Decimal
    name: str


@dataclass(frozen=True)
class TouCalendar:
    """Time-of-day rates, shaped like the Activity calendar (IC 20).

    ``seasons`` are (month, day) starts with a week profile name, in date order;
    a season runs until the next one starts and the last wraps into the next
    year. ``weeks`` maps a week profile name to seven day ids (Monday first);
    ``days`` maps a day id to its actions, the first starting at 00:00.
    ``special_days`` (IC 11) name the day id used instead on those dates.
    """

    seasons: tuple[tuple[tuple[int, int], str], ...]
    weeks: tuple[tuple[str, tuple[str, ...]], ...]
    days: tuple[tuple[str, tuple[DayAction, ...]], ...]
    special_days: SpecialDays = SpecialDays()

    def day_id(self, d: dt.date) -> str:
        special = self.special_days.lookup(d)
        if special is not None:
            return special
        week = self.seasons[-1][1]
        for (month, day), name in self.seasons:
            if (d.month, d.day) >= (month, day):
                week = name
        return dict(self.weeks)[week][d.weekday()]

    def action_at(self, t: dt.datetime) -> tuple[DayAction, dt.datetime]:
        """The action in force at ``t`` and the instant the next one starts."""
        actions = dict(self.days)[self.day_id(t.date())]
        now = t.time()
        current = actions[0]
        following = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(0))
        for action in actions:
            if action.start <= now:
                current = action
            else:
                following = dt.datetime.combine(t.date(), action.start)
                break
        return current, following

    def tier_names(self) -> tuple[str, ...]:
        """The calendar's tiers in the order they first appear in its day profiles: tier
        ``n`` (1-based) is the one the Activity calendar's script selector ``n`` names and
        whose energy the TOD registers of zone ``n`` hold."""
        names: dict[str, None] = {}
        for _, actions in self.days:
            for a in actions:
                names.setdefault(a.name, None)
        return tuple(names)


@dataclass(frozen=True)
class TariffProfile:
    """One complete set of prices (the active or the passive one)."""

    kind: EnergyKind
    flat_rate: Decimal
    slabs: tuple[Slab, ...]
    tod: TouCalendar | None
    fixed_per_day: Decimal
    duty_percent: Decimal

    @property
    def tier_names(self) -> tuple[str, ...]:
        """The time-of-day tiers (see :meth:`TouCalendar.tier_names`); none without time of day."""
        return self.tod.tier_names() if self.kind is EnergyKind.TOD and self.tod is not None else ()

    @property
    def highest_rate(self) -> Decimal:
        """The dearest a kWh of this profile can be, duty included: what bounds the cost
        of energy not charged yet (the meter's walk, which settles only where something can
        change, uses it to know how far credit cannot cross a threshold)."""
        if self.kind is EnergyKind.FLAT:
            rates = [self.flat_rate]
        elif self.kind is EnergyKind.SLABS:
            rates = [s.rate for s in self.slabs]
        else:
            rates = [a.rate for _, actions in self.tod.days for a in actions] if self.tod is not None else []
        if not rates:
            return ZERO
        with localcontext(_CTX):
            return max(rates) * (1 + self.duty_percent / 100)

    def tier_of(self, action: DayAction | None) -> int:
        """The tier number (1..MAX_TIERS) energy priced by ``action`` counts in. A tariff
        without time of day has one zone: everything counts in tier 1."""
        if action is None:
            return 1
        return self.tier_names.index(action.name) + 1


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Line:
    """A bill line being accumulated: exact quantity (kWh or days) at one rate."""

    kind: str  # "energy" or "fixed"
    label: str
    rate: Decimal
    duty_percent: Decimal
    quantity: Decimal

    @property
    def key(self) -> tuple[str, str, Decimal, Decimal]:
        return (self.kind, self.label, self.rate, self.duty_percent)

    @property
    def exact_amount(self) -> Decimal:
        with localcontext(_CTX):
            return self.quantity * self.rate

    @property
    def amount(self) -> Decimal:
        return round_paisa(self.exact_amount)


def _bill_figures(lines: tuple[Line, ...]) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(energy, fixed, duty, total) of a bill with these lines, rounded as a bill is."""
    amounts = [(ln, ln.amount) for ln in lines]  # each line rounded once (a meter charges at every capture)
    energy = sum((amount for ln, amount in amounts if ln.kind == "energy"), ZERO)
    fixed = sum((amount for ln, amount in amounts if ln.kind == "fixed"), ZERO)
    with localcontext(_CTX):
        duty_exact = sum((amount * ln.duty_percent / 100 for ln, amount in amounts), ZERO)
    duty = round_paisa(duty_exact)
    return energy, fixed, duty, energy + fixed + duty


@dataclass(frozen=True)
class TariffState:
    """What the tariff remembers between charges (commit it with the account).

    ``kwh`` is the billing period's energy so far (the slab position);
    ``lines`` the exact bill lines so far; ``charged`` what has been handed to
    the account this period (whole paisa; always the rounded bill of ``lines``);
    ``fixed_from`` the first day whose fixed charge has not been taken yet.
    """

    period_start: dt.datetime
    kwh: Decimal
    lines: tuple[Line, ...]
    fixed_from: dt.date
    charged: Decimal

    @classmethod
    def initial(cls, now: dt.datetime) -> "TariffState":
        return cls(period_start=now, kwh=ZERO, lines=(), fixed_from=now.date(), charged=ZERO)

    def to_dict(self) -> dict[str, Any]:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TariffState":
        state = from_record(cls, d)  # StorageError naming TariffState when it does not fit
        if state.charged != _bill_figures(state.lines)[3]:
            raise StorageError("tariff state is corrupt: charged amount does not match its bill lines")
        return state


@dataclass(frozen=True)
class BillLine:
    kind: str
    label: str
    quantity: Decimal  # kWh (exact) or days
    rate: Decimal
    amount: Decimal  # rounded to the paisa


@dataclass(frozen=True)
class Bill:
    """A closed billing period, as the billing profile (1.0.98.1.0.255) stores it."""

    period_start: dt.datetime
    period_end: dt.datetime
    kwh: Decimal
    lines: tuple[BillLine, ...]
    energy_charge: Decimal
    fixed_charge: Decimal
    duty: Decimal
    total: Decimal

    def to_dict(self) -> dict[str, Any]:
        return to_record(self)


# --------------------------------------------------------------------------- tariff


@dataclass(frozen=True)
class Tariff:
    """The meter's prices: the active profile, and a passive one that takes
    over at ``activation_time`` (from that instant on; energy of an interval
    straddling it is split in proportion to time)."""

    currency: str
    billing_day: int
    active: TariffProfile
    passive: TariffProfile | None = None
    activation_time: dt.datetime | None = None

    # ---- configuration

    @classmethod
    def from_table(cls, table: Mapping[str, Any], prefix: str = "tariff") -> "Tariff":
        """Build from the ``[tariff]`` TOML table; ``{}`` gives the demo tariff."""
        if not isinstance(table, Mapping):
            raise ConfigError(prefix, "expected a table")
        _reject_unknown(table, prefix, _PROFILE_KEYS | {"currency", "billing_day", "passive"})
        currency = table.get("currency", "INR")
        if not isinstance(currency, str) or not currency.strip():
            raise ConfigError(f"{prefix}.currency", f"expected a currency code, got {currency!r}")
        billing_day = table.get("billing_day", 1)
        if isinstance(billing_day, bool) or not isinstance(billing_day, int) or not 1 <= billing_day <= 28:
            raise ConfigError(f"{prefix}.billing_day", f"expected a day of month 1..28, got {billing_day!r}")
        active = _profile_from_table(table, prefix)
        passive = activation = None
        if "passive" in table:
            ptable = table["passive"]
            pkey = f"{prefix}.passive"
            if not isinstance(ptable, Mapping):
                raise ConfigError(pkey, "expected a table")
            _reject_unknown(ptable, pkey, _PROFILE_KEYS | {"activation_time"})
            if "activation_time" not in ptable:
                raise ConfigError(f"{pkey}.activation_time", "a passive tariff needs its activation time")
            activation = parse_datetime(ptable["activation_time"], f"{pkey}.activation_time")
            # Keys the passive table leaves out are the active tariff's values.
            merged = {**{k: v for k, v in table.items() if k in _PROFILE_KEYS},
                      **{k: v for k, v in ptable.items() if k != "activation_time"}}
            passive = _profile_from_table(merged, pkey)
        return cls(currency.strip(), billing_day, active, passive, activation)

    def to_table(self) -> dict[str, Any]:
        """The TOML-shaped table :meth:`from_table` reads back to an equal Tariff."""
        table: dict[str, Any] = {"currency": self.currency, "billing_day": self.billing_day,
                                 **_profile_to_table(self.active)}
        if self.passive is not None and self.activation_time is not None:
            table["passive"] = {"activation_time": self.activation_time.isoformat(),
                                **_profile_to_table(self.passive)}
        return table

    # ---- passive/active (IC 113 activate_passive_unit_charge)

    def profile_at(self, t: dt.datetime) -> TariffProfile:
        if self.passive is not None and self.activation_time is not None and t >= self.activation_time:
            return self.passive
        return self.active

    def with_passive(self, profile: TariffProfile, activation_time: dt.datetime) -> "Tariff":
        return replace(self, passive=profile, activation_time=activation_time)

    def activated(self, now: dt.datetime) -> "Tariff":
        """This tariff with the passive profile promoted if its time has come
        (what the meter persists and shows as unit_charge_active)."""
        if self.passive is not None and self.activation_time is not None and now >= self.activation_time:
            return replace(self, active=self.passive, passive=None, activation_time=None)
        return self

    # ---- billing period

    def next_billing_time(self, state: TariffState) -> dt.datetime:
        """The first billing instant (``billing_day`` 00:00) after the period start."""
        start = state.period_start
        candidate = dt.datetime(start.year, start.month, self.billing_day)
        if candidate <= start:
            year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
            candidate = dt.datetime(year, month, self.billing_day)
        return candidate

    def close_billing_period(self, state: TariffState, now: dt.datetime) -> tuple[TariffState, Bill]:
        """End the period at ``now``: the bill of everything charged in it, and a
        fresh state (slab position back to 0). Take :meth:`charge_fixed` at
        ``now`` first, so the bill and the account agree."""
        if state.fixed_from < now.date():
            raise TariffError(f"fixed charges from {state.fixed_from} not taken yet: charge_fixed first")
        energy, fixed, duty, total = _bill_figures(state.lines)
        bill = Bill(
            period_start=state.period_start,
            period_end=now,
            kwh=state.kwh,
            lines=tuple(BillLine(ln.kind, ln.label, ln.quantity, ln.rate, ln.amount) for ln in state.lines),
            energy_charge=energy,
            fixed_charge=fixed,
            duty=duty,
            total=total,
        )
        fresh = TariffState(period_start=now, kwh=ZERO, lines=(), fixed_from=state.fixed_from, charged=ZERO)
        return fresh, bill

    # ---- charges

    def charge_energy(
        self, state: TariffState, wh_delta: Decimal | float | int, start: dt.datetime, end: dt.datetime
    ) -> tuple[Decimal, TariffState]:
        """The cost (whole paisa) of ``wh_delta`` Wh consumed evenly over
        ``[start, end)``, split at time-of-day and activation boundaries in
        proportion to time and across slabs by kWh. The energy counts in
        ``state``'s billing period whatever the times say: the meter splits its
        intervals at :meth:`next_billing_time` and closes the period there."""
        try:
            wh = to_decimal(wh_delta, "wh_delta")
        except ConfigError:
            raise TariffError(f"energy must be a number of Wh, got {wh_delta!r}") from None
        if wh < 0:
            raise TariffError(f"energy must be a finite non-negative Wh amount, got {wh_delta!r}")
        if end < start:
            raise TariffError(f"interval ends ({end}) before it starts ({start})")
        if wh == 0:
            return ZERO, state
        with localcontext(_CTX):
            kwh = wh / 1000
            segments = list(self._segments(start, end))
            total_us = _micros(end - start)
            lines = {ln.key: ln for ln in state.lines}
            position = state.kwh
            left = kwh
            for i, (seg_start, seg_end, profile, action) in enumerate(segments):
                if i == len(segments) - 1:
                    part = left  # the last part takes the remainder: energy is conserved exactly
                else:
                    # fixed point (1 nWh) so the parts stay exact through every later sum
                    part = (kwh * _micros(seg_end - seg_start) / total_us).quantize(_SPLIT_QUANTUM)
                left -= part
                position = _charge_part(lines, profile, action, position, part)
            new_state = replace(state, kwh=position, lines=tuple(lines.values()))
        return self._settle(state, new_state)

    def charge_fixed(self, state: TariffState, now: dt.datetime) -> tuple[Decimal, TariffState]:
        """Standing charges (whole paisa) for every whole day that has ended since
        the last call; a day's rate is the one in force at its 00:00."""
        if now.date() <= state.fixed_from:
            return ZERO, state
        lines = {ln.key: ln for ln in state.lines}
        day = state.fixed_from
        while day < now.date():
            profile = self.profile_at(dt.datetime.combine(day, dt.time(0)))
            if profile.fixed_per_day > 0:
                _add(lines, "fixed", "fixed charge", profile.fixed_per_day, profile.duty_percent, Decimal(1))
            day += dt.timedelta(days=1)
        new_state = replace(state, lines=tuple(lines.values()), fixed_from=now.date())
        return self._settle(state, new_state)

    def next_price_change(self, t: dt.datetime) -> dt.datetime | None:
        """The first instant after ``t`` at which a kWh may be priced differently or count
        in another time-of-day tier: the next day-profile action of the profile in force
        (IC 20), or the passive profile's activation (IC 113); None if that never comes.
        An interval that ends no later than this is priced and split into tiers in one
        piece, so charging it whole or in parts gives the same lines."""
        candidates = []
        profile = self.profile_at(t)
        if profile.kind is EnergyKind.TOD and profile.tod is not None:
            candidates.append(profile.tod.action_at(t)[1])
        if self.activation_time is not None and self.passive is not None and self.activation_time > t:
            candidates.append(self.activation_time)
        return min(candidates) if candidates else None

    def highest_rate(self) -> Decimal:
        """The dearest a kWh can be under this tariff, active or passive, duty included."""
        rates = [self.active.highest_rate]
        if self.passive is not None:
            rates.append(self.passive.highest_rate)
        return max(rates)

    def tier_shares(self, start: dt.datetime, end: dt.datetime) -> list[tuple[int, float]]:
        """How energy consumed evenly over ``[start, end)`` falls into the time-of-day tiers:
        (tier, share of the interval) with the shares summing to 1, split exactly where
        :meth:`charge_energy` splits its prices, so the TOD registers and the bill agree."""
        if end < start:
            raise TariffError(f"interval ends ({end}) before it starts ({start})")
        segments = list(self._segments(start, end))
        total_us = _micros(end - start)
        shares: dict[int, float] = {}
        for seg_start, seg_end, profile, action in segments:
            part = _micros(seg_end - seg_start) / total_us if total_us else 1.0
            tier = profile.tier_of(action)
            shares[tier] = shares.get(tier, 0.0) + part
        return list(shares.items())

    def bill_so_far(self, state: TariffState) -> Decimal:
        return _bill_figures(state.lines)[3]

    # ---- internals

    @staticmethod
    def _settle(old: TariffState, new: TariffState) -> tuple[Decimal, TariffState]:
        total = _bill_figures(new.lines)[3]
        charge = total - old.charged
        return charge, replace(new, charged=total)

    def _segments(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterator[tuple[dt.datetime, dt.datetime, TariffProfile, DayAction | None]]:
        if start == end:  # an instantaneous reading: all of it at ``start``'s prices
            profile = self.profile_at(start)
            action = profile.tod.action_at(start)[0] if profile.kind is EnergyKind.TOD and profile.tod else None
            yield start, end, profile, action
            return
        cursor = start
        while cursor < end:
            profile = self.profile_at(cursor)
            seg_end = end
            if self.activation_time is not None and cursor < self.activation_time < seg_end:
                seg_end = self.activation_time
            action = None
            if profile.kind is EnergyKind.TOD and profile.tod is not None:
                action, following = profile.tod.action_at(cursor)
                seg_end = min(seg_end, following)
            yield cursor, seg_end, profile, action
            cursor = seg_end


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _add(lines: dict, kind: str, label: str, rate: Decimal, duty: Decimal, qty: Decimal) -> None:
    key = (kind, label, rate, duty)
    old = lines.get(key)
    with localcontext(_CTX):
        lines[key] = Line(kind, label, rate, duty, qty if old is None else old.quantity + qty)


def _slab_label(lower: Decimal, upper: Decimal | None) -> str:
    if upper is None:
        return f"above {_dec_str(lower)} kWh"
    return f"{_dec_str(lower)}-{_dec_str(upper)} kWh"


def _charge_part(
    lines: dict, profile: TariffProfile, action: DayAction | None, position: Decimal, kwh: Decimal
) -> Decimal:
    """Add ``kwh`` at ``profile``'s prices to ``lines``; returns the new period kWh."""
    if kwh == 0:
        return position
    duty = profile.duty_percent
    if profile.kind is EnergyKind.FLAT:
        _add(lines, "energy", "energy", profile.flat_rate, duty, kwh)
        return position + kwh
    if profile.kind is EnergyKind.TOD:
        assert action is not None
        _add(lines, "energy", action.name, action.rate, duty, kwh)
        return position + kwh
    left = kwh
    lower = ZERO
    for slab in profile.slabs:
        upper = slab.upto_kwh
        if upper is None or position < upper:
            take = left if upper is None else min(left, upper - position)
            _add(lines, "energy", _slab_label(lower, upper), slab.rate, duty, take)
            position += take
            left -= take
            if left == 0:
                break
        lower = upper if upper is not None else lower
    return position


# --------------------------------------------------------------------------- config parsing

_PROFILE_KEYS = frozenset({"kind", "flat_rate", "slabs", "tod", "fixed_charge_per_day", "duty_percent"})

DEMO_SLABS = (
    {"upto_kwh": 100, "rate": "4.50"},
    {"upto_kwh": 200, "rate": "5.50"},
    {"upto_kwh": 400, "rate": "7.00"},
    {"rate": "8.00"},
)

# Time-of-day in the shape India's 2023 consumer rules give it: solar hours
# cheaper, evening peak dearer, normal otherwise; weekends and holidays normal.
DEMO_TOD: dict[str, Any] = {
    "seasons": [{"start": "01-01", "week": "all_year"}],
    "weeks": {"all_year": ["workday"] * 5 + ["restday"] * 2},
    "days": {
        "workday": [["00:00", "6.00", "normal"], ["09:00", "4.80", "solar"],
                    ["17:00", "7.20", "peak"], ["23:00", "6.00", "normal"]],
        "restday": [["00:00", "6.00", "normal"]],
    },
    "special_days": {"*-01-26": "restday", "*-08-15": "restday", "*-10-02": "restday"},
}


def _reject_unknown(table: Mapping[str, Any], prefix: str, known: frozenset[str] | set[str]) -> None:
    for k in table:
        if k not in known:
            raise ConfigError(f"{prefix}.{k}", "unknown key")


def _profile_from_table(table: Mapping[str, Any], prefix: str) -> TariffProfile:
    kind_text = table.get("kind", "slabs")
    try:
        kind = EnergyKind(kind_text)
    except ValueError:
        raise ConfigError(f"{prefix}.kind", f"expected one of flat, tod, slabs; got {kind_text!r}") from None
    flat_rate = parse_amount(table.get("flat_rate", "6.00"), f"{prefix}.flat_rate")
    slabs = _slabs_from_value(table.get("slabs", DEMO_SLABS), f"{prefix}.slabs")
    tod = _tod_from_table(table.get("tod", DEMO_TOD), f"{prefix}.tod") if kind is EnergyKind.TOD or "tod" in table else None
    fixed = parse_amount(table.get("fixed_charge_per_day", "1.50"), f"{prefix}.fixed_charge_per_day")
    duty = parse_amount(table.get("duty_percent", "6"), f"{prefix}.duty_percent")
    if duty > 100:
        raise ConfigError(f"{prefix}.duty_percent", f"a duty over 100 % is a typo, got {duty}")
    return TariffProfile(kind, flat_rate, slabs, tod, fixed, duty)


def _slabs_from_value(value: Any, key: str) -> tuple[Slab, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(key, "expected a non-empty list of {upto_kwh, rate} tables")
    slabs = []
    previous = ZERO
    for i, item in enumerate(value):
        k = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(k, "expected a table with upto_kwh and rate")
        _reject_unknown(item, k, {"upto_kwh", "rate"})
        if "rate" not in item:
            raise ConfigError(f"{k}.rate", "missing")
        rate = parse_amount(item["rate"], f"{k}.rate")
        upto = item.get("upto_kwh")
        last = i == len(value) - 1
        if upto is None:
            if not last:
                raise ConfigError(f"{k}.upto_kwh", "only the last slab may be open-ended")
        else:
            upto = parse_amount(upto, f"{k}.upto_kwh")
            if upto <= previous:
                raise ConfigError(f"{k}.upto_kwh", f"slab bounds must increase, {upto} after {previous}")
            previous = upto
        slabs.append(Slab(upto, rate))
    if slabs[-1].upto_kwh is not None:
        raise ConfigError(f"{key}[{len(slabs) - 1}].upto_kwh", "the last slab must be open-ended (no upto_kwh)")
    return tuple(slabs)


def _tod_from_table(table: Any, key: str) -> TouCalendar:
    if not isinstance(table, Mapping):
        raise ConfigError(key, "expected a table with days, weeks, seasons")
    _reject_unknown(table, key, {"days", "weeks", "seasons", "special_days"})
    days_t = table.get("days")
    if not isinstance(days_t, Mapping) or not days_t:
        raise ConfigError(f"{key}.days", "expected a table of day schedules")
    days = []
    for day_id, actions_v in days_t.items():
        dkey = f"{key}.days.{day_id}"
        if not isinstance(actions_v, (list, tuple)) or not actions_v:
            raise ConfigError(dkey, "expected a list of [start, rate, name] entries")
        actions = []
        for j, entry in enumerate(actions_v):
            ekey = f"{dkey}[{j}]"
            if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
                raise ConfigError(ekey, f"expected [start, rate] or [start, rate, name], got {entry!r}")
            start = parse_time(entry[0], ekey)
            rate = parse_amount(entry[1], ekey)
            name = entry[2] if len(entry) == 3 else f"rate {_dec_str(rate)}"
            if not isinstance(name, str):
                raise ConfigError(ekey, f"the tier name must be a string, got {name!r}")
            if actions and start <= actions[-1].start:
                raise ConfigError(ekey, "start times must increase within a day")
            actions.append(DayAction(start, rate, name))
        if actions[0].start != dt.time(0):
            raise ConfigError(f"{dkey}[0]", "a day schedule must start at 00:00")
        days.append((str(day_id), tuple(actions)))
    day_ids = {d for d, _ in days}

    weeks_t = table.get("weeks")
    if weeks_t is None:
        weeks_t = {"default": [days[0][0]] * 7}
    if not isinstance(weeks_t, Mapping) or not weeks_t:
        raise ConfigError(f"{key}.weeks", "expected a table of week profiles (seven day ids, Monday first)")
    weeks = []
    for name, ids in weeks_t.items():
        wkey = f"{key}.weeks.{name}"
        if not isinstance(ids, (list, tuple)) or len(ids) != 7:
            raise ConfigError(wkey, "expected seven day ids, Monday first")
        for d in ids:
            if d not in day_ids:
                raise ConfigError(wkey, f"unknown day schedule {d!r}")
        weeks.append((str(name), tuple(ids)))
    week_names = {w for w, _ in weeks}

    seasons_v = table.get("seasons")
    if seasons_v is None:
        seasons_v = [{"start": "01-01", "week": weeks[0][0]}]
    if not isinstance(seasons_v, (list, tuple)) or not seasons_v:
        raise ConfigError(f"{key}.seasons", "expected a list of {start = 'MM-DD', week = name}")
    seasons = []
    for i, s in enumerate(seasons_v):
        skey = f"{key}.seasons[{i}]"
        if not isinstance(s, Mapping) or set(s) != {"start", "week"}:
            raise ConfigError(skey, "expected {start = 'MM-DD', week = name}")
        spec = DateSpec.parse(f"*-{s['start']}" if isinstance(s["start"], str) else s["start"], f"{skey}.start")
        if s["week"] not in week_names:
            raise ConfigError(f"{skey}.week", f"unknown week profile {s['week']!r}")
        seasons.append(((spec.month, spec.day), str(s["week"])))
    seasons.sort()
    if len({start for start, _ in seasons}) != len(seasons):
        raise ConfigError(f"{key}.seasons", "two seasons start on the same day")

    tiers = {a.name for _, actions in days for a in actions}
    if len(tiers) > MAX_TIERS:
        raise ConfigError(f"{key}.days", f"{len(tiers)} tiers: a meter keeps time-of-day registers for at most "
                                         f"{MAX_TIERS} (IS 15959 TZ1..TZ8)")
    special = SpecialDays.parse(table.get("special_days", {}), f"{key}.special_days")
    for spec, day_id in special.entries:
        if day_id not in day_ids:
            raise ConfigError(f"{key}.special_days.{spec}", f"unknown day schedule {day_id!r}")
    return TouCalendar(tuple(seasons), tuple(weeks), tuple(days), special)


def _profile_to_table(p: TariffProfile) -> dict[str, Any]:
    table: dict[str, Any] = {
        "kind": p.kind.value,
        "flat_rate": _dec_str(p.flat_rate),
        "slabs": [
            {"rate": _dec_str(s.rate)} if s.upto_kwh is None
            else {"upto_kwh": _dec_str(s.upto_kwh), "rate": _dec_str(s.rate)}
            for s in p.slabs
        ],
        "fixed_charge_per_day": _dec_str(p.fixed_per_day),
        "duty_percent": _dec_str(p.duty_percent),
    }
    if p.tod is not None:
        table["tod"] = {
            "seasons": [{"start": f"{m:02d}-{d:02d}", "week": w} for (m, d), w in p.tod.seasons],
            "weeks": {name: list(ids) for name, ids in p.tod.weeks},
            "days": {day_id: [[a.start.isoformat(), _dec_str(a.rate), a.name] for a in actions]
                     for day_id, actions in p.tod.days},
            "special_days": p.tod.special_days.to_value(),
        }
    return table
