"""The bad-token lockout per source (firmware/sts/lockout.py) against a model of it.

Any interleaving of sources typing junk, replaying a used token and entering fresh
credit: each source's lockout follows its own tokens only, replays never count, a
fresh token is accepted at every source that is not itself locked, and time running
out opens a lock again. The decoder state survives its stored record at every step.
"""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.firmware.sts import DecoderState, TokenResultCode, TokenSource, decode
from bijli.firmware.sts.vend import vend_transfer
from tests.firmware.sts.test_decoder import NOW, key_for

R = TokenResultCode
KEY = key_for("07", "02")
FRESH = [vend_transfer(KEY, 0, 0, 10, time=NOW - timedelta(days=1, minutes=i)).digits for i in range(40)]
JUNK = "12345678901234567890"

actions = st.lists(st.tuples(st.sampled_from(list(TokenSource)), st.sampled_from(["junk", "replay", "fresh", "wait"])),
                   min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(actions, st.integers(1, 4), st.integers(1, 20))
def test_each_source_locks_on_its_own_refused_tokens_only(steps, after, minutes):
    state = DecoderState(KEY, lockout_after=after, lockout_minutes=minutes, tid_window=100)
    now = NOW
    count = {s: 0 for s in TokenSource}
    until = {s: None for s in TokenSource}
    fresh = iter(FRESH)
    used = None
    for source, what in steps:
        if what == "wait":
            now += timedelta(minutes=minutes)
            continue
        if until[source] is not None and now >= until[source]:
            until[source] = None  # run out: the decoder forgets it when the source next enters a token
        locked = until[source] is not None
        digits = {"junk": JUNK, "replay": used or JUNK, "fresh": None}[what] or next(fresh)
        r, state = decode(state, digits, now, source)
        if locked:
            assert r.code is R.LOCKED_OUT
            continue
        if what == "fresh":
            assert r.code is R.ACCEPT
            used, count[source], until[source] = digits, 0, None
        elif what == "replay" and used is not None:
            assert r.code is R.USED  # and it counts for nothing
        else:
            assert r.code is R.CRC_ERROR
            count[source] += 1
            if count[source] >= after:
                count[source], until[source] = 0, now + timedelta(minutes=minutes)
        for s in TokenSource:
            lock = state.lockout(s)
            assert (lock.bad_count, lock.locked_until) == (count[s], until[s]), s
            assert state.locked_out(now, s) == (until[s] is not None and now < until[s])
        assert DecoderState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
