"""Load profiles and the billing profile: the buffers of the COSEM Profile generic
class (IEC 62056-6-2 interface class 7) kept as rows in :mod:`firmware.storage`,
the selective access the class offers (range_descriptor, entry_descriptor), and
the schedule that says when each periodic capture is due.

The set of profiles is the one Indian utilities ask for (IS 15959 Part 2 style):
instantaneous (1.0.94.91.0.255, on demand), block load (1.0.99.1.0.255, every
15 or 30 min: the energy of the block and average V and I), daily load
(1.0.99.2.0.255, at midnight: cumulative energies) and billing (1.0.98.1.0.255,
monthly on the billing date). The event logs are in :mod:`firmware.events`.

Times are naive local meter time (India keeps no daylight saving time). Block
boundaries are aligned to midnight, so a 15-minute profile captures at :00,
:15, :30 and :45. A capture is one ``tx.append``: cheap enough that a simulated
month (2976 quarter-hours) steps in well under the 10 s budget.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, time, timedelta
from enum import Enum
from typing import Any, Mapping, Protocol, Sequence

from bijli.firmware.config import Table
from bijli.firmware.errors import ConfigError, FirmwareError, StorageError
from bijli.firmware.records import from_record, to_record
from bijli.firmware.storage import Storage, Transaction
from bijli.firmware.tariff import TIERS


class ProfileError(FirmwareError):
    """A capture or a selective read that does not fit the profile's definition."""


class ColumnKind(Enum):
    VALUE = "value"
    #: holds the capture time itself (the clock, or the billing date of a billing row)
    CAPTURE_TIME = "capture_time"
    #: holds some other date-time (e.g. when the maximum demand occurred)
    TIME = "time"


@dataclass(frozen=True)
class CaptureObject:
    """One column: a class 7 ``capture_object_definition`` plus a name for code."""

    name: str
    class_id: int
    logical_name: str
    attribute_index: int = 2
    data_index: int = 0
    kind: ColumnKind = ColumnKind.VALUE


CLOCK = CaptureObject("clock", 8, "0.0.1.0.0.255", 2, kind=ColumnKind.CAPTURE_TIME)


@dataclass(frozen=True)
class ValueRange:
    """The rows whose value in one column lies in a range (what class 7 selective access 1,
    range_descriptor, asks for): the ``restricting`` column in
    [from_value, to_value] (both inclusive), only the ``selected_values`` columns
    (all when empty). Columns are given by name or 0-based index."""

    restricting: int | str
    from_value: Any
    to_value: Any
    selected_values: tuple[int | str, ...] = ()


@dataclass(frozen=True)
class EntryRange:
    """The rows and columns by position (what class 7 selective access 2, entry_descriptor,
    asks for): entries and columns, 1-based; 0 means "to the last"."""

    from_entry: int = 1
    to_entry: int = 0
    from_selected_value: int = 1
    to_selected_value: int = 0


