"""EA11: the MISTY1 block cipher (RFC 2994), 128-bit key, 64-bit block, big-endian.

IEC 62055-41 names MISTY1 encryption algorithm 11 for 128-bit decoder keys. The
cipher follows RFC 2994 section 2 exactly (FO/FI/FL functions, key schedule,
8 rounds, final FL layer and half swap). It is table-driven for speed: the FI
function splits into two key-independent 16-bit maps around its key addition,
``FI(x, k) = _FI_OUT[_FI_IN[x] ^ k]``, so one FI costs two list look-ups and no
per-key tables are needed (a meter or vending run pays nothing per new key beyond
the 32-entry key schedule). The two 65,536-entry tables cost more to build than a
command-line decode takes altogether, so a process computes FI directly for its
first blocks and builds the tables only when it has many blocks to do.
"""

from __future__ import annotations

from ..errors import KeyMaterialError
from .misty1_sboxes import S7, S9

_M16 = 0xFFFF
_M32 = 0xFFFFFFFF


def _fi(x: int, k: int) -> int:
    """RFC 2994 FI, computed directly: 9-bit half d9, 7-bit half d7, key KI = KI7|KI9."""
    d9 = S9[x >> 7] ^ (x & 0x7F)
    d7 = S7[x & 0x7F] ^ (d9 & 0x7F)
    d7 ^= k >> 9
    d9 ^= k & 0x1FF
    return (d7 << 9) | (S9[d9] ^ d7)


def _fi_tables() -> tuple[list[int], list[int]]:
    """FI's key-independent halves: FI(x, k) == fi_out[fi_in[x] ^ k]."""
    fi_in: list[int] = []
    for hi in range(512):  # x = hi << 7 | lo
        s = S9[hi]
        fi_in.extend([((S7[lo] ^ ((s ^ lo) & 0x7F)) << 9) | (s ^ lo) for lo in range(128)])
    # after the key addition only the last S9 step remains; it keeps d7 in place
    fi_out: list[int] = []
    for d7 in range(128):
        fi_out.extend([(d7 << 9) | (S9[lo] ^ d7) for lo in range(512)])
    return fi_in, fi_out


#: blocks a process ciphers with direct FI before building the tables pays off
DIRECT_BLOCKS = 64
_direct_left = DIRECT_BLOCKS
_fo_fast = None  # the table-driven FO, once the tables exist


def _fo_for_next_block():
    global _direct_left, _fo_fast
    if _fo_fast is not None:
        return _fo_fast
    if _direct_left > 0:
        _direct_left -= 1
        return _fo_direct
    fi_in, fi_out = _fi_tables()

    def fo(x: int, k: tuple[int, ...], fi_in=fi_in, fi_out=fi_out) -> int:
        ko1, ki1, ko2, ki2, ko3, ki3, ko4 = k
        t0 = x >> 16
        t1 = x & _M16
        t0 = fi_out[fi_in[t0 ^ ko1] ^ ki1] ^ t1
        t1 = fi_out[fi_in[t1 ^ ko2] ^ ki2] ^ t0
        t0 = fi_out[fi_in[t0 ^ ko3] ^ ki3] ^ t1
        return ((t1 ^ ko4) << 16) | t0

    _fo_fast = fo
    return fo


class Misty1:
    """MISTY1 with one expanded key; blocks are 64-bit unsigned ints."""

    __slots__ = ("_fo", "_fl")
    key_bytes = 16

    def __init__(self, key: bytes):
        if len(key) != 16:
            raise KeyMaterialError("MISTY1 (EA11) takes a 128-bit key")
        k = [int.from_bytes(key[2 * i : 2 * i + 2], "big") for i in range(8)]
        ek = k + [_fi(k[i], k[(i + 1) % 8]) for i in range(8)]
        # RFC 2994 keeps EK[i+16]/EK[i+24] as the 9/7-bit halves of EK[i+8]; our FI
        # takes the whole 16-bit KI_ij because its layout puts those halves in place.
        # FO round r: (KO1, KI1, KO2, KI2, KO3, KI3, KO4)
        self._fo = tuple(
            (
                ek[r],
                ek[(r + 5) % 8 + 8],
                ek[(r + 2) % 8],
                ek[(r + 1) % 8 + 8],
                ek[(r + 7) % 8],
                ek[(r + 3) % 8 + 8],
                ek[(r + 4) % 8],
            )
            for r in range(8)
        )
        # FL layer i: (KL_and, KL_or) for d1 ^= d0 & a; d0 ^= d1 | b
        fl = []
        for i in range(10):
            if i % 2 == 0:
                fl.append((ek[i // 2], ek[(i // 2 + 6) % 8 + 8]))
            else:
                fl.append((ek[((i - 1) // 2 + 2) % 8 + 8], ek[((i - 1) // 2 + 4) % 8]))
        self._fl = tuple(fl)

    def encrypt(self, block: int) -> int:
        f, fo, fl = _fo_for_next_block(), self._fo, self._fl
        d0 = block >> 32
        d1 = block & _M32
        for r in range(0, 8, 2):
            d0 = _fl(d0, fl[r])
            d1 = _fl(d1, fl[r + 1])
            d1 ^= f(d0, fo[r])
            d0 ^= f(d1, fo[r + 1])
        d0 = _fl(d0, fl[8])
        d1 = _fl(d1, fl[9])
        return (d1 << 32) | d0

    def decrypt(self, block: int) -> int:
        f, fo, fl = _fo_for_next_block(), self._fo, self._fl
        d1 = block >> 32
        d0 = block & _M32
        d0 = _flinv(d0, fl[8])
        d1 = _flinv(d1, fl[9])
        for r in range(6, -1, -2):
            d0 ^= f(d1, fo[r + 1])
            d1 ^= f(d0, fo[r])
            d0 = _flinv(d0, fl[r])
            d1 = _flinv(d1, fl[r + 1])
        return (d0 << 32) | d1


def _fl(x: int, kl: tuple[int, int]) -> int:
    d0 = x >> 16
    d1 = (x & _M16) ^ (d0 & kl[0])
    d0 ^= d1 | kl[1]
    return (d0 << 16) | d1


def _flinv(x: int, kl: tuple[int, int]) -> int:
    d0 = x >> 16
    d1 = x & _M16
    d0 ^= d1 | kl[1]
    d1 ^= d0 & kl[0]
    return (d0 << 16) | d1


def _fo_direct(x: int, k: tuple[int, ...]) -> int:
    ko1, ki1, ko2, ki2, ko3, ki3, ko4 = k
    t0 = x >> 16
    t1 = x & _M16
    t0 = _fi(t0 ^ ko1, ki1) ^ t1
    t1 = _fi(t1 ^ ko2, ki2) ^ t0
    t0 = _fi(t0 ^ ko3, ki3) ^ t1
    return ((t1 ^ ko4) << 16) | t0
