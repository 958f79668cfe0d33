"""Calendar values the tariff and the prepaid account share: special days
(holidays), time-of-day windows that may cross midnight, weekday sets, and the
friendly-credit calendar ("no disconnection" hours, days and holidays).

Special days follow the COSEM Special days table (IC 11): a date whose year may
be a wildcard (every year, written ``"*-08-15"``) or a fixed date
(``2024-06-17``); the activity calendar (IC 20) and the friendly-credit rules
both consult it. Everything here is pure: times are naive local meter time and
are passed in. (The module name shadows the stdlib ``calendar`` only for code
run with ``firmware/`` itself on ``sys.path``, which nothing does.)
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from bijli.firmware.errors import ConfigError

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_ALIASES = {
    **{n: i for i, n in enumerate(WEEKDAY_NAMES)},
    **{n: i for i, n in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))},
}

# Indian national holidays fall on the same date every year; festival dates move
# with the lunar calendar and come from the state government's list each year.
# The demo list is a starting point for a test rig: a utility configures its own.
DEMO_HOLIDAYS: dict[str, str] = {
    "*-01-26": "Republic Day",
    "*-08-15": "Independence Day",
    "*-10-02": "Gandhi Jayanti",
    "2024-03-25": "Holi",
    "2024-04-11": "Id-ul-Fitr",
    "2024-06-17": "Id-ul-Zuha (Bakrid)",
    "2024-10-31": "Diwali",
    "2024-11-01": "Diwali",
    "2024-11-07": "Chhath Puja",
    "2025-03-14": "Holi",
    "2025-03-31": "Id-ul-Fitr",
    "2025-06-07": "Id-ul-Zuha (Bakrid)",
    "2025-10-20": "Diwali",
    "2025-10-28": "Chhath Puja",
    "2026-03-04": "Holi",
    "2026-05-27": "Id-ul-Zuha (Bakrid)",
    "2026-11-08": "Diwali",
}


def parse_time(value: Any, key: str) -> dt.time:
    """``"17:30"``, ``"17:30:15"`` or a TOML local time -> :class:`datetime.time`."""
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(key, f"expected a time of day like '17:30', got {value!r}")


def parse_datetime(value: Any, key: str) -> dt.datetime:
    """A TOML local datetime or an ISO string -> naive :class:`datetime.datetime`."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise ConfigError(key, "meter time is naive local time: drop the UTC offset")
        return value
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is not None:
                raise ConfigError(key, "meter time is naive local time: drop the UTC offset")
            return parsed
    raise ConfigError(key, f"expected a date-time like '2024-07-01T00:00', got {value!r}")


