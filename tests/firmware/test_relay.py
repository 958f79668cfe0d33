"""Disconnect control (class 70), the relay policy and the limiter (class 71).

The expected control-mode behaviour is written here as literal data copied from
the class-70 table as the Blue Book gives it, not taken from firmware.relay, so the
tests check the code against the standard's table and not against itself.
"""

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.firmware.errors import ConfigError
from bijli.firmware.events import EventCode
from bijli.firmware.relay import (
    Cause,
    RelayState,
    RelayControl,
    EmergencyWindow,
    LoadLimiter,
    LimiterAction,
    Refusal,
    RelayError,
    RelayInputs,
    RelayPolicy,
    TABLES,
    Transition,
    Trigger,
    control_event,
    decide,
    settle,
)
from bijli.firmware.storage import Storage

# ---- NOTES.md, "Disconnect control (70) state machine", as literal data ----
NOTES_TRANSITIONS = {
    "a": ("disconnected", "remote_reconnect", "connected"),
    "b": ("connected", "remote_disconnect", "disconnected"),
    "c": ("ready_for_reconnection", "remote_disconnect", "disconnected"),
    "d": ("disconnected", "remote_reconnect", "ready_for_reconnection"),
    "e": ("ready_for_reconnection", "manual_reconnect", "connected"),
    "f": ("connected", "manual_disconnect", "ready_for_reconnection"),
    "g": ("connected", "local_disconnect", "ready_for_reconnection"),
    "h": ("ready_for_reconnection", "local_reconnect", "connected"),
}
NOTES_MODES = {  # mode: (disconnect by, reconnect by)
    0: ("", ""),
    1: ("bcfg", "de"),
    2: ("bcfg", "ae"),
    3: ("bcg", "de"),
    4: ("bcg", "ae"),
    5: ("bcfg", "deh"),
    6: ("bcg", "deh"),
}
STATES = ("disconnected", "connected", "ready_for_reconnection")
TRIGGERS = (
    "remote_reconnect", "remote_disconnect", "manual_reconnect",
    "manual_disconnect", "local_disconnect", "local_reconnect",
)


def reference(mode, state, trigger):
    """(letter, next state) per NOTES.md, or None when the mode refuses."""
    if mode == 0:
        return None
    allowed = "".join(NOTES_MODES[mode])
    hits = [
        (letter, dst)
        for letter, (src, trig, dst) in NOTES_TRANSITIONS.items()
        if letter in allowed and src == state and trig == trigger
    ]
    assert len(hits) <= 1
    return hits[0] if hits else None


def control(mode, state):
    return RelayControl(mode, RelayState[state.upper()])


def valid_states(mode):
    return ("connected",) if mode == 0 else STATES


ALL_TRIPLES = [(m, s, t) for m in NOTES_MODES for s in valid_states(m) for t in TRIGGERS]


def check_one(mode, state, trigger):
    before = control(mode, state)
    after, transition = before.apply(Trigger(trigger))
    ref = reference(mode, state, trigger)
    if ref is None:
        assert transition is None and after == before
        assert before.refusal(Trigger(trigger)) is not None
    else:
        letter, dst = ref
        assert transition is Transition(letter)
        assert after.control_state is RelayState[dst.upper()]
        assert after.last_transition is Transition(letter)
        assert before.refusal(Trigger(trigger)) is None
    assert after.output_state == (after.control_state is RelayState.CONNECTED)


def test_every_mode_state_trigger_triple():
    assert len(ALL_TRIPLES) == 6 * 3 * 6 + 6
    for triple in ALL_TRIPLES:
        check_one(*triple)


@given(st.sampled_from(ALL_TRIPLES))
def test_triples_hypothesis(triple):
    check_one(*triple)


def test_tables_hold_one_action_per_letter_and_the_standards_next_state():
    """Each mode's table is (state, trigger) -> (function, next state); the function
    moves the control and records the letter NOTES.md gives the pair."""
    for mode, table in TABLES.items():
        for (state, trigger), (action, nxt) in table.items():
            letter, dst = reference(mode, state.name.lower(), trigger.value)
            assert callable(action) and action.__name__ == f"take_{letter}"
            assert nxt is RelayState[dst.upper()]
            after = action(RelayControl(mode if mode else 1, state), nxt)
            assert after.last_transition is Transition(letter) and after.control_state is nxt