@dataclass(frozen=True)
class Profile:
    """A Profile generic buffer definition; the rows themselves live in Storage, always
    oldest first (class 7 sort_method FIFO, the only order IS 15959 uses)."""

    name: str  # storage key
    logical_name: str
    capture_objects: tuple[CaptureObject, ...]
    capacity: int  # class 7 attribute 8, profile_entries
    capture_period: int = 0  # seconds; 0 = captured on demand / by a schedule
    #: False for a "non-rollover" log: once full, new entries are dropped, so the
    #: first occurrence (e.g. meter cover opened) can never be pushed out.
    rollover: bool = True

    def __post_init__(self) -> None:
        key = f"profiles.{self.name}"
        names = [c.name for c in self.capture_objects]
        if not names:
            raise ConfigError(key, "a profile needs at least one capture object")
        if len(set(names)) != len(names):
            raise ConfigError(key, f"duplicate column names in {names}")
        if type(self.capacity) is not int or self.capacity < 1:
            raise ConfigError(f"{key}.capacity", f"must be a whole number >= 1, not {self.capacity!r}")
        if type(self.capture_period) is not int or self.capture_period < 0:
            raise ConfigError(f"{key}.capture_period", f"must be seconds >= 0, not {self.capture_period!r}")
        if sum(c.kind is ColumnKind.CAPTURE_TIME for c in self.capture_objects) > 1:
            raise ConfigError(key, "at most one column may hold the capture time")

    # ------------------------------------------------------------- columns
    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.capture_objects)

    @property
    def capture_time_column(self) -> int | None:
        for i, c in enumerate(self.capture_objects):
            if c.kind is ColumnKind.CAPTURE_TIME:
                return i
        return None

    def column_index(self, column: int | str) -> int:
        if isinstance(column, bool):
            raise ProfileError(f"{self.name}: no column {column!r}")
        if isinstance(column, int):
            if 0 <= column < len(self.capture_objects):
                return column
        else:
            for i, c in enumerate(self.capture_objects):
                if c.name == column:
                    return i
        raise ProfileError(f"{self.name}: no column {column!r}")

    def find_column(self, class_id: int, logical_name: str, attribute_index: int, data_index: int = 0) -> int:
        """The column of a COSEM capture object definition (how a DLMS client names it)."""
        for i, c in enumerate(self.capture_objects):
            if (c.class_id, c.logical_name, c.attribute_index, c.data_index) == (
                class_id, logical_name, attribute_index, data_index,
            ):
                return i
        raise ProfileError(
            f"{self.name}: {class_id}/{logical_name}/{attribute_index}/{data_index} is not captured"
        )

    # ------------------------------------------------------------- writing
    def make_row(self, now: datetime, values: Sequence[Any] | Mapping[str, Any]) -> list:
        """The row for ``values``: a full sequence, or a mapping by column name in
        which the capture-time column may be left out (it is ``now``)."""
        if isinstance(values, Mapping):
            unknown = set(values) - set(self.column_names)
            if unknown:
                raise ProfileError(f"{self.name}: unknown columns {sorted(unknown)}")
            row = []
            for c in self.capture_objects:
                if c.name in values:
                    row.append(values[c.name])
                elif c.kind is ColumnKind.CAPTURE_TIME:
                    row.append(now)
                else:
                    raise ProfileError(f"{self.name}: no value for column {c.name!r}")
            return row
        row = list(values)
        if len(row) != len(self.capture_objects):
            raise ProfileError(f"{self.name}: {len(row)} values for {len(self.capture_objects)} columns")
        return row

    def capture(
        self,
        tx: Transaction,
        now: datetime,
        values: Sequence[Any] | Mapping[str, Any],
        storage: Storage | None = None,
    ) -> int | None:
        """Append one entry (class 7 ``capture``); returns its sequence number, or
        None when a full non-rollover log drops it. Non-rollover logs need
        ``storage`` (the one ``tx`` belongs to) to see how full they are."""
        row = self.make_row(now, values)
        if not self.rollover:
            if storage is None:
                raise ProfileError(f"{self.name}: a non-rollover log needs storage to count its entries")
            if storage.count(self.name) >= self.capacity:
                return None
        return tx.append(self.name, now, row, self.capacity)

    def reset(self, tx: Transaction) -> None:
        """Class 7 method ``reset``: empty the buffer."""
        tx.clear(self.name)

    # ------------------------------------------------------------- reading
    def entries_in_use(self, storage: Storage) -> int:
        return storage.count(self.name)

    def rows(
        self,
        storage: Storage,
        selection: ValueRange | EntryRange | None = None,
    ) -> list[list]:
        """The buffer oldest first (class 7 ``buffer``), optionally with selective access."""
        if selection is None:
            return [r.values for r in storage.rows(self.name)]
        if isinstance(selection, ValueRange):
            return self._by_range(storage, selection)
        if isinstance(selection, EntryRange):
            return self._by_entry(storage, selection)
        raise ProfileError(f"{self.name}: unknown selective access {selection!r}")

    def _by_range(self, storage: Storage, rd: ValueRange) -> list[list]:
        col = self.column_index(rd.restricting)
        selected = [self.column_index(c) for c in rd.selected_values] or list(range(len(self.capture_objects)))
        lo, hi = rd.from_value, rd.to_value
        if col == self.capture_time_column:
            # the capture-time column equals the row's stored time: let the
            # (indexed) storage query do the work.
            if not isinstance(lo, datetime) or not isinstance(hi, datetime):
                raise ProfileError(f"{self.name}: a range on {self.column_names[col]!r} needs date-times")
            if (lo.tzinfo is None) != (hi.tzinfo is None):
                raise ProfileError(f"{self.name}: mixed naive and aware date-times in a range")
            found = [r.values for r in storage.rows(self.name, from_time=lo, to_time=hi)]
        else:
            found = []
            try:
                for r in storage.rows(self.name):
                    v = r.values[col]
                    if v is not None and lo <= v <= hi:
                        found.append(r.values)
            except TypeError as exc:
                raise ProfileError(
                    f"{self.name}: column {self.column_names[col]!r} cannot be compared with {lo!r}..{hi!r}"
                ) from exc
        return [[row[i] for i in selected] for row in found]

    def _by_entry(self, storage: Storage, ed: EntryRange) -> list[list]:
        for name in ("from_entry", "to_entry", "from_selected_value", "to_selected_value"):
            v = getattr(ed, name)
            if type(v) is not int or v < 0:
                raise ProfileError(f"{self.name}: {name} must be a whole number >= 0, not {v!r}")
        if ed.from_entry < 1 or ed.from_selected_value < 1:
            raise ProfileError(f"{self.name}: entries and columns are numbered from 1")
        ncol = len(self.capture_objects)
        to_col = ncol if ed.to_selected_value == 0 else min(ed.to_selected_value, ncol)
        if (ed.to_entry and ed.to_entry < ed.from_entry) or ed.from_selected_value > to_col:
            return []
        # FIFO buffers hold consecutive sequence numbers, so entry k is first_seq + k - 1
        everything = storage.rows(self.name)
        end = None if ed.to_entry == 0 else ed.to_entry
        picked = everything[ed.from_entry - 1 : end]
        return [r.values[ed.from_selected_value - 1 : to_col] for r in picked]


