"""Token identifier (TID): whole minutes since the STS base date, 24 bits.

IEC 62055-41 as publicly described: the base dates are 1993-01-01, 2014-01-01 and
2035-01-01, each at 00:00; a TID rolls over 2^24 minutes after its base (24 Nov
2024 20:15 for 1993). Times are naive datetimes, as a meter's clock is. The key
expiry number KEN is the top 8 bits of a TID.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .errors import VendError

BASE_DATES = {1993: datetime(1993, 1, 1), 2014: datetime(2014, 1, 1), 2035: datetime(2035, 1, 1)}
TID_LIMIT = 1 << 24


def base_datetime(base: int) -> datetime:
    try:
        return BASE_DATES[base]
    except KeyError:
        raise VendError(f"base date {base!r} is not one of 1993, 2014, 2035") from None


def next_base(base: int) -> int | None:
    """The base date a rollover (RO) key change moves to; None after the last one."""
    order = sorted(BASE_DATES)
    i = order.index(base)
    return order[i + 1] if i + 1 < len(order) else None


def tid_from_datetime(when: datetime, base: int) -> int:
    """Whole minutes from the base date to ``when`` (seconds are dropped)."""
    minutes = (when.replace(tzinfo=None) - base_datetime(base)) // timedelta(minutes=1)
    if not 0 <= minutes < TID_LIMIT:
        raise VendError(f"{when.isoformat()} is outside the TID range of base date {base}")
    return minutes


def datetime_from_tid(tid: int, base: int) -> datetime:
    return base_datetime(base) + timedelta(minutes=tid)


def ken_of(tid: int) -> int:
    """The key expiry number a TID falls in (its top 8 bits)."""
    return tid >> 16
