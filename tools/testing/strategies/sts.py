"""Strategies for IEC 62055-41 STS tokens: valid for a meter, and the near-misses it must refuse.

Each strategy takes the meter's decoder key (:func:`meter_key` reads it from a
meter's manifest, ``RunningMeter.manifest``) and draws 20-digit tokens as a
vending system would make them (``bijli.firmware.sts.vend``): a credit transfer
(class 0) with a random RND, a TID and an amount in the subclass's unit.

- :func:`tokens_for`: tokens the meter accepts, each once (a TID it has not seen,
  inside its key's expiry, KEN; a subclass its unit takes: 4, currency, by default).
- :func:`wrong_crc_tokens`: the meter's own key, but the CRC of the plain block
  (clause 6.3.6) does not match: the meter says CRC error.
- :func:`wrong_key_tokens`: well-formed tokens under another key of the same
  algorithm. Decrypted with the meter's key the CRC fails (the 1 in 65536 that
  would pass is left out), so again a CRC error, never a credit.
- :func:`old_tid_tokens`: authentic tokens whose TID is before a given time. An
  STS meter refuses a token as *old* when its TID memory is full and the token is
  older than every TID in it (bijli's meter remembers ``tid_window`` TIDs, 100 by
  default); until the memory is full such a token is still new to it.
- :func:`replayed_tokens`: a list of authentic tokens in which some come back: each
  token's first entry is accepted, every later one is refused as *used*.

All token strategies draw the TID (minutes since the key's base date, clause
6.3.5) rather than a wall-clock time, inside ``after``/``before`` when given.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import reject
from hypothesis import strategies as st

from bijli.firmware.sts.ciphers import cipher_for, key_bytes_for
from bijli.firmware.sts.codec import TransferFields, format_digits, join_token, open_block, parse_digits, seal_block, \
    split_token
from bijli.firmware.sts.crc import DEFAULT_CURRENCY_CRC, CrcCVariant
from bijli.firmware.sts.keys import KEN_NEVER, DecoderKey
from bijli.firmware.sts.tid import TID_LIMIT, datetime_from_tid, tid_from_datetime
from bijli.firmware.sts.vend import VendedToken, vend_credit

CREDIT_CLASS = 0
DEFAULT_SUBCLASS = 4  # electricity currency: what a bijli meter (unit INR) takes
DEFAULT_AMOUNTS = st.integers(1, 5000)  # in the subclass's unit: rupees for subclass 4


def meter_key(manifest: dict) -> DecoderKey:
    """The decoder key of a meter from its manifest (``bijli meter --manifest``, a fleet
    manifest row, ``RunningMeter.manifest``) or from the manifest's ``sts`` part."""
    sts = manifest.get("sts", manifest)
    return DecoderKey(bytes.fromhex(sts["decoder_key"]), sts["ea"], int(sts["kt"]), int(sts["krn"]), sts["ti"],
                      sts["sgc"], int(sts["base"]), int(sts.get("ken", KEN_NEVER)))


def _tid_bounds(key: DecoderKey, after: datetime | None, before: datetime | None) -> tuple[int, int]:
    """The TIDs a key accepts (not past its KEN), inside [after, before)."""
    hi = TID_LIMIT - 1 if key.ken == KEN_NEVER else min(TID_LIMIT - 1, ((key.ken + 1) << 16) - 1)
    lo = 0
    if after is not None:
        lo = max(lo, tid_from_datetime(max(after, datetime_from_tid(0, key.base)), key.base))
    if before is not None:
        hi = min(hi, tid_from_datetime(before, key.base) - 1)
    if hi < lo:
        raise ValueError(f"no TID of base {key.base} (KEN {key.ken}) lies in the range asked for")
    return lo, hi


def _tids(key: DecoderKey, after: datetime | None = None, before: datetime | None = None) -> st.SearchStrategy:
    return st.integers(*_tid_bounds(key, after, before))


