"""The 16-bit STS amount field: exponent (bits 15..14) and mantissa (bits 13..0).

IEC 62055-41 transfer amount, as publicly described: value = m * 10^e + sum over
n = 1..e of 2^14 * 10^(n-1). Encoding picks the smallest exponent that fits and
rounds the mantissa UP, so a customer never receives less than was paid for; the
largest value is 18,201,624. Every 16-bit field decodes to a value, so decoding
cannot fail.
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


def encode_amount(value: int) -> int:
    """The amount field for ``value`` units, rounded up in the customer's favour."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > MAX_AMOUNT:
        raise VendError(f"amount {value!r} is outside 0..{MAX_AMOUNT:,} units")
    for e in range(4):
        top = 16383 * _SCALE[e] + _OFFSET[e]
        if value <= top:
            # a value between two ranges (e.g. 180,215..180,223) becomes the next one's 0
            m = max(0, -((_OFFSET[e] - value) // _SCALE[e]))  # ceil((value - off) / scale)
            return (e << 14) | m
    raise AssertionError("unreachable: value <= MAX_AMOUNT")