@settings(max_examples=300)
@given(
    st.integers(0, 6),
    st.sampled_from(STATES),
    st.lists(st.sampled_from(TRIGGERS), max_size=40),
)
def test_random_trigger_sequences_follow_notes(mode, start, triggers):
    state = "connected" if mode == 0 else start
    c = control(mode, state)
    for trig in triggers:
        c, transition = c.apply(Trigger(trig))
        ref = reference(mode, state, trig)
        if ref is None:
            assert transition is None
        else:
            assert transition is Transition(ref[0])
            state = ref[1]
        assert c.control_state is RelayState[state.upper()]
        assert c.output_state == (state == "connected")
    assert RelayControl.from_dict(c.to_dict()) == c


def test_mode_0_is_always_connected():
    c = RelayControl(0)
    assert c.output_state
    for trig in Trigger:
        after, t = c.apply(trig)
        assert t is None and after.output_state
        assert c.refusal(trig) is Refusal.MODE_FORBIDS
    with pytest.raises(RelayError):
        RelayControl(0, RelayState.DISCONNECTED)
    # switching to mode 0 closes the relay
    opened = RelayControl(1, RelayState.DISCONNECTED)
    assert opened.with_mode(0).control_state is RelayState.CONNECTED
    # no input opens the relay in mode 0
    c2, steps = settle(c, RelayInputs(supply_allowed=False, limiter_over=True, tamper=True, button=True),
                       RelayPolicy(disconnect_on_tamper=True))
    assert c2.output_state and steps == ()


def test_refusal_kinds():
    assert RelayControl(3).refusal(Trigger.MANUAL_DISCONNECT) is Refusal.MODE_FORBIDS
    assert RelayControl(1).refusal(Trigger.LOCAL_RECONNECT) is Refusal.MODE_FORBIDS
    off = RelayControl(6, RelayState.DISCONNECTED)
    assert off.refusal(Trigger.REMOTE_DISCONNECT) is Refusal.NOT_FROM_STATE


def test_bad_mode_and_bad_records():
    with pytest.raises(ConfigError):
        RelayControl(7)
    with pytest.raises(ConfigError):
        RelayControl(True)
    with pytest.raises(ConfigError):
        RelayControl(6).with_mode(-1)
    for bad in ({}, {"control_mode": 6, "control_state": 9}, {"control_mode": "x", "control_state": 1},
                {"control_mode": 6, "control_state": 1, "last_transition": "z"}, None):
        with pytest.raises(RelayError):
            RelayControl.from_dict(bad)


def test_default_mode_is_6():
    assert RelayControl().control_mode == 6
    assert RelayControl().output_state


# ------------------------------------------------------------------ policy

NO_CREDIT = RelayInputs(supply_allowed=False, supply_reason="credit exhausted")
CREDIT = RelayInputs()
T0 = datetime(2024, 3, 1, 10, 0)


@pytest.mark.parametrize("mode", [5, 6])
def test_recharge_reconnects_at_once_in_modes_5_6(mode):
    c, steps = settle(RelayControl(mode), NO_CREDIT)
    assert [s.transition for s in steps] == [Transition.G]
    assert steps[0].decision.cause is Cause.PREPAID
    assert c.control_state is RelayState.READY_FOR_RECONNECTION and not c.output_state
    ev = control_event(steps[0], T0)
    assert ev.code == EventCode.LOAD_SWITCH_DISCONNECTED == 301 and "credit exhausted" in ev.detail
    # still no credit: nothing moves, a button press does not help
    assert settle(c, NO_CREDIT) == (c, ())
    assert settle(c, RelayInputs(supply_allowed=False, button=True)) == (c, ())
    # the recharge: supply returns without any press
    c, steps = settle(c, CREDIT)
    assert [s.transition for s in steps] == [Transition.H]
    assert c.output_state
    assert control_event(steps[0], T0).code == EventCode.LOAD_SWITCH_CONNECTED == 302


