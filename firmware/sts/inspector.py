"""Read a token's fields without judging it: what ``bijli token decode`` prints.

Unlike :mod:`firmware.sts.decoder` this keeps no state and checks nothing but the
CRC: it decrypts with a given decoder key (IEC 62055-41 block layout, see
:mod:`firmware.sts.codec`) and names the class, subclass, RND, TID and its
date-time, the raw amount field and the decoded amount with its unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .amount import decode_amount
from .ciphers import cipher_for
from .crc import DEFAULT_CURRENCY_CRC, CrcCVariant
from .codec import KeySection1, KeySection2, KeySectionMid, TestFields, TransferFields, open_block, parse_digits, split_token
from .decoder import credit_effect
from .keys import DecoderKey
from .tid import datetime_from_tid

#: (class, subclass) -> what the token is
NAMES = {
    (0, 0): "electricity credit", (0, 1): "water credit", (0, 2): "gas credit", (0, 3): "time credit",
    (0, 4): "electricity currency credit", (0, 5): "water currency credit",
    (0, 6): "gas currency credit", (0, 7): "time currency credit",
    (1, 0): "initiate meter test/display", (1, 1): "initiate meter test/display (16-bit mfr code)",
    (2, 0): "set maximum power limit", (2, 1): "clear credit", (2, 2): "set tariff rate (reserved)",
    (2, 3): "key change section 1", (2, 4): "key change section 2", (2, 5): "clear tamper",
    (2, 6): "set maximum phase power unbalance limit", (2, 7): "set water meter factor",
    (2, 8): "key change section 3", (2, 9): "key change section 4",
}  # fmt: skip


@dataclass(frozen=True)
class TokenInfo:
    digits: str
    token_class: int
    subclass: int | None
    crc_ok: bool
    rnd: int | None = None
    tid: int | None = None
    time: datetime | None = None
    amount_field: int | None = None
    amount: Decimal | int | None = None
    unit: str | None = None
    fields: object = None  # the layout dataclass (TestFields, KeySection1, ...)

    @property
    def what(self) -> str:
        return NAMES.get((self.token_class, self.subclass), "reserved")

    def to_json(self) -> dict:
        amount = self.amount
        if isinstance(amount, Decimal):
            amount = int(amount) if amount == amount.to_integral_value() else float(amount)
        return {
            "token": self.digits,
            "class": self.token_class,
            "subclass": self.subclass,
            "what": self.what,
            "rnd": self.rnd,
            "tid": self.tid,
            "time": None if self.time is None else self.time.isoformat(timespec="minutes"),
            "amount_field": self.amount_field,
            "amount": amount,
            "unit": self.unit,
            "crc_ok": self.crc_ok,
        }


def inspect_token(key: DecoderKey | None, digits: str,
                  currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> TokenInfo:  # fmt: skip
    """The fields of a token under ``key`` (class 1 needs none), currency tokens
    checked with the meter's ``currency_crc`` rule. Raises TokenError if ``digits``
    is not a 20-digit, 66-bit token."""
    number = parse_digits(digits)
    text = f"{number:020d}"
    token_class, block = split_token(number)
    if token_class == 3:
        return TokenInfo(text, 3, None, False)
    if token_class != 1:
        if key is None:
            return TokenInfo(text, token_class, None, False)
        block = cipher_for(key.ea, key.key).decrypt(block)
    subclass, data, crc_ok = open_block(token_class, block, currency_crc)
    if token_class == 1:
        return TokenInfo(text, 1, subclass, crc_ok, fields=TestFields.unpack(subclass, data) if subclass < 2 else None)
    if (token_class, subclass) in _KEY_SECTIONS:
        return TokenInfo(text, token_class, subclass, crc_ok, fields=_KEY_SECTIONS[token_class, subclass](data))
    f = TransferFields.unpack(data)
    amount, unit = amount_of(token_class, subclass, f.amount_field)
    return TokenInfo(text, token_class, subclass, crc_ok, f.rnd, f.tid, datetime_from_tid(f.tid, key.base),
                     f.amount_field, amount, unit, f)  # fmt: skip


_KEY_SECTIONS = {(2, 3): KeySection1.unpack, (2, 4): KeySection2.unpack,
                 (2, 8): KeySectionMid.unpack, (2, 9): KeySectionMid.unpack}  # fmt: skip


def amount_of(token_class: int, subclass: int, field: int) -> tuple[Decimal | int | None, str | None]:
    """The decoded amount and its unit for a transfer-layout token's amount field."""
    if token_class == 0 and subclass < 8:
        effect = credit_effect(subclass, field)
        return effect.value, effect.unit
    if token_class == 2 and subclass in (0, 6):
        return decode_amount(field), "W"
    if token_class == 2 and subclass == 1:
        return field, "register"
    if token_class == 2 and subclass == 7:
        return decode_amount(field), "factor"
    return None, None
