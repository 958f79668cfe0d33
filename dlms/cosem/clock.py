"""Clock (class 8, version 0), IEC 62056-6-2 clause 4.5.1.

The meter's time as a 12-octet date-time, the time zone, status, daylight
saving settings and the adjust methods. The object does not keep time itself:
``now`` and ``set_time`` are bound to the meter's one clock (``hal.clock`` via
the firmware), so a DLMS write of the clock moves the whole meter, profiles and
tariff included.

The deviation in the transmitted date-time is sent as "not specified" by
default, as IS 15959 meters do: the value is meter local time. ``time_zone``
(attribute 3) is the deviation of local time in minutes with the Blue Book's
sign, the same number a date-time's deviation field carries: UTC minus local
time, so India (UTC+05:30) is -330. A client converting with attribute 3 and a
date-time sent with its deviation land on the same instant
(``send_deviation=True`` puts it in the date-time too).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from bijli.dlms import axdr
from bijli.dlms.apdu import ActionResult, DataAccessResult
from bijli.dlms.axdr import CosemDateTime
from bijli.dlms.cosem.base import CosemError, CosemObject, expect
from bijli.dlms.cosem.values import date_time_octets, parse_date_time, to_local

CLOCK_BASE_CRYSTAL = 1


class Clock(CosemObject):
    CLASS_ID = 8
    VERSION = 0
    ATTRIBUTES = (
        "logical_name", "time", "time_zone", "status", "daylight_savings_begin", "daylight_savings_end",
        "daylight_savings_deviation", "daylight_savings_enabled", "clock_base",
    )
    METHODS = (
        "adjust_to_quarter", "adjust_to_measuring_period", "adjust_to_minute", "adjust_to_preset_time",
        "preset_adjusting_time", "shift_time",
    )

    def __init__(self, logical_name, now: Callable[[], datetime], set_time: Callable[[datetime], None] | None = None,
                 time_zone: int = -330, send_deviation: bool = False, status: Callable[[], int] = lambda: 0,
                 set_time_zone: Callable[[int], None] | None = None):
        """``time_zone`` is the Blue Book deviation (IST -330); ``set_time_zone`` hears a
        written one, so the meter keeps it and its range bounds and push stamps follow."""
        super().__init__(logical_name)
        self._now = now
        self._set_time = set_time
        self.time_zone = time_zone
        self.send_deviation = send_deviation
        self._status = status
        self._set_time_zone = set_time_zone
        self._preset: tuple[datetime, datetime, datetime] | None = None
        # the last time attribute sent, by what it was made of: the meter's time moves on
        # at its metering ticks, so most reads between two ticks send the same 12 octets
        self._sent_key: tuple | None = None
        self._sent: axdr.OctetString | None = None

    def _apply(self, t: datetime) -> None:
        if self._set_time is None:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, "clock is read-only")
        self._set_time(t)

    def get_time(self, ctx):
        now = self._now()
        # the zone too: two aware times of one instant are equal, yet read differently
        key = (now, now.tzinfo, self.time_zone if self.send_deviation else None, self._status())
        if key != self._sent_key:
            dt = CosemDateTime.from_datetime(now.replace(tzinfo=None), deviation=key[2], clock_status=key[3])
            self._sent = axdr.OctetString(dt.encode())
            self._sent_key = key
        return self._sent

    def set_time(self, value, ctx):
        t = parse_date_time(value)  # TYPE_UNMATCHED for anything but a whole date-time
        if t is None:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "time has unspecified fields")
        if t.tzinfo is not None:  # sent with a deviation: into meter local time, by our own zone
            t = to_local(t, self.time_zone)
        self._apply(t)

    def get_time_zone(self, ctx):
        return axdr.Long(self.time_zone)

    def set_time_zone(self, value, ctx):
        v = expect(value, axdr.Long).value
        if not -720 <= v <= 720:  # the range a date-time's deviation field allows
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "time zone out of range -720..720")
        if self._set_time_zone is not None:
            self._set_time_zone(v)
        self.time_zone = v

    def get_status(self, ctx):
        return axdr.Unsigned(self._status())

    def get_daylight_savings_begin(self, ctx):
        return date_time_octets(None)  # India keeps no daylight saving: not specified

    def get_daylight_savings_end(self, ctx):
        return date_time_octets(None)

    def get_daylight_savings_deviation(self, ctx):
        return axdr.Integer(0)

    def get_daylight_savings_enabled(self, ctx):
        return axdr.Boolean(False)  # India observes no daylight saving

    def get_clock_base(self, ctx):
        return axdr.Enum(CLOCK_BASE_CRYSTAL)

    # --- methods ------------------------------------------------------------------
    def _round(self, minutes: int) -> datetime:
        now = self._now().replace(tzinfo=None)
        base = now.replace(second=0, microsecond=0, minute=(now.minute // minutes) * minutes)
        if now - base >= timedelta(minutes=minutes) / 2:
            base += timedelta(minutes=minutes)
        return base

    def do_adjust_to_quarter(self, params, ctx):
        self._apply(self._round(15))

    def do_adjust_to_measuring_period(self, params, ctx):
        self._apply(self._round(15))

    def do_adjust_to_minute(self, params, ctx):
        self._apply(self._round(1))

    def do_preset_adjusting_time(self, params, ctx):
        items = expect(params, axdr.Structure).value
        times = [parse_date_time(x) for x in items]
        if len(times) != 3 or None in times:
            raise CosemError(ActionResult.TYPE_UNMATCHED, "preset_adjusting_time needs three date-times")
        preset, start, end = (t.replace(tzinfo=None) for t in times)
        self._preset = (preset, start, end)

    def do_adjust_to_preset_time(self, params, ctx):
        if self._preset is None:
            raise CosemError(ActionResult.TEMPORARY_FAILURE, "no preset time")
        preset, start, end = self._preset
        if not start <= self._now().replace(tzinfo=None) <= end:
            raise CosemError(ActionResult.TEMPORARY_FAILURE, "outside the validity interval")
        self._apply(preset)

    def do_shift_time(self, params, ctx):
        seconds = expect(params, axdr.Long).value
        if not -900 <= seconds <= 900:
            raise CosemError(ActionResult.TYPE_UNMATCHED, "shift_time is limited to +-900 s")
        self._apply(self._now().replace(tzinfo=None) + timedelta(seconds=seconds))
