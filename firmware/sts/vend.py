"""The vending side of STS: build the 20-digit tokens a meter accepts.

IEC 62055-41 token generation as publicly described: fill the data block fields,
add the CRC, encrypt the 64 bits after the class with the meter's decoder key
(class 1 stays in clear), transpose the class bits and print 20 digits. Every
function takes ``time`` (for the TID) and ``rnd`` explicitly, so the same request
always gives the same token; nothing here reads a clock or a random source unless
``rnd`` is left as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from .amount import MAX_AMOUNT, decode_amount, encode_amount, encode_amount_down
from .ciphers import cipher_for
from .codec import (
    KeySection1,
    KeySection2,
    KeySectionMid,
    TestFields,
    TransferFields,
    format_digits,
    join_token,
    seal_block,
)
from .crc import DEFAULT_CURRENCY_CRC, CrcCVariant
from .errors import VendError
from .keys import CREDIT_REFUSED_KEY_TYPES, DecoderKey, KeyType
from .results import CREDIT_UNITS, CreditKind
from .tid import next_base, tid_from_datetime


@dataclass(frozen=True)
class VendedToken:
    digits: str
    token_class: int
    subclass: int
    tid: int | None = None
    rnd: int | None = None
    amount_field: int | None = None


def _encrypted(key: DecoderKey, token_class: int, subclass: int, data: int,
               currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> str:  # fmt: skip
    block = cipher_for(key.ea, key.key).encrypt(seal_block(token_class, subclass, data, currency_crc))
    return format_digits(join_token(token_class, block))


def _rnd(rnd: int | None) -> int:
    if rnd is None:
        import secrets  # only when a random RND is asked for

        return secrets.randbelow(16)
    if not isinstance(rnd, int) or not 0 <= rnd <= 15:
        raise VendError(f"RND {rnd!r} must be 0..15")
    return rnd


def vend_transfer(key: DecoderKey, token_class: int, subclass: int, amount_field: int, *,
                  time: datetime, rnd: int | None = None,
                  currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> VendedToken:  # fmt: skip
    """A token with the RND/TID/amount layout (class 0, class 2 subclasses 0,1,5,6,7);
    ``currency_crc`` is the meter's CRC rule for currency subclasses 4..7."""
    r = _rnd(rnd)
    tid = tid_from_datetime(time, key.base)
    data = TransferFields(r, tid, amount_field).pack()
    digits = _encrypted(key, token_class, subclass, data, currency_crc)
    return VendedToken(digits, token_class, subclass, tid, r, amount_field)


def _decimal(value) -> Decimal:
    try:
        v = Decimal(str(value))
    except InvalidOperation:
        raise VendError(f"amount {value!r} is not a number") from None
    if not v.is_finite() or v < 0:
        raise VendError(f"amount {value!r} must be a finite number >= 0")
    return v


def units_for(subclass: int, value, rounding: str = ROUND_CEILING) -> int:
    """Token steps for ``value`` in the subclass's unit (kWh, m3, ...), rounded up
    (or as ``rounding`` says)."""
    step, unit = CREDIT_UNITS[CreditKind(subclass)]
    v = _decimal(value)
    units = int((v / step).to_integral_value(rounding=rounding))
    if units > MAX_AMOUNT:
        raise VendError(f"{value} {unit} is more than one token can carry")
    return units


@dataclass(frozen=True)
class CreditPlan:
    """What a vending tool sells for a request: the largest amount a token carries
    that is not above it, and what is left over (never more, never less, unsaid)."""

    subclass: int
    requested: Decimal  # in ``unit``
    amount_field: int
    value: Decimal  # what the token carries, in ``unit``; never above ``requested``
    unit: str
    above: Decimal | None  # the next amount a token carries, above ``requested`` (None if exact)

    @property
    def remainder(self) -> Decimal:
        """The part of the request the token does not carry (0 when exact)."""
        return self.requested - self.value

    @property
    def exact(self) -> bool:
        return self.remainder == 0


def plan_credit(value, subclass: int = 0, *, exact: bool = False) -> CreditPlan:
    """The credit a token carries for a request of ``value`` in the subclass's unit:
    the largest representable amount not above it. With ``exact`` a request no token
    carries is refused (naming the two nearest amounts) instead."""
    if not 0 <= subclass <= 7:
        raise VendError(f"credit subclass {subclass!r} must be 0..7")
    step, unit = CREDIT_UNITS[CreditKind(subclass)]
    requested = _decimal(value)
    field = encode_amount_down(units_for(subclass, requested, ROUND_FLOOR))
    carried = decode_amount(field) * step
    above = None
    if carried != requested:
        up = units_for(subclass, requested, ROUND_CEILING)
        above = decode_amount(encode_amount(up)) * step if up <= MAX_AMOUNT else None
    plan = CreditPlan(subclass, requested, field, carried, unit, above)
    if exact and not plan.exact:
        nearest = f"{carried} or {above}" if above is not None else f"{carried}"
        raise VendError(f"no token carries exactly {requested} {unit}; the nearest amounts are {nearest} {unit}")
    return plan


