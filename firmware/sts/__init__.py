"""The STS token engine (IEC 62055-41 as publicly described; README, STS section).

digits -> block -> decrypt -> authenticate -> validate -> effect, on the meter side
(:func:`decode`, a pure function of :class:`DecoderState`), and the reverse on the
vending side (:mod:`firmware.sts.vend`). Modules, bottom up: ``crc``, ``amount``,
``tid``, ``codec`` (digits, class-bit transposition, block layouts), ``ciphers``
(EA07 STA, EA09 DES, EA11 MISTY1), ``keys`` (PAN, DKGA02/04), ``results``,
``lockout`` (per token source), ``state``, ``decoder``, ``inspector`` (read fields without judging), ``vend``,
``config`` (the ``[sts]`` TOML table).
"""

from .config import StsConfig
from .decoder import decode, note_bad_token
from .keys import DecoderKey, KeyType, Pan, VendingKeyMaterial
from .lockout import SourceLockout, TokenSource
from .results import TokenResult, TokenResultCode
from .state import DecoderState

__all__ = [
    "DecoderKey", "DecoderState", "KeyType", "Pan", "SourceLockout", "StsConfig", "TokenResult",
    "TokenResultCode", "TokenSource", "VendingKeyMaterial", "decode", "note_bad_token",
]  # fmt: skip
