"""The hostile meter's sans-IO core (bijli.tools.chaos): kinds, the seeded plan, the line table.

No sockets here: the plan is fed response APDUs and framed bytes as the link shells
would feed it, and what it returns is checked against what each kind promises. The
line state machine is checked over every (state, frame kind) pair with Hypothesis.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import apdu
from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.link import wrapper
from bijli.dlms.link.crc import fcs_bytes
from bijli.dlms.link.hdlc_frame import Frame, FrameType, HdlcAddress, encode_frame
from bijli.tools.chaos import ChaosKindError, ChaosPlan, Misbehaviour, parse_kinds
from bijli.tools.chaos.kinds import ALL, DESCRIPTIONS, FRAME_KINDS, applies
from bijli.tools.chaos.plan import HDLC, SLOW_DELAY_S, TRANSITIONS, WRAPPER, Emit, Hangup, LineState, _Pending
from bijli.tools.errors import UsageError

K = Misbehaviour
BLOCK = apdu.GetResponseWithDatablock(0xC1, False, 3, b"\x01\x02" * 40).encode()
LAST_BLOCK = apdu.GetResponseWithDatablock(0xC1, True, 4, b"\x03" * 10).encode()
NORMAL = apdu.GetResponseNormal(0xC1, DataAccessResult.OBJECT_UNDEFINED).encode()
CIPHERED = bytes((0xCC, 0x20)) + bytes(range(32))  # glo-get-response: SC, IC, ciphertext and a 12-octet tag
AARE = bytes((0x61, 0x03, 0xA1, 0x01, 0x00))


def test_every_kind_is_documented_and_parsed_by_its_name():
    assert set(DESCRIPTIONS) == set(ALL)
    assert parse_kinds(None) == ALL and parse_kinds("all") == ALL
    assert parse_kinds("slow, truncated") == (K.TRUNCATED, K.SLOW)  # in the documented order
    with pytest.raises(ChaosKindError) as err:
        parse_kinds("truncated,sloow")
    assert isinstance(err.value, UsageError) and "sloow" in str(err.value) and "bad-gcm-tag" in str(err.value)


def test_a_plan_needs_a_rate_in_range_and_says_how_to_replay_it():
    with pytest.raises(ChaosKindError):
        ChaosPlan(1, rate=0.0)
    with pytest.raises(ChaosKindError):
        ChaosPlan(1, rate=1.5)
    plan = ChaosPlan(42, (K.SLOW, K.STALL), 0.5)
    assert "seed 42" in plan.banner()
    assert plan.replay_arguments() == "--chaos 42 --chaos-kinds slow,stall --chaos-rate 0.5"


def test_kinds_apply_only_to_the_answers_they_make_sense_on():
    assert applies(K.BAD_BLOCK_NUMBER, BLOCK, previous_ciphered=None)
    assert applies(K.BAD_BLOCK_NUMBER, LAST_BLOCK, previous_ciphered=None)
    assert not applies(K.BAD_BLOCK_NUMBER, NORMAL, previous_ciphered=None)
    assert applies(K.DROP_MID_BLOCK, BLOCK, previous_ciphered=None)
    assert not applies(K.DROP_MID_BLOCK, LAST_BLOCK, previous_ciphered=None)  # not mid-block any more
    assert not applies(K.EXCEPTION, AARE, previous_ciphered=None)
    assert applies(K.EXCEPTION, NORMAL, previous_ciphered=None)
    assert applies(K.BAD_GCM_TAG, CIPHERED, previous_ciphered=None)
    assert not applies(K.BAD_GCM_TAG, NORMAL, previous_ciphered=None)
    assert not applies(K.WRONG_INVOCATION_COUNTER, CIPHERED, previous_ciphered=None)
    assert applies(K.WRONG_INVOCATION_COUNTER, CIPHERED, previous_ciphered=CIPHERED)


def one(kind: Misbehaviour, link: str = WRAPPER, seed: int = 7):
    return ChaosPlan(seed, (kind,), 1.0).connection(1, link)


def test_apdu_kinds_change_what_they_say_and_nothing_else():
    grown = one(K.OVERSIZE).answer(NORMAL)
    assert grown.startswith(NORMAL) and 1 <= len(grown) - len(NORMAL) <= 64

    renumbered = apdu.decode(one(K.BAD_BLOCK_NUMBER).answer(BLOCK))
    original = apdu.decode(BLOCK)
    assert renumbered.block_number != original.block_number
    assert (renumbered.raw_data, renumbered.last_block) == (original.raw_data, original.last_block)

    assert isinstance(apdu.decode(one(K.EXCEPTION).answer(NORMAL)), apdu.ExceptionResponse)

    tampered = one(K.BAD_GCM_TAG).answer(CIPHERED)
    assert len(tampered) == len(CIPHERED) and tampered != CIPHERED and tampered[:-12] == CIPHERED[:-12]

    c = one(K.WRONG_INVOCATION_COUNTER)
    first = c.answer(CIPHERED)  # nothing to replay yet: sent as it is
    second = CIPHERED[:-1] + b"\xff"
    assert first == CIPHERED and c.answer(second) == CIPHERED  # the previous answer, byte for byte


def test_frame_kinds_act_on_the_bytes_that_carry_the_answer():
    frame = wrapper.encode_frame(1, 16, NORMAL)

    c = one(K.TRUNCATED)
    assert c.answer(NORMAL) == NORMAL
    (cut,) = c.output(frame, 10.0)
    assert frame.startswith(cut.data) and 0 < len(cut.data) < len(frame) and cut.at == 10.0
    assert c.output(frame, 11.0) == [Emit(11.0, frame)]  # the next write is left alone

    c = one(K.SLOW)
    c.answer(NORMAL)
    (late,) = c.output(frame, 10.0)
    assert late.data == frame and SLOW_DELAY_S[0] <= late.at - 10.0 <= SLOW_DELAY_S[1]
    (after,) = c.output(frame, 10.1)
    assert after.at == late.at  # a later answer never overtakes a delayed one

    c = one(K.STALL)
    c.answer(NORMAL)
    assert c.output(frame, 1.0) == [] and c.state is LineState.STALLED
    assert c.answer(NORMAL) == NORMAL and c.output(frame, 2.0) == []

    c = one(K.DROP_MID_BLOCK)
    c.answer(BLOCK)
    steps = c.output(wrapper.encode_frame(1, 16, BLOCK), 1.0)
    assert isinstance(steps[-1], Hangup) and c.state is LineState.DROPPED
    assert all(isinstance(s, Emit) for s in steps[:-1])

    c = one(K.WRONG_LENGTH)
    c.answer(NORMAL)
    (wrong,) = c.output(frame, 1.0)
    assert len(wrong.data) == len(frame) and wrong.data[6:8] != frame[6:8] and wrong.data[8:] == frame[8:]


def test_a_wrong_hdlc_length_keeps_a_valid_header_check():
    server, client = HdlcAddress(1, 16), HdlcAddress(16)
    info = b"\xe6\xe7\x00" + NORMAL
    frame = encode_frame(Frame(FrameType.I, destination=client, source=server, info=info, poll_final=True))
    c = one(K.WRONG_LENGTH, HDLC)
    c.answer(NORMAL)
    (wrong,) = c.output(frame, 1.0)
    data = wrong.data
    assert int.from_bytes(data[1:3], "big") & 0x7FF != int.from_bytes(frame[1:3], "big") & 0x7FF
    header_end = 1 + 2 + 1 + 2 + 1  # format, destination (1 octet), source (2 octets), control
    assert data[header_end:header_end + 2] == fcs_bytes(data[1:header_end])  # the HCS matches the lie
    assert data[header_end + 2:] == frame[header_end + 2:]


def test_the_same_seed_and_answers_give_the_same_bytes_and_another_seed_other_bytes():
    answers = [NORMAL, BLOCK, CIPHERED, LAST_BLOCK, NORMAL, CIPHERED] * 5

    def run(seed: int, number: int = 1) -> list:
        c = ChaosPlan(seed, ALL, 0.5).connection(number, WRAPPER)
        out = []
        for a in answers:
            out.append(c.output(wrapper.encode_frame(1, 16, c.answer(a)), 0.0))
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert run(3, 1) != run(3, 2)  # each connection has its own draw


LINE_INPUTS = (None, *sorted(FRAME_KINDS, key=lambda k: k.value))


def test_the_line_table_is_total():
    assert set(TRANSITIONS) == {(s, k) for s in LineState for k in LINE_INPUTS}


@settings(max_examples=200, deadline=None)
@given(state=st.sampled_from(tuple(LineState)), kind=st.sampled_from(LINE_INPUTS),
       data=st.binary(min_size=0, max_size=80), fraction=st.floats(0, 0.999), delta=st.integers(-64, 64).filter(bool),
       delay=st.floats(*SLOW_DELAY_S), now=st.floats(0, 1e6))
def test_every_state_and_kind_pair_does_what_the_table_says(state, kind, data, fraction, delta, delay, now):
    c = ChaosPlan(1, ALL, 1.0).connection(1, WRAPPER)
    c.state = state
    c._pending = None if kind is None else _Pending(kind, fraction, delta, delay)
    steps = c.output(data, now)
    _, expected_next = TRANSITIONS[(state, kind)]
    assert c.state is expected_next
    emitted = b"".join(s.data for s in steps if isinstance(s, Emit))
    assert all(s.at >= now for s in steps)
    if state is not LineState.OPEN or kind is K.STALL:
        assert steps == []
    elif kind is None:
        assert emitted == data
    elif kind is K.SLOW:
        assert emitted == data and all(s.at == now + delay for s in steps)
    elif kind is K.TRUNCATED:
        assert data.startswith(emitted) and len(emitted) < max(len(data), 1)
    elif kind is K.DROP_MID_BLOCK:
        assert data.startswith(emitted) and isinstance(steps[-1], Hangup)
    elif kind is K.WRONG_LENGTH:
        assert len(emitted) == len(data) and (len(data) < 8 or emitted[6:8] != data[6:8])
    assert c._pending is None  # a decision is used by one write only


# --- the command line ------------------------------------------------------------------------------


def _meter(tmp_path, *args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", "meter", "--state", str(tmp_path / "s"),
                           "--console", "none", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, says", [
    (("--chaos", "1", "--chaos-kinds", "truncated,bogus"), "no chaos kind 'bogus'"),
    (("--chaos-kinds", "truncated"), "--chaos-kinds needs --chaos SEED"),
    (("--chaos", "seven"), "the seed is an integer or 'random'"),
    (("--chaos", "1", "--chaos-rate", "0"), "--chaos-rate must be above 0"),
])
def test_a_bad_chaos_option_is_refused_before_the_meter_starts(tmp_path, args, says):
    run = _meter(tmp_path, *args)
    assert run.returncode == 2, run.stderr
    assert says in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "s" / "meter.db").exists()  # nothing started: no meter memory was made


def test_the_meter_help_documents_every_kind():
    import subprocess
    import sys

    text = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "meter", "--help"], capture_output=True,
                          text=True, timeout=60).stdout
    flat = "".join(text.split())  # argparse wraps lines, at hyphens too
    for kind in Misbehaviour:
        assert "".join(f"{kind.value}: {DESCRIPTIONS[kind]}".split()) in flat
