"""The misbehaviours a hostile meter can show, each with its name on the command line and what it does.

These are the faults head-end engineers meet from meters in the field, named by the
layer of IEC 62056 they break: the link framing of the wrapper (IEC 62056-47 clause
5: version, wPorts, length) or of HDLC (IEC 62056-46 clause 6.4: format field with
its 11-bit length, HCS, FCS); the xDLMS block transfer numbering (IEC 62056-5-3
clause 9.4.6.4: a long GET's block-number, an ACTION's pblock number, the
general-block-transfer block-number); the exception-response (clause 9.5, the answer
of a meter that cannot serve a request); and the security suite 0 protection of
ciphered APDUs (clause 9.2.7: the invocation counter in the security header and the
12-octet GCM authentication tag at the end). Slowness, stalls and a connection that
drops part way are what a GPRS or PLC link in the field does to all of them.

:data:`DESCRIPTIONS` is the one documented list (``bijli meter --help``, the README's
"bijli in your CI", :func:`parse_kinds`'s error message); :func:`applies` says which
answers a kind can be applied to, because a misbehaviour that needs a block answer or
a ciphered one makes no sense on an AARE.
"""

from __future__ import annotations

import enum

from bijli.dlms.apdu import Tag
from bijli.dlms.protection import is_protected
from bijli.tools.errors import UsageError


class Misbehaviour(enum.Enum):
    """One kind of fault; the value is its name in ``--chaos-kinds``."""

    TRUNCATED = "truncated"
    OVERSIZE = "oversize"
    WRONG_LENGTH = "wrong-length"
    BAD_BLOCK_NUMBER = "bad-block-number"
    EXCEPTION = "exception"
    SLOW = "slow"
    STALL = "stall"
    DROP_MID_BLOCK = "drop-mid-block"
    WRONG_INVOCATION_COUNTER = "wrong-invocation-counter"
    BAD_GCM_TAG = "bad-gcm-tag"


#: what each kind does to the answer it hits, as documented to users
DESCRIPTIONS: dict[Misbehaviour, str] = {
    Misbehaviour.TRUNCATED: "the answer's frame is cut short (a seeded prefix leaves); the connection stays open",
    Misbehaviour.OVERSIZE: "the APDU carries 1 to 64 extra octets its encoding does not account for, inside a "
                           "frame whose length covers them",
    Misbehaviour.WRONG_LENGTH: "the frame's length field (wrapper length, HDLC format field with a matching HCS) "
                               "announces more or fewer octets than follow",
    Misbehaviour.BAD_BLOCK_NUMBER: "a block of a long answer (GET datablock, ACTION pblock, general-block-transfer) "
                                   "carries the wrong block number (plain answers only: a ciphered one hides it)",
    Misbehaviour.EXCEPTION: "the answer to an xDLMS request is replaced by an exception-response",
    Misbehaviour.SLOW: "the answer leaves only after a seeded delay of 1 to 3 s (it does come)",
    Misbehaviour.STALL: "the meter stops answering on this connection, which stays open",
    Misbehaviour.DROP_MID_BLOCK: "at a block of a long answer that is not the last, part of its frame leaves and "
                                 "the meter closes the connection",
    Misbehaviour.WRONG_INVOCATION_COUNTER: "a ciphered answer comes with an invocation counter already used: the "
                                           "previous ciphered answer again, byte for byte (its tag is valid)",
    Misbehaviour.BAD_GCM_TAG: "a ciphered answer's 12-octet GCM authentication tag is corrupted",
}

ALL = tuple(Misbehaviour)

#: the kinds that act on the bytes of the frame, once the link has framed the answer
FRAME_KINDS = frozenset({Misbehaviour.TRUNCATED, Misbehaviour.WRONG_LENGTH, Misbehaviour.SLOW, Misbehaviour.STALL,
                         Misbehaviour.DROP_MID_BLOCK})

_ACSE = frozenset({Tag.AARE, Tag.RLRE})
GCM_TAG_LENGTH = 12  # security suite 0: AES-GCM with a 96-bit tag


class ChaosKindError(UsageError):
    """A ``--chaos-kinds`` list naming something that is not a kind."""


def parse_kinds(text: str | None) -> tuple[Misbehaviour, ...]:
    """``"truncated,slow"`` -> the kinds, in the documented order; None or ``"all"``: every kind."""
    if text is None or text.strip() in ("", "all"):
        return ALL
    wanted = set()
    for word in text.split(","):
        word = word.strip()
        try:
            wanted.add(Misbehaviour(word))
        except ValueError:
            known = "\n".join(f"  {k.value:26} {DESCRIPTIONS[k]}" for k in ALL)
            raise ChaosKindError(f"no chaos kind {word!r}; the kinds are:\n{known}") from None
    return tuple(k for k in ALL if k in wanted)


def block_header(apdu: bytes) -> tuple[int, bool] | None:
    """(offset of the block number, last block?) of a plain block answer; None for any other.

    get-response-with-datablock (C4 02 iid last u32) and action-response-with-pblock
    (C7 02 iid last u32) carry a 32-bit block number at offset 4; general-block-transfer
    (E0 control u16 u16) a 16-bit one at offset 2, the last-block flag being bit 7 of
    its block-control."""
    if len(apdu) >= 8 and apdu[0] in (Tag.GET_RESPONSE, Tag.ACTION_RESPONSE) and apdu[1] == 2:
        return 4, apdu[3] != 0
    if len(apdu) >= 6 and apdu[0] == Tag.GENERAL_BLOCK_TRANSFER:
        return 2, bool(apdu[1] & 0x80)
    return None


def applies(kind: Misbehaviour, apdu: bytes, *, previous_ciphered: bytes | None) -> bool:
    """Whether ``kind`` can be shown on this answer APDU."""
    if not apdu:
        return False
    if kind is Misbehaviour.BAD_BLOCK_NUMBER:
        return block_header(apdu) is not None
    if kind is Misbehaviour.DROP_MID_BLOCK:
        header = block_header(apdu)
        return header is not None and not header[1]
    if kind is Misbehaviour.EXCEPTION:
        return apdu[0] not in _ACSE and apdu[0] != Tag.EXCEPTION_RESPONSE
    if kind is Misbehaviour.BAD_GCM_TAG:
        return is_protected(apdu[0]) and len(apdu) > GCM_TAG_LENGTH
    if kind is Misbehaviour.WRONG_INVOCATION_COUNTER:
        return is_protected(apdu[0]) and previous_ciphered is not None
    return True
