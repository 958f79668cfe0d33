"""The association state table (dlms.association): every (state, event) pair either
follows TRANSITIONS or is refused with LocalProtocolError and changes nothing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.association import (EVENT_TYPES, NOT_ASSOCIATED, TRANSITIONS, Association, AssociationContext,
                                    AssociationState, Challenged, HlsFailed, HlsPassed, Opened, Released)
from bijli.dlms.errors import LocalProtocolError
from bijli.dlms.xdlms import Conformance

_OPEN = AssociationContext(None, Conformance.GET, 512, None, None, 0, 480, None, b"", 1.0)
_PENDING = AssociationContext(None, Conformance.GET, 512, b"CLIENT01", None, 0, 480, b"S" * 16, b"C" * 16, 2.0)
_EVENTS = {Opened: Opened(_OPEN), Challenged: Challenged(_PENDING), HlsPassed: HlsPassed(), HlsFailed: HlsFailed(),
           Released: Released()}
# a way into each state from non-associated
_INTO = {AssociationState.NON_ASSOCIATED: (), AssociationState.PENDING: (_EVENTS[Challenged],),
         AssociationState.ASSOCIATED: (_EVENTS[Opened],)}


def _in(state: AssociationState) -> Association:
    a = Association()
    for event in _INTO[state]:
        a.handle(event)
    assert a.state is state
    return a


@pytest.mark.parametrize("state,event_type", list(itertools.product(AssociationState, EVENT_TYPES)))
def test_every_state_and_event(state, event_type):
    a = _in(state)
    before = a.context
    event = _EVENTS[event_type]
    if (state, event_type) not in TRANSITIONS:
        with pytest.raises(LocalProtocolError):
            a.handle(event)
        assert a.state is state and a.context is before
        return
    _, next_state = TRANSITIONS[(state, event_type)]
    assert a.handle(event) is next_state and a.state is next_state
    if next_state is AssociationState.NON_ASSOCIATED:
        assert a.context is NOT_ASSOCIATED
    elif event_type is HlsPassed:
        # the challenges are spent; what was negotiated stays
        assert a.context.challenge is None and a.context.client_challenge == b""
        assert a.context.conformance == before.conformance and a.context.client_system_title == b"CLIENT01"
    else:
        assert a.context is event.context


def test_hls_is_the_only_way_from_pending_to_associated():
    assert {k for k, (_, n) in TRANSITIONS.items() if k[0] is AssociationState.PENDING
            and n is AssociationState.ASSOCIATED} == {(AssociationState.PENDING, HlsPassed)}


@settings(max_examples=200)
@given(st.lists(st.sampled_from(list(_EVENTS.values())), max_size=20))
def test_random_event_sequences_follow_the_table(events):
    a = Association()
    state = AssociationState.NON_ASSOCIATED
    for event in events:
        entry = TRANSITIONS.get((state, type(event)))
        if entry is None:
            with pytest.raises(LocalProtocolError):
                a.handle(event)
        else:
            state = entry[1]
            a.handle(event)
        assert a.state is state
        assert (a.context is NOT_ASSOCIATED) == (state is AssociationState.NON_ASSOCIATED)
