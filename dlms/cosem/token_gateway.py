"""Token gateway (class 115, version 0), IEC 62056-6-2 clause 4.6.5.

The DLMS door for prepayment tokens (an STS token of IEC 62055-41 as its 20
digits, or any other token format): method ``enter`` passes the token to the
firmware's token engine, and the attributes tell what became of the last token,
whichever way it came (remote over DLMS, local port, or manual keypad entry):
token, time, descriptions, delivery_method and status {status code, data bits}.

``enter`` answers success once the token has been received and processed; the
verdict (accepted, or which check failed) is in ``status``, as the standard
intends, so a client reads attribute 6 after the action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Callable

from bijli.dlms import axdr
from bijli.dlms.cosem.bound import BoundObject
from bijli.dlms.cosem.values import DATE_TIME, OCTET_STRING, array_of, integer, mismatch, parse_octets

MAX_TOKEN_OCTETS = 128  # an STS token is 20 digits; room for other formats, not for abuse


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
        super().__init__(
            logical_name,
            token=lambda: self.last.token,
            time=lambda: self.last.time,
            descriptions=lambda: self.last.result.descriptions,
            delivery_method=lambda: self.last.delivery_method,
        )
        self._enter = enter
        self._now = now
        self.delivery_method = delivery_method

    @property
    def last(self) -> TokenRecord:
        if self._last_token is not None:
            return self._last_token() or TokenRecord()
        return self._last

    def record(self, record: TokenRecord) -> None:
        self._last = record

    def get_status(self, ctx):
        r = self.last.result
        return axdr.Structure((axdr.Enum(int(r.status)), axdr.BitString(r.data)))

    def do_enter(self, params, ctx):
        if params is None:
            raise mismatch("enter needs the token as an octet-string")
        token = parse_octets(params)
        if not 0 < len(token) <= MAX_TOKEN_OCTETS:
            raise mismatch(f"a token is 1..{MAX_TOKEN_OCTETS} octets")
        when = self._now()
        result = self._enter(token, self.delivery_method)
        if self._last_token is None:
            self._last = TokenRecord(token, when, self.delivery_method, result)
        return None