# ------------------------------------------------------------------ schedules


class Schedule(Protocol):
    def next_after(self, t: datetime) -> datetime:
        """The first capture instant strictly after ``t``."""


@dataclass(frozen=True)
class PeriodicSchedule:
    """Every ``period`` seconds counted from midnight (a shorter last block if the
    period does not divide a day)."""

    period: int

    def __post_init__(self) -> None:
        if type(self.period) is not int or not 0 < self.period <= 86400:
            raise ConfigError("profiles.capture_period", f"must be 1..86400 s, not {self.period!r}")

    def next_after(self, t: datetime) -> datetime:
        midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(seconds=self.period)
        k = (t - midnight) // step + 1
        return min(midnight + k * step, midnight + timedelta(days=1))


@dataclass(frozen=True)
class MonthlySchedule:
    """On ``day`` of every month at ``at`` (day 29..31 means the last day in a
    shorter month, so February still bills once)."""

    day: int = 1
    at: time = time(0, 0)

    def __post_init__(self) -> None:
        if type(self.day) is not int or not 1 <= self.day <= 31:
            raise ConfigError("profiles.billing_day", f"must be a day of the month 1..31, not {self.day!r}")

    def _in_month(self, year: int, month: int, like: datetime) -> datetime:
        day = min(self.day, calendar.monthrange(year, month)[1])
        return like.replace(year=year, month=month, day=day, hour=self.at.hour, minute=self.at.minute,
                            second=self.at.second, microsecond=0)

    def next_after(self, t: datetime) -> datetime:
        year, month = t.year, t.month
        for _ in range(3):
            cand = self._in_month(year, month, t)
            if cand > t:
                return cand
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        raise AssertionError("unreachable: a month later is always later")


@dataclass(frozen=True)
class Capture:
    """Profiles due at one instant."""

    time: datetime
    profiles: tuple[str, ...]


