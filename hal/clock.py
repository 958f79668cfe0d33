"""The meter's one clock: real or simulated, one interface.

Firmware never reads the wall clock; the tools layer hands it ``clock.now()``.
A :class:`SimClock` starts at any instant, runs at any rate (1 = real time) and
can be stepped or set, so a month of billing or a holiday weekend of friendly
credit runs in seconds. Meter time is naive local time, as a meter's RTC keeps
it. The meter's zone is its own configuration (``[meter] time_zone_minutes``),
never the host's: a Raspberry Pi left at UTC must still cut supply at 11:00 IST,
so :class:`RealClock` reads UTC from the host and adds the meter's offset
(India keeps no daylight saving time, so a fixed offset is the whole rule).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable


def utc_now() -> datetime:
    """The host's idea of UTC, naive. Host time zone settings (TZ, /etc/localtime) do not enter."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def meter_local(when: datetime, utc_offset_minutes: int) -> datetime:
    """``when`` as naive meter local time: an aware time is converted to the meter's zone;
    a naive one is taken as already local."""
    if when.tzinfo is None:
        return when
    return when.astimezone(timezone(timedelta(minutes=utc_offset_minutes))).replace(tzinfo=None)


class TimeSource:
    """Where meter time comes from (the meter's RTC, not the COSEM Clock object that shows
    it): ``now()`` gives meter time; ``monotonic()`` gives seconds for timeouts."""

    simulated = False

    def now(self) -> datetime:  # pragma: no cover - interface
        raise NotImplementedError

    def monotonic(self) -> float:
        return time.monotonic()

    def set(self, when: datetime) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class RealClock(TimeSource):
    """Wall-clock time in the meter's own zone: host UTC plus ``utc_offset_minutes``
    (east of Greenwich positive: IST is +330). ``set`` keeps a further offset (we never
    change the host's clock)."""

    def __init__(self, utc_offset_minutes: int, source: Callable[[], datetime] = utc_now):
        zone = timedelta(minutes=utc_offset_minutes)
        self._source = lambda: source() + zone
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return self._source() + self._offset

    def set(self, when: datetime) -> None:
        self._offset = when - self._source()


class SimClock(TimeSource):
    """Simulated time: ``start`` plus elapsed real time x ``rate`` plus every step taken.

    With ``rate=0`` time stands still between steps, which makes tests exact.
    """

    simulated = True

    def __init__(self, start: datetime, rate: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._mono = monotonic
        self._base = start
        self._t0 = monotonic()
        self.rate = rate

    def now(self) -> datetime:
        return self._base + timedelta(seconds=(self._mono() - self._t0) * self.rate)

    def step(self, seconds: float) -> datetime:
        self._base += timedelta(seconds=seconds)
        return self.now()

    def set(self, when: datetime) -> None:
        self._base = when
        self._t0 = self._mono()

