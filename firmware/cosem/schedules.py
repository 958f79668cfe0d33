"""Schedules, calendar and scripts: when the meter acts, and what a script does.

The billing date as a Single action schedule (IC 22, 0.0.15.0.0.255) running the
end-of-billing script; the time-of-day tariff as the Activity calendar (IC 20,
0.0.13.0.0.255) with its season, week and day profiles; the holidays as the
Special days table (IC 11, 0.0.11.0.0.255); and the Script tables (IC 9) those
objects and the limiter point to. A script runs through the same object hooks a
head-end's request would use, so it takes the meter's own decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from bijli.dlms import axdr
from bijli.dlms.apdu import ActionResult, DataAccessResult
from bijli.dlms.cosem.base import Context, CosemError, CosemObject
from bijli.dlms.cosem.schedule import (ActionSpecification, ActivityCalendar, DayProfile, DayProfileAction,
                                       ExecutionTime, ScheduleType, Script, ScriptTable, SeasonProfile, ServiceId,
                                       SingleActionSchedule, SpecialDay, SpecialDaysTable, WeekProfile)
from bijli.dlms.cosem.values import ScriptReference
from bijli.dlms.obis import Obis
from bijli.firmware.cosem.catalogue import (ACTIVITY_CALENDAR, BILLING_PROFILE, BILLING_SCHEDULE, BILLING_SCRIPT_TABLE,
                                            DISCONNECT_CONTROL, DISCONNECT_SCRIPT_TABLE, SPECIAL_DAYS,
                                            TARIFFICATION_SCRIPT_TABLE)
from bijli.firmware.cosem.results import cosem_result
from bijli.firmware.tariff import EnergyKind

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.cosem.tod import TodProgramming
    from bijli.firmware.meter import Meter


def billing_schedule(meter: "Meter") -> SingleActionSchedule:
    """The billing date: 00:00 on the tariff's billing day of every month (wildcard year and
    month). Writable with one such entry; the day is kept in the meter's memory."""
    def execution_time() -> tuple[ExecutionTime, ...]:
        return (ExecutionTime(axdr.CosemTime(0, 0, 0, 0),
                              axdr.CosemDate(None, None, meter.config.tariff.billing_day, None)),)

    def set_execution_time(times: tuple[ExecutionTime, ...]) -> None:
        if len(times) != 1:
            raise CosemError(DataAccessResult.OTHER_REASON, "the billing date is one execution time")
        t, d = times[0].time, times[0].date
        if (t.hour, t.minute, t.second or 0) != (0, 0, 0):
            raise CosemError(DataAccessResult.OTHER_REASON, "billing periods close at 00:00:00")
        if d.year is not None or d.month is not None or d.day_of_week is not None:
            raise CosemError(DataAccessResult.OTHER_REASON, "the billing date repeats monthly: wildcard year, "
                                                            "month and weekday")
        if d.day_of_month is None or not 1 <= d.day_of_month <= 28:
            raise CosemError(DataAccessResult.OTHER_REASON, "the billing day is 1..28")
        with cosem_result():
            meter.set_billing_day(d.day_of_month)

    return SingleActionSchedule(BILLING_SCHEDULE, executed_script=ScriptReference(BILLING_SCRIPT_TABLE, 1),
                                type=ScheduleType.SIZE_1, execution_time=execution_time,
                                set_execution_time=set_execution_time)


def calendar_tables(profile) -> tuple[bytes, tuple, tuple, tuple]:
    """(name, seasons, weeks, days) of a tariff profile as the Activity calendar shows them;
    empty tables for a tariff without time of day. Day ids number the day schedules in
    configuration order; a script selector numbers the tiers by first appearance."""
    tod = profile.tod if profile is not None and profile.kind is EnergyKind.TOD else None
    if tod is None:
        return (profile.kind.value.encode() if profile is not None else b""), (), (), ()
    day_ids = {name: i for i, (name, _) in enumerate(tod.days, 1)}
    tiers = {name: n for n, name in enumerate(tod.tier_names(), 1)}  # the TOD registers' zones too
    seasons = tuple(
        SeasonProfile(f"S{i}".encode(), axdr.CosemDateTime(axdr.CosemDate(None, month, day, None),
                                                           axdr.CosemTime(0, 0, 0, 0), None, None),
                      week.encode())
        for i, ((month, day), week) in enumerate(tod.seasons, 1))
    weeks = tuple(WeekProfile(name.encode(), tuple(day_ids[d] for d in ids)) for name, ids in tod.weeks)
    days = tuple(DayProfile(day_ids[name], tuple(
        DayProfileAction(axdr.CosemTime.from_time(a.start), TARIFFICATION_SCRIPT_TABLE, tiers[a.name])
        for a in actions)) for name, actions in tod.days)
    return profile.kind.value.encode(), seasons, weeks, days


