"""dlms.lockout, the association lockout policy (issue 14 item 5), and dlms.server using it.

The per-peer machine is checked pair by pair against its table (Hypothesis over every
(state, input) and any entry); the policy as a whole by its promises: a peer that has
not failed is always judged, a failing peer waits longer each time up to the cap, a SAP
under attack makes fresh addresses wait at once, the table and the pending associations
stay bounded, and the kept record brings the same waits back after a restart. Then the
server, in-process: the right password from another peer is accepted while one peer
backs off, a replayed or forged glo-initiate-request counts, and the pending-HLS cap
drops the oldest challenge."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import acse
from bijli.dlms.acse import AssociationResult
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.errors import DlmsError, LocalProtocolError, LockoutError
from bijli.dlms.lockout import (TRANSITIONS, AlarmRecord, Input, Lockout, LockoutPolicy, LockoutRecord, LockoutStep,
                                PeerEntry, PeerRecord, PeerState, transition)
from bijli.dlms.server import ServerEvent
from tests.dlms.test_server_security import make_server
from tests.peers.direct import Direct

POLICY = LockoutPolicy(allowance=3, base_delay=5.0, max_delay=300.0, forget_after=3600.0, alarm_after=10)

entries = st.builds(PeerEntry, st.sampled_from(PeerState), st.integers(0, 50), st.integers(0, 40),
                    st.floats(0, 1e6), st.floats(0, 1e6))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PeerState), st.sampled_from(Input), entries, st.floats(0, 1e6), st.booleans())
def test_every_state_and_input_pair_follows_the_table(state, event, entry, now, under_attack):
    # a clear peer has no entry: the only clear record there is is the empty one
    entry = PeerEntry() if state is PeerState.CLEAR else PeerEntry(state, entry.failures, entry.strikes,
                                                                    entry.until, entry.last)
    step = LockoutStep(now, POLICY, under_attack)
    if (state, event) not in TRANSITIONS:
        with pytest.raises(LocalProtocolError):
            transition(entry, event, step)
        return
    after = transition(entry, event, step)
    _, next_state = TRANSITIONS[(state, event)]
    assert after.state is next_state
    if next_state is PeerState.CLEAR:
        assert after == PeerEntry()  # nothing of a cleared peer is kept
    if event is Input.LAST_FAILURE:
        assert after.strikes > entry.strikes and after.failures == entry.failures + 1
        assert after.until == now + POLICY.delay(after.strikes) <= now + POLICY.max_delay
    if event is Input.ATTEMPT:
        assert after == entry  # an attempt judges nothing and changes nothing


def test_the_table_covers_what_the_guards_can_derive():
    # the inputs the guards never derive for a state are exactly the pairs left out
    missing = set(itertools.product(PeerState, Input)) - set(TRANSITIONS)
    assert missing == {(PeerState.CLEAR, Input.EXPIRED), (PeerState.WAITING, Input.FAILURE),
                       (PeerState.PROBATION, Input.FAILURE)}


def test_a_failing_peer_waits_longer_each_time_and_a_clean_peer_is_always_judged():
    lock = Lockout(POLICY)
    a, b = "tcp 10.0.0.1", "tcp 10.0.0.2"
    assert [lock.failed(a, 32, 0.0) for _ in range(2)] == [0.0, 0.0]  # the free allowance
    assert lock.failed(a, 32, 0.0) == 5.0 and not lock.admit(a, 32, 1.0)
    assert lock.admit(b, 32, 1.0) and lock.admit(a, 16, 1.0)  # another peer, another SAP: judged
    waits, t = [], 0.0
    for _ in range(9):
        t += lock.waiting(a, 32, t)
        assert lock.admit(a, 32, t)  # the wait is over: judged again (probation)
        waits.append(lock.failed(a, 32, t))
        assert not lock.admit(a, 32, t + waits[-1] - 0.01)
    assert waits == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0, 300.0]
    lock.passed(a, 32, t + 400)  # the right secret after the wait: forgotten
    assert lock.admit(a, 32, t + 400) and lock.failed(a, 32, t + 400) == 0.0


def test_forgotten_after_an_hour_without_failures():
    lock = Lockout(POLICY)
    lock.failed("p", 32, 0.0)
    lock.failed("p", 32, 10.0)
    assert lock.failed("p", 32, 3700.0) == 0.0  # the first two are forgotten: a new allowance


def test_a_sap_under_attack_makes_fresh_addresses_wait_at_once_yet_admits_the_clean():
    lock = Lockout(POLICY)
    for n in range(10):
        lock.failed(f"tcp 10.1.0.{n}", 48, float(n))
    assert lock.under_attack(48, 10.0)
    assert lock.failed("tcp 10.2.0.1", 48, 11.0) == 300.0  # one guess for a fresh address
    assert lock.admit("tcp 10.3.0.1", 48, 11.0)  # the owner, who has not failed, is judged
    lock.passed("tcp 10.3.0.1", 48, 11.0)
    assert not lock.under_attack(48, 11.0 + 301.0)
    assert lock.failed("tcp 10.2.0.9", 48, 400.0) == 0.0  # the attack is over: the allowance is back


def test_pending_associations_are_capped_per_peer_and_in_all():
    lock = Lockout(LockoutPolicy(pending_per_peer=2, max_pending=4))
    assert lock.hold_pending("s1", "a") == [] and lock.hold_pending("s2", "a") == []
    assert lock.hold_pending("s3", "a") == ["s1"]  # the peer's oldest makes room
    assert lock.hold_pending("t1", "b") == [] and lock.hold_pending("u1", "c") == []
    assert lock.hold_pending("v1", "d") == ["s2"] and lock.pending == 4  # the oldest of all
    lock.release_pending("s3")
    assert lock.pending == 3


def test_the_record_brings_the_waits_back_after_a_restart():
    kept: list[LockoutRecord] = []
    lock = Lockout(POLICY, on_change=kept.append)
    for _ in range(3):
        lock.failed("tcp 10.0.0.1", 32, 100.0)
    lock.failed("tcp 10.0.0.2", 48, 101.0)
    assert len(kept) == 4 and not lock.admit("tcp 10.0.0.1", 32, 102.0)
    assert len(kept) == 4  # a refused attempt changes nothing to keep
    record = kept[-1]
    again = Lockout(POLICY)
    again.restore(record, now=7.0)  # a new monotonic clock after the restart
    assert again.waiting("tcp 10.0.0.1", 32, 7.0) == pytest.approx(4.0)
    assert not again.admit("tcp 10.0.0.1", 32, 10.0) and again.admit("tcp 10.0.0.1", 32, 11.5)
    assert again.failed("tcp 10.0.0.2", 48, 8.0) == 0.0  # its one failure is remembered: two now
    assert again.failed("tcp 10.0.0.2", 48, 8.0) == 5.0


@pytest.mark.parametrize("bad", [
    LockoutRecord((PeerRecord("p", 32, PeerState.CLEAR, 1, 0, 0.0, 0.0),)),
    LockoutRecord((PeerRecord("p", 32, PeerState.WAITING, -1, 1, 5.0, 0.0),)),
    LockoutRecord((PeerRecord("p", 32, PeerState.WAITING, 3, 1, float("nan"), 0.0),)),
    LockoutRecord((), (AlarmRecord(48, 3, -1.0, 0.0),)),
    {"peers": []},
])
def test_a_record_that_makes_no_sense_is_refused_and_changes_nothing(bad):
    lock = Lockout(POLICY)
    lock.failed("keep", 32, 0.0)
    before = lock.snapshot(1.0)
    with pytest.raises(LockoutError):
        lock.restore(bad, 1.0)
    assert lock.snapshot(1.0) == before


@pytest.mark.parametrize("kw", [{"allowance": 0}, {"max_delay": float("nan")}, {"base_delay": -1.0},
                                {"max_pending": True}])
def test_a_policy_that_makes_no_sense_is_refused(kw):
    with pytest.raises(LockoutError):
        LockoutPolicy(**kw)


ops = st.lists(st.tuples(st.integers(0, 11), st.sampled_from(("attempt", "fail", "pass")), st.floats(0, 200)),
               max_size=80)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_the_promises_hold_for_any_history(history):
    policy = LockoutPolicy(allowance=2, base_delay=5.0, max_delay=120.0, alarm_after=4, max_peers=6)
    lock = Lockout(policy)
    now, failed = 0.0, set()
    for peer_n, op, dt in history:
        now += dt
        peer = f"p{peer_n}"
        if op == "attempt":
            admitted = lock.admit(peer, 48, now)
            if peer not in failed:
                assert admitted  # a peer that has not failed is always judged
        elif op == "fail":
            wait = lock.failed(peer, 48, now)
            assert 0.0 <= wait <= policy.max_delay
            failed.add(peer)
        else:
            lock.passed(peer, 48, now)
            failed.discard(peer)
        assert len(lock.snapshot(now).peers) <= policy.max_peers
        restored = Lockout(policy)
        restored.restore(lock.snapshot(now), now)
        assert all(restored.waiting(f"p{n}", 48, now) == pytest.approx(lock.waiting(f"p{n}", 48, now))
                   for n in range(12))


# --- the server with the lockout -------------------------------------------------------------


def _peer(server, sap, peer, now=lambda: 0.0, **kw):
    d = Direct(server, sap, now)
    d.session = server.new_session(sap, peer)
    kw.setdefault("invocation_counter", server.security.counters.expected_rx(b"BJLCLT01"))
    return Client(d, ClientSettings.for_association(sap, **kw))


def _aare(client) -> acse.AARE:
    return acse.AARE.decode(client.transport.request(client.session.aarq()))


def test_a_wrong_password_from_one_peer_does_not_lock_out_another():
    clock = {"t": 0.0}
    server, notices, _ = make_server()
    now = lambda: clock["t"]  # noqa: E731
    for _ in range(5):
        assert _aare(_peer(server, 32, "tcp 10.0.0.66", now, password=b"guess")).result != AssociationResult.ACCEPTED
    refused = _aare(_peer(server, 32, "tcp 10.0.0.66", now))  # the right password, but it is backing off
    assert refused.result == AssociationResult.REJECTED_TRANSIENT
    owner = _peer(server, 32, "tcp 10.0.0.1", now)
    owner.associate()  # another peer with the right password: in at once
    assert ServerEvent.LOCKED_OUT in [n.event for n in notices if n.peer == "tcp 10.0.0.66"]
    clock["t"] = 6.0
    _peer(server, 32, "tcp 10.0.0.66", now).associate()  # after its wait: judged, and right


def test_forged_and_replayed_glo_initiate_requests_count_for_their_peer_only():
    server, notices, _ = make_server()
    good = _peer(server, 48, "tcp 10.0.0.1")
    aarq = good.session.aarq()
    forged = aarq[:-1] + bytes((aarq[-1] ^ 1,))  # a known title, a garbage tag
    junk = server.new_session(48, "tcp 10.0.0.66")
    for request in [forged] * 20 + [aarq]:
        (answer,) = server.handle(junk, request, 0.0)
        assert acse.AARE.decode(answer).result != AssociationResult.ACCEPTED
    assert server.locked_out(48, 0.0, "tcp 10.0.0.66") and not server.locked_out(48, 0.0, "tcp 10.0.0.1")
    _peer(server, 48, "tcp 10.0.0.1").associate()  # the utility is not locked out
    assert all(n.client_sap == 48 for n in notices if n.event is ServerEvent.AUTHENTICATION_FAILED)
    replay = server.new_session(48, "tcp 10.0.0.77")
    for _ in range(3):  # the counter of the AARQ above was spent by the first association: a replay
        server.handle(replay, aarq, 0.0)
    assert server.locked_out(48, 0.0, "tcp 10.0.0.77")


def test_the_pending_hls_cap_drops_the_oldest_challenge():
    server, _, _ = make_server()
    clients = [_peer(server, 48, "tcp 10.0.0.5", system_title=b"BJLCLT0" + bytes((0x31 + n,)),
                     invocation_counter=1) for n in range(3)]
    for c in clients:
        c.session.parse_aare(c.transport.request(c.session.aarq()))
    assert server.lockout.pending == 2  # two per peer
    with pytest.raises(DlmsError):  # the oldest challenge is gone: its pass 3 is refused
        clients[0].session.parse_hls_response(clients[0].transport.request(clients[0].session.hls_request()))
    for c in clients[1:]:
        c.session.parse_hls_response(c.transport.request(c.session.hls_request()))
        assert c.transport.session.associated
    assert server.lockout.pending == 0


def test_a_wait_never_exceeds_the_cap_by_a_rounding_step():
    """The history Hypothesis found: until = then + cap, so until - now came out as
    120.00000000000001 after a fractional clock."""
    policy = LockoutPolicy(allowance=2, base_delay=5.0, max_delay=120.0, forget_after=3600.0, alarm_after=4,
                           max_peers=6, pending_per_peer=2, max_pending=16)
    table = Lockout(policy)
    waits = [table.failed("a", 48, 0.0) for _ in range(3)]
    waits.append(table.failed("b", 48, 8.736130474068023))
    assert all(0.0 <= w <= policy.max_delay for w in waits)
    assert table.waiting("b", 48, 8.736130474068023) <= policy.max_delay
