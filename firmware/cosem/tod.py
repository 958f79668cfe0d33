"""Programming the time-of-day tariff over DLMS: the passive calendar and its prices.

The Blue Book's way (IEC 62056-6-2 clause 4.5.5, Activity calendar IC 20; clause
4.6.4, Charge IC 113): a head-end writes the passive calendar (attributes 6-9: name,
season profiles, week profiles, day profiles) and the passive prices (Charge method
update_unit_charge: one charge-table row per tier, paisa per kWh), then either
invokes activate_passive_calendar (method 1, at once) or writes
activate_passive_calendar_time (attribute 10). Only then does the draft become the
meter's tariff (:meth:`Meter.program_tariff`), checked as a whole: every week names
known day profiles, every season a known week, every action's script selector a row
of the price table. The script selector of a day action is the 1-based row of that
table, the way :func:`.schedules.calendar_tables` numbers the tiers it shows.

Until a calendar is activated the draft is kept in the meter's memory (through
``Meter.keep_setting``), so a head-end may write it over several associations and a
restart in between loses nothing; the passive attributes read back the draft.
Prices left unwritten are the active tariff's rows; fixed charges and duty stay the
active tariff's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bijli.dlms import axdr
from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.payment import ChargeTableElement, UnitCharge
from bijli.dlms.cosem.schedule import DayProfile, DayProfileAction, SeasonProfile, WeekProfile
from bijli.dlms.cosem.values import to_local
from bijli.dlms.obis import Obis
from bijli.firmware.cosem.catalogue import ACTIVE_IMPORT, TARIFFICATION_SCRIPT_TABLE
from bijli.firmware.cosem.clock import deviation
from bijli.firmware.cosem.payment import unit_charge
from bijli.firmware.cosem.results import cosem_result
from bijli.firmware.tariff import MAX_TIERS, DayAction, EnergyKind, TouCalendar

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter

DRAFT_KEY = "tod_passive"  # the passive calendar and prices written over DLMS, not yet activated


def _refuse(message: str) -> CosemError:
    return CosemError(DataAccessResult.OTHER_REASON, message)


class TodProgramming:
    """The passive calendar and prices a head-end is writing, bound to one meter."""

    def __init__(self, meter: "Meter"):
        self.meter = meter

    # --- the draft in the meter's memory --------------------------------------------------
    def _draft(self) -> dict[str, Any]:
        return dict(self.meter.storage.get(DRAFT_KEY) or {})

    def _keep(self, **parts: Any) -> None:
        draft = self._draft()
        draft.update(parts)
        self.meter.keep_setting(DRAFT_KEY, draft)

    def written(self) -> bool:
        return bool(self._draft())

    # --- what the passive attributes show --------------------------------------------------
    def name(self) -> bytes:
        return bytes.fromhex(self._draft().get("name", ""))

    def seasons(self) -> tuple[SeasonProfile, ...]:
        return tuple(SeasonProfile(bytes.fromhex(n), axdr.CosemDateTime(axdr.CosemDate(None, m, d, None),
                                                                        axdr.CosemTime(0, 0, 0, 0), None, None),
                                   bytes.fromhex(w))
                     for n, m, d, w in self._draft().get("seasons", ()))

    def weeks(self) -> tuple[WeekProfile, ...]:
        return tuple(WeekProfile(bytes.fromhex(n), tuple(ids)) for n, ids in self._draft().get("weeks", ()))

    def days(self) -> tuple[DayProfile, ...]:
        return tuple(DayProfile(day_id, tuple(
            DayProfileAction(axdr.CosemTime(h, mi, s, 0), Obis.parse(ln), sel) for h, mi, s, ln, sel in actions))
            for day_id, actions in self._draft().get("days", ()))

    def unit_charge(self) -> UnitCharge | None:
        rows = self._draft().get("prices")
        if rows is None:
            return None
        return UnitCharge(3, -2, 3, ACTIVE_IMPORT, 2, tuple(ChargeTableElement(bytes.fromhex(n), p) for n, p in rows))

    # --- writes ------------------------------------------------------------------------------
    def set_name(self, value: bytes) -> None:
        self._keep(name=bytes(value).hex())

    def set_seasons(self, seasons) -> None:
        out = []
        for s in seasons:
            d = s.season_start.date
            if d.month is None or d.day_of_month is None or not 1 <= d.month <= 12 or not 1 <= d.day_of_month <= 31:
                raise _refuse("a season starts on a month and day (any year)")
            out.append([s.season_profile_name.hex(), d.month, d.day_of_month, s.week_name.hex()])
        self._keep(seasons=out)

    def set_weeks(self, weeks) -> None:
        self._keep(weeks=[[w.week_profile_name.hex(), list(w.days)] for w in weeks])

    def set_days(self, days) -> None:
        out = []
        for d in days:
            actions = []
            for a in d.day_schedule:
                t = a.start_time
                if t.hour is None or t.minute is None:
                    raise _refuse("a day action starts at an hour and minute")
                actions.append([t.hour, t.minute, t.second or 0, str(a.script_logical_name), a.script_selector])
            out.append([d.day_id, actions])
        self._keep(days=out)

    def update_unit_charge(self, charge: UnitCharge) -> None:
        """Charge method 1: the passive prices, paisa (price_scale -2) per kWh (commodity_scale 3)
        of active import, one row per tier."""
        if (charge.commodity_logical_name, charge.commodity_scale, charge.price_scale) != (ACTIVE_IMPORT, 3, -2):
            raise _refuse(f"prices are paisa per kWh of {ACTIVE_IMPORT} (commodity_scale 3, price_scale -2)")
        if not charge.charge_table or any(e.charge_per_unit < 0 for e in charge.charge_table):
            raise _refuse("the charge table needs one row per tier, none negative")
        self._keep(prices=[[e.index.hex(), e.charge_per_unit] for e in charge.charge_table])

    # --- activation --------------------------------------------------------------------------
    def _tiers(self) -> list[tuple[str, Decimal]]:
        charge = self.unit_charge() or unit_charge(self.meter.config.tariff.active)
        return [(e.index.decode("utf-8", "replace"), Decimal(e.charge_per_unit) / 100) for e in charge.charge_table]

    def calendar(self) -> TouCalendar:
        """The draft as the tariff's calendar; refused unless it is whole and consistent."""
        tiers = self._tiers()
        days = self.days()
        if not days or not self.weeks() or not self.seasons():
            raise _refuse("the passive calendar needs its season, week and day profiles before activation")
        day_ids = {d.day_id for d in days}
        tou_days = []
        for d in days:
            actions = []
            for a in sorted(d.day_schedule, key=lambda a: (a.start_time.hour, a.start_time.minute,
                                                           a.start_time.second or 0)):
                if a.script_logical_name != TARIFFICATION_SCRIPT_TABLE:
                    raise _refuse(f"day {d.day_id}: actions run the tariffication script table "
                                  f"{TARIFFICATION_SCRIPT_TABLE}")
                if not 1 <= a.script_selector <= len(tiers):
                    raise _refuse(f"day {d.day_id}: script selector {a.script_selector} names no price row "
                                  f"(1..{len(tiers)})")
                name, rate = tiers[a.script_selector - 1]
                actions.append(DayAction(time(a.start_time.hour, a.start_time.minute, a.start_time.second or 0),
                                         rate, name))
            if not actions or actions[0].start != time(0):
                raise _refuse(f"day {d.day_id}: a day profile starts at 00:00")
            tou_days.append((str(d.day_id), tuple(actions)))
        weeks = []
        for w in self.weeks():
            if any(i not in day_ids for i in w.days):
                raise _refuse(f"week {w.week_profile_name!r} names a day profile that is not written")
            weeks.append((w.week_profile_name.decode("utf-8", "replace"), tuple(str(i) for i in w.days)))
        names = {n for n, _ in weeks}
        seasons = []
        for s in self.seasons():
            week = s.week_name.decode("utf-8", "replace")
            if week not in names:
                raise _refuse(f"season {s.season_profile_name!r} names week {week!r}, which is not written")
            seasons.append(((s.season_start.date.month, s.season_start.date.day_of_month), week))
        calendar = TouCalendar(tuple(sorted(seasons)), tuple(weeks), tuple(tou_days))
        if len(calendar.tier_names()) > MAX_TIERS:
            raise _refuse(f"the day profiles use {len(calendar.tier_names())} price rows: the meter keeps "
                          f"time-of-day registers for {MAX_TIERS} tariff zones")
        return calendar

    def activate(self, when: datetime | None = None) -> None:
        """Make the draft the tariff: at ``when`` (meter local time), or now."""
        profile = replace(self.meter.config.tariff.active, kind=EnergyKind.TOD, tod=self.calendar())
        with cosem_result():
            self.meter.program_tariff(profile, self.meter.now if when is None else when)

    def set_activation_time(self, value: axdr.CosemDateTime) -> None:
        """Attribute 10: a whole date-time schedules the activation (a deviation, if sent,
        in the clock's sign)."""
        try:
            when = value.to_datetime()
        except Exception:  # wildcards: an activation happens once, at one instant
            raise _refuse("the activation time is a whole date and time") from None
        if when.tzinfo is not None:
            when = to_local(when, deviation(self.meter))
        self.activate(when)
