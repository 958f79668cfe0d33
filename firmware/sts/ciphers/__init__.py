"""The STS encryption algorithms by their IEC 62055-41 EA code: "07" STA, "09" DEA,
"11" MISTY1. Each is a class taking the decoder key bytes with ``encrypt(int)`` and
``decrypt(int)`` on 64-bit blocks; :func:`cipher_for` caches one per key because a
meter decodes and a vending run encodes many blocks under the same key."""

from __future__ import annotations

from functools import lru_cache

from ..errors import KeyMaterialError
from .dea import Dea
from .misty1 import Misty1
from .sta import Sta

ALGORITHMS = {"07": Sta, "09": Dea, "11": Misty1}


def key_bytes_for(ea: str) -> int:
    """Decoder key length in bytes for an EA code (8 for STA/DEA, 16 for MISTY1)."""
    try:
        return ALGORITHMS[ea].key_bytes
    except KeyError:
        raise KeyMaterialError(f"unknown encryption algorithm EA{ea!r}; use 07, 09 or 11") from None


@lru_cache(maxsize=64)
def cipher_for(ea: str, key: bytes) -> Sta | Dea | Misty1:
    """The block cipher for algorithm ``ea`` under ``key`` (cached per key)."""
    key_bytes_for(ea)
    return ALGORITHMS[ea](bytes(key))


__all__ = ["ALGORITHMS", "Dea", "Misty1", "Sta", "cipher_for", "key_bytes_for"]
