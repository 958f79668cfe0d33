"""Token gateway (class 115, version 0), IEC 62056-6-2 clause 4.6.5.

The DLMS door for prepayment tokens (an STS token of IEC 62055-41 as its 20
digits, or any other token format): method ``enter`` passes the token to the
firmware's token engine, and the attributes tell what became of the last token,
whichever way it came (remote over DLMS, local port, or manual keypad entry):
token, time, descriptions, delivery_method and status {status code, data bits}.

``enter`` answers success once the token has been received and processed; the
verdict (accepted, or which check failed) is in ``status``, as the standard
intends, so a client reads attribute 6 after the action.

Each sender is told its own token's result: once a client has entered a token in
its association, attributes 2..6 show *that* token to it, whatever arrives from
the keypad, the console or another association between its ACTION and its GET
(a head-end told the keypad's verdict for its own token would be told "used" for
a token it delivered). A client that has entered none sees the last token from
any source. The association is told apart by its negotiated context, a value the
association state machine makes anew for every association; the records of the
last :data:`MAX_ASSOCIATION_RECORDS` associations are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Callable

from bijli.dlms import axdr
from bijli.dlms.cosem.bound import BoundObject
from bijli.dlms.cosem.values import DATE_TIME, OCTET_STRING, array_of, integer, mismatch, parse_octets

MAX_TOKEN_OCTETS = 128  # an STS token is 20 digits; room for other formats, not for abuse
MAX_ASSOCIATION_RECORDS = 64  # associations whose own last token is remembered (the oldest forgotten)


class TokenStatusCode(IntEnum):
    FORMAT_OK = 0
    AUTHENTICATION_OK = 1
    VALIDATION_OK = 2
    EXECUTION_OK = 3
    FORMAT_FAILURE = 4
    AUTHENTICATION_FAILURE = 5
    VALIDATION_FAILURE = 6
    EXECUTION_FAILURE = 7
    TOKEN_RECEIVED = 8


class DeliveryMethod(IntEnum):
    REMOTE = 0  # via remote communications
    LOCAL = 1  # via local communications
    MANUAL = 2  # via manual entry (keypad)


@dataclass(frozen=True, slots=True)
class TokenGatewayResult:
    """What the token engine says about one token: ``data`` is the status bit-string
    as '0'/'1' text (meaning defined by the token standard), ``descriptions`` free
    octet-strings (e.g. the credit added, a reason)."""

    status: TokenStatusCode
    data: str = ""
    descriptions: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """The last token and its outcome: what attributes 2..6 show."""

    token: bytes = b""
    time: datetime | None = None
    delivery_method: DeliveryMethod = DeliveryMethod.REMOTE
    result: TokenGatewayResult = TokenGatewayResult(TokenStatusCode.TOKEN_RECEIVED)


EnterHandler = Callable[[bytes, DeliveryMethod], TokenGatewayResult]


class TokenGateway(BoundObject):
    """``enter(token, delivery_method) -> TokenGatewayResult`` is the firmware's token
    engine; ``now`` gives the time to stamp. The last token is kept here unless the
    firmware binds ``last_token`` (a getter of TokenRecord | None) so that keypad
    tokens and restarts show too; :meth:`record` lets it push one instead."""

    CLASS_ID = 115
    VERSION = 0
    ATTRIBUTES = ("logical_name", "token", "time", "descriptions", "delivery_method", "status")
    METHODS = ("enter",)
    TYPES = {
        "token": OCTET_STRING,
        "time": DATE_TIME,
        "descriptions": array_of(OCTET_STRING),
        "delivery_method": integer(axdr.Enum, 0, 2),
    }

    def __init__(self, logical_name, *, enter: EnterHandler, now: Callable[[], datetime],
                 last_token: Callable[[], "TokenRecord | None"] | None = None,
                 delivery_method: DeliveryMethod = DeliveryMethod.REMOTE):
        self._last: TokenRecord = TokenRecord()
        self._last_token = last_token
        # id(association context) -> (that context, kept so its id stays its own; its last token)
        self._own: OrderedDict[int, tuple[Any, TokenRecord]] = OrderedDict()
        super().__init__(logical_name)
        self._enter = enter
        self._now = now
        self.delivery_method = delivery_method

    @property
    def last(self) -> TokenRecord:
        """The last token from any source."""
        if self._last_token is not None:
            return self._last_token() or TokenRecord()
        return self._last

    def record(self, record: TokenRecord) -> None:
        self._last = record

    def seen_by(self, ctx) -> TokenRecord:
        """What attributes 2..6 show the association of ``ctx``: its own last token, or
        the last from any source when it has entered none."""
        key = _association(ctx)
        if key is not None:
            own = self._own.get(id(key))
            if own is not None and own[0] is key:
                return own[1]
        return self.last

    def get_token(self, ctx):
        return OCTET_STRING.encode(self.seen_by(ctx).token)

    def get_time(self, ctx):
        return DATE_TIME.encode(self.seen_by(ctx).time)

    def get_descriptions(self, ctx):
        return self.TYPES["descriptions"].encode(self.seen_by(ctx).result.descriptions)

    def get_delivery_method(self, ctx):
        return self.TYPES["delivery_method"].encode(self.seen_by(ctx).delivery_method)

    def get_status(self, ctx):
        r = self.seen_by(ctx).result
        return axdr.Structure((axdr.Enum(int(r.status)), axdr.BitString(r.data)))

    def do_enter(self, params, ctx):
        if params is None:
            raise mismatch("enter needs the token as an octet-string")
        token = parse_octets(params)
        if not 0 < len(token) <= MAX_TOKEN_OCTETS:
            raise mismatch(f"a token is 1..{MAX_TOKEN_OCTETS} octets")
        when = self._now()
        result = self._enter(token, self.delivery_method)
        record = TokenRecord(token, when, self.delivery_method, result)
        if self._last_token is None:
            self._last = record
        key = _association(ctx)
        if key is not None:
            self._own.pop(id(key), None)
            self._own[id(key)] = (key, record)
            while len(self._own) > MAX_ASSOCIATION_RECORDS:
                self._own.popitem(last=False)
        return None


def _association(ctx) -> Any:
    """The negotiated context of the association ``ctx`` serves (None outside one)."""
    session = getattr(ctx, "association", None)
    state = getattr(session, "association", None)
    context = getattr(state, "context", None)
    return context if getattr(session, "associated", False) else None
