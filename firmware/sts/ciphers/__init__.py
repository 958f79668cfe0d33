"""The STS encryption algorithms by their IEC 62055-41 EA code: "07" STA, "09" DEA,
"11" MISTY1. Each is a class taking the decoder key bytes with ``encrypt(int)`` and
``decrypt(int)`` on 64-bit blocks; :func:`cipher_for` caches one per key because a
meter decodes and a vending run encodes many blocks under the same key.

A cipher's module is imported the first time that algorithm is used, not when the
package is: ``bijli token decode`` on a MISTY1 meter never loads DES (and the
``cryptography`` library behind it), and the STA tables are never built for it.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module

from ..errors import KeyMaterialError

#: EA code -> (module, class, decoder key length in bytes)
ALGORITHMS = {"07": ("sta", "Sta", 8), "09": ("dea", "Dea", 8), "11": ("misty1", "Misty1", 16)}


def key_bytes_for(ea: str) -> int:
    """Decoder key length in bytes for an EA code (8 for STA/DEA, 16 for MISTY1)."""
    try:
        return ALGORITHMS[ea][2]
    except (KeyError, TypeError):
        raise KeyMaterialError(f"unknown encryption algorithm EA{ea!r}; use 07, 09 or 11") from None


def algorithm(ea: str) -> type:
    """The cipher class for an EA code (imports its module on first use)."""
    key_bytes_for(ea)
    module, name, _ = ALGORITHMS[ea]
    return getattr(import_module(f"{__name__}.{module}"), name)


@lru_cache(maxsize=64)
def cipher_for(ea: str, key: bytes):
    """The block cipher for algorithm ``ea`` under ``key`` (cached per key)."""
    return algorithm(ea)(bytes(key))


__all__ = ["ALGORITHMS", "algorithm", "cipher_for", "key_bytes_for"]
