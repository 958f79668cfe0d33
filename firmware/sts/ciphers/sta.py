"""EA07: the Standard Transfer Algorithm (STA), 64-bit key, 64-bit block.

IEC 62055-41 encryption algorithm 07, as publicly described:
16 rounds of a key-selected 4-bit substitution (S1 or S2 per nibble, chosen by key
bit 4i+3 of a rotating copy of NOT key) followed by a fixed 64-bit permutation.

Table-driven: a round is 8 look-ups of one byte each into key-independent tables
that already hold "substitute both nibbles of this byte, then permute the result"
as a 64-bit OR-mask. The key only chooses which of four tables each byte position
uses in each round, so a key costs 16x8 tuple slots and no table building.

Decryption is the exact inverse of encryption. NOTE: one public description gives decryption
as "inverse(S2) if key bit 4i is 1" with k = key rotating right; the vectors (and
arithmetic) show the choice is the complement: inverse(S2) when that bit of the
key is 0, i.e. the same nibble choices as encryption, in reverse round order.
"""

from __future__ import annotations

from ..errors import KeyMaterialError

S1 = (14, 10, 7, 9, 12, 3, 2, 5, 13, 0, 15, 1, 4, 8, 6, 11)
S2 = (12, 8, 2, 13, 7, 6, 1, 3, 11, 5, 9, 15, 0, 4, 10, 14)
# source bit j goes to destination bit P[j]
P = (
    55, 42, 10, 18, 24, 21, 44, 35, 2, 22, 56, 43, 27, 58, 9, 50,
    6, 36, 12, 61, 37, 38, 53, 16, 62, 3, 7, 4, 32, 20, 63, 25,
    51, 52, 54, 33, 49, 19, 46, 29, 48, 31, 23, 30, 41, 28, 13, 5,
    40, 60, 39, 11, 15, 17, 1, 0, 57, 34, 59, 8, 47, 14, 45, 26,
)  # fmt: skip

_M64 = (1 << 64) - 1


def _inverse(table: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(table)
    for i, v in enumerate(table):
        inv[v] = i
    return tuple(inv)


S1_INV = _inverse(S1)
S2_INV = _inverse(S2)
P_INV = _inverse(P)


def _permute_bytes(perm: tuple[int, ...]) -> list[tuple[int, ...]]:
    """out[b][v]: the byte value v placed at byte position b, then permuted."""
    out = []
    for b in range(8):
        bit_masks = [1 << perm[8 * b + i] for i in range(8)]
        row = [0] * 256
        for v in range(1, 256):
            low = v & -v  # lowest set bit: build each entry from a smaller one
            row[v] = row[v ^ low] | bit_masks[low.bit_length() - 1]
        out.append(tuple(row))
    return out


_P_BYTES = _permute_bytes(P)
_P_INV_BYTES = _permute_bytes(P_INV)
_NO_PERM = [tuple(v << (8 * b) for v in range(256)) for b in range(8)]


def _byte_tables(sboxes, placed) -> list[list[tuple[int, ...]]]:
    """tables[b][c][v] = placed[b][v with both nibbles substituted under choice c].

    c bit 0 picks the box for the low nibble, bit 1 for the high nibble (0 -> first
    box of ``sboxes``, 1 -> second); ``placed`` positions (and permutes) the byte.
    """
    out = []
    for b in range(8):
        row_b = placed[b]
        per_choice = []
        for c in range(4):
            lo_box = sboxes[c & 1]
            hi_box = sboxes[c >> 1]
            per_choice.append(tuple(row_b[lo_box[v & 15] | (hi_box[v >> 4] << 4)] for v in range(256)))
        out.append(per_choice)
    return out


_ENC_SP = _byte_tables((S1, S2), _P_BYTES)  # substitute then permute (one encryption round)
_DEC_SP = _byte_tables((S1_INV, S2_INV), _P_INV_BYTES)  # inverse substitute, inverse permute
_DEC_S = _byte_tables((S1_INV, S2_INV), _NO_PERM)  # inverse substitute only (last step)


def _rotr(x: int, n: int) -> int:
    n %= 64
    return ((x >> n) | (x << (64 - n))) & _M64


def _round_choices(key: int) -> list[list[int]]:
    """choices[r][b]: the 2-bit S-box choice for byte b in encryption round r."""
    k = _rotr(~key & _M64, 12)
    rounds = []
    for _ in range(16):
        rounds.append(
            [((k >> (8 * b + 3)) & 1) | (((k >> (8 * b + 7)) & 1) << 1) for b in range(8)]
        )
        k = _rotr(k, 63)  # rotate left by one
    return rounds


class Sta:
    """STA with one key; blocks are 64-bit unsigned ints."""

    __slots__ = ("_enc", "_dec", "_dec_last")
    key_bytes = 8

    def __init__(self, key: bytes):
        if len(key) != 8:
            raise KeyMaterialError("STA (EA07) takes a 64-bit key")
        choices = _round_choices(int.from_bytes(key, "big"))
        self._enc = tuple(tuple(_ENC_SP[b][ch[b]] for b in range(8)) for ch in choices)
        # Decrypt = P_inv, then for r = 15..1 (S_r inverse then P_inv), then S_0 inverse.
        self._dec = tuple(
            tuple(_DEC_SP[b][choices[r][b]] for b in range(8)) for r in range(15, 0, -1)
        )
        self._dec_last = tuple(_DEC_S[b][choices[0][b]] for b in range(8))

    def encrypt(self, x: int) -> int:
        for t0, t1, t2, t3, t4, t5, t6, t7 in self._enc:
            x = (
                t0[x & 255] | t1[(x >> 8) & 255] | t2[(x >> 16) & 255] | t3[(x >> 24) & 255]
                | t4[(x >> 32) & 255] | t5[(x >> 40) & 255] | t6[(x >> 48) & 255] | t7[x >> 56]
            )  # fmt: skip
        return x

    def decrypt(self, x: int) -> int:
        p0, p1, p2, p3, p4, p5, p6, p7 = _P_INV_BYTES
        x = (
            p0[x & 255] | p1[(x >> 8) & 255] | p2[(x >> 16) & 255] | p3[(x >> 24) & 255]
            | p4[(x >> 32) & 255] | p5[(x >> 40) & 255] | p6[(x >> 48) & 255] | p7[x >> 56]
        )  # fmt: skip
        for t0, t1, t2, t3, t4, t5, t6, t7 in self._dec:
            x = (
                t0[x & 255] | t1[(x >> 8) & 255] | t2[(x >> 16) & 255] | t3[(x >> 24) & 255]
                | t4[(x >> 32) & 255] | t5[(x >> 40) & 255] | t6[(x >> 48) & 255] | t7[x >> 56]
            )  # fmt: skip
        t0, t1, t2, t3, t4, t5, t6, t7 = self._dec_last
        return (
            t0[x & 255] | t1[(x >> 8) & 255] | t2[(x >> 16) & 255] | t3[(x >> 24) & 255]
            | t4[(x >> 32) & 255] | t5[(x >> 40) & 255] | t6[(x >> 48) & 255] | t7[x >> 56]
        )  # fmt: skip
