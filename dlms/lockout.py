"""Who may try to authenticate an association, and when: the association lockout policy.

IEC 62056-5-3 leaves what a server does about repeated authentication failures to the
implementation; it gives the means to say it (the AARE's result rejected-transient with
the diagnostic authentication-failure: "not now, the same request may succeed later",
clause 9.3.2 and the A-ASSOCIATE service). This is bijli's policy, built to keep brute
force expensive without handing whoever can reach a port a denial of service against
the owner of the secret (issue 14 item 5):

* **Per peer.** Failures are counted per *peer* and client SAP. The peer is the
  transport's identity of the other end, which the link shell gives each session (a TCP
  source address, an IPv6 /64, a serial port); reconnecting does not change it. A peer's
  first ``allowance`` failures cost nothing; the next makes it *wait*: its AARQs are
  refused unjudged (rejected-transient) for ``base_delay`` seconds, and each failure
  after a wait doubles the wait, up to ``max_delay``. A success forgets the peer, and so
  does ``forget_after`` seconds without a failure.
* **The owner passes.** A peer that has not failed is never refused: the right secret
  from it is judged and accepted, even while other peers wait. When ``alarm_after``
  failures hit one SAP within ``max_delay`` seconds (several peers at once), the SAP is
  *under attack* until ``max_delay`` passes without one: then a peer's first failure
  makes it wait ``max_delay`` at once (and a peer that never waited yet waits all of
  ``max_delay`` the first time), so each fresh address buys an attacker one guess, not
  ``allowance``. The right secret from a clean peer still passes.
* **Pending associations.** HLS leaves an association pending until the client's pass 3;
  at most ``pending_per_peer`` per peer and ``max_pending`` in all are held. To make room
  the oldest is dropped (a pending association holds nothing but a challenge), so a
  flood of HLS AARQs cannot grow the meter's memory nor keep a real client out.
* **Plain data.** The table holds at most ``max_peers`` peers; :meth:`Lockout.snapshot`
  is a :class:`LockoutRecord` (frozen dataclasses of numbers and text) the meter keeps
  in its non-volatile memory, and :meth:`Lockout.restore` takes it back after a restart:
  a wait resumes with the time it had left (the time the meter was off does not count).

Sans-IO: every call takes ``now`` (monotonic seconds); nothing here reads a clock or
writes anything. The state of one peer is a machine in the h2 style: :data:`TRANSITIONS`
maps ``(state, input)`` to ``(function, next state)``; the inputs are derived from what
happened and the guards (how many failures, whether the wait is over, whether the SAP
is under attack) by :meth:`Lockout._classify`, and a pair the table lacks is a
:class:`~dlms.errors.LocalProtocolError` that changes nothing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import Enum, IntEnum
from typing import Callable, Hashable, NamedTuple

from bijli.dlms.errors import LocalProtocolError, LockoutError

__all__ = ["AlarmRecord", "Input", "Lockout", "LockoutPolicy", "LockoutRecord", "PeerRecord", "PeerState",
           "TRANSITIONS"]


class PeerState(IntEnum):
    """Where one peer stands with one client SAP (stored by value)."""

    CLEAR = 0      # no failure on record: no entry is kept
    COUNTING = 1   # failures within the free allowance: its AARQs are judged
    WAITING = 2    # backing off: its AARQs are refused unjudged until the wait is over
    PROBATION = 3  # the wait is over: judged again, and the next failure waits twice as long


class Input(Enum):
    ATTEMPT = "attempt"              # an AARQ from the peer, to be judged or refused
    FAILURE = "failure"              # judged and failed, inside the free allowance
    LAST_FAILURE = "last failure"    # judged and failed, and the peer must wait now
    SUCCESS = "success"              # judged and passed
    EXPIRED = "expired"              # time passed: the wait is over, or the record is old enough to forget


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """The numbers of the policy (seconds); ``max_delay`` 0 turns waiting off."""

    allowance: int = 3
    base_delay: float = 5.0
    max_delay: float = 300.0
    forget_after: float = 3600.0
    alarm_after: int = 10
    max_peers: int = 64
    pending_per_peer: int = 2
    max_pending: int = 16

    def __post_init__(self) -> None:
        for name in ("allowance", "alarm_after", "max_peers", "pending_per_peer", "max_pending"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise LockoutError(f"lockout policy: {name} must be a whole number >= 1, not {value!r}")
        for name in ("base_delay", "max_delay", "forget_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise LockoutError(f"lockout policy: {name} must be seconds >= 0, not {value!r}")

    def delay(self, strikes: int) -> float:
        """The wait after the ``strikes``-th back-off: doubling from ``base_delay``, capped."""
        if strikes < 1:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(strikes - 1, 64))

    @property
    def full_strikes(self) -> int:
        """The fewest strikes whose wait is ``max_delay``."""
        strikes = 1
        while self.delay(strikes) < self.max_delay and strikes < 64:
            strikes += 1
        return strikes


# --- one peer's record and its machine ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerEntry:
    """One peer with one SAP: its state, failures since it was last clear, how many times
    it was made to wait, until when (monotonic), and its last failure (monotonic)."""

    state: PeerState = PeerState.CLEAR
    failures: int = 0
    strikes: int = 0
    until: float = 0.0
    last: float = 0.0


CLEAR = PeerEntry()


class LockoutStep(NamedTuple):
    """What a transition function may look at besides the entry."""

    now: float
    policy: LockoutPolicy
    under_attack: bool


def _same(entry: PeerEntry, step: LockoutStep) -> PeerEntry:
    return entry


def _count(entry: PeerEntry, step: LockoutStep) -> PeerEntry:
    return replace(entry, failures=entry.failures + 1, last=step.now)


def _back_off(entry: PeerEntry, step: LockoutStep) -> PeerEntry:
    strikes = entry.strikes + 1
    if step.under_attack and entry.strikes == 0:
        strikes = max(strikes, step.policy.full_strikes)  # under attack, a first wait is the whole one
    return replace(entry, failures=entry.failures + 1, strikes=strikes, until=step.now + step.policy.delay(strikes),
                   last=step.now)


def _probation(entry: PeerEntry, step: LockoutStep) -> PeerEntry:
    return entry  # the strikes stay: the next failure waits longer


def _forget(entry: PeerEntry, step: LockoutStep) -> PeerEntry:
    return CLEAR


Transition = Callable[[PeerEntry, LockoutStep], PeerEntry]
S, I = PeerState, Input
TRANSITIONS: dict[tuple[PeerState, Input], tuple[Transition, PeerState]] = {
    (S.CLEAR, I.ATTEMPT): (_same, S.CLEAR),
    (S.CLEAR, I.FAILURE): (_count, S.COUNTING),
    (S.CLEAR, I.LAST_FAILURE): (_back_off, S.WAITING),
    (S.CLEAR, I.SUCCESS): (_same, S.CLEAR),
    (S.COUNTING, I.ATTEMPT): (_same, S.COUNTING),
    (S.COUNTING, I.FAILURE): (_count, S.COUNTING),
    (S.COUNTING, I.LAST_FAILURE): (_back_off, S.WAITING),
    (S.COUNTING, I.SUCCESS): (_forget, S.CLEAR),
    (S.COUNTING, I.EXPIRED): (_forget, S.CLEAR),
    (S.WAITING, I.ATTEMPT): (_same, S.WAITING),  # refused unjudged
    # an HLS pass 3 admitted before the wait began is still judged: it fails again, or it
    # proves the peer holds the secret
    (S.WAITING, I.LAST_FAILURE): (_back_off, S.WAITING),
    (S.WAITING, I.SUCCESS): (_forget, S.CLEAR),
    (S.WAITING, I.EXPIRED): (_probation, S.PROBATION),
    (S.PROBATION, I.ATTEMPT): (_same, S.PROBATION),
    (S.PROBATION, I.LAST_FAILURE): (_back_off, S.WAITING),
    (S.PROBATION, I.SUCCESS): (_forget, S.CLEAR),
    (S.PROBATION, I.EXPIRED): (_forget, S.CLEAR),
}
del S, I


def transition(entry: PeerEntry, event: Input, step: LockoutStep) -> PeerEntry:
    """One step of one peer's machine; LocalProtocolError (and no change) for a pair the
    table does not list."""
    try:
        function, next_state = TRANSITIONS[(entry.state, event)]
    except KeyError:
        raise LocalProtocolError(f"lockout: {event.value} in state {entry.state.name}") from None
    return replace(function(entry, step), state=next_state)


# --- the stored form -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """One peer's entry as kept: times as seconds relative to when it was taken."""

    peer: str
    client_sap: int
    state: PeerState
    failures: int
    strikes: int
    wait_s: float  # of its wait, still to run
    idle_s: float  # since its last failure


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """One SAP's count of recent failures (all peers) and what is left of its alarm."""

    client_sap: int
    failures: int
    window_age_s: float
    alarm_left_s: float