def vend_credit(key: DecoderKey, value, *, subclass: int = 0, time: datetime, rnd: int | None = None,
                currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> VendedToken:  # fmt: skip
    """A class 0 credit token for ``value`` in the subclass's unit (0: kWh, 1/2: m3,
    3: minutes, 4..7: currency), rounded up in the customer's favour."""
    if not 0 <= subclass <= 7:
        raise VendError(f"credit subclass {subclass!r} must be 0..7")
    _check_credit_key(key)
    field = encode_amount(units_for(subclass, value))
    return vend_transfer(key, 0, subclass, field, time=time, rnd=rnd, currency_crc=currency_crc)


def vend_planned_credit(key: DecoderKey, plan: CreditPlan, *, time: datetime, rnd: int | None = None,
                        currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> VendedToken:  # fmt: skip
    """A class 0 credit token carrying exactly ``plan.value`` (see :func:`plan_credit`)."""
    _check_credit_key(key)
    return vend_transfer(key, 0, plan.subclass, plan.amount_field, time=time, rnd=rnd, currency_crc=currency_crc)


def _check_credit_key(key: DecoderKey) -> None:
    if key.kt in CREDIT_REFUSED_KEY_TYPES:
        # a meter refuses credit on an initialization or default key (531-1 CTSA16): do not sell it
        raise VendError(f"no credit on a {KeyType(key.kt).name} key (key type {key.kt}); change to a unique "
                        "or common key first")


def vend_power_limit(key: DecoderKey, watts: int, *, time: datetime, rnd: int | None = None) -> VendedToken:
    """Class 2 subclass 0: set maximum power limit (whole watts, rounded up)."""
    return vend_transfer(key, 2, 0, encode_amount(watts), time=time, rnd=rnd)


def vend_clear_credit(key: DecoderKey, register: int = 0xFFFF, *, time: datetime,
                      rnd: int | None = None) -> VendedToken:  # fmt: skip
    """Class 2 subclass 1: clear credit (register 0xFFFF = all registers)."""
    return vend_transfer(key, 2, 1, register, time=time, rnd=rnd)


def vend_clear_tamper(key: DecoderKey, *, time: datetime, rnd: int | None = None) -> VendedToken:
    """Class 2 subclass 5: clear tamper condition (pad field 0)."""
    return vend_transfer(key, 2, 5, 0, time=time, rnd=rnd)


def vend_phase_unbalance_limit(key: DecoderKey, watts: int, *, time: datetime,
                               rnd: int | None = None) -> VendedToken:  # fmt: skip
    """Class 2 subclass 6: set maximum phase power unbalance limit (watts)."""
    return vend_transfer(key, 2, 6, encode_amount(watts), time=time, rnd=rnd)


def vend_water_meter_factor(key: DecoderKey, factor: int, *, time: datetime,
                            rnd: int | None = None) -> VendedToken:  # fmt: skip
    """Class 2 subclass 7: set water meter factor (amount-encoded; scaling unverified)."""
    return vend_transfer(key, 2, 7, encode_amount(factor), time=time, rnd=rnd)


def vend_key_change(current: DecoderKey, new: DecoderKey, *, rollover: bool = False) -> list[VendedToken]:
    """The key-change section tokens that move a meter from ``current`` to ``new``:
    2 (subclasses 3, 4) for 64-bit keys, 4 (also 8, 9) for 128-bit keys, all
    encrypted with the current key. ``rollover`` sets RO: the meter then clears its
    TID memory and moves to the next base date, which ``new.base`` must be."""
    if new.ea != current.ea:
        raise VendError("a key change keeps the encryption algorithm")
    expected_base = next_base(current.base) if rollover else current.base
    if new.base != expected_base:
        raise VendError(f"new key base date must be {expected_base} ({'with' if rollover else 'without'} rollover)")
    if int(new.ti) > 255:
        raise VendError("TI does not fit in 8 bits")
    nk = int.from_bytes(new.key, "big")
    n_bits = len(new.key) * 8
    s1 = KeySection1(new.ken >> 4, new.krn, int(rollover), 0, new.kt, nk >> (n_bits - 32))
    s2 = KeySection2(new.ken & 0xF, int(new.ti), nk & 0xFFFFFFFF)
    tokens = [
        VendedToken(_encrypted(current, 2, 3, s1.pack()), 2, 3),
        VendedToken(_encrypted(current, 2, 4, s2.pack()), 2, 4),
    ]
    if n_bits == 128:
        # the SGC travels as a binary number, low 12 bits in section 3, high 12 in section 4
        # (531-1 CTSA19: SGC 123457 = 0x01E241 -> 0x241 and 0x01E)
        sgc = int(new.sgc)
        s3 = KeySectionMid(sgc & 0xFFF, (nk >> 64) & 0xFFFFFFFF)
        s4 = KeySectionMid(sgc >> 12, (nk >> 32) & 0xFFFFFFFF)
        tokens.append(VendedToken(_encrypted(current, 2, 8, s3.pack()), 2, 8))
        tokens.append(VendedToken(_encrypted(current, 2, 9, s4.pack()), 2, 9))
    elif new.sgc != current.sgc:
        raise VendError("a 64-bit key change cannot carry a new SGC")
    return tokens


def vend_test(control: int, mfr: int = 0, subclass: int | None = None) -> VendedToken:
    """A class 1 test/display token (not encrypted, not meter specific). Subclass 0
    holds 36 control bits and an 8-bit manufacturer code, subclass 1 28 and 16;
    by default the subclass that fits is chosen."""
    if subclass is None:
        subclass = 0 if control < (1 << 36) and mfr < 256 else 1
    if subclass not in (0, 1):
        raise VendError("class 1 subclass must be 0 or 1")
    data = TestFields(subclass, control, mfr).pack()
    return VendedToken(format_digits(join_token(1, seal_block(1, subclass, data))), 1, subclass)
