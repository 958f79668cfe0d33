"""The meter side of STS: 20 digits + decoder state -> typed result + new state.

IEC 62055-41 token processing as publicly described: digits -> 66-bit number ->
class + block -> decrypt (class 0 and 2) -> authenticate (CRC; class 1 also the
manufacturer code) -> validate (key type, TID memory: old/used, key expiry) ->
an effect for the firmware to apply. :func:`decode` is a pure function: it never
reads a clock (``now`` is passed in) and never changes the state it was given;
the firmware commits the returned state together with the credit.

Bad-token lockout (our addition, not in the standard; :mod:`firmware.sts.lockout`):
each token source keeps its own count; after ``lockout_after`` refused tokens in a
row that source's tokens are refused for ``lockout_minutes`` without decoding them.
Replays (``used``, ``old``) never count. Only an accepted *meter-specific* token
(class 0 or 2) resets its source's count, because class 1 tokens are public. The
handlers below only judge a token; :func:`decode` alone does the counting.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Callable

from bijli.firmware.errors import TokenError

from .amount import decode_amount
from .ciphers import cipher_for
from .codec import (
    KeySection1,
    KeySection2,
    KeySectionMid,
    TestFields,
    TransferFields,
    open_block,
    parse_digits,
    split_token,
)
from .errors import KeyMaterialError
from .keys import CREDIT_REFUSED_KEY_TYPES, KEN_NEVER, DecoderKey, KeyType
from .results import (
    CREDIT_UNITS,
    ClearCredit,
    ClearTamper,
    CreditKind,
    CreditTransfer,
    KeyChanged,
    KeyChangeSection,
    SetMaxPowerLimit,
    SetPhaseUnbalanceLimit,
    SetWaterMeterFactor,
    TestDisplay,
    TestRequest,
    TokenResult,
    TokenResultCode,
)
from .lockout import SourceLockout, TokenSource, after
from .state import DecoderState, PendingSection
from .tid import next_base

R = TokenResultCode
Outcome = tuple[TokenResult, DecoderState]

#: key-change subclass -> section number
SECTION_OF_SUBCLASS = {3: 1, 4: 2, 8: 3, 9: 4}


def decode(state: DecoderState, digits: str, now: datetime, source: TokenSource = TokenSource.KEYPAD) -> Outcome:
    """Decode one token entered at ``source`` (by default the keypad); return the result
    and the next state, with that source's lockout counted (and no other source's)."""
    lock = state.lockout(source)
    if lock.locked(now):
        return TokenResult(R.LOCKED_OUT, detail=f"{lock.source.value} locked out until "
                                                f"{lock.locked_until:%Y-%m-%d %H:%M}"), state
    if lock.locked_until is not None:
        lock = SourceLockout(lock.source, lock.bad_count)  # the lockout has run out
    result, new = _judge(state, digits, now)
    return result, new.with_lockout(after(lock, result, now, state.lockout_after, state.lockout_minutes))


def note_bad_token(state: DecoderState, now: datetime, source: TokenSource = TokenSource.KEYPAD) -> DecoderState:
    """Count a token the firmware refused after decoding (e.g. OVERFLOW) towards ``source``'s lockout."""
    lock = state.lockout(source)
    if lock.locked_until is not None and not lock.locked(now):
        lock = SourceLockout(lock.source, lock.bad_count)
    return state.with_lockout(after(lock, TokenResult(R.OVERFLOW), now, state.lockout_after, state.lockout_minutes))


def _judge(state: DecoderState, digits: str, now: datetime) -> Outcome:
    """The token's result and the decoder state it leaves (TIDs, key, pending sections)."""
    try:
        number = parse_digits(digits)
    except TokenError as exc:
        return _reject(state, TokenResult(R.FORMAT_ERROR, detail=str(exc)), now)
    token_class, block = split_token(number)
    if token_class == 1:
        return _class1(state, block, now)
    if token_class == 3:
        return _reject(state, TokenResult(R.FORMAT_ERROR, token_class=3, detail="class 3 is reserved"), now)
    plain = cipher_for(state.key.ea, state.key.key).decrypt(block)
    subclass, data, crc_ok = open_block(token_class, plain, state.currency_crc)
    if not crc_ok:
        return _reject(state, TokenResult(R.CRC_ERROR, token_class=token_class), now)
    handler = _HANDLERS.get((token_class, subclass))
    if handler is None:
        result = TokenResult(R.FUNCTION_ERROR, token_class=token_class, subclass=subclass,
                             detail="subclass not supported")  # fmt: skip
        return _reject(state, result, now)
    return handler(state, token_class, subclass, data, now)