@pytest.mark.parametrize("mode", [1, 2, 3, 4])
def test_recharge_then_one_button_press_in_modes_1_to_4(mode):
    c, _ = settle(RelayControl(mode), NO_CREDIT)
    assert c.control_state is RelayState.READY_FOR_RECONNECTION
    c, steps = settle(c, CREDIT)  # recharged: ready, waiting for the customer
    assert steps == () and c.control_state is RelayState.READY_FOR_RECONNECTION
    c, steps = settle(c, RelayInputs(button=True))  # ONE press
    assert [s.transition for s in steps] == [Transition.E]
    assert c.output_state


@pytest.mark.parametrize("mode", [1, 2, 3, 4, 5, 6])
def test_button_before_recharge_is_ignored(mode):
    c, _ = settle(RelayControl(mode), NO_CREDIT)
    c2, steps = settle(c, RelayInputs(supply_allowed=False, button=True))
    assert steps == () and c2 == c


def test_mode_6_button_does_not_disconnect_mode_5_does():
    assert decide(RelayControl(6), RelayInputs(button=True)) is None
    c, steps = settle(RelayControl(5), RelayInputs(button=True))
    assert [s.transition for s in steps] == [Transition.F]
    # the customer switched off: a clear local state does not switch back on
    assert settle(c, CREDIT) == (c, ())
    c, steps = settle(c, RelayInputs(button=True))
    assert [s.transition for s in steps] == [Transition.E]


def test_remote_disconnect_wins_over_recharge():
    c, _ = settle(RelayControl(6), NO_CREDIT)
    c, steps = settle(c, RelayInputs(supply_allowed=False, remote=Trigger.REMOTE_DISCONNECT))
    assert [s.transition for s in steps] == [Transition.C]
    assert settle(c, CREDIT) == (c, ())  # recharge does not undo the utility's disconnect
    assert settle(c, RelayInputs(button=True)) == (c, ())
    c, steps = settle(c, RelayInputs(remote=Trigger.REMOTE_RECONNECT))
    assert [s.transition for s in steps] == [Transition.D]  # mode 6: ready, not connected
    assert settle(c, CREDIT) == (c, ())  # no local reconnect after a remote d
    c, steps = settle(c, RelayInputs(button=True))
    assert [s.transition for s in steps] == [Transition.E]


def test_remote_reconnect_without_credit_is_followed_by_local_disconnect():
    c = RelayControl(2, RelayState.DISCONNECTED)
    c, steps = settle(c, RelayInputs(supply_allowed=False, remote=Trigger.REMOTE_RECONNECT))
    assert [s.transition for s in steps] == [Transition.A, Transition.G]
    assert not c.output_state


def test_refused_remote_is_reported():
    c = RelayControl(6, RelayState.DISCONNECTED)
    c2, steps = settle(c, RelayInputs(remote=Trigger.REMOTE_DISCONNECT))
    assert c2 == c and len(steps) == 1 and steps[0].transition is None
    assert control_event(steps[0], T0) is None
    with pytest.raises(ConfigError):
        RelayInputs(remote=Trigger.LOCAL_DISCONNECT)


def test_tamper_disconnects_only_when_configured():
    inputs = RelayInputs(tamper=True)
    assert settle(RelayControl(6), inputs)[1] == ()
    c, steps = settle(RelayControl(6), inputs, RelayPolicy(disconnect_on_tamper=True))
    assert steps[0].decision.cause is Cause.TAMPER and not c.output_state


inputs_st = st.builds(
    RelayInputs,
    supply_allowed=st.booleans(),
    limiter_over=st.booleans(),
    tamper=st.booleans(),
    remote=st.sampled_from([None, None, None, Trigger.REMOTE_DISCONNECT, Trigger.REMOTE_RECONNECT]),
    button=st.booleans(),
)