def _vend(key: DecoderKey, tid: int, amount, subclass: int, rnd: int, currency_crc: CrcCVariant) -> VendedToken:
    return vend_credit(key, amount, subclass=subclass, time=datetime_from_tid(tid, key.base), rnd=rnd,
                       currency_crc=currency_crc)


@st.composite
def tokens_for(draw, key: DecoderKey, *, subclass: int = DEFAULT_SUBCLASS, amounts: st.SearchStrategy = DEFAULT_AMOUNTS,
               after: datetime | None = None, before: datetime | None = None,
               currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> VendedToken:
    """A credit token the meter with ``key`` accepts (once)."""
    return _vend(key, draw(_tids(key, after, before)), draw(amounts), subclass, draw(st.integers(0, 15)), currency_crc)


def _crc_ok(key: DecoderKey, digits: str, currency_crc: CrcCVariant) -> bool:
    token_class, block = split_token(parse_digits(digits))
    return open_block(token_class, cipher_for(key.ea, key.key).decrypt(block), currency_crc)[2]


@st.composite
def wrong_crc_tokens(draw, key: DecoderKey, *, subclass: int = DEFAULT_SUBCLASS,
                     currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> str:
    """20 digits under the meter's key whose plain block carries a wrong CRC."""
    lo, hi = _tid_bounds(key, None, None)
    fields = TransferFields(draw(st.integers(0, 15)), draw(st.integers(lo, hi)), draw(st.integers(1, 0xFFFF)))
    plain = seal_block(CREDIT_CLASS, subclass, fields.pack(), currency_crc) ^ draw(st.integers(1, 0xFFFF))
    return format_digits(join_token(CREDIT_CLASS, cipher_for(key.ea, key.key).encrypt(plain)))


@st.composite
def wrong_key_tokens(draw, key: DecoderKey, *, subclass: int = DEFAULT_SUBCLASS,
                     amounts: st.SearchStrategy = DEFAULT_AMOUNTS,
                     currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> str:
    """A well-formed credit token under another key of the meter's algorithm."""
    size = key_bytes_for(key.ea)
    other = draw(st.binary(min_size=size, max_size=size).filter(lambda k: k != key.key))
    # the same key attributes, only the key differs: what a vending system with the wrong meter's key sells
    wrong = DecoderKey(other, key.ea, key.kt, key.krn, key.ti, key.sgc, key.base, key.ken)
    token = draw(tokens_for(wrong, subclass=subclass, amounts=amounts, currency_crc=currency_crc))
    if _crc_ok(key, token.digits, currency_crc):
        reject()  # 1 in 65536: the meter's key opens it to a good CRC, so it is no near-miss
    return token.digits


def old_tid_tokens(key: DecoderKey, before: datetime, *, subclass: int = DEFAULT_SUBCLASS,
                   amounts: st.SearchStrategy = DEFAULT_AMOUNTS,
                   currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> st.SearchStrategy:
    """Authentic credit tokens with a TID before ``before`` (see the module's note on *old*)."""
    return tokens_for(key, subclass=subclass, amounts=amounts, before=before, currency_crc=currency_crc)


@st.composite
def replayed_tokens(draw, key: DecoderKey, *, distinct: int = 3, subclass: int = DEFAULT_SUBCLASS,
                    amounts: st.SearchStrategy = DEFAULT_AMOUNTS, after: datetime | None = None,
                    currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> list[str]:
    """Up to ``distinct`` authentic tokens (distinct TIDs), each entered one or more times,
    at least one of them twice, in a drawn order: an entry seen earlier in the list is a replay.
    There are no more replays than tokens, so a run of refusals stays short of a meter's
    bad-token lockout (five in a row on a bijli meter) when ``distinct`` is at most four."""
    tids = draw(st.lists(_tids(key, after), min_size=1, max_size=distinct, unique=True))
    tokens = [_vend(key, tid, draw(amounts), subclass, draw(st.integers(0, 15)), currency_crc).digits for tid in tids]
    extra = draw(st.lists(st.sampled_from(tokens), min_size=1, max_size=len(tokens)))
    return draw(st.permutations(tokens + extra))
