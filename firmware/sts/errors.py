"""The STS engine's own error classes, all under ``firmware.errors.TokenError``.

The decoder reports a bad *token* as a typed result, never as an exception; these
are for bad *requests*: key material of the wrong size or form, a vend request out
of range, a stored decoder state that cannot be read back.
"""

from bijli.firmware.errors import TokenError


class KeyMaterialError(TokenError):
    """A key, PAN, SGC, TI, KRN, KT, EA or DKGA that is malformed or out of range."""


class VendError(TokenError):
    """A vend request that cannot be turned into a token (amount, field out of range)."""


class DecoderStateError(TokenError):
    """A stored DecoderState dict that is missing fields or holds impossible values."""
