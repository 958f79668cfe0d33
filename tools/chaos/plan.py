"""The hostile meter's sans-IO core: a seeded plan of misbehaviour, applied answer by answer.

A :class:`ChaosPlan` is the seed, the kinds chosen (:mod:`.kinds`) and the share of
answers that misbehave. Each connection gets its own :class:`ConnectionChaos`, whose
random generator is derived from the seed, the link (wrapper or HDLC) and the
connection's number in the order the meter accepted them, so the same seed and the
same requests give the same bytes on the wire, run after run: a failure in a user's
CI is replayed by starting the meter with the seed it printed.

Two calls, no I/O. :meth:`ConnectionChaos.answer` sees every response APDU the DLMS
server produces, before the link frames it; it draws whether this answer misbehaves
and how (only among the kinds that apply to it, :func:`.kinds.applies`), changes the
APDU for the kinds that live in the APDU (oversize, block number, exception-response,
invocation counter, GCM tag), and remembers a frame kind for the bytes that will carry
it. :meth:`ConnectionChaos.output` sees the bytes the link shell would write and
returns what to do with them instead: :class:`Emit` (bytes, at a time) and
:class:`Hangup`. What the connection can still do is a state machine written as a
table, ``(state, frame kind) -> (function, next state)``: an open connection can be
cut short, lengthened, delayed, stalled or dropped; a stalled one swallows everything;
a dropped one sends nothing more.

All parameters (where a frame is cut, how long a delay is, which bit of a tag flips)
are drawn when the answer is decided, so they depend on the sequence of answers only.
The link framing this knows is IEC 62056-47's wrapper header and IEC 62056-46's
format field and HCS (to make a wrong length look plausible to the peer's header check).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Callable

from bijli.dlms.apdu import ExceptionResponse, ServiceErrorCode, StateError
from bijli.dlms.link.crc import fcs_bytes
from bijli.dlms.protection import is_protected
from bijli.tools.chaos.kinds import (ALL, FRAME_KINDS, GCM_TAG_LENGTH, ChaosKindError, Misbehaviour, applies,
                                     block_header)

DEFAULT_RATE = 0.25  # one answer in four misbehaves, unless --chaos-rate says otherwise
SLOW_DELAY_S = (1.0, 3.0)  # the range of a slow answer's delay
MAX_OVERSIZE = 64  # extra octets an oversize APDU carries, at most
WRAPPER = "wrapper"
HDLC = "hdlc"


@dataclass(frozen=True)
class Emit:
    """Write ``data`` to the peer at loop time ``at``."""

    at: float
    data: bytes


@dataclass(frozen=True)
class Hangup:
    """Close the connection at loop time ``at``, after what was emitted before."""

    at: float


class LineState(enum.Enum):
    """What a connection of the hostile meter can still do."""

    OPEN = "open"
    STALLED = "stalled"
    DROPPED = "dropped"


@dataclass(frozen=True)
class ChaosPlan:
    """The seed, the kinds and the share of answers that misbehave, as printed at start."""

    seed: int
    kinds: tuple[Misbehaviour, ...] = ALL
    rate: float = DEFAULT_RATE

    def __post_init__(self) -> None:
        if not 0.0 < self.rate <= 1.0:
            raise ChaosKindError(f"--chaos-rate must be above 0 and at most 1, not {self.rate}")
        if not self.kinds:
            raise ChaosKindError("no chaos kinds chosen")

    def replay_arguments(self) -> str:
        """The ``bijli meter`` options that start this same hostile meter again."""
        return (f"--chaos {self.seed} --chaos-kinds {','.join(k.value for k in self.kinds)} "
                f"--chaos-rate {self.rate:g}")

    def banner(self) -> str:
        return (f"HOSTILE METER (chaos) seed {self.seed}, kinds {','.join(k.value for k in self.kinds)}, "
                f"rate {self.rate:g}; replay with: bijli meter {self.replay_arguments()}")

    def connection(self, number: int, link: str = WRAPPER,
                   report: Callable[[str], None] | None = None) -> "ConnectionChaos":
        """The plan of the ``number``-th connection (from 1) accepted on ``link``."""
        return ConnectionChaos(self, number, link, report)


@dataclass
class _Pending:
    kind: Misbehaviour
    fraction: float = 0.0  # where a frame is cut (truncated, dropped)
    delta: int = 0  # what a wrong length adds
    delay: float = 0.0  # how long a slow answer waits


@dataclass
class ConnectionChaos:
    """One connection's misbehaviour: :meth:`answer` per response APDU, :meth:`output` per write."""

    plan: ChaosPlan
    number: int
    link: str = WRAPPER
    report: Callable[[str], None] | None = None
    state: LineState = LineState.OPEN
    answers: int = 0
    rng: random.Random = field(init=False, repr=False)
    _pending: _Pending | None = field(default=None, init=False, repr=False)
    _previous_ciphered: bytes | None = field(default=None, init=False, repr=False)
    _not_before: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.link not in (WRAPPER, HDLC):
            raise ValueError(f"unknown link {self.link!r}")
        # a string seed goes through SHA-512 in random.Random: the same on every run and platform
        self.rng = random.Random(f"bijli-chaos:{self.plan.seed}:{self.link}:{self.number}")

    def _say(self, text: str) -> None:
        if self.report is not None:
            self.report(f"chaos {self.link} connection {self.number} answer {self.answers}: {text}")

    # ---- the APDU, before the link frames it --------------------------------------------
    def answer(self, apdu: bytes) -> bytes:
        """The APDU the peer gets instead of ``apdu`` (often ``apdu`` itself)."""
        self.answers += 1
        if self.state is not LineState.OPEN:
            return apdu
        rng = self.rng
        if rng.random() >= self.plan.rate:
            return self._sent(apdu)
        previous = self._previous_ciphered
        usable = [k for k in self.plan.kinds if applies(k, apdu, previous_ciphered=previous)
                  and not (k in FRAME_KINDS and self._pending is not None)]
        if not usable:
            return self._sent(apdu)
        kind = rng.choice(usable)
        if kind in FRAME_KINDS:
            pending = _Pending(kind, fraction=rng.random(), delta=_nonzero(rng, MAX_OVERSIZE),
                               delay=rng.uniform(*SLOW_DELAY_S))
            self._pending = pending
            self._say(kind.value)
            return apdu  # not one a replay may repeat: the peer may never have had it whole
        changed = _APDU_CHANGES[kind](rng, apdu, previous)
        self._say(f"{kind.value} ({len(apdu)} -> {len(changed)} octets)")
        return changed

    def _sent(self, apdu: bytes) -> bytes:
        if is_protected(apdu[0]) if apdu else False:
            self._previous_ciphered = apdu  # a genuine ciphered answer: the one a replay repeats
        return apdu

    # ---- the bytes, once framed --------------------------------------------------------
    def output(self, data: bytes, now: float) -> list[Emit | Hangup]:
        """What to do with the bytes the link shell writes at loop time ``now``."""
        pending, self._pending = self._pending, None
        kind = pending.kind if pending is not None and self.state is LineState.OPEN else None
        fn, self.state = TRANSITIONS[(self.state, kind)]
        return fn(self, data, max(now, self._not_before), pending)

    def _emit(self, at: float, data: bytes) -> list[Emit | Hangup]:
        self._not_before = at  # nothing later may overtake a delayed answer
        return [Emit(at, data)] if data else []

    def _cut(self, data: bytes, fraction: float) -> bytes:
        """A strict prefix of ``data`` (at least one octet when there are two)."""
        if len(data) < 2:
            return b""
        return data[:1 + int(fraction * (len(data) - 1))]

    def _wrong_length(self, data: bytes, delta: int) -> bytes:
        if self.link == WRAPPER:
            return _wrapper_length(data, delta)
        return _hdlc_length(data, delta)


