"""The token gateway adapter: STS tokens over DLMS (Token gateway, IC 115, 0.0.19.40.0.255).

A token written to the gateway's ``enter`` method goes to :meth:`Meter.enter_token`,
the same input as the keypad's, so it is decoded, checked and applied in the same
transaction; the outcome comes back as the class's token_status (Blue Book 4.6.5:
status code and data) and the last token as its token/time/delivery attributes.
The token attribute shows the octets the gateway received, as received (Blue Book:
"the token most recently received"), even when they are not digits the decoder can
read: a head-end that sent a bad token sees what the meter got.

Each association sees its own token's outcome (the class keeps a record per
association, :mod:`dlms.cosem.token_gateway`); a token the meter could not commit
(storage failing) is an execution failure described ``storage_error``: nothing was
credited and the token is still unused, so the head-end sends it again later and is
never told ``used`` for a token whose credit was not acknowledged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bijli.dlms.cosem.token_gateway import (DeliveryMethod, TokenGateway, TokenGatewayResult, TokenRecord,
                                            TokenStatusCode)
from bijli.firmware.cosem.catalogue import TOKEN_GATEWAY
from bijli.firmware.sts import TokenResultCode, TokenSource

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter, TokenOutcome

# how a token result shows in the token gateway's status (class 115 attribute 6)
_GATEWAY_STATUS = {
    TokenResultCode.ACCEPT: TokenStatusCode.EXECUTION_OK,
    TokenResultCode.FORMAT_ERROR: TokenStatusCode.FORMAT_FAILURE,
    TokenResultCode.CRC_ERROR: TokenStatusCode.AUTHENTICATION_FAILURE,
    TokenResultCode.OVERFLOW: TokenStatusCode.EXECUTION_FAILURE,
    TokenResultCode.FUNCTION_ERROR: TokenStatusCode.EXECUTION_FAILURE,
    TokenResultCode.STORAGE_ERROR: TokenStatusCode.EXECUTION_FAILURE,
}  # every other result (old, used, key expired, ...) is a validation failure

# how the token arrived, as the gateway's delivery method
_DELIVERY = {TokenSource.KEYPAD: DeliveryMethod.MANUAL, TokenSource.CONSOLE: DeliveryMethod.LOCAL,
             TokenSource.OPTICAL: DeliveryMethod.LOCAL, TokenSource.DLMS: DeliveryMethod.REMOTE}


def token_digits(token: bytes) -> str:
    """A token as it arrives over DLMS: 20 ASCII digits, or 10 octets of packed BCD."""
    if len(token) == 10 and all((b >> 4) <= 9 and (b & 0xF) <= 9 for b in token):
        return "".join(f"{b:02x}" for b in token)
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return ""  # the decoder answers format_error


def gateway_result(outcome: "TokenOutcome") -> TokenGatewayResult:
    status = _GATEWAY_STATUS.get(outcome.code, TokenStatusCode.VALIDATION_FAILURE)
    descriptions = (outcome.word.encode(),) + ((outcome.message.encode("utf-8"),) if outcome.message else ())
    return TokenGatewayResult(status, descriptions=descriptions)


def last_token(meter: "Meter") -> TokenRecord | None:
    t = meter.last_token
    if t is None:
        return None
    return TokenRecord(t.digits.encode("ascii", "replace"), meter.last_token_time, _DELIVERY[t.source],
                       gateway_result(t))


def token_gateway(meter: "Meter") -> TokenGateway:
    """The token gateway bound to ``meter``: a remote delivery comes from the head-end
    (dlms), a local one through the optical port."""
    received: dict[str, object] = {}  # the last gateway token's outcome and its octets

    def enter(token: bytes, method: DeliveryMethod) -> TokenGatewayResult:
        outcome = meter.enter_token(token_digits(token), TokenSource.DLMS if method == DeliveryMethod.REMOTE
                                    else TokenSource.OPTICAL)
        received.update(outcome=outcome, octets=bytes(token))
        return gateway_result(outcome)

    def last() -> TokenRecord | None:
        record = last_token(meter)
        if record is not None and meter.last_token is received.get("outcome"):
            record = replace(record, token=received["octets"])  # a keypad token since shows its digits
        return record

    return TokenGateway(TOKEN_GATEWAY, enter=enter, now=lambda: meter.now, last_token=last)
