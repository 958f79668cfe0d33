"""Near-valid octets: a valid encoding, damaged the way a line or a careless peer damages it.

A decoder that survives random bytes can still fall over on bytes that are almost
right (a length off by one, a tag flipped into a neighbour, a frame cut short), so
:func:`mutated` starts from any strategy of valid octets and applies one to four of:
a bit flip, an octet set to a boundary value (0x00, 0x7F, 0x80, 0x81, 0x82, 0x84,
0xFF: where A-XDR and BER lengths change form), truncation, extension with random
octets, and a splice with another valid encoding. What comes out is usually invalid
but not always (a flipped bit inside an octet-string's contents is still valid), so a
decoder under test must either decode it or raise its own typed error, never crash;
:data:`bijli.tools.testing.strategies.apdu.invalid_apdus` keeps only the octets bijli's
own decoder refuses.
"""

from __future__ import annotations

from hypothesis import strategies as st

#: octets where a length or tag changes meaning (A-XDR lengths: 0x80 | n, BER: 0x81, 0x82, 0x84)
BOUNDARY_OCTETS = (0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF)
OPERATIONS = ("flip", "truncate", "extend", "splice", "set")


@st.composite
def mutated(draw, valid: st.SearchStrategy) -> bytes:
    """``valid`` (a strategy of bytes) with one to four mutations applied."""
    raw = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPERATIONS))
        if op == "flip" and raw:
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.sampled_from(BOUNDARY_OCTETS))
        elif op == "truncate":
            del raw[draw(st.integers(0, len(raw))):]
        elif op == "extend":
            raw += draw(st.binary(min_size=1, max_size=8))
        elif op == "splice":
            other = draw(valid)
            cut = draw(st.integers(0, len(raw)))
            raw[cut:] = other[draw(st.integers(0, len(other))):]
    return bytes(raw)
