"""Time and script classes: Script table (9), Special days table (11), Activity
calendar (20) and Single action schedule (22), all version 0, IEC 62056-6-2
clauses 4.5.2-4.5.7.

A Script table holds numbered scripts, each a list of attribute writes and
method calls; the other three classes say *when* a script runs: the activity
calendar by season, week and day profile (the time-of-day tariff), the special
days table by date (holidays use another day profile), and the single action
schedule at listed dates and times (the billing date). The firmware runs the
schedules; these objects show and change their tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, Sequence

from bijli.dlms import axdr
from bijli.dlms.axdr import CosemDate, CosemDateTime, CosemTime
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.bound import NO_PARAMETER, BoundObject
from bijli.dlms.cosem.values import (
    ACTION_ITEM, DATE_TIME_PATTERN, LONG_UNSIGNED, OCTET_STRING, array_of, integer,
    mismatch, parse_array, parse_cosem_date, parse_cosem_date_time, parse_cosem_time, parse_int, parse_obis,
    parse_octets, parse_struct, struct_of, date_octets, time_octets, date_time_octets,
)
from bijli.dlms.apdu import ActionResult
from bijli.dlms.obis import Obis

# --- Script table (9) -----------------------------------------------------------------


class ServiceId(IntEnum):
    WRITE_ATTRIBUTE = 1
    EXECUTE_SPECIFIC_METHOD = 2


@dataclass(frozen=True, slots=True)
class ActionSpecification:
    """action_specification ::= structure {service_id enum, class_id long-unsigned,
    logical_name octet-string, index integer, parameter Data}."""

    service_id: ServiceId
    class_id: int
    logical_name: Obis
    index: int
    parameter: axdr.Data = axdr.NullData()

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.Enum(int(self.service_id)), axdr.LongUnsigned(self.class_id),
                               axdr.OctetString(bytes(self.logical_name)), axdr.Integer(self.index), self.parameter))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ActionSpecification":
        s, c, ln, i, p = parse_struct(value, 5)
        service = parse_int(s, axdr.Enum)
        if service not in ServiceId._value2member_map_:
            raise mismatch("service_id is 1 (write attribute) or 2 (execute method)")
        return cls(ServiceId(service), parse_int(c, axdr.LongUnsigned), parse_obis(ln), parse_int(i, axdr.Integer), p)


@dataclass(frozen=True, slots=True)
class Script:
    """script ::= structure {script_identifier long-unsigned, actions array action_specification}."""

    script_identifier: int
    actions: tuple[ActionSpecification, ...] = ()

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.LongUnsigned(self.script_identifier),
                               axdr.Array(tuple(a.to_data() for a in self.actions))))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "Script":
        i, actions = parse_struct(value, 2)
        return cls(parse_int(i, axdr.LongUnsigned), tuple(ActionSpecification.from_data(a) for a in parse_array(actions)))


class ScriptTable(BoundObject):
    """Bindings: ``scripts`` (getter of Script sequence), ``set_scripts``,
    ``on_execute(script_identifier: int)``."""

    CLASS_ID = 9
    VERSION = 0
    ATTRIBUTES = ("logical_name", "scripts")
    METHODS = ("execute",)
    TYPES = {"scripts": array_of(struct_of(Script))}
    PARAMS = {"execute": LONG_UNSIGNED}


# --- Special days table (11) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """spec_day_entry ::= structure {index long-unsigned, specialday_date octet-string(5)
    (a date, wildcards allowed: year 0xFFFF repeats every year), day_id unsigned}."""

    index: int
    specialday_date: CosemDate
    day_id: int

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.LongUnsigned(self.index), date_octets(self.specialday_date), axdr.Unsigned(self.day_id)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "SpecialDay":
        i, d, day = parse_struct(value, 3)
        return cls(parse_int(i, axdr.LongUnsigned), parse_cosem_date(d), parse_int(day, axdr.Unsigned))


SPECIAL_DAY = struct_of(SpecialDay)


class SpecialDaysTable(BoundObject):
    """``entries`` is the firmware's holiday list (getter of SpecialDay sequence);
    ``store(entries)`` saves a changed list (insert/delete compute it here; store may
    raise CosemError, e.g. when the table is full)."""

    CLASS_ID = 11
    VERSION = 0
    ATTRIBUTES = ("logical_name", "entries")
    METHODS = ("insert", "delete")
    TYPES = {"entries": array_of(SPECIAL_DAY)}

    def __init__(self, logical_name, *, entries: Callable[[], Sequence[SpecialDay]],
                 store: Callable[[tuple[SpecialDay, ...]], None] | None = None, max_entries: int = 0xFFFF):
        super().__init__(logical_name, entries=entries)
        self._store = store
        self.max_entries = max_entries

    def _writable(self) -> None:
        if self._store is None:
            raise CosemError(ActionResult.READ_WRITE_DENIED, "the special days table is read-only")

    def _save(self, entries: list[SpecialDay]) -> None:
        if len(entries) > self.max_entries:
            raise CosemError(ActionResult.OTHER_REASON, f"the table holds at most {self.max_entries} entries")
        self._store(tuple(sorted(entries, key=lambda e: e.index)))

    def do_insert(self, params, ctx):
        """An entry with the same index is replaced (as the standard says)."""
        self._writable()
        if params is None:
            raise mismatch("insert needs a spec_day_entry")
        new = SpecialDay.from_data(params)
        self._save([e for e in self.value("entries") if e.index != new.index] + [new])

    def do_delete(self, params, ctx):
        self._writable()
        if params is None:
            raise mismatch("delete needs an index")
        index = parse_int(params, axdr.LongUnsigned)
        entries = list(self.value("entries"))
        kept = [e for e in entries if e.index != index]
        if len(kept) != len(entries):  # deleting a missing index is a no-op success
            self._save(kept)


# --- Activity calendar (20) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeasonProfile:
    """structure {season_profile_name octet-string, season_start octet-string(12), week_name octet-string}."""

    season_profile_name: bytes
    season_start: CosemDateTime
    week_name: bytes

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.OctetString(self.season_profile_name), date_time_octets(self.season_start),
                               axdr.OctetString(self.week_name)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "SeasonProfile":
        n, s, w = parse_struct(value, 3)
        return cls(parse_octets(n), parse_cosem_date_time(s), parse_octets(w))


@dataclass(frozen=True, slots=True)
class WeekProfile:
    """structure {week_profile_name octet-string, monday .. sunday unsigned (day_id)}."""

    week_profile_name: bytes
    days: tuple[int, int, int, int, int, int, int]  # Monday first

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.OctetString(self.week_profile_name), *(axdr.Unsigned(d) for d in self.days)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "WeekProfile":
        n, *days = parse_struct(value, 8)
        return cls(parse_octets(n), tuple(parse_int(d, axdr.Unsigned) for d in days))


@dataclass(frozen=True, slots=True)
class DayProfileAction:
    """structure {start_time octet-string(4), script_logical_name octet-string, script_selector long-unsigned}."""

    start_time: CosemTime
    script_logical_name: Obis
    script_selector: int

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((time_octets(self.start_time), axdr.OctetString(bytes(self.script_logical_name)),
                               axdr.LongUnsigned(self.script_selector)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "DayProfileAction":
        t, ln, sel = parse_struct(value, 3)
        return cls(parse_cosem_time(t), parse_obis(ln), parse_int(sel, axdr.LongUnsigned))


@dataclass(frozen=True, slots=True)
class DayProfile:
    """structure {day_id unsigned, day_schedule array day_profile_action}."""

    day_id: int
    day_schedule: tuple[DayProfileAction, ...]

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.Unsigned(self.day_id), axdr.Array(tuple(a.to_data() for a in self.day_schedule))))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "DayProfile":
        d, sched = parse_struct(value, 2)
        return cls(parse_int(d, axdr.Unsigned), tuple(DayProfileAction.from_data(a) for a in parse_array(sched)))


_SEASONS = array_of(struct_of(SeasonProfile))
_WEEKS = array_of(struct_of(WeekProfile))
_DAYS = array_of(struct_of(DayProfile))


class ActivityCalendar(BoundObject):
    """Bindings: getters of the active and passive tables (bytes, SeasonProfile /
    WeekProfile / DayProfile sequences, CosemDateTime or datetime); ``set_`` for the
    passive ones and activate_passive_calendar_time; ``on_activate_passive_calendar()``."""

    CLASS_ID = 20
    VERSION = 0
    ATTRIBUTES = (
        "logical_name", "calendar_name_active", "season_profile_active", "week_profile_table_active",
        "day_profile_table_active", "calendar_name_passive", "season_profile_passive", "week_profile_table_passive",
        "day_profile_table_passive", "activate_passive_calendar_time",
    )
    METHODS = ("activate_passive_calendar",)
    TYPES = {
        "calendar_name_active": OCTET_STRING,
        "season_profile_active": _SEASONS,
        "week_profile_table_active": _WEEKS,
        "day_profile_table_active": _DAYS,
        "calendar_name_passive": OCTET_STRING,
        "season_profile_passive": _SEASONS,
        "week_profile_table_passive": _WEEKS,
        "day_profile_table_passive": _DAYS,
        "activate_passive_calendar_time": DATE_TIME_PATTERN,
    }
    PARAMS = {"activate_passive_calendar": NO_PARAMETER}
    DEFAULTS = {"calendar_name_passive": b"", "season_profile_passive": (), "week_profile_table_passive": (),
                "day_profile_table_passive": (), "activate_passive_calendar_time": None}


# --- Single action schedule (22) -----------------------------------------------------------


class ScheduleType(IntEnum):
    """type: 1 one time, same time every date; 2 n times, same time; 3 n times, own times;
    4 one time, wildcard date; 5 n times, wildcard dates."""

    SIZE_1 = 1
    SIZE_N_SAME_TIME = 2
    SIZE_N_OWN_TIMES = 3
    SIZE_1_WILDCARD_DATE = 4
    SIZE_N_WILDCARD_DATES = 5


@dataclass(frozen=True, slots=True)
class ExecutionTime:
    """execution_time_date ::= structure {time octet-string(4), date octet-string(5)}."""

    time: CosemTime
    date: CosemDate

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((time_octets(self.time), date_octets(self.date)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ExecutionTime":
        t, d = parse_struct(value, 2)
        return cls(parse_cosem_time(t), parse_cosem_date(d))


class SingleActionSchedule(BoundObject):
    """Bindings: executed_script (ScriptReference), type (int 1..5), execution_time
    (ExecutionTime sequence), with ``set_`` for each to make them writable."""

    CLASS_ID = 22
    VERSION = 0
    ATTRIBUTES = ("logical_name", "executed_script", "type", "execution_time")
    TYPES = {
        "executed_script": ACTION_ITEM,
        "type": integer(axdr.Enum, 1, 5),
        "execution_time": array_of(struct_of(ExecutionTime)),
    }


__all__ = [
    "ActionSpecification", "ActivityCalendar", "DayProfile", "DayProfileAction", "ExecutionTime", "ScheduleType",
    "Script", "ScriptTable", "SeasonProfile", "ServiceId", "SingleActionSchedule", "SpecialDay",
    "SpecialDaysTable", "WeekProfile",
]