# ---- the table's functions: (connection, data, earliest time, pending) -> steps ----------


def _as_is(c: ConnectionChaos, data: bytes, at: float, p: _Pending | None) -> list:
    return c._emit(at, data)


def _truncate(c: ConnectionChaos, data: bytes, at: float, p: _Pending) -> list:
    return c._emit(at, c._cut(data, p.fraction))


def _lengthen(c: ConnectionChaos, data: bytes, at: float, p: _Pending) -> list:
    return c._emit(at, c._wrong_length(data, p.delta))


def _delay(c: ConnectionChaos, data: bytes, at: float, p: _Pending) -> list:
    return c._emit(at + p.delay, data)


def _swallow(c: ConnectionChaos, data: bytes, at: float, p: _Pending | None) -> list:
    return []


def _drop(c: ConnectionChaos, data: bytes, at: float, p: _Pending) -> list:
    return [*c._emit(at, c._cut(data, p.fraction)), Hangup(at)]


_S = LineState
_K = Misbehaviour
#: (state, frame kind of the bytes written, None for none) -> (function, next state)
TRANSITIONS: dict[tuple[LineState, Misbehaviour | None], tuple[Callable, LineState]] = {
    (_S.OPEN, None): (_as_is, _S.OPEN),
    (_S.OPEN, _K.TRUNCATED): (_truncate, _S.OPEN),
    (_S.OPEN, _K.WRONG_LENGTH): (_lengthen, _S.OPEN),
    (_S.OPEN, _K.SLOW): (_delay, _S.OPEN),
    (_S.OPEN, _K.STALL): (_swallow, _S.STALLED),
    (_S.OPEN, _K.DROP_MID_BLOCK): (_drop, _S.DROPPED),
    **{(_S.STALLED, k): (_swallow, _S.STALLED) for k in (None, *sorted(FRAME_KINDS, key=lambda k: k.value))},
    **{(_S.DROPPED, k): (_swallow, _S.DROPPED) for k in (None, *sorted(FRAME_KINDS, key=lambda k: k.value))},
}