@settings(max_examples=300)
@given(st.integers(0, 6), st.lists(inputs_st, max_size=25), st.booleans())
def test_policy_invariants(mode, inputs_seq, tamper_policy):
    policy = RelayPolicy(disconnect_on_tamper=tamper_policy)
    allowed = set("".join(NOTES_MODES[mode]))
    c = RelayControl(mode)
    for inputs in inputs_seq:
        before = c
        c, steps = settle(c, inputs, policy)
        assert len(steps) <= 3
        for s in steps:
            assert s.transition is None or s.transition.value in allowed
        causes = (not inputs.supply_allowed) or inputs.limiter_over or (inputs.tamper and tamper_policy)
        if mode == 0:
            assert c.output_state
        elif causes:
            assert not c.output_state  # a local cause never leaves the supply on
        elif mode in (5, 6) and inputs.remote is None and before.last_transition is Transition.G \
                and before.control_state is RelayState.READY_FOR_RECONNECTION:
            assert c.output_state  # cleared local cause: back at once
        assert settle(c, RelayInputs(**{**inputs.__dict__, "remote": None, "button": False}), policy)[1] == ()


# ------------------------------------------------------------------ limiter


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def feed(lim, samples):
    """samples: [(seconds, value)] -> (limiter, [(seconds, action)])"""
    actions = []
    for s, v in samples:
        lim, a = lim.update(v, at(s))
        if a is not None:
            actions.append((s, a))
    return lim, actions


def test_limiter_min_over_and_under_durations():
    lim = LoadLimiter(threshold_normal=2000, min_over_threshold_duration=60, min_under_threshold_duration=300)
    lim, acts = feed(lim, [(0, 2500), (30, 2600), (59, 2600)])
    assert acts == [] and not lim.over
    lim, acts = feed(lim, [(60, 2600)])
    assert acts == [(60, LimiterAction.OVER_THRESHOLD)] and lim.over
    lim, acts = feed(lim, [(100, 0), (399, 0)])
    assert acts == []
    lim, acts = feed(lim, [(400, 0)])
    assert acts == [(400, LimiterAction.UNDER_THRESHOLD)] and not lim.over


def test_limiter_dip_restarts_the_timer():
    lim = LoadLimiter(threshold_normal=2000, min_over_threshold_duration=60)
    lim, acts = feed(lim, [(0, 2500), (50, 1900), (51, 2500), (110, 2500)])
    assert acts == []
    lim, acts = feed(lim, [(111, 2500)])
    assert acts == [(111, LimiterAction.OVER_THRESHOLD)]
    # exactly at the threshold is not over
    lim2, acts = feed(LoadLimiter(threshold_normal=2000, min_over_threshold_duration=0), [(0, 2000)])
    assert acts == []


def test_limiter_emergency_profile():
    ep = EmergencyWindow(id=7, activation_time=at(100), duration=200)
    lim = LoadLimiter(threshold_normal=2000, threshold_emergency=1000, min_over_threshold_duration=0,
                  min_under_threshold_duration=0, emergency_profile=ep, emergency_profile_group_id_list=(3, 7))
    lim, acts = feed(lim, [(0, 1500)])
    assert acts == [] and lim.threshold_active == 2000 and not lim.emergency_profile_active
    lim, acts = feed(lim, [(100, 1500)])
    assert lim.emergency_profile_active and lim.threshold_active == 1000
    assert acts == [(100, LimiterAction.OVER_THRESHOLD)]
    lim, acts = feed(lim, [(299, 1500)])
    assert acts == [] and lim.over
    lim, acts = feed(lim, [(300, 1500)])  # window over: back to 2000, 1500 is under
    assert not lim.emergency_profile_active and lim.threshold_active == 2000
    assert acts == [(300, LimiterAction.UNDER_THRESHOLD)]
    # an emergency profile whose id is not in the group list never applies
    other = LoadLimiter(threshold_normal=2000, threshold_emergency=1000, min_over_threshold_duration=0,
                    emergency_profile=ep, emergency_profile_group_id_list=(1,))
    other, acts = feed(other, [(150, 1500)])
    assert acts == [] and not other.emergency_profile_active


