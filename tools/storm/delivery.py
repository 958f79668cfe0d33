"""One meter's conversation in a storm: deliver one token, or read its credit back.

A token delivery (IEC 62056-5-3 over the IEC 62056-47 wrapper, one TCP connection)
is nine requests in four rounds; a round is requests sent in one write whose answers
come back together (:meth:`~bijli.tools.storm.link.WrapperLink.exchange`), and a
request joins a round only when nothing in it depends on an answer of that round:

1. the public association (client SAP 16, no security): AARQ, GET of the utility
   client's invocation counter 0.0.43.1.3.255, RLRQ. This is the standard
   resynchronisation, so a head-end that lost its counter (or shares a system title)
   never sends a stale one;
2. the utility association's AARQ (client SAP 48, HLS mechanism 5 GMAC, security
   suite 0, authenticated and encrypted) starting at that counter: its AARE carries
   the meter's challenge, which the next round needs;
3. HLS pass 3 (f(StoC)) and, if the storm has not yet recorded the meter's credit
   before delivery, a GET of the total recharged (IS 15959-2 0.0.94.96.23.255), the
   GET ciphered with the next counter and served once pass 3 has opened the
   association. The credit is handed to ``on_before``, which journals it *before* the
   token is sent, so a resumed storm compares against the credit before the first
   attempt, not after one that may have landed;
4. ACTION token gateway (class 115, 0.0.19.40.0.255) method 1 ``enter`` with the 20
   digits as an octet-string; GET with list of the gateway's token (2), descriptions
   (4) and status (6) with the disconnect control's output state: the verdict, whose
   first description is the meter's word (``accepted``, ``used``, ``old``, ...), for
   this token only if attribute 2 echoes it; RLRQ. The meter serves the three in one
   go, so no other client's token can land between our ACTION and our GET.

Each answer is checked in order, and the first that fails ends the conversation
(the answers after it are not looked at: a refused AARQ makes the GET behind it an
exception-response, which says nothing more).

Why the public association is not skipped when the storm "knows" the counter: the
storm only knows one after a conversation that used it, which in one storm is only a
retry, and a retry follows a failure that may have been the meter's restart (its
counters then restart above a reservation, past what we hold). A stale counter in an
AARQ is an authentication failure to the meter: an entry in its security log and a
step towards its lock-out of the head-end. One round of three small plain APDUs is
cheaper than that risk.

A credit read-back uses the meter-reader association (SAP 32, LLS), which reads
everything and costs no ciphering: AARQ, one GET with list, RLRQ, in one round.
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


@dataclass(frozen=True, slots=True)
class MeterTarget:
    """A manifest row as the head-end needs it (a storm holds one per meter: slots)."""

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


def _checked(items: list[tuple[int, str, int]], values: list) -> list:
    for item, value in zip(items, values):
        if dl.is_refused(value):
            raise DeliveryError(f"GET {item[1]}:{item[2]}: {value.name}", retry=False)
    return values


_VERDICT = [dl.GATEWAY_TOKEN, dl.GATEWAY_DESCRIPTIONS, dl.GATEWAY_STATUS, dl.RELAY_OUTPUT]
_BEFORE = [dl.TOTAL_RECHARGED]
_COUNTER = [dl.UTILITY_INVOCATION_COUNTER]
_CREDIT = [dl.TOTAL_RECHARGED, dl.CURRENT_BALANCE, dl.RELAY_OUTPUT, dl.RELAY_CONTROL]


async def deliver(target: MeterTarget, digits: str, *, timeout: float,
                  on_before: Callable[[int], Awaitable[None]] | None) -> GatewayVerdict:
    """Send ``digits`` to the meter's token gateway; the meter's verdict on it."""
    started = time.monotonic()
    keys = target.keys
    async with WrapperLink(target.host, target.port, timeout) as link:
        # round 1: the public association reads the utility client's invocation counter
        public = dl.ClientAssociation(dl.SAP_PUBLIC, keys)
        sap = dl.SAP_PUBLIC
        aare, got, rlre = await link.exchange(((sap, public.aarq()), (sap, public.get_list(_COUNTER)),
                                               (sap, public.rlrq())))
        public.on_aare(aare)
        (ic,) = _checked(_COUNTER, public.parse_get(got, 1))
        public.on_rlre(rlre)
        # round 2: the utility association's AARQ; its AARE brings the meter's challenge
        utility = dl.ClientAssociation(dl.SAP_UTILITY, keys, invocation_counter=int(ic))
        sap = dl.SAP_UTILITY
        hls = utility.on_aare(await link.request(sap, utility.aarq()))
        if hls is None:
            raise DeliveryError("the utility association opened without HLS-GMAC", retry=False)
        # round 3: HLS pass 3/4, and the credit before the first send
        if on_before is not None:
            answer, got = await link.exchange(((sap, hls), (sap, utility.get_list(_BEFORE))))
            utility.on_hls(answer)
            (before,) = _checked(_BEFORE, utility.parse_get(got, 1))
            await on_before(int(before))  # journaled before the token goes out
        else:
            utility.on_hls(await link.request(sap, hls))
        # round 4: the token, the verdict, the release
        sent = time.monotonic()
        done, got, rlre = await link.exchange(((sap, utility.enter_token(digits)), (sap, utility.get_list(_VERDICT)),
                                               (sap, utility.rlrq())))
        answered = time.monotonic()
        utility.parse_action(done)
        echoed, descriptions, status, relay = _checked(_VERDICT, utility.parse_get(got, len(_VERDICT)))
        utility.on_rlre(rlre)
    if bytes(echoed) != digits.encode("ascii"):
        # another token reached the gateway between our ACTION and our GET: ours is in doubt
        raise DeliveryError("the gateway's last token is not ours (another client in between)")
    word = bytes(descriptions[0]).decode("utf-8", "replace") if descriptions else ""
    return GatewayVerdict(word, int(status[0]), started, sent, answered, bool(relay))


async def read_credit(target: MeterTarget, *, timeout: float) -> CreditReading:
    """Total recharged, balance and relay state, in the meter-reader association (one round)."""
    async with WrapperLink(target.host, target.port, timeout) as link:
        reader = dl.ClientAssociation(dl.SAP_READER, target.keys)
        sap = dl.SAP_READER
        aare, got, rlre = await link.exchange(((sap, reader.aarq()), (sap, reader.get_list(_CREDIT)),
                                               (sap, reader.rlrq())))
        reader.on_aare(aare)
        total, balance, output, control = _checked(_CREDIT, reader.parse_get(got, len(_CREDIT)))
        reader.on_rlre(rlre)
    return CreditReading(int(total), int(balance), bool(output), int(control))