class ProfileScheduler:
    """When the periodic captures fall, so a simulated clock can jump from one
    capture boundary to the next instead of ticking through every second."""

    def __init__(self, schedules: Mapping[str, Schedule]):
        self.schedules = dict(schedules)
        # per schedule, the last answer (asked at, next capture): a walk asks at every step,
        # and a schedule has no capture in between, so any time in [asked, next) has it too
        self._known: dict[str, tuple[datetime, datetime]] = {}

    def next_capture(self, now: datetime) -> Capture | None:
        """The earliest capture strictly after ``now`` and every profile due then."""
        if not self.schedules:
            return None
        nexts = {}
        for name, s in self.schedules.items():
            known = self._known.get(name)
            if known is not None and known[0] <= now < known[1]:
                nexts[name] = known[1]
            else:
                nexts[name] = t = s.next_after(now)
                self._known[name] = (now, t)
        when = min(nexts.values())
        return Capture(when, tuple(n for n, t in nexts.items() if t == when))

    def due(self, after: datetime, until: datetime) -> list[Capture]:
        """Every capture in (after, until], oldest first."""
        out = []
        t = after
        while True:
            c = self.next_capture(t)
            if c is None or c.time > until:
                return out
            out.append(c)
            t = c.time


# ------------------------------------------------------------------ the standard set

#: cumulative energy registers: (name, cumulative OBIS, block-energy OBIS (D=29)).
ENERGY_REGISTERS: tuple[tuple[str, str, str], ...] = (
    ("active_import", "1.0.1.8.0.255", "1.0.1.29.0.255"),       # kWh A+
    ("active_export", "1.0.2.8.0.255", "1.0.2.29.0.255"),       # kWh A-
    ("reactive_lag", "1.0.5.8.0.255", "1.0.5.29.0.255"),        # kvarh Q1
    ("reactive_lead", "1.0.8.8.0.255", "1.0.8.29.0.255"),       # kvarh Q4
    ("apparent_import", "1.0.9.8.0.255", "1.0.9.29.0.255"),     # kVAh import
    ("apparent_export", "1.0.10.8.0.255", "1.0.10.29.0.255"),   # kVAh export
)
ENERGY_NAMES = tuple(n for n, _, _ in ENERGY_REGISTERS)

INSTANTANEOUS = "instantaneous"
BLOCK_LOAD = "block_load"
DAILY_LOAD = "daily_load"
BILLING = "billing"


def _reg(name: str, obis: str, attr: int = 2, class_id: int = 3, kind: ColumnKind = ColumnKind.VALUE):
    return CaptureObject(name, class_id, obis, attr, 0, kind)


def instantaneous_profile() -> Profile:
    """1.0.94.91.0.255: a snapshot captured on demand (one entry kept). The neutral
    current follows the phase current, where IS 15959-2's single-phase instantaneous
    profile has it (voltage, phase current, neutral current, ... in the public head-end
    sources that decode it, README "The object list")."""
    cols = (
        CLOCK,
        _reg("voltage", "1.0.12.7.0.255"),
        _reg("current", "1.0.11.7.0.255"),
        _reg("neutral_current", "1.0.91.7.0.255"),
        _reg("active_power", "1.0.1.7.0.255"),
        _reg("apparent_power", "1.0.9.7.0.255"),
        _reg("power_factor", "1.0.13.7.0.255"),
        _reg("frequency", "1.0.14.7.0.255"),
        _reg("active_import", "1.0.1.8.0.255"),
        _reg("active_export", "1.0.2.8.0.255"),
        _reg("apparent_import", "1.0.9.8.0.255"),
        _reg("md_active_import", "1.0.1.6.0.255", 2, 4),
        _reg("md_active_import_time", "1.0.1.6.0.255", 5, 4, ColumnKind.TIME),
        _reg("balance_amount", "0.0.94.96.24.255", 2, 1),
        _reg("relay_output_state", "0.0.96.3.10.255", 2, 70),
        _reg("load_limit", "0.0.17.0.0.255", 3, 71),
    )
    return Profile(INSTANTANEOUS, "1.0.94.91.0.255", cols, capacity=1, capture_period=0)


def block_load_profile(period: int = 900, days: int = 30) -> Profile:
    """1.0.99.1.0.255: per block, the energy of the block and average V and I."""
    if period not in (900, 1800):
        raise ConfigError("profiles.block_load_period", f"must be 900 or 1800 s, not {period!r}")
    cols = (
        CLOCK,
        _reg("average_voltage", "1.0.12.27.0.255"),
        _reg("average_current", "1.0.11.27.0.255"),
        *(_reg(name, block) for name, _, block in ENERGY_REGISTERS),
    )
    return Profile(BLOCK_LOAD, "1.0.99.1.0.255", cols, capacity=_days(days, "block_load_days") * 86400 // period,
                   capture_period=period)


