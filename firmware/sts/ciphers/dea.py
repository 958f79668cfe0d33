"""EA09: the Data Encryption Algorithm (single DES, ECB) on one 64-bit block.

IEC 62055-41 encryption algorithm 09 (deprecated for new products, still in the
field). We do not write DES ourselves: ``cryptography``'s TripleDES with
K1 = K2 = K3 is single DES. One ECB encryptor and decryptor context is kept per
key and reused for every block, which is what makes it fast (creating a context
costs more than the block). The DES parity bits of the key are ignored, as DES does.
"""

from __future__ import annotations

from ..errors import KeyMaterialError


def _des3(key: bytes):
    # imported here, not at module level: loading ``cryptography`` costs more than a
    # command-line decode on a MISTY1 meter takes altogether
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    try:  # cryptography >= 43 moved TripleDES to the "decrepit" module
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # pragma: no cover - older cryptography
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    return Cipher(TripleDES(key * 3), modes.ECB())


def des_ecb_encrypt(key: bytes, block: bytes) -> bytes:
    """One-shot single-DES encryption of one 8-byte block (used by DKGA02)."""
    return Dea(key)._enc.update(block)


class Dea:
    """Single DES with one key; blocks are 64-bit unsigned ints."""

    __slots__ = ("_enc", "_dec")
    key_bytes = 8

    def __init__(self, key: bytes):
        if len(key) != 8:
            raise KeyMaterialError("DES (EA09) takes a 64-bit key")
        cipher = _des3(key)
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()

    def encrypt(self, x: int) -> int:
        return int.from_bytes(self._enc.update(x.to_bytes(8, "big")), "big")

    def decrypt(self, x: int) -> int:
        return int.from_bytes(self._dec.update(x.to_bytes(8, "big")), "big")
