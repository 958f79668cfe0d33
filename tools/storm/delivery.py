"""One meter's conversation in a storm: deliver one token, or read its credit back.

A token delivery (IEC 62056-5-3 over the IEC 62056-47 wrapper, one TCP connection):

1. the public association (client SAP 16, no security) reads the utility client's
   invocation counter 0.0.43.1.3.255 and releases: the standard resynchronisation,
   so a head-end that lost its counter (or shares a system title) never sends a stale one;
2. the utility association (client SAP 48, HLS mechanism 5 GMAC, security suite 0,
   authenticated and encrypted) starting at that counter;
3. if the storm has not yet recorded the meter's credit before delivery, a GET of the
   total recharged (IS 15959-2 0.0.94.96.23.255), handed to ``on_before`` which
   journals it *before* the token is sent, so a resumed storm compares against the
   credit before the first attempt, not after one that may have landed;
4. ACTION token gateway (class 115, 0.0.19.40.0.255) method 1 ``enter`` with the 20
   digits as an octet-string, then GET of the gateway's token (2), descriptions (4) and
   status (6), with the disconnect control's output state: the verdict, whose first description is the meter's word (``accepted``,
   ``used``, ``old``, ...), for this token only if attribute 2 echoes it;
5. RLRQ.

A credit read-back uses the meter-reader association (SAP 32, LLS), which reads
everything and costs no ciphering.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from bijli.tools.storm import DeliveryError, ManifestError
from bijli.tools.storm import adapter as dl
from bijli.tools.storm.link import WrapperLink, parse_target

#: the meter's words that end a delivery: the token is in the meter
DELIVERED_WORDS = frozenset({"accepted", "used"})
#: words after which sending the same token again cannot help (the token is bad for this meter)
#: ``locked_out`` is not among them: the decoder opens again after its lock-out minutes
FINAL_REFUSALS = frozenset({"crc_error", "format_error", "old", "key_expired", "key_type_not_allowed",
                            "overflow", "range_error", "function_error"})


@dataclass(frozen=True)
class MeterTarget:
    """A manifest row as the head-end needs it."""

    index: int
    serial: str
    host: str
    port: int
    keys: dl.Keys

    @classmethod
    def from_row(cls, row: dict, position: int) -> "MeterTarget":
        try:
            host, port = parse_target(row["target"])
            return cls(int(row.get("index", position)), str(row["serial"]), host, port, dl.Keys.from_manifest(row["dlms"]))
        except (KeyError, TypeError, ValueError, DeliveryError) as exc:
            raise ManifestError(f"manifest meter {position}: {exc}") from None


@dataclass(frozen=True)
class GatewayVerdict:
    word: str  # the meter's word for our token
    status: int  # class 115 status code (IEC 62056-6-2: 3 execution OK, 6 validation failure, ...)
    started: float  # time.monotonic() when the connection opened
    sent: float  # when the ACTION went out
    answered: float  # when the verdict was read
    relay_on: bool  # disconnect control output_state right after: supply restored or not


@dataclass(frozen=True)
class CreditReading:
    total_recharged: int  # paisa
    balance: int  # paisa
    relay_on: bool
    control_state: int


async def _associate(link: WrapperLink, assoc: dl.ClientAssociation) -> None:
    hls = assoc.on_aare(await link.request(assoc.sap, assoc.aarq()))
    if hls is not None:
        assoc.on_hls(await link.request(assoc.sap, hls))


async def _release(link: WrapperLink, assoc: dl.ClientAssociation) -> None:
    assoc.on_rlre(await link.request(assoc.sap, assoc.rlrq()))


async def _get(link: WrapperLink, assoc: dl.ClientAssociation, items: list[tuple[int, str, int]]) -> list:
    values = assoc.parse_get(await link.request(assoc.sap, assoc.get_list(items)), len(items))
    for item, value in zip(items, values):
        if dl.is_refused(value):
            raise DeliveryError(f"GET {item[1]}:{item[2]}: {value.name}", retry=False)
    return values


async def deliver(target: MeterTarget, digits: str, *, timeout: float,
                  on_before: Callable[[int], Awaitable[None]] | None) -> GatewayVerdict:
    """Send ``digits`` to the meter's token gateway; the meter's verdict on it."""
    started = time.monotonic()
    async with WrapperLink(target.host, target.port, timeout) as link:
        public = dl.ClientAssociation(dl.SAP_PUBLIC, target.keys)
        await _associate(link, public)
        (ic,) = await _get(link, public, [dl.UTILITY_INVOCATION_COUNTER])
        await _release(link, public)
        utility = dl.ClientAssociation(dl.SAP_UTILITY, target.keys, invocation_counter=int(ic))
        await _associate(link, utility)
        if on_before is not None:
            (before,) = await _get(link, utility, [dl.TOTAL_RECHARGED])
            await on_before(int(before))
        sent = time.monotonic()
        utility.parse_action(await link.request(dl.SAP_UTILITY, utility.enter_token(digits)))
        echoed, descriptions, status, relay = await _get(link, utility, [dl.GATEWAY_TOKEN, dl.GATEWAY_DESCRIPTIONS,
                                                                         dl.GATEWAY_STATUS, dl.RELAY_OUTPUT])
        answered = time.monotonic()
        await _release(link, utility)
    if bytes(echoed) != digits.encode("ascii"):
        # another token reached the gateway between our ACTION and our GET: ours is in doubt
        raise DeliveryError("the gateway's last token is not ours (another client in between)")
    word = bytes(descriptions[0]).decode("utf-8", "replace") if descriptions else ""
    return GatewayVerdict(word, int(status[0]), started, sent, answered, bool(relay))


async def read_credit(target: MeterTarget, *, timeout: float) -> CreditReading:
    """Total recharged, balance and relay state, in the meter-reader association."""
    async with WrapperLink(target.host, target.port, timeout) as link:
        reader = dl.ClientAssociation(dl.SAP_READER, target.keys)
        await _associate(link, reader)
        total, balance, output, control = await _get(link, reader, [dl.TOTAL_RECHARGED, dl.CURRENT_BALANCE,
                                                                    dl.RELAY_OUTPUT, dl.RELAY_CONTROL])
        await _release(link, reader)
    return CreditReading(int(total), int(balance), bool(output), int(control))