@dataclass(frozen=True, slots=True)
class LockoutRecord:
    """The whole lockout state as plain data (what the meter saves and loads)."""

    peers: tuple[PeerRecord, ...] = ()
    alarms: tuple[AlarmRecord, ...] = ()


@dataclass(slots=True)
class _Alarm:
    failures: int
    window_start: float
    until: float = 0.0


Key = tuple[str, int]


class Lockout:
    """The lockout table of one server: peers' machines, SAP alarms, pending associations.

    ``on_change`` is called with a fresh :meth:`snapshot` whenever a failure or a success
    changed the table (not for the passing of time, nor for pending associations): the
    meter keeps it, so a restart resumes every wait."""

    def __init__(self, policy: LockoutPolicy | None = None, *,
                 on_change: Callable[[LockoutRecord], None] | None = None) -> None:
        self.policy = policy or LockoutPolicy()
        self.on_change = on_change
        self._peers: dict[Key, PeerEntry] = {}
        self._alarms: dict[int, _Alarm] = {}
        self._pending: OrderedDict[Hashable, str] = OrderedDict()

    # --- judging AARQs ---------------------------------------------------------------------
    def admit(self, peer: str, client_sap: int, now: float) -> bool:
        """Whether an AARQ from ``peer`` for ``client_sap`` is judged (True) or refused
        unjudged because the peer is waiting (False)."""
        key = (peer, client_sap)
        entry = self._expire(key, now)
        if entry.state is PeerState.CLEAR:
            return True
        self._put(key, transition(entry, Input.ATTEMPT, self._step(client_sap, now)))
        return entry.state is not PeerState.WAITING

    def waiting(self, peer: str, client_sap: int, now: float) -> float:
        """Seconds ``peer`` still has to wait for ``client_sap`` (0: its AARQs are judged)."""
        entry = self._peers.get((peer, client_sap), CLEAR)
        if entry.state is not PeerState.WAITING:
            return 0.0
        # until = then + delay, so until - now can exceed the delay by a rounding step
        return min(self.policy.max_delay, max(0.0, entry.until - now))

    def failed(self, peer: str, client_sap: int, now: float) -> float:
        """A judged authentication from ``peer`` failed; the wait it starts now (0: none)."""
        key = (peer, client_sap)
        entry = self._expire(key, now)
        under_attack = self._count_alarm(client_sap, now)
        event = self._classify(entry, under_attack)
        after = transition(entry, event, LockoutStep(now, self.policy, under_attack))
        self._put(key, after)
        self._changed(now)
        if event is not Input.LAST_FAILURE:
            return 0.0
        return min(self.policy.max_delay, max(0.0, after.until - now))  # no rounding step past the cap

    def passed(self, peer: str, client_sap: int, now: float) -> None:
        """A judged authentication from ``peer`` passed: the peer is clear again."""
        key = (peer, client_sap)
        entry = self._peers.get(key)
        if entry is None:
            return  # the usual case: nothing to change, nothing to write
        self._put(key, transition(entry, Input.SUCCESS, self._step(client_sap, now)))
        self._changed(now)

    def under_attack(self, client_sap: int, now: float) -> bool:
        alarm = self._alarms.get(client_sap)
        return alarm is not None and alarm.until > now

    def _classify(self, entry: PeerEntry, under_attack: bool) -> Input:
        """A judged failure's input: inside the allowance, or the one that makes it wait."""
        if entry.state in (PeerState.WAITING, PeerState.PROBATION):
            return Input.LAST_FAILURE
        if under_attack or entry.failures + 1 >= self.policy.allowance:
            return Input.LAST_FAILURE
        return Input.FAILURE

    def _expire(self, key: Key, now: float) -> PeerEntry:
        """The entry for ``key`` after the time that passed: a wait over, a record forgotten."""
        entry = self._peers.get(key, CLEAR)
        state = entry.state
        forget = self.policy.forget_after
        over = ((state is PeerState.WAITING and now >= entry.until)
                or (state is PeerState.COUNTING and now - entry.last >= forget)
                or (state is PeerState.PROBATION and now - max(entry.until, entry.last) >= forget))
        if over:
            entry = transition(entry, Input.EXPIRED, self._step(key[1], now))
            self._put(key, entry)
        return entry

    def _step(self, client_sap: int, now: float) -> LockoutStep:
        return LockoutStep(now, self.policy, self.under_attack(client_sap, now))

    def _count_alarm(self, client_sap: int, now: float) -> bool:
        """Count a failure towards ``client_sap``'s alarm; whether the SAP is under attack."""
        window = self.policy.max_delay
        if window <= 0:
            return False
        alarm = self._alarms.get(client_sap)
        if alarm is None:
            alarm = self._alarms[client_sap] = _Alarm(0, now)
        if now - alarm.window_start > window:
            alarm.failures, alarm.window_start = 0, now  # a new count (an alarm on runs on)
        alarm.failures += 1
        if alarm.failures >= self.policy.alarm_after or alarm.until > now:
            alarm.until = now + window  # every failure while alarmed keeps the alarm on
        return alarm.until > now

    def _put(self, key: Key, entry: PeerEntry) -> None:
        if entry.state is PeerState.CLEAR:
            self._peers.pop(key, None)
            return
        peers = self._peers
        if key not in peers and len(peers) >= self.policy.max_peers:
            # full: forget the least telling entry (not waiting before waiting, oldest first);
            # a forgotten attacker is a fresh address, which costs it its allowance at most
            victim = min(peers, key=lambda k: (peers[k].state is PeerState.WAITING, peers[k].last))
            del peers[victim]
        peers[key] = entry

    def _changed(self, now: float) -> None:
        if self.on_change is not None:
            self.on_change(self.snapshot(now))

    # --- pending associations (HLS pass 3/4 outstanding) -------------------------------------
    def hold_pending(self, token: Hashable, peer: str) -> list[Hashable]:
        """``token`` (a session) is now pending for ``peer``; the older pending ones dropped
        to stay within the caps, for the caller to end."""
        pending = self._pending
        pending.pop(token, None)
        dropped: list[Hashable] = []
        mine = [t for t, p in pending.items() if p == peer]
        while len(mine) >= self.policy.pending_per_peer:
            oldest = mine.pop(0)
            del pending[oldest]
            dropped.append(oldest)
        while len(pending) >= self.policy.max_pending:
            oldest, _ = pending.popitem(last=False)
            dropped.append(oldest)
        pending[token] = peer
        return dropped

    def release_pending(self, token: Hashable) -> None:
        """``token`` is no longer pending (passed, failed, released, dropped)."""
        self._pending.pop(token, None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- kept across a restart ---------------------------------------------------------------
    def snapshot(self, now: float) -> LockoutRecord:
        peers = tuple(PeerRecord(peer, sap, e.state, e.failures, e.strikes,
                                 max(0.0, e.until - now) if e.state is PeerState.WAITING else 0.0,
                                 max(0.0, now - e.last))
                      for (peer, sap), e in self._peers.items())
        alarms = tuple(AlarmRecord(sap, a.failures, max(0.0, now - a.window_start), max(0.0, a.until - now))
                       for sap, a in self._alarms.items() if a.until > now or now - a.window_start <= self.policy.max_delay)
        return LockoutRecord(peers, alarms)

    def restore(self, record: LockoutRecord, now: float) -> None:
        """Take back a :meth:`snapshot` (after a restart: ``now`` is the new clock's). A
        record that does not make sense raises LockoutError and changes nothing."""
        if not isinstance(record, LockoutRecord):
            raise LockoutError(f"not a lockout record: {record!r}")
        policy = self.policy
        peers: dict[Key, PeerEntry] = {}
        for p in record.peers:
            if not isinstance(p, PeerRecord) or not isinstance(p.peer, str) or type(p.client_sap) is not int:
                raise LockoutError(f"lockout record: not a peer entry: {p!r}")
            if not isinstance(p.state, PeerState) or p.state is PeerState.CLEAR:
                raise LockoutError(f"lockout record: peer {p.peer!r} in state {p.state!r}")
            if min(p.failures, p.strikes) < 0 or not _seconds(p.wait_s) or not _seconds(p.idle_s):
                raise LockoutError(f"lockout record: peer {p.peer!r} has impossible numbers")
            wait = min(p.wait_s, policy.max_delay)  # a shorter cap configured since: it applies
            until = now + wait if p.state is PeerState.WAITING else now - p.idle_s
            peers[(p.peer, p.client_sap)] = PeerEntry(p.state, p.failures, p.strikes, until, now - p.idle_s)
        alarms: dict[int, _Alarm] = {}
        for a in record.alarms:
            if not isinstance(a, AlarmRecord) or type(a.client_sap) is not int or a.failures < 0 \
                    or not _seconds(a.window_age_s) or not _seconds(a.alarm_left_s):
                raise LockoutError(f"lockout record: not an alarm: {a!r}")
            alarms[a.client_sap] = _Alarm(a.failures, now - a.window_age_s,
                                          now + min(a.alarm_left_s, policy.max_delay) if a.alarm_left_s else 0.0)
        if len(peers) > policy.max_peers:  # kept under a larger table: the waiting and newest stay
            ranked = sorted(peers, key=lambda k: (peers[k].state is PeerState.WAITING, peers[k].last))
            for key in ranked[:len(peers) - policy.max_peers]:
                del peers[key]
        self._peers, self._alarms = peers, alarms


def _seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
