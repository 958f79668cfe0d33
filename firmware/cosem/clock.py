"""The meter's Clock object (IC 8) and its one time-zone deviation (Blue Book sign).

IEC 62056-6-2 clause 4.5.1 defines the Clock's time_zone (attribute 3) as the
deviation of local time from UTC in minutes with the same sign as a date-time's
deviation field: UTC minus local time, so India (UTC+05:30) is -330. The meter's
configuration says the zone the human way (``[identity] time_zone_minutes`` = 330,
minutes ahead of UTC); :func:`deviation` is the one place that turns it round, and
every DLMS use of the zone (attribute 3, the range bounds of every profile, clock
writes that carry a deviation, push time stamps) reads it from here, so they cannot
disagree. A time zone written over DLMS is kept in the meter's memory and wins
over the configured one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from bijli.dlms.cosem.clock import Clock
from bijli.firmware.cosem.catalogue import CLOCK

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter

TIME_ZONE_KEY = "clock_time_zone"  # a deviation written over DLMS (Blue Book sign)


def deviation(meter: "Meter") -> int:
    """The meter's time-zone deviation, Blue Book sign (IST: -330)."""
    stored = meter.storage.get(TIME_ZONE_KEY)
    return int(stored) if stored is not None else -meter.config.identity.time_zone_minutes


def clock(meter: "Meter", set_clock: Callable[[datetime], None] | None) -> Clock:
    """The Clock bound to the meter's one clock; a written time_zone is kept."""
    obj = Clock(CLOCK, now=lambda: meter.now, set_time=set_clock, time_zone=deviation(meter),
                set_time_zone=lambda v: meter.keep_setting(TIME_ZONE_KEY, int(v)),
                status=lambda: meter.clock_status)  # "doubtful" while re-living time set back
    return obj