def parse_weekdays(value: Any, key: str) -> frozenset[int]:
    """``["sat", "sun"]`` -> ``{5, 6}`` (Monday is 0, as :meth:`date.weekday`)."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected a list of weekday names, got {value!r}")
    days = set()
    for item in value:
        if not isinstance(item, str) or item.strip().lower() not in _WEEKDAY_ALIASES:
            raise ConfigError(key, f"unknown weekday {item!r} (use mon..sun)")
        days.add(_WEEKDAY_ALIASES[item.strip().lower()])
    return frozenset(days)


@dataclass(frozen=True)
class DateSpec:
    """A special-day date; ``year`` None is the COSEM wildcard year (every year)."""

    month: int
    day: int
    year: int | None = None

    @classmethod
    def parse(cls, value: Any, key: str) -> "DateSpec":
        if isinstance(value, dt.datetime):
            raise ConfigError(key, f"expected a date, got the date-time {value!r}")
        if isinstance(value, dt.date):
            return cls(value.month, value.day, value.year)
        if isinstance(value, str):
            text = value.strip()
            try:
                if text.startswith("*-"):
                    month, day = (int(p) for p in text[2:].split("-"))
                    dt.date(2024, month, day)  # leap year: admits 29 Feb
                    return cls(month, day, None)
                d = dt.date.fromisoformat(text)
                return cls(d.month, d.day, d.year)
            except ValueError:
                pass
        raise ConfigError(key, f"expected a date '2024-06-17' or every-year '*-08-15', got {value!r}")

    def matches(self, d: dt.date) -> bool:
        return d.month == self.month and d.day == self.day and self.year in (None, d.year)

    def __str__(self) -> str:
        year = "*" if self.year is None else f"{self.year:04d}"
        return f"{year}-{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True)
class SpecialDays:
    """A special days table: dates with a name (and, for the tariff, a day schedule id)."""

    entries: tuple[tuple[DateSpec, str], ...] = ()

    @classmethod
    def parse(cls, value: Any, key: str) -> "SpecialDays":
        """A TOML table ``{"2024-06-17" = "Bakrid"}`` or a list of dates."""
        if isinstance(value, Mapping):
            items = [(DateSpec.parse(k, f"{key}.{k}"), v) for k, v in value.items()]
            for (spec, name), k in zip(items, value):
                if not isinstance(name, str):
                    raise ConfigError(f"{key}.{k}", f"expected a name string, got {name!r}")
            return cls(tuple(items))
        if isinstance(value, (list, tuple)):
            return cls(tuple((DateSpec.parse(v, f"{key}[{i}]"), "") for i, v in enumerate(value)))
        raise ConfigError(key, f"expected a table of date = name or a list of dates, got {value!r}")

    def lookup(self, d: dt.date) -> str | None:
        """The name of the special day ``d`` ('' if unnamed), or None if it is not one."""
        # A dated entry wins over an every-year one on the same day (more specific).
        found = None
        for spec, name in self.entries:
            if spec.matches(d):
                if spec.year is not None:
                    return name
                found = name
        return found

    def to_value(self) -> dict[str, str]:
        return {str(spec): name for spec, name in self.entries}


@dataclass(frozen=True)
class TimeWindow:
    """Times of day in ``[start, end)``; ``end <= start`` wraps past midnight
    (17:30-11:00 covers the evening, the night and the morning). ``start == end``
    is empty: a whole day is a weekday rule, not a window."""

    start: dt.time
    end: dt.time

    def contains(self, t: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


class FriendlyReason(enum.Enum):
    """Why a friendly-credit period is in force (most specific first)."""

    HOLIDAY = "holiday"
    FRIENDLY_DAY = "friendly_day"
    FRIENDLY_HOURS = "friendly_hours"


@dataclass(frozen=True)
class FriendlyCalendar:
    """When the supply must not be disconnected for lack of credit.

    A holiday or a friendly weekday is friendly all day (00:00 to 24:00); on
    other days the friendly hours window applies. The window is a time-of-day
    rule on every day, so a window crossing midnight from a working day keeps
    the supply on into the next morning, and the first disconnection after a
    long weekend happens when the window ends on the next working day.
    """

    hours: TimeWindow
    days: frozenset[int]
    holidays: SpecialDays

    def reason_at(self, now: dt.datetime) -> FriendlyReason | None:
        if self.holidays.lookup(now.date()) is not None:
            return FriendlyReason.HOLIDAY
        if now.weekday() in self.days:
            return FriendlyReason.FRIENDLY_DAY
        if self.hours.contains(now.time()):
            return FriendlyReason.FRIENDLY_HOURS
        return None

    def _candidates(self, now: dt.datetime) -> Iterator[dt.datetime]:
        # reason_at is constant between midnights and the window's edges, so the
        # first change after ``now`` is at one of these instants.
        day = now.date()
        edges = sorted({dt.time(0, 0), self.hours.start, self.hours.end})
        while True:
            for t in edges:
                at = dt.datetime.combine(day, t)
                if at > now:
                    yield at
            day += dt.timedelta(days=1)

    def next_change(self, now: dt.datetime, horizon_days: int = 800) -> dt.datetime | None:
        """The first instant after ``now`` at which being friendly starts or
        stops (a change only of reason, e.g. holiday -> friendly hours, is not
        one), or None if nothing changes within ``horizon_days``."""
        friendly = self.reason_at(now) is not None
        limit = now + dt.timedelta(days=horizon_days)
        for at in self._candidates(now):
            if at > limit:
                return None
            if (self.reason_at(at) is not None) != friendly:
                return at
        return None  # pragma: no cover - the generator is infinite