# --- outcomes ------------------------------------------------------------------


def _reject(state: DecoderState, result: TokenResult, now: datetime) -> Outcome:
    return result, state  # counted towards the source's lockout by decode()


def _accept(state: DecoderState, result: TokenResult, *, tid: int | None = None) -> Outcome:
    tids = state.tids
    if tid is not None:
        i = bisect_left(tids, tid)
        tids = tids[:i] + (tid,) + tids[i:]
        if len(tids) > state.tid_window:
            tids = tids[len(tids) - state.tid_window :]
    return result, replace(state, tids=tids)


def _tid_problem(state: DecoderState, tid: int) -> TokenResultCode | None:
    tids = state.tids
    i = bisect_left(tids, tid)
    if i < len(tids) and tids[i] == tid:
        return R.USED
    if i == 0 and len(tids) >= state.tid_window:
        return R.OLD
    if state.key.ken != KEN_NEVER and tid >> 16 > state.key.ken:
        return R.KEY_EXPIRED
    return None


# --- class 1: test / display (not encrypted, not meter specific) ---------------


def _class1(state: DecoderState, block: int, now: datetime) -> Outcome:
    subclass, data, crc_ok = open_block(1, block)
    if not crc_ok:
        return _reject(state, TokenResult(R.CRC_ERROR, token_class=1), now)
    if subclass > 1:
        return _reject(state, TokenResult(R.FUNCTION_ERROR, token_class=1, subclass=subclass), now)
    fields = TestFields.unpack(subclass, data)
    if fields.mfr != state.manufacturer_code:
        detail = f"manufacturer code {fields.mfr} is not this meter's {state.manufacturer_code}"
        return _reject(state, TokenResult(R.CRC_ERROR, token_class=1, subclass=subclass, detail=detail), now)
    effect = TestDisplay(fields.control, TestRequest.from_control(fields.control), fields.mfr)
    # public tokens never reset the bad-token count (see module docstring)
    return TokenResult(R.ACCEPT, token_class=1, subclass=subclass, effect=effect), state


# --- TID-checked tokens: class 0 credit and the class 2 register tokens --------


def _transfer(make_effect: Callable[[int, int], object], credit: bool = False):
    def handler(state: DecoderState, token_class: int, subclass: int, data: int, now: datetime) -> Outcome:
        f = TransferFields.unpack(data)
        base = dict(tid=f.tid, token_class=token_class, subclass=subclass)
        if credit and state.key.kt in CREDIT_REFUSED_KEY_TYPES:
            detail = f"credit on a {KeyType(state.key.kt).name} key"
            return _reject(state, TokenResult(R.KEY_TYPE_NOT_ALLOWED, detail=detail, **base), now)
        problem = _tid_problem(state, f.tid)
        if problem is not None:
            return _reject(state, TokenResult(problem, **base), now)
        effect = make_effect(subclass, f.amount_field)
        if isinstance(effect, TokenResultCode):
            return _reject(state, TokenResult(effect, **base), now)
        return _accept(state, TokenResult(R.ACCEPT, effect=effect, **base), tid=f.tid)

    return handler


def credit_effect(subclass: int, field: int) -> CreditTransfer:
    kind = CreditKind(subclass)
    step, unit = CREDIT_UNITS[kind]
    units = decode_amount(field)
    return CreditTransfer(kind, field, units, Decimal(units) * step, unit)


def _clear_tamper(subclass: int, field: int):
    return ClearTamper() if field == 0 else R.FORMAT_ERROR  # the pad field must be 0