def test_limiter_no_limit_and_sts_power_limit():
    lim = LoadLimiter(min_over_threshold_duration=0, min_under_threshold_duration=0)
    lim, acts = feed(lim, [(0, 10**6)])
    assert acts == []
    lim = lim.set_max_power_limit(3000)
    assert lim.threshold_normal == 3000 == lim.threshold_active
    lim, acts = feed(lim, [(1, 3500)])
    assert acts == [(1, LimiterAction.OVER_THRESHOLD)]
    lim = LoadLimiter.from_dict({**lim.to_dict(), "threshold_normal": None})
    lim, acts = feed(lim, [(2, 3500)])  # limit lifted: released at once
    assert acts == [(2, LimiterAction.UNDER_THRESHOLD)]
    with pytest.raises(ConfigError):
        lim.set_max_power_limit(-1)
    with pytest.raises(ConfigError):
        LoadLimiter(min_over_threshold_duration=1.5)


def test_limiter_round_trips_through_storage(tmp_path):
    ep = EmergencyWindow(2, at(10), 3600)
    lim = LoadLimiter(threshold_normal=2000, threshold_emergency=500, emergency_profile=ep,
                  emergency_profile_group_id_list=(2,))
    lim, _ = feed(lim, [(20, 900)])  # emergency running, over timer started
    assert lim.since == at(20) and lim.emergency_profile_active
    s = Storage.open(tmp_path)
    with s.transaction() as tx:
        tx.put("limiter", lim.to_dict())
        tx.put("relay", RelayControl(3, RelayState.READY_FOR_RECONNECTION, Transition.G).to_dict())
    s.close()
    s = Storage.open(tmp_path)
    assert LoadLimiter.from_dict(s.get("limiter")) == lim
    assert RelayControl.from_dict(s.get("relay")) == RelayControl(
        3, RelayState.READY_FOR_RECONNECTION, Transition.G)
    s.close()
    with pytest.raises(RelayError):
        LoadLimiter.from_dict({"threshold_normal": 5})


@settings(max_examples=200)
@given(
    st.integers(0, 120), st.integers(0, 120),
    st.lists(st.tuples(st.integers(1, 90), st.integers(0, 4000)), max_size=60),
)
def test_limiter_actions_alternate_and_respect_durations(over_s, under_s, samples):
    lim = LoadLimiter(threshold_normal=2000, min_over_threshold_duration=over_s, min_under_threshold_duration=under_s)
    t = 0
    last = LimiterAction.UNDER_THRESHOLD
    history = []  # (t, value)
    for dt, v in samples:
        t += dt
        history.append((t, v))
        lim, a = lim.update(v, at(t))
        if a is None:
            continue
        assert a is not last
        last = a
        need, over = (over_s, True) if a is LimiterAction.OVER_THRESHOLD else (under_s, False)
        assert (v > 2000) == over
        # every reading in the last `need` seconds was on the same side
        run_start = t
        for ht, hv in reversed(history):
            if (hv > 2000) != over:
                break
            run_start = ht
        assert t - run_start >= need
        assert lim.over == over


@pytest.mark.parametrize("mode,button_needed", [(6, False), (5, False), (3, True), (1, True)])
def test_limiter_drives_the_relay(mode, button_needed):
    lim = LoadLimiter(threshold_normal=2000, min_over_threshold_duration=60, min_under_threshold_duration=300)
    relay = RelayControl(mode)
    load = 2500
    t = 0
    events = []
    while t <= 1200:
        value = load if relay.output_state else 0.0  # an open relay carries no load
        lim, _ = lim.update(value, at(t))
        relay, steps = settle(relay, RelayInputs(limiter_over=lim.over))
        events += [(t, s.transition) for s in steps]
        if t == 200:
            load = 500  # the customer switched the heater off
        t += 10
    assert events[0] == (60, Transition.G)
    if button_needed:
        assert events == [(60, Transition.G)] and not relay.output_state
        relay, steps = settle(relay, RelayInputs(limiter_over=lim.over, button=True))
        assert [s.transition for s in steps] == [Transition.E]
    else:
        assert events == [(60, Transition.G), (370, Transition.H)] and relay.output_state