def daily_load_profile(days: int = 60) -> Profile:
    """1.0.99.2.0.255: cumulative energies at midnight."""
    cols = (CLOCK, *(_reg(name, cum) for name, cum, _ in ENERGY_REGISTERS))
    return Profile(DAILY_LOAD, "1.0.99.2.0.255", cols, capacity=_days(days, "daily_load_days"),
                   capture_period=86400)


def billing_profile(months: int = 13) -> Profile:
    """1.0.98.1.0.255: one row per billing date (12 months + the current one).

    Its first column is the billing date, not the clock: a range read on it
    still works (it holds the capture time). The amounts are bijli's own
    objects under 0.0.94.96.x (India prepaid block, see NOTES.md)."""
    if type(months) is not int or months < 1:
        raise ConfigError("profiles.billing_months", f"must be a whole number >= 1, not {months!r}")
    energies = []
    for name, cum, _ in ENERGY_REGISTERS:
        energies.append(_reg(name, cum))
        if name in TIER_ENERGIES:  # IS 15959: each total followed by its tariff zones TZ1..TZ8
            energies.extend(_reg(f"{name}_tz{t}", _tier_obis(cum, t)) for t in TIERS)
    cols = (
        _reg("billing_date", "0.0.0.1.2.255", 2, 3, ColumnKind.CAPTURE_TIME),
        _reg("average_power_factor", "1.0.13.0.0.255"),
        *energies,
        *_demand_columns("md_active_import", "1.0.1.6.0.255"),
        *_demand_columns("md_apparent_import", "1.0.9.6.0.255"),
        _reg("period_power_on", "0.0.94.91.13.255"),      # IS 15959: power-on minutes of the period
        _reg("billed_amount", "0.0.94.96.26.255", 2, 1),   # bijli: charges of the period
        _reg("balance_amount", "0.0.94.96.24.255", 2, 1),
    )
    return Profile(BILLING, "1.0.98.1.0.255", cols, capacity=months, capture_period=0)


#: the energies IS 15959 keeps per tariff zone: active and apparent import
TIER_ENERGIES = ("active_import", "apparent_import")


def _tier_obis(total: str, tier: int) -> str:
    """A total register's tariff-zone register: rate E = the tier (1.0.1.8.0 -> 1.0.1.8.t)."""
    a, b, c, d, _, f = total.split(".")
    return f"{a}.{b}.{c}.{d}.{tier}.{f}"


def _demand_columns(name: str, total: str) -> tuple[CaptureObject, ...]:
    """A maximum demand and its time, then the same for each tariff zone (Extended register
    value and capture_time, as IS 15959's billing profile lists them)."""
    cols = [_reg(name, total, 2, 4), _reg(f"{name}_time", total, 5, 4, ColumnKind.TIME)]
    for t in TIERS:
        cols += [_reg(f"{name}_tz{t}", _tier_obis(total, t), 2, 4),
                 _reg(f"{name}_tz{t}_time", _tier_obis(total, t), 5, 4, ColumnKind.TIME)]
    return tuple(cols)


def _days(days: Any, key: str) -> int:
    if type(days) is not int or days < 1:
        raise ConfigError(f"profiles.{key}", f"must be a whole number of days >= 1, not {days!r}")
    return days


@dataclass(frozen=True)
class ProfileConfig:
    block_load_period: int = 900
    block_load_days: int = 30
    daily_load_days: int = 60
    billing_months: int = 13
    billing_day: int = 1
    billing_time: time = time(0, 0)