# ---- the changes inside the APDU --------------------------------------------------------


def _nonzero(rng: random.Random, most: int) -> int:
    return rng.choice((-1, 1)) * rng.randint(1, most)


def _oversize(rng: random.Random, apdu: bytes, previous: bytes | None) -> bytes:
    return apdu + rng.randbytes(rng.randint(1, MAX_OVERSIZE))


def _bad_block_number(rng: random.Random, apdu: bytes, previous: bytes | None) -> bytes:
    header = block_header(apdu)
    assert header is not None  # applies() chose only block answers
    offset = header[0]
    width = 2 if offset == 2 else 4
    number = int.from_bytes(apdu[offset:offset + width], "big")
    # a block repeated, skipped, from far ahead, or numbered 0: what broken meters send
    wrong = (number + rng.choice((-1, 1, 2, 3, 1000))) % (1 << (8 * width))
    if wrong == number:
        wrong = number ^ 1
    return apdu[:offset] + wrong.to_bytes(width, "big") + apdu[offset + width:]


def _exception(rng: random.Random, apdu: bytes, previous: bytes | None) -> bytes:
    state = rng.choice(tuple(StateError))
    service = rng.choice(tuple(ServiceErrorCode))
    ic = rng.getrandbits(32) if service is ServiceErrorCode.INVOCATION_COUNTER_ERROR else None
    return ExceptionResponse(state, service, ic).encode()


def _replayed_counter(rng: random.Random, apdu: bytes, previous: bytes | None) -> bytes:
    assert previous is not None  # applies() needs one
    return previous


def _bad_tag(rng: random.Random, apdu: bytes, previous: bytes | None) -> bytes:
    at = len(apdu) - 1 - rng.randrange(GCM_TAG_LENGTH)
    return apdu[:at] + bytes((apdu[at] ^ rng.randint(1, 255),)) + apdu[at + 1:]


_APDU_CHANGES: dict[Misbehaviour, Callable[[random.Random, bytes, bytes | None], bytes]] = {
    _K.OVERSIZE: _oversize,
    _K.BAD_BLOCK_NUMBER: _bad_block_number,
    _K.EXCEPTION: _exception,
    _K.WRONG_INVOCATION_COUNTER: _replayed_counter,
    _K.BAD_GCM_TAG: _bad_tag,
}
assert set(_APDU_CHANGES) | FRAME_KINDS == set(ALL)


# ---- wrong lengths in the two framings ----------------------------------------------------


def _wrapper_length(data: bytes, delta: int) -> bytes:
    """The first wrapper frame's length field (octets 6-7 of its header) moved by ``delta``."""
    if len(data) < 8:
        return data
    length = int.from_bytes(data[6:8], "big")
    wrong = length + delta
    if not 0 <= wrong <= 0xFFFF:
        wrong = length - delta
    return data[:6] + wrong.to_bytes(2, "big") + data[8:]


def _hdlc_length(data: bytes, delta: int) -> bytes:
    """The first HDLC frame's 11-bit length moved by ``delta``, its HCS recomputed so the
    peer's header check passes and only the length is wrong."""
    if len(data) < 9 or data[0] != 0x7E:
        return data
    fmt = int.from_bytes(data[1:3], "big")
    length = fmt & 0x7FF
    wrong = length + delta
    if not 8 <= wrong <= 0x7FF:
        wrong = length - delta
    if not 8 <= wrong <= 0x7FF:
        return data
    head = bytearray(data)
    head[1:3] = ((fmt & ~0x7FF) | wrong).to_bytes(2, "big")
    # the header: format (2), destination and source addresses (each ends with a byte
    # whose low bit is 1), control (1); an HCS follows it when the frame has information
    p = 3
    for _ in range(2):
        while p < len(head) and not head[p] & 1:
            p += 1
        p += 1
    control_end = p + 1
    if length > (control_end - 1) + 2 and control_end + 2 <= len(head):  # more than header and FCS: an HCS
        head[control_end:control_end + 2] = fcs_bytes(bytes(head[1:control_end]))
    return bytes(head)
