"""The supply relay: the state machine of Disconnect control (IEC 62056-6-2 interface
class 70) as :class:`RelayControl`, the load limiter behind interface class 71 as
:class:`LoadLimiter`, and the meter's policy that turns what it knows
(prepaid supply decision, limiter, remote command, button, tamper) into the
class-70 trigger to apply.

Class 70 as publicly described (the Blue Book's interface class 70): three control
states (0 disconnected, 1 connected, 2 ready_for_reconnection), eight transitions
a..h driven by six triggers, and seven control modes, each allowing a subset of
the transitions. Everything here is a frozen value; time is passed in.

Policy (see :func:`decide`):

* a **local** cause (prepaid says "not allowed", limiter tripped, tamper when so
  configured) opens the relay with local_disconnect (g): connected -> ready;
* when every local cause has cleared (e.g. after a recharge) and the relay is
  ready *because of* g, modes 5 and 6 close it at once with local_reconnect (h);
  modes 1-4 have no h, so the relay stays ready_for_reconnection and ONE press
  of the button (manual_reconnect, e) brings the supply back: never a visit to
  the office;
* a press while a local cause is still present is ignored: it would close the
  relay into an immediate local disconnect (relay chatter, and a customer who
  thinks the button "worked");
* remote commands are always tried first; a refused one is a typed no-op.

Default control mode: 6. Modes 5 and 6 both give the automatic reconnection a
prepaid meter needs after a recharge; they differ only in transition f (button
press disconnects). A prepaid customer has no reason to switch the supply off
with the meter's button, and in mode 5 a child pressing it darkens the house
and looks exactly like "credit ran out" -> support calls. Mode 6 keeps the
button for what it is for (e: confirming a reconnection) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum, IntEnum
from typing import Any, Callable, Mapping

from bijli.firmware.config import Table
from bijli.firmware.errors import ConfigError, FirmwareError, StorageError
from bijli.firmware.records import from_record, to_record
from bijli.firmware.events import Event, EventCode


class RelayError(FirmwareError):
    """A stored relay or limiter record that cannot be read back."""


class RelayState(IntEnum):
    """Class 70 attribute 3 ``control_state``."""

    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


class Trigger(Enum):
    """What asks the relay to move (class 70 methods and local/manual events)."""

    REMOTE_DISCONNECT = "remote_disconnect"
    REMOTE_RECONNECT = "remote_reconnect"
    MANUAL_DISCONNECT = "manual_disconnect"
    MANUAL_RECONNECT = "manual_reconnect"
    LOCAL_DISCONNECT = "local_disconnect"
    LOCAL_RECONNECT = "local_reconnect"


class Transition(Enum):
    """The eight class-70 transitions, named by their letter in the standard."""

    A = "a"
    B = "b"
    C = "c"
    D = "d"
    E = "e"
    F = "f"
    G = "g"
    H = "h"

    @property
    def trigger(self) -> Trigger:
        return TRANSITIONS[self][1]

    @property
    def source(self) -> RelayState:
        return TRANSITIONS[self][0]

    @property
    def target(self) -> RelayState:
        return TRANSITIONS[self][2]


_D, _C, _R = RelayState.DISCONNECTED, RelayState.CONNECTED, RelayState.READY_FOR_RECONNECTION

#: transition -> (from state, trigger, to state), as NOTES.md lists them.
TRANSITIONS: dict[Transition, tuple[RelayState, Trigger, RelayState]] = {
    Transition.A: (_D, Trigger.REMOTE_RECONNECT, _C),
    Transition.B: (_C, Trigger.REMOTE_DISCONNECT, _D),
    Transition.C: (_R, Trigger.REMOTE_DISCONNECT, _D),
    Transition.D: (_D, Trigger.REMOTE_RECONNECT, _R),
    Transition.E: (_R, Trigger.MANUAL_RECONNECT, _C),
    Transition.F: (_C, Trigger.MANUAL_DISCONNECT, _R),
    Transition.G: (_C, Trigger.LOCAL_DISCONNECT, _R),
    Transition.H: (_R, Trigger.LOCAL_RECONNECT, _C),
}

_T = Transition
#: control mode -> the transitions it allows (NOTES.md table, disconnect + reconnect).
MODE_TRANSITIONS: dict[int, frozenset[Transition]] = {
    0: frozenset(),
    1: frozenset({_T.B, _T.C, _T.F, _T.G, _T.D, _T.E}),
    2: frozenset({_T.B, _T.C, _T.F, _T.G, _T.A, _T.E}),
    3: frozenset({_T.B, _T.C, _T.G, _T.D, _T.E}),
    4: frozenset({_T.B, _T.C, _T.G, _T.A, _T.E}),
    5: frozenset({_T.B, _T.C, _T.F, _T.G, _T.D, _T.E, _T.H}),
    6: frozenset({_T.B, _T.C, _T.G, _T.D, _T.E, _T.H}),
}


#: What a transition does: the control moved to the next state with the transition
#: recorded as the reason it is there (``decide`` reads it: only g is undone by h).
Action = Callable[["RelayControl", RelayState], "RelayControl"]


def _taking(transition: Transition) -> Action:
    def take(control: "RelayControl", state: RelayState) -> "RelayControl":
        return replace(control, control_state=state, last_transition=transition)

    take.__name__ = take.__qualname__ = f"take_{transition.value}"
    return take


#: transition -> its action, one function per letter.
TAKE: dict[Transition, Action] = {t: _taking(t) for t in Transition}


def _mode_table(mode: int) -> dict[tuple[RelayState, Trigger], tuple[Action, RelayState]]:
    table: dict[tuple[RelayState, Trigger], tuple[Action, RelayState]] = {}
    for t in sorted(MODE_TRANSITIONS[mode], key=lambda t: t.value):
        src, trig, dst = TRANSITIONS[t]
        # (disconnected, remote_reconnect) is both a and d; no mode allows both,
        # which is why the table is per mode and not one global dict.
        assert (src, trig) not in table, (mode, src, trig)
        table[(src, trig)] = (TAKE[t], dst)
    return table


#: control mode -> {(state, trigger): (action, next state)}; a missing pair is refused.
TABLES: dict[int, dict[tuple[RelayState, Trigger], tuple[Action, RelayState]]] = {
    mode: _mode_table(mode) for mode in MODE_TRANSITIONS
}

DEFAULT_CONTROL_MODE = 6


class Refusal(Enum):
    """Why :meth:`RelayControl.apply` did nothing (for the DLMS action result)."""

    MODE_FORBIDS = "the control mode does not allow this trigger at all"
    NOT_FROM_STATE = "the control mode allows this trigger, but not from the present state"


def _check_mode(mode: Any) -> int:
    if type(mode) is not int or mode not in MODE_TRANSITIONS:
        raise ConfigError("relay.control_mode", f"must be an integer 0..6, not {mode!r}")
    return mode


@dataclass(frozen=True)
class RelayControl:
    """The relay's control state machine, as class 70 defines it (the wing binds it to
    :class:`bijli.dlms.cosem.disconnect.DisconnectControl`). ``last_transition`` tells why
    it is where it is."""

    control_mode: int = DEFAULT_CONTROL_MODE
    control_state: RelayState = RelayState.CONNECTED
    last_transition: Transition | None = None

    def __post_init__(self) -> None:
        _check_mode(self.control_mode)
        if not isinstance(self.control_state, RelayState):
            raise RelayError(f"control_state must be a RelayState, not {self.control_state!r}")
        if self.control_mode == 0 and self.control_state is not RelayState.CONNECTED:
            raise RelayError("control mode 0 means always connected")

    @property
    def output_state(self) -> bool:
        """Class 70 attribute 2: True when the supply is on (only when connected)."""
        return self.control_state is RelayState.CONNECTED

    def refusal(self, trigger: Trigger) -> Refusal | None:
        """Why ``trigger`` would be refused now, or None when it would move the relay."""
        if (self.control_state, trigger) in TABLES[self.control_mode]:
            return None
        if any(t.trigger is trigger for t in MODE_TRANSITIONS[self.control_mode]):
            return Refusal.NOT_FROM_STATE
        return Refusal.MODE_FORBIDS

    def apply(self, trigger: Trigger) -> tuple["RelayControl", Transition | None]:
        """The state after ``trigger`` and the transition taken; (self, None) if refused."""
        hit = TABLES[self.control_mode].get((self.control_state, trigger))
        if hit is None:
            return self, None
        action, state = hit
        after = action(self, state)
        return after, after.last_transition

    def with_mode(self, mode: int) -> "RelayControl":
        """A change of control_mode (attribute 4); mode 0 closes the relay at once."""
        _check_mode(mode)
        if mode == 0:
            return RelayControl(0, RelayState.CONNECTED, None)
        return replace(self, control_mode=mode)

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "RelayControl":
        try:
            return from_record(cls, d)
        except (StorageError, ConfigError) as exc:
            raise RelayError(f"stored disconnect control is unreadable: {exc}") from exc


# --------------------------------------------------------------------------- policy


class Cause(Enum):
    """Who or what asked for a relay move (recorded in the control event log)."""

    REMOTE = "remote"
    MANUAL = "manual"
    PREPAID = "prepaid"
    LIMITER = "limiter"
    TAMPER = "tamper"
    CLEARED = "cleared"  # every local cause has gone


@dataclass(frozen=True)
class RelayInputs:
    """What the meter knows at one step. ``remote`` and ``button`` are one-shot."""

    supply_allowed: bool = True
    supply_reason: str = ""
    limiter_over: bool = False
    tamper: bool = False
    remote: Trigger | None = None
    button: bool = False

    def __post_init__(self) -> None:
        if self.remote not in (None, Trigger.REMOTE_DISCONNECT, Trigger.REMOTE_RECONNECT):
            raise ConfigError("relay.remote", f"{self.remote} is not a remote command")


@dataclass(frozen=True)
class RelayPolicy:
    disconnect_on_tamper: bool = False


@dataclass(frozen=True)
class Decision:
    trigger: Trigger
    cause: Cause
    reason: str = ""


@dataclass(frozen=True)
class Step:
    """One trigger tried by :func:`settle` and what came of it (None: refused)."""

    decision: Decision
    transition: Transition | None


def local_causes(inputs: RelayInputs, policy: RelayPolicy = RelayPolicy()) -> list[tuple[Cause, str]]:
    """The local reasons, in priority order, for the supply to be off now."""
    causes = []
    if not inputs.supply_allowed:
        causes.append((Cause.PREPAID, inputs.supply_reason or "supply not allowed"))
    if inputs.limiter_over:
        causes.append((Cause.LIMITER, "over load limit"))
    if inputs.tamper and policy.disconnect_on_tamper:
        causes.append((Cause.TAMPER, "tamper"))
    return causes


def decide(
    control: RelayControl, inputs: RelayInputs, policy: RelayPolicy = RelayPolicy()
) -> Decision | None:
    """The next trigger to apply, or None when the relay is where it should be.

    Remote commands are returned even when the mode refuses them (the head end
    must get its answer); local and manual triggers are only returned when they
    would move the relay, so :func:`settle` always ends.
    """
    if inputs.remote is not None:
        return Decision(inputs.remote, Cause.REMOTE)
    table = TABLES[control.control_mode]
    state = control.control_state
    causes = local_causes(inputs, policy)

    def moves(trigger: Trigger) -> bool:
        return (state, trigger) in table

    if state is RelayState.CONNECTED and causes and moves(Trigger.LOCAL_DISCONNECT):
        cause, reason = causes[0]
        return Decision(Trigger.LOCAL_DISCONNECT, cause, reason)
    if inputs.button:
        if state is RelayState.CONNECTED and moves(Trigger.MANUAL_DISCONNECT):
            return Decision(Trigger.MANUAL_DISCONNECT, Cause.MANUAL, "button")
        if state is RelayState.READY_FOR_RECONNECTION and not causes and moves(Trigger.MANUAL_RECONNECT):
            return Decision(Trigger.MANUAL_RECONNECT, Cause.MANUAL, "button")
    if (
        state is RelayState.READY_FOR_RECONNECTION
        and not causes
        # only undo our own local disconnect: a ready state reached by a remote
        # reconnect (d) or a button press (f) waits for the customer.
        and control.last_transition is Transition.G
        and moves(Trigger.LOCAL_RECONNECT)
    ):
        return Decision(Trigger.LOCAL_RECONNECT, Cause.CLEARED, "local causes cleared")
    return None


def settle(
    control: RelayControl, inputs: RelayInputs, policy: RelayPolicy = RelayPolicy()
) -> tuple[RelayControl, tuple[Step, ...]]:
    """Apply :func:`decide` until the relay rests; the steps say what happened."""
    steps: list[Step] = []
    for _ in range(4):  # remote, button, local move: at most three moves, one spare
        decision = decide(control, inputs, policy)
        if decision is None:
            break
        control, transition = control.apply(decision.trigger)
        steps.append(Step(decision, transition))
        if decision.cause is Cause.REMOTE:
            inputs = replace(inputs, remote=None)
        elif decision.cause is Cause.MANUAL:
            inputs = replace(inputs, button=False)
    return control, tuple(steps)


def control_event(step: Step, time: datetime) -> Event | None:
    """The control-log event (IS 15959 301/302) for a step that moved the relay."""
    if step.transition is None:
        return None
    code = (
        EventCode.LOAD_SWITCH_CONNECTED
        if step.transition.target is RelayState.CONNECTED
        else EventCode.LOAD_SWITCH_DISCONNECTED
    )
    d = step.decision
    detail = f"{step.transition.value} {d.trigger.value} {d.cause.value}"
    if d.reason:
        detail += f": {d.reason}"
    return Event(code, time, detail)


# --------------------------------------------------------------------------- limiter


class LimiterAction(Enum):
    """Which of class 71 ``actions`` the limiter fires."""

    OVER_THRESHOLD = "over_threshold"
    UNDER_THRESHOLD = "under_threshold"


@dataclass(frozen=True)
class MonitoredQuantity:
    """The quantity the limiter watches, named as a COSEM attribute (what class 71
    ``monitored_value`` publishes)."""

    class_id: int = 3
    logical_name: str = "1.0.1.7.0.255"  # active power import (+P), L1
    attribute_index: int = 2


@dataclass(frozen=True)
class ScriptCall:
    """A script the limiter runs: a script table and a selector in it (what class 71
    ``actions`` publishes as action items)."""

    script_logical_name: str
    script_selector: int


#: The disconnect control script table (Blue Book 0.0.10.0.106.255); in bijli the
#: selectors map onto local_disconnect (1) and local_reconnect (2).
DISCONNECT_SCRIPT_TABLE = "0.0.10.0.106.255"


@dataclass(frozen=True)
class EmergencyWindow:
    """When an emergency supply limit applies: id, activation time, duration in seconds
    (what class 71 ``emergency_profile`` publishes)."""

    id: int = 0
    activation_time: datetime | None = None
    duration: int = 0

    def covers(self, now: datetime) -> bool:
        if self.activation_time is None or self.duration <= 0:
            return False
        return self.activation_time <= now < self.activation_time + timedelta(seconds=self.duration)


def _opt_number(key: str, v: Any) -> float | int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ConfigError(key, f"must be a non-negative number of watts or None, not {v!r}")
    return v


@dataclass(frozen=True)
class LoadLimiter:
    """The load limiter behind class 71 (bound to :class:`bijli.dlms.cosem.limiter.Limiter`),
    plus the progress of the over/under timers.

    ``over`` is true from the moment action_over_threshold fired until
    action_under_threshold fires; ``since`` is when the monitored value first
    crossed the active threshold in the direction that would flip ``over``.
    A threshold of None means no limit.
    """

    threshold_normal: float | int | None = None
    threshold_emergency: float | int | None = None
    min_over_threshold_duration: int = 60
    min_under_threshold_duration: int = 300
    emergency_profile: EmergencyWindow = field(default_factory=EmergencyWindow)
    emergency_profile_group_id_list: tuple[int, ...] = ()
    emergency_profile_active: bool = False
    monitored_value: MonitoredQuantity = field(default_factory=MonitoredQuantity)
    action_over_threshold: ScriptCall = ScriptCall(DISCONNECT_SCRIPT_TABLE, 1)
    action_under_threshold: ScriptCall = ScriptCall(DISCONNECT_SCRIPT_TABLE, 2)
    over: bool = False
    since: datetime | None = None

    def __post_init__(self) -> None:
        _opt_number("limiter.threshold_normal", self.threshold_normal)
        _opt_number("limiter.threshold_emergency", self.threshold_emergency)
        for key in ("min_over_threshold_duration", "min_under_threshold_duration"):
            v = getattr(self, key)
            if type(v) is not int or v < 0:
                raise ConfigError(f"limiter.{key}", f"must be a whole number of seconds >= 0, not {v!r}")

    @property
    def threshold_active(self) -> float | int | None:
        """Class 71 attribute 3: the emergency threshold while the profile runs."""
        if self.emergency_profile_active and self.threshold_emergency is not None:
            return self.threshold_emergency
        return self.threshold_normal

    def emergency_applies(self, now: datetime) -> bool:
        return (
            self.emergency_profile.id in self.emergency_profile_group_id_list
            and self.emergency_profile.covers(now)
        )

    def update(self, value: float, now: datetime) -> tuple["LoadLimiter", LimiterAction | None]:
        """Feed one reading of the monitored value; returns the action to run, if any."""
        lim = self
        em = self.emergency_applies(now)
        if em != self.emergency_profile_active:
            # the threshold moved under our feet: timers restart against the new one
            lim = replace(lim, emergency_profile_active=em, since=None)
        threshold = lim.threshold_active
        if threshold is None:
            if lim.over:  # the limit was lifted: release at once
                return replace(lim, over=False, since=None), LimiterAction.UNDER_THRESHOLD
            return (lim if lim.since is None else replace(lim, since=None)), None
        crossing = (value > threshold) != lim.over
        if not crossing:
            return (lim if lim.since is None else replace(lim, since=None)), None
        since = lim.since if lim.since is not None and lim.since <= now else now
        needed = lim.min_under_threshold_duration if lim.over else lim.min_over_threshold_duration
        if (now - since).total_seconds() >= needed:
            action = LimiterAction.UNDER_THRESHOLD if lim.over else LimiterAction.OVER_THRESHOLD
            return replace(lim, over=not lim.over, since=None), action
        return (lim if since == lim.since else replace(lim, since=since)), None

    def set_max_power_limit(self, watts: int) -> "LoadLimiter":
        """STS class 2 subclass 0 "set maximum power limit": the normal threshold, in W."""
        return replace(self, threshold_normal=_opt_number("limiter.threshold_normal", watts))

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "LoadLimiter":
        try:
            record = dict(d)
            for key, names in _LEGACY_LISTS.items():  # records written before the converter
                if isinstance(record.get(key), list):
                    record[key] = dict(zip(names, record[key]))
            return from_record(cls, record)
        except (StorageError, ConfigError, TypeError) as exc:
            raise RelayError(f"stored limiter is unreadable: {exc}") from exc


#: the limiter's parts that hand-written records kept as lists, and their field names
_LEGACY_LISTS = {
    "monitored_value": ("class_id", "logical_name", "attribute_index"),
    "action_over_threshold": ("script_logical_name", "script_selector"),
    "action_under_threshold": ("script_logical_name", "script_selector"),
}


@dataclass(frozen=True)
class RelayConfig:
    """The ``[relay]`` table: disconnect control mode, tamper policy and the load limit."""

    control_mode: int = 6
    disconnect_on_tamper: bool = False
    load_limit_w: float | None = None  # None: no limit until a token or the head-end sets one
    min_over_threshold_s: int = 60
    min_under_threshold_s: int = 300
    # Friendly periods stop a disconnection; they do not undo one. A supply cut
    # for lack of credit stays off until credit is back, unless this is set.
    reconnect_in_friendly_period: bool = False

    @classmethod
    def from_table(cls, table: Mapping, prefix: str = "relay") -> "RelayConfig":
        t = Table(table, prefix, {"control_mode", "disconnect_on_tamper", "load_limit_w",
                                  "min_over_threshold_s", "min_under_threshold_s", "reconnect_in_friendly_period"})
        limit = table.get("load_limit_w")
        if limit is not None:
            limit = t.float("load_limit_w", 0.0, 0.0)
        return cls(
            control_mode=t.int("control_mode", 6, 0, 6),
            disconnect_on_tamper=t.bool("disconnect_on_tamper", False),
            load_limit_w=limit,
            min_over_threshold_s=t.int("min_over_threshold_s", 60, 0, 86400),
            min_under_threshold_s=t.int("min_under_threshold_s", 300, 0, 86400),
            reconnect_in_friendly_period=t.bool("reconnect_in_friendly_period", False),
        )

    @property
    def policy(self) -> RelayPolicy:
        return RelayPolicy(disconnect_on_tamper=self.disconnect_on_tamper)

    def initial_control(self) -> RelayControl:
        return RelayControl(control_mode=self.control_mode)

    def initial_limiter(self) -> LoadLimiter:
        return LoadLimiter(threshold_normal=self.load_limit_w, min_over_threshold_duration=self.min_over_threshold_s,
                       min_under_threshold_duration=self.min_under_threshold_s)
