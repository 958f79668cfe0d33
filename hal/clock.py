"""The meter's one clock: real or simulated, one interface.

Firmware never reads the wall clock; the tools layer hands it ``clock.now()``.
A :class:`SimClock` starts at any instant, runs at any rate (1 = real time) and
can be stepped or set, so a month of billing or a holiday weekend of friendly
credit runs in seconds. Meter time is naive local time, as a meter's RTC keeps
it; the time zone is configuration, not part of the clock.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Callable


class Clock:
    """Interface: ``now()`` gives meter time; ``monotonic()`` gives seconds for timeouts."""

    simulated = False

    def now(self) -> datetime:  # pragma: no cover - interface
        raise NotImplementedError

    def monotonic(self) -> float:
        return time.monotonic()

    def set(self, when: datetime) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class RealClock(Clock):
    """Local wall-clock time. ``set`` keeps an offset (we never change the host's clock)."""

    def __init__(self, source: Callable[[], datetime] = datetime.now):
        self._source = source
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return self._source() + self._offset

    def set(self, when: datetime) -> None:
        self._offset = when - self._source()


class SimClock(Clock):
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

