"""The application association as a state machine, IEC 62056-5-3 clause 9.3.3 (the
A-ASSOCIATE and A-RELEASE services) and the association_status attribute of
Association LN (IEC 62056-6-2 clause 4.4.3: non-associated, association-pending,
associated).

Sans-IO and table-driven in the style of h11's ``_state.py`` / h2's ``stream.py``:
the server's ACSE code decides *whether* an AARQ is accepted and *what* was
negotiated; it then hands this machine a frozen event (:class:`Opened`,
:class:`Challenged`, :class:`HlsPassed`, :class:`HlsFailed`, :class:`Released`) and
:data:`TRANSITIONS` maps ``(state, event type)`` to ``(function, next state)``. The
function builds the new :class:`AssociationContext` (a frozen value: what this
association negotiated), so every status change happens here and nowhere else. An
event the table does not list for the current state is a
:class:`~dlms.errors.LocalProtocolError` and changes nothing.

* ``Opened``: an AARQ accepted with lowest-level or LLS authentication: associated.
* ``Challenged``: an AARQ accepted with HLS: association-pending until the client's
  reply_to_HLS_authentication (``HlsPassed`` associates, ``HlsFailed`` drops it).
* ``Released``: an RLRQ, or a new AARQ on an association that is open or pending (the
  client lost track: the old association ends before the new AARQ is judged).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Callable, Union

from bijli.dlms.errors import LocalProtocolError
from bijli.dlms.xdlms import Conformance

if TYPE_CHECKING:  # the policy type lives with Association LN, which imports this module
    from bijli.dlms.cosem.association import AssociationPolicy


class AssociationState(IntEnum):
    """The association_status values of Association LN attribute 8."""

    NON_ASSOCIATED = 0
    PENDING = 1  # association-pending: HLS pass 3/4 still to come
    ASSOCIATED = 2


@dataclass(frozen=True, slots=True)
class AssociationContext:
    """What one association negotiated; replaced whole at each transition."""

    policy: "AssociationPolicy | None" = None
    conformance: Conformance = Conformance(0)
    client_max_pdu: int = 0xFFFF
    client_system_title: bytes | None = None
    dedicated_key: bytes | None = None
    cipher_overhead: int = 0
    room: int = 0xFFFF  # the longest answer that goes out whole: PDU sizes less the ciphering
    challenge: bytes | None = None  # our StoC while HLS is pending
    client_challenge: bytes = b""  # the client's CtoS, answered once HLS passes
    opened_at: float = 0.0


NOT_ASSOCIATED = AssociationContext()


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opened:
    """An AARQ accepted without HLS."""

    context: AssociationContext


@dataclass(frozen=True, slots=True)
class Challenged:
    """An AARQ accepted with HLS: our challenge goes out in the AARE."""

    context: AssociationContext


@dataclass(frozen=True, slots=True)
class HlsPassed:
    """The client's f(StoC) verified."""


@dataclass(frozen=True, slots=True)
class HlsFailed:
    """The client's f(StoC) did not verify."""


@dataclass(frozen=True, slots=True)
class Released:
    """RLRQ, or the association's link went away."""


Event = Union[Opened, Challenged, HlsPassed, HlsFailed, Released]
EVENT_TYPES = (Opened, Challenged, HlsPassed, HlsFailed, Released)


# --- transition functions: (old context, event) -> new context ----------------------------


def _take(context: AssociationContext, event: Opened | Challenged) -> AssociationContext:
    return event.context


def _authenticated(context: AssociationContext, event: HlsPassed) -> AssociationContext:
    # the challenges are spent: nothing may be verified against them again
    return replace(context, challenge=None, client_challenge=b"")


def _drop(context: AssociationContext, event: HlsFailed | Released) -> AssociationContext:
    return NOT_ASSOCIATED


Transition = Callable[[AssociationContext, Event], AssociationContext]
S = AssociationState
TRANSITIONS: dict[tuple[AssociationState, type], tuple[Transition, AssociationState]] = {
    (S.NON_ASSOCIATED, Opened): (_take, S.ASSOCIATED),
    (S.NON_ASSOCIATED, Challenged): (_take, S.PENDING),
    (S.PENDING, HlsPassed): (_authenticated, S.ASSOCIATED),
    (S.PENDING, HlsFailed): (_drop, S.NON_ASSOCIATED),
    (S.PENDING, Released): (_drop, S.NON_ASSOCIATED),
    (S.ASSOCIATED, Released): (_drop, S.NON_ASSOCIATED),
}
del S


class Association:
    """One client association's state and negotiated context."""

    __slots__ = ("state", "context")

    def __init__(self) -> None:
        self.state = AssociationState.NON_ASSOCIATED
        self.context = NOT_ASSOCIATED

    def handle(self, event: Event) -> AssociationState:
        """Apply ``event``; LocalProtocolError (and no change) if this state does not take it."""
        try:
            function, next_state = TRANSITIONS[(self.state, type(event))]
        except KeyError:
            raise LocalProtocolError(f"{type(event).__name__} in state {self.state.name}") from None
        self.context = function(self.context, event)
        self.state = next_state
        return next_state
