"""The 16-bit STS amount field: exponent (bits 15..14) and mantissa (bits 13..0).

IEC 62055-41 transfer amount, as publicly described: value = m * 10^e + sum over
n = 1..e of 2^14 * 10^(n-1). :func:`encode_amount` picks the smallest exponent
that fits and rounds the mantissa UP, as the public 531-1 vectors do (CTSA21/22:
16383.0 -> 16383.0 + 0.5 step); :func:`encode_amount_down` gives the largest value
not above the request, which a vending tool sells when it must not give more than
was paid. The largest value is 18,201,624. Every 16-bit field decodes to a value,
so decoding cannot fail.
"""

from __future__ import annotations

from .errors import VendError

_OFFSET = (0, 16384, 180224, 1818624)  # sum_{n=1..e} 2^14 * 10^(n-1)
_SCALE = (1, 10, 100, 1000)
MAX_AMOUNT = 16383 * 1000 + _OFFSET[3]  # 18,201,624


def decode_amount(field: int) -> int:
    """The value (in the token's units, e.g. 0.1 kWh) a 16-bit amount field stands for."""
    e = (field >> 14) & 3
    return (field & 0x3FFF) * _SCALE[e] + _OFFSET[e]


def _check(value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > MAX_AMOUNT:
        raise VendError(f"amount {value!r} is outside 0..{MAX_AMOUNT:,} units")


def encode_amount_down(value: int) -> int:
    """The amount field for the largest value a token carries that is not above ``value`` units."""
    _check(value)
    for e in (3, 2, 1, 0):
        if value >= _OFFSET[e]:
            return (e << 14) | min(16383, (value - _OFFSET[e]) // _SCALE[e])
    raise AssertionError("unreachable: _OFFSET[0] == 0")


def encode_amount(value: int) -> int:
    """The amount field for ``value`` units, rounded up in the customer's favour."""
    _check(value)
    for e in range(4):
        top = 16383 * _SCALE[e] + _OFFSET[e]
        if value <= top:
            # a value between two ranges (e.g. 180,215..180,223) becomes the next one's 0
            m = max(0, -((_OFFSET[e] - value) // _SCALE[e]))  # ceil((value - off) / scale)
            return (e << 14) | m
    raise AssertionError("unreachable: value <= MAX_AMOUNT")