def activity_calendar(meter: "Meter", tod: "TodProgramming") -> ActivityCalendar:
    """The time-of-day tariff: the active calendar, and the passive one a head-end writes
    (attributes 6-9) and activates (method 1, or attribute 10), through ``tod``
    (:mod:`.tod`). Until a passive calendar is written the passive attributes show the
    configured passive tariff."""
    active = lambda: calendar_tables(meter.config.tariff.active)  # noqa: E731
    configured = lambda: calendar_tables(meter.config.tariff.passive) if meter.config.tariff.passive else \
        (b"", (), (), ())  # noqa: E731

    def passive(i: int, written: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: written() if tod.written() else configured()[i]

    def when():
        t = meter.config.tariff.activation_time
        return None if t is None else axdr.CosemDateTime.from_datetime(t)

    return ActivityCalendar(
        ACTIVITY_CALENDAR,
        calendar_name_active=lambda: active()[0], season_profile_active=lambda: active()[1],
        week_profile_table_active=lambda: active()[2], day_profile_table_active=lambda: active()[3],
        calendar_name_passive=passive(0, tod.name), season_profile_passive=passive(1, tod.seasons),
        week_profile_table_passive=passive(2, tod.weeks), day_profile_table_passive=passive(3, tod.days),
        activate_passive_calendar_time=when,
        set_calendar_name_passive=tod.set_name, set_season_profile_passive=tod.set_seasons,
        set_week_profile_table_passive=tod.set_weeks, set_day_profile_table_passive=tod.set_days,
        set_activate_passive_calendar_time=tod.set_activation_time,
        on_activate_passive_calendar=lambda: tod.activate(),
    )


def script_tables(meter: "Meter", lookup: Callable[[Obis], CosemObject]) -> list[ScriptTable]:
    """The script tables other objects point to. A script is a list of method calls and
    attribute writes on the meter's own objects, run through the same object hooks a
    head-end's request would use:

    - 0.0.10.0.106.255 disconnect control: 1 disconnects, 2 reconnects (the limiter's
      actions and a head-end name these);
    - 0.0.10.0.1.255 end of billing: 1 is the billing (MD) reset;
    - 0.0.10.0.100.255 tariffication: one script per time-of-day tier, named by the
      activity calendar. They hold no actions: the tariff engine follows the calendar
      itself, so switching tiers needs no register switching here.
    """
    def method(class_id: int, obis: Obis, index: int) -> ActionSpecification:
        return ActionSpecification(ServiceId.EXECUTE_SPECIFIC_METHOD, class_id, obis, index, axdr.Integer(0))

    def tables() -> dict[Obis, tuple[Script, ...]]:
        days = calendar_tables(meter.config.tariff.active)[3]
        tiers = len({a.script_selector for d in days for a in d.day_schedule})
        return {
            DISCONNECT_SCRIPT_TABLE: (Script(1, (method(70, DISCONNECT_CONTROL, 1),)),
                                      Script(2, (method(70, DISCONNECT_CONTROL, 2),))),
            BILLING_SCRIPT_TABLE: (Script(1, (method(7, BILLING_PROFILE, 2),)),),
            TARIFFICATION_SCRIPT_TABLE: tuple(Script(i) for i in range(1, tiers + 1)),
        }

    def execute(table: Obis, identifier: int) -> None:
        script = next((sc for sc in tables()[table] if sc.script_identifier == identifier), None)
        if script is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"no script {identifier} in {table}")
        ctx = Context(0)
        for action in script.actions:
            target = lookup(action.logical_name)
            if action.service_id is ServiceId.EXECUTE_SPECIFIC_METHOD:
                target.invoke(action.index, action.parameter, ctx)
            else:
                target.set(action.index, action.parameter, ctx)

    return [ScriptTable(obis, scripts=lambda obis=obis: tables()[obis],
                        on_execute=lambda identifier, obis=obis: execute(obis, identifier))
            for obis in (DISCONNECT_SCRIPT_TABLE, BILLING_SCRIPT_TABLE, TARIFFICATION_SCRIPT_TABLE)]


def _special_days(meter: "Meter") -> list[SpecialDay]:
    out = []
    for i, (spec, _name) in enumerate(meter.config.prepaid.friendly.holidays.entries, 1):
        out.append(SpecialDay(i, axdr.CosemDate(spec.year, spec.month, spec.day, None), 1))
    return out


def special_days_table(meter: "Meter") -> SpecialDaysTable:
    """The configured holidays (friendly credit days), each with day id 1."""
    return SpecialDaysTable(SPECIAL_DAYS, entries=lambda: _special_days(meter))
