"""Event codes and the eight event logs (IS 15959 Part 2 style: Profile generic
objects 0.0.99.98.0..6.255, and bijli's security log 0.0.99.98.7.255), each a FIFO
:class:`firmware.profiles.Profile`; and :class:`SecurityEvents`, the rate limit that
aggregates what unauthenticated peers can make the meter log.

Numbering follows the IS 15959 field practice of one block of 50 codes per log,
odd = occurrence, even = restoration:

=======  =====================  ===================  ==============
codes    log                    OBIS                 event code obj
=======  =====================  ===================  ==============
1-50     voltage related        0.0.99.98.0.255      0.0.96.11.0.255
51-100   current related        0.0.99.98.1.255      0.0.96.11.1.255
101-150  power (fail/restore)   0.0.99.98.2.255      0.0.96.11.2.255
151-200  transaction            0.0.99.98.3.255      0.0.96.11.3.255
201-250  other (tamper ...)     0.0.99.98.4.255      0.0.96.11.4.255
251-300  non-rollover           0.0.99.98.5.255      0.0.96.11.5.255
301-350  control (relay)        0.0.99.98.6.255      0.0.96.11.6.255
351-400  security (bijli)       0.0.99.98.7.255      0.0.96.11.7.255
=======  =====================  ===================  ==============

Codes seen in field use (power fail 101/102, earth loading 69/70 (raised by
:mod:`firmware.earth_loading`), magnet 201/202, neutral disturbance 203/204, cover open 251, load switch 301/302, configuration
changes 151-166) keep their numbers. The prepaid events IS 15959 does not
number -- token accepted/rejected, recharge, credit thresholds, firmware images (171-185), the IEC 62056
clock-adjusted old/new pair (186/187) -- are **bijli's own**, chosen inside the right block
so any IS 15959 reader files them in the right log. Each entry also carries a
``detail`` column (bijli, manufacturer-specific 0.128.96.11.x.255): the STS
result, the relay cause, the client SAP ...

The security events (association authentication failures and lockouts, 351-354) have
a log of their own, the eighth block of 50 (0.0.99.98.7.255: an event log the Blue
Book numbers and IS 15959 leaves free). Anyone who can reach a port can cause them,
so they must never share a FIFO with tamper evidence: in the "other" log a flood of
bad AARQs pushed the magnet and neutral-disturbance rows out (issue 14 item 4). They
also pass through :class:`SecurityEvents` on their way in: the first event of each
kind from each source in a window (:data:`SECURITY_WINDOW`) is logged as it happens,
the rest of that window are counted and logged as one "repeated" row (354) when the
window ends, and at most :data:`SECURITY_SOURCES` sources a window are told apart.
Earlier firmware logged authentication failures as 231-233 in the "other" log; those
numbers stay readable (``RETIRED_*``) and are not written any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from functools import lru_cache
from typing import Any, Mapping

from bijli.firmware.profiles import CLOCK, CaptureObject, ColumnKind, Profile, ProfileError
from bijli.firmware.storage import Storage, Transaction


class LogKind(IntEnum):
    """Which event log; the value is the E field of 0.0.99.98.E.255."""

    VOLTAGE = 0
    CURRENT = 1
    POWER = 2
    TRANSACTION = 3
    OTHER = 4
    NON_ROLLOVER = 5
    CONTROL = 6
    SECURITY = 7


class EventCode(IntEnum):
    """An event code with a short description (``code.description``)."""

    def __new__(cls, value: int, description: str):
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj

    # voltage related (IS 15959)
    R_VOLTAGE_MISSING = 1, "R phase voltage missing: occurrence"
    R_VOLTAGE_MISSING_RESTORED = 2, "R phase voltage missing: restoration"
    Y_VOLTAGE_MISSING = 3, "Y phase voltage missing: occurrence"
    Y_VOLTAGE_MISSING_RESTORED = 4, "Y phase voltage missing: restoration"
    B_VOLTAGE_MISSING = 5, "B phase voltage missing: occurrence"
    B_VOLTAGE_MISSING_RESTORED = 6, "B phase voltage missing: restoration"
    OVER_VOLTAGE = 7, "over voltage: occurrence"
    OVER_VOLTAGE_RESTORED = 8, "over voltage: restoration"
    LOW_VOLTAGE = 9, "low voltage: occurrence"
    LOW_VOLTAGE_RESTORED = 10, "low voltage: restoration"
    VOLTAGE_UNBALANCE = 11, "voltage unbalance: occurrence"
    VOLTAGE_UNBALANCE_RESTORED = 12, "voltage unbalance: restoration"
    # current related (IS 15959)
    CURRENT_REVERSE = 51, "current reverse: occurrence"
    CURRENT_REVERSE_RESTORED = 52, "current reverse: restoration"
    CURRENT_UNBALANCE = 63, "current unbalance: occurrence"
    CURRENT_UNBALANCE_RESTORED = 64, "current unbalance: restoration"
    CURRENT_BYPASS = 65, "current bypass: occurrence"
    CURRENT_BYPASS_RESTORED = 66, "current bypass: restoration"
    OVER_CURRENT = 67, "over current: occurrence"
    OVER_CURRENT_RESTORED = 68, "over current: restoration"
    EARTH_LOADING = 69, "earth loading: occurrence"
    EARTH_LOADING_RESTORED = 70, "earth loading: restoration"
    # power (IS 15959)
    POWER_FAIL = 101, "power failure: occurrence"
    POWER_RESTORED = 102, "power failure: restoration"
    # transaction (IS 15959 151-166)
    RTC_SET = 151, "real time clock set"
    DEMAND_INTEGRATION_PERIOD_SET = 152, "demand integration period set"
    PROFILE_CAPTURE_PERIOD_SET = 153, "profile capture period set"
    BILLING_DATE_SET = 154, "billing date (single action schedule) set"
    ACTIVITY_CALENDAR_SET = 155, "activity calendar (time of day) set"
    FIRMWARE_ACTIVATED = 157, "new firmware activated"
    LOAD_LIMIT_SET = 158, "load limit (kW) set"
    LOAD_LIMIT_ENABLED = 159, "load limit function enabled"
    LOAD_LIMIT_DISABLED = 160, "load limit function disabled"
    LLS_SECRET_CHANGED = 161, "LLS secret (meter reader) changed"
    HLS_KEY_CHANGED = 162, "HLS key changed"
    GLOBAL_KEY_CHANGED = 164, "global key changed"
    MD_RESET = 166, "maximum demand reset"
    # transaction, bijli's own (prepaid)
    TOKEN_ACCEPTED = 171, "token accepted"
    TOKEN_REJECTED = 172, "token rejected (detail: STS result)"
    RECHARGE = 173, "credit added (recharge)"
    KEY_CHANGE_TOKEN = 174, "key change token applied"
    CREDIT_CLEARED = 175, "credit cleared by token"
    LOW_CREDIT_1 = 176, "credit below the first low-credit threshold"
    LOW_CREDIT_2 = 177, "credit below the second low-credit threshold"
    OUT_OF_CREDIT = 178, "credit exhausted"
    CREDIT_RESTORED = 179, "credit restored above zero"
    EMERGENCY_CREDIT_INVOKED = 180, "emergency credit invoked"
    EMERGENCY_CREDIT_PAID_BACK = 181, "emergency credit paid back"
    MAX_DEBT_EXCEEDED = 182, "friendly-credit debt above the configured maximum"
    FIRMWARE_ACTIVATION_FAILED = 183, "new firmware did not come up healthy: previous image restored"
    FIRMWARE_VERIFICATION_FAILED = 184, "firmware image refused (size, hash or signature)"
    FIRMWARE_ACTIVATION_SCHEDULED = 185, "firmware image verified and scheduled for activation"
    # transaction, bijli's own numbers for the IEC 62056 standard event log pair "clock
    # adjusted (old date/time)" / "(new date/time)" (codes 4 and 5 of the DLMS UA standard
    # event log, which IS 15959 gives to phase voltages): the first entry is stamped with
    # the time before the adjustment, the second with the time after it, so a reader sees
    # where the time line breaks and by how much, backwards as well as forwards
    CLOCK_ADJUSTED_OLD = 186, "clock adjusted: old date/time (stamped with the time before)"
    CLOCK_ADJUSTED_NEW = 187, "clock adjusted: new date/time (stamped with the time after)"
    # other (IS 15959)
    MAGNET = 201, "abnormal external magnetic influence: occurrence"
    MAGNET_RESTORED = 202, "abnormal external magnetic influence: restoration"
    NEUTRAL_DISTURBANCE = 203, "neutral disturbance: occurrence"
    NEUTRAL_DISTURBANCE_RESTORED = 204, "neutral disturbance: restoration"
    LOW_POWER_FACTOR = 205, "low power factor: occurrence"
    LOW_POWER_FACTOR_RESTORED = 206, "low power factor: restoration"
    SINGLE_WIRE = 207, "single wire operation: occurrence"
    SINGLE_WIRE_RESTORED = 208, "single wire operation: restoration"
    MODULE_REMOVED = 209, "plug-in communication module removed: occurrence"
    MODULE_RESTORED = 210, "plug-in communication module removed: restoration"
    OVERLOAD = 215, "overload: occurrence"
    OVERLOAD_RESTORED = 216, "overload: restoration"
    # other, bijli's own: the security codes of earlier firmware, still read from old logs
    RETIRED_AUTHENTICATION_FAILURE = 231, "association authentication failure (earlier firmware: now 351)"
    RETIRED_LOCKOUT = 232, "lockout after repeated failures (earlier firmware: now 352)"
    RETIRED_LOCKOUT_CLEARED = 233, "lockout cleared (earlier firmware: now 353)"
    RELAY_FEEDBACK_MISMATCH = 234, "relay feedback contact disagrees with the relay command"
    # non-rollover (IS 15959)
    COVER_OPEN = 251, "meter cover opened"
    # control (IS 15959)
    LOAD_SWITCH_DISCONNECTED = 301, "load switch disconnected"
    LOAD_SWITCH_CONNECTED = 302, "load switch connected"
    # security, bijli's own (its own log: see the module's note)
    AUTHENTICATION_FAILURE = 351, "association authentication failure (detail: source, why)"
    LOCKOUT = 352, "lockout after repeated failures (keypad or association; detail: source, how long)"
    LOCKOUT_CLEARED = 353, "lockout cleared"
    SECURITY_EVENTS_REPEATED = 354, "security events repeated in one window (detail: how many, which, from whom, when)"

    @property
    def log(self) -> LogKind:
        return LOG_OF[self]


def _log_of(code: int) -> LogKind:
    # the IS 15959 blocks of 50: 1-50 -> 0, 51-100 -> 1, ..., 301-350 -> 6; bijli's 351-400 -> 7
    return LogKind((code - 1) // 50)


LOG_OF: dict[EventCode, LogKind] = {c: _log_of(c) for c in EventCode}


@dataclass(frozen=True)
class Event:
    """One event: its code, when, and a short detail (STS result, relay cause ...)."""

    code: EventCode
    time: datetime
    detail: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, EventCode):
            try:
                object.__setattr__(self, "code", EventCode(self.code))
            except ValueError as exc:
                raise ProfileError(f"unknown event code {self.code!r}") from exc


#: snapshot columns captured with each event (IS 15959 event logs carry the
#: electrical state at the instant); None where the meter has no value.
SNAPSHOT = ("voltage", "current", "power_factor", "active_import")

DEFAULT_CAPACITIES: dict[LogKind, int] = {
    LogKind.VOLTAGE: 100,
    LogKind.CURRENT: 100,
    LogKind.POWER: 100,
    LogKind.TRANSACTION: 200,  # every token and recharge: the dispute trail
    LogKind.OTHER: 100,
    LogKind.NON_ROLLOVER: 1,   # the first cover opening stays for the meter's life
    LogKind.CONTROL: 100,
    LogKind.SECURITY: 100,     # its own FIFO: a flood of bad AARQs evicts only security rows
}


@lru_cache(maxsize=64)
def event_log_profile(kind: LogKind, capacity: int) -> Profile:
    """One event log's buffer definition: frozen, so built once per (log, capacity) and
    shared by every meter (the rows are in each meter's storage)."""
    e = int(kind)
    cols = (
        CLOCK,
        CaptureObject("event_code", 1, f"0.0.96.11.{e}.255", 2),
        CaptureObject("detail", 1, f"0.128.96.11.{e}.255", 2),
        CaptureObject("voltage", 3, "1.0.12.7.0.255", 2),
        CaptureObject("current", 3, "1.0.11.7.0.255", 2),
        CaptureObject("power_factor", 3, "1.0.13.7.0.255", 2),
        CaptureObject("active_import", 3, "1.0.1.8.0.255", 2),
    )
    assert cols[0].kind is ColumnKind.CAPTURE_TIME
    return Profile(
        f"event_{kind.name.lower()}",
        f"0.0.99.98.{e}.255",
        cols,
        capacity=capacity,
        capture_period=0,
        rollover=kind is not LogKind.NON_ROLLOVER,
    )


class EventLog:
    """The seven event logs; :meth:`record` files an event in the right one."""

    def __init__(self, capacities: Mapping[LogKind, int] | None = None):
        caps = {**DEFAULT_CAPACITIES, **(capacities or {})}
        self.profiles: dict[LogKind, Profile] = {k: event_log_profile(k, caps[k]) for k in LogKind}

    def profile_for(self, code: EventCode | int) -> Profile:
        return self.profiles[Event(code, datetime.min).code.log]

    def record(
        self,
        tx: Transaction,
        event: Event,
        snapshot: Mapping[str, Any] | None = None,
        storage: Storage | None = None,
    ) -> int | None:
        """Append ``event`` to its log; the row's sequence number, or None if a
        full non-rollover log keeps its first entries (which needs ``storage``)."""
        snap = snapshot or {}
        unknown = set(snap) - set(SNAPSHOT)
        if unknown:
            raise ProfileError(f"unknown snapshot values {sorted(unknown)}")
        profile = self.profiles[event.code.log]
        values = {"event_code": int(event.code), "detail": event.detail, **{k: snap.get(k) for k in SNAPSHOT}}
        return profile.capture(tx, event.time, values, storage)

    def events(self, storage: Storage, kind: LogKind) -> list[Event]:
        """A log read back as events, oldest first."""
        return [
            Event(EventCode(r.values[1]), r.time, r.values[2]) for r in storage.rows(self.profiles[kind].name)
        ]


# --- the rate limit on security events ---------------------------------------------------

#: how long the events of one kind from one source are counted before their tally is logged
SECURITY_WINDOW = timedelta(minutes=15)
#: sources told apart in one window; events from any further source share one tally
SECURITY_SOURCES = 8
OTHER_SOURCES = "other sources"


@dataclass
class _Tally:
    opened: datetime  # when the window's first event (the one logged at once) came
    count: int = 0  # events since, not logged one by one
    first: datetime | None = None
    last: datetime | None = None
    detail: str = ""


@dataclass
class SecurityEvents:
    """Aggregates the security events an unauthenticated peer can cause, so that a flood
    costs a few rows, not a row each (and one disk write each).

    Sans-IO: :meth:`take` is told of one event at meter time ``now`` and returns the
    rows to log now (``(code, detail)``: the first of its window, and the tallies of
    windows that have ended); :meth:`due` returns the tallies whose window has ended by
    ``now``, :meth:`close` every tally (a clean stop). A window ends ``window`` after
    its first event, or when the clock is set back before it."""

    window: timedelta = SECURITY_WINDOW
    sources: int = SECURITY_SOURCES
    # a mutable record (a dataclass) so that a meter step that fails to commit puts it back
    # whole, with the tallies that step had closed (firmware.meter's _keep)
    _open: dict[tuple[EventCode, str], _Tally] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.window <= timedelta(0) or self.sources < 1:
            raise ProfileError(f"security events: window {self.window} and sources {self.sources} must be positive")

    def take(self, code: EventCode, source: str, detail: str, now: datetime) -> list[tuple[EventCode, str]]:
        rows = self.due(now)
        if not any(k[1] == source for k in self._open) and len({k[1] for k in self._open}) >= self.sources:
            source = OTHER_SOURCES
        key = (code, source)
        tally = self._open.get(key)
        if tally is None:
            self._open[key] = _Tally(now)
            rows.append((code, f"{source}: {detail}" if source else detail))
        else:
            tally.count += 1
            tally.first = tally.first or now
            tally.last = now
            tally.detail = detail
        return rows

    def due(self, now: datetime) -> list[tuple[EventCode, str]]:
        ended = [k for k, t in self._open.items() if now >= t.opened + self.window or now < t.opened]
        return self._flush(ended)

    def close(self) -> list[tuple[EventCode, str]]:
        return self._flush(list(self._open))

    @property
    def counting(self) -> int:
        """Events counted and not yet logged."""
        return sum(t.count for t in self._open.values())

    def _flush(self, keys: list[tuple[EventCode, str]]) -> list[tuple[EventCode, str]]:
        rows = []
        for key in keys:
            tally = self._open.pop(key)
            if tally.count:
                code, source = key
                assert tally.first is not None and tally.last is not None
                span = f"{tally.first.isoformat(timespec='seconds')} to {tally.last.isoformat(timespec='seconds')}"
                rows.append((EventCode.SECURITY_EVENTS_REPEATED,
                             f"{tally.count} more {int(code)} from {source or 'the meter'}, {span}; "
                             f"last: {tally.detail}"))
        return rows