@dataclass(frozen=True)
class ProfileSet:
    instantaneous: Profile
    block_load: Profile
    daily_load: Profile
    billing: Profile
    billing_schedule: MonthlySchedule

    @classmethod
    def standard(cls, config: ProfileConfig = ProfileConfig()) -> "ProfileSet":
        """The IS 15959 set for ``config``. Built once per configuration and shared by every
        meter built with it (a fleet hydrates a meter per association): a set and all it
        holds are frozen definitions, the rows are in each meter's own storage."""
        return _standard_set(cls, config)

    @property
    def all(self) -> tuple[Profile, ...]:
        return (self.instantaneous, self.block_load, self.daily_load, self.billing)

    def by_name(self, name: str) -> Profile:
        for p in self.all:
            if p.name == name:
                return p
        raise ProfileError(f"no profile {name!r}")

    def scheduler(self) -> ProfileScheduler:
        return ProfileScheduler({
            BLOCK_LOAD: PeriodicSchedule(self.block_load.capture_period),
            DAILY_LOAD: PeriodicSchedule(self.daily_load.capture_period),
            BILLING: self.billing_schedule,
        })


# ------------------------------------------------------------------ block values


@dataclass(frozen=True)
class BlockAverager:
    """Time-weighted averages of V and I over the running block (persistable)."""

    seconds: float = 0.0
    volt_seconds: float = 0.0
    amp_seconds: float = 0.0

    def add(self, voltage: float, current: float, seconds: float) -> "BlockAverager":
        if seconds <= 0:
            return self
        return BlockAverager(self.seconds + seconds, self.volt_seconds + voltage * seconds,
                             self.amp_seconds + current * seconds)

    @property
    def voltage(self) -> float:
        return self.volt_seconds / self.seconds if self.seconds else 0.0

    @property
    def current(self) -> float:
        return self.amp_seconds / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "BlockAverager":
        try:
            return from_record(cls, d)
        except StorageError as exc:
            raise ProfileError(f"stored block averager is unreadable: {exc}") from None


#: decimal places the block averages are captured to: V and A to 0.01, the resolution
#: their registers cross DLMS at (scaler -2 in firmware.cosem.quantities; a test ties
#: the two). A real meter keeps its buffer as scaled integers; so does a fleet shard's
#: profile page (firmware.pages), which a float with the noise of a time-weighted mean
#: in its last bits would cost 8 bytes a cell.
AVERAGE_DECIMALS = 2


def block_load_values(
    start: Mapping[str, Any], end: Mapping[str, Any], averages: BlockAverager
) -> dict[str, Any]:
    """The block-load row (less the clock) from cumulative energies at the start
    and end of the block: energies are differences, so nothing drifts."""
    try:
        energies = {name: end[name] - start[name] for name in ENERGY_NAMES}
    except KeyError as exc:
        raise ProfileError(f"block load: no cumulative value for {exc.args[0]!r}") from exc
    return {"average_voltage": round(averages.voltage, AVERAGE_DECIMALS),
            "average_current": round(averages.current, AVERAGE_DECIMALS), **energies}


def cumulative_values(registers: Mapping[str, Any]) -> dict[str, Any]:
    """The daily-load row (less the clock): the cumulative energies."""
    try:
        return {name: registers[name] for name in ENERGY_NAMES}
    except KeyError as exc:
        raise ProfileError(f"daily load: no cumulative value for {exc.args[0]!r}") from exc


def profile_config_from_table(table: Mapping, prefix: str = "profiles", billing_day: int = 1) -> ProfileConfig:
    """The ``[profiles]`` table; the billing day comes from the tariff so both close together."""
    from bijli.firmware.config import Table

    t = Table(table, prefix, {"block_load_period", "block_load_days", "daily_load_days", "billing_months"})
    period = t.int("block_load_period", 900)
    if period not in (900, 1800):
        raise ConfigError(t.key("block_load_period"), f"must be 900 or 1800 s, not {period}")
    return ProfileConfig(
        block_load_period=period,
        block_load_days=t.int("block_load_days", 30, 1, 3660),
        daily_load_days=t.int("daily_load_days", 60, 1, 3660),
        billing_months=t.int("billing_months", 13, 1, 120),
        billing_day=billing_day,
    )


@lru_cache(maxsize=16)
def _standard_set(cls: type, config: ProfileConfig) -> ProfileSet:
    return cls(
        instantaneous_profile(),
        block_load_profile(config.block_load_period, config.block_load_days),
        daily_load_profile(config.daily_load_days),
        billing_profile(config.billing_months),
        MonthlySchedule(config.billing_day, config.billing_time),
    )