_HANDLERS: dict[tuple[int, int], Callable[..., Outcome]] = {
    **{(0, s): _transfer(credit_effect, credit=True) for s in range(8)},
    (2, 0): _transfer(lambda s, f: SetMaxPowerLimit(decode_amount(f))),
    (2, 1): _transfer(lambda s, f: ClearCredit(f)),
    (2, 5): _transfer(_clear_tamper),
    (2, 6): _transfer(lambda s, f: SetPhaseUnbalanceLimit(decode_amount(f))),
    (2, 7): _transfer(lambda s, f: SetWaterMeterFactor(f, decode_amount(f))),
    # (2, 2) set tariff rate is reserved: FUNCTION_ERROR like any unknown subclass
}


# --- class 2 key change: sections 1..4, any order, within a window --------------


def required_sections(key: DecoderKey) -> frozenset[int]:
    """Subclasses a key change needs: 2 sections for 64-bit keys, 4 for 128-bit."""
    return frozenset({3, 4}) if len(key.key) == 8 else frozenset({3, 4, 8, 9})


def _key_change(state: DecoderState, token_class: int, subclass: int, data: int, now: datetime) -> Outcome:
    base = dict(token_class=token_class, subclass=subclass)
    needed = required_sections(state.key)
    if subclass not in needed:
        return _reject(state, TokenResult(R.FUNCTION_ERROR, detail="section not used for this key size", **base), now)
    window = state.key_change_window
    pending = {p.subclass: p for p in state.pending if abs(now - p.arrived) <= window}
    pending[subclass] = PendingSection(subclass, data, now)
    if set(pending) != needed:
        held = tuple(sorted(SECTION_OF_SUBCLASS[s] for s in pending))
        effect = KeyChangeSection(SECTION_OF_SUBCLASS[subclass], False, held, len(needed))
        pending_t = tuple(sorted(pending.values(), key=lambda p: p.subclass))
        return _accept(replace(state, pending=pending_t), TokenResult(R.ACCEPT, effect=effect, **base))
    new_key, rollover, problem = assemble_key(state.key, {s: p.data for s, p in pending.items()})
    if new_key is None:
        return _reject(replace(state, pending=()), TokenResult(R.RANGE_ERROR, detail=problem, **base), now)
    effect = KeyChanged(SECTION_OF_SUBCLASS[subclass], new_key.ea, new_key.kt, new_key.krn, new_key.ti,
                        new_key.sgc, new_key.ken, new_key.base, rollover)  # fmt: skip
    return _accept(state.with_key(new_key, clear_tids=rollover), TokenResult(R.ACCEPT, effect=effect, **base))


def assemble_key(current: DecoderKey, sections: dict[int, int]) -> tuple[DecoderKey | None, bool, str]:
    """(new key, rollover, "") from the data fields of a full set of sections, or
    (None, False, why) when a field is out of range."""
    s1 = KeySection1.unpack(sections[3])
    s2 = KeySection2.unpack(sections[4])
    if len(current.key) == 8:
        nk = (s1.nkho << 32) | s2.nklo
        sgc = current.sgc  # 64-bit key changes do not carry the SGC
    else:
        s3 = KeySectionMid.unpack(sections[8])
        s4 = KeySectionMid.unpack(sections[9])
        nk = (s1.nkho << 96) | (s3.nk_part << 64) | (s4.nk_part << 32) | s2.nklo
        # the SGC travels as a binary number, high 12 bits in section 4 (531-1 CTSA19)
        sgc_value = (s4.sgc_part << 12) | s3.sgc_part
        if sgc_value > 999_999:
            return None, False, f"SGC {sgc_value} is more than 6 decimal digits"
        sgc = f"{sgc_value:06d}"
    if s2.ti > 99:
        return None, False, f"TI {s2.ti} is not 2 digits"
    new_base = current.base
    if s1.ro:
        new_base = next_base(current.base)
        if new_base is None:
            return None, False, f"no base date after {current.base} to roll over to"
    try:
        key = DecoderKey(nk.to_bytes(len(current.key), "big"), current.ea, s1.kt, s1.krn, f"{s2.ti:02d}",
                         sgc, new_base, (s1.ken_ho << 4) | s2.ken_lo)  # fmt: skip
    except KeyMaterialError as exc:
        return None, False, str(exc)
    return key, bool(s1.ro), ""


_HANDLERS.update({(2, s): _key_change for s in SECTION_OF_SUBCLASS})
