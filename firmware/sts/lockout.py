"""The bad-token lockout, kept per token source (our addition, not in IEC 62055-41).

Nobody should brute-force the 16-bit CRC of an STS token by typing: after
``lockout_after`` refused tokens in a row from one source the meter refuses that
source's tokens for ``lockout_minutes`` without decoding them. Each source
(:class:`TokenSource`: the keypad, the service console, the optical port, the DLMS
token gateway) keeps its own count and lock, so junk typed at the keypad never
stops a vending system delivering a paid recharge through the token gateway, and
a head-end's bad deliveries never lock the consumer's keypad.

What counts: a token that is not authentic or not usable (format, CRC, key type,
range, function, overflow ...). What never counts: a *replay*, an authentic token
the meter has seen already (``used``) or whose TID is older than the TID memory
(``old``). Replaying a token already credited proves nothing about guessing the
CRC, and counting it let anyone holding an old receipt lock the meter. Only an
accepted meter-specific token (class 0 or 2) clears its source's count: class 1
tokens are public, so an authentic one proves no knowledge of the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .errors import DecoderStateError
from .results import TokenResult, TokenResultCode


class TokenSource(StrEnum):
    """Where a token was entered: its lockout, the event log and the token gateway's
    delivery method (IC 115: manual for the keypad, local, remote for the head-end)
    name it. A StrEnum, so callers that name a source by its word compare equal."""

    CONSOLE = "console"
    KEYPAD = "keypad"
    DLMS = "dlms"
    OPTICAL = "optical"


#: the sources that were one shared lockout before it was kept per source (a stored
#: state of that time carries its count and lock to each of them, not to the gateway)
LOCAL_SOURCES = (TokenSource.KEYPAD, TokenSource.CONSOLE, TokenSource.OPTICAL)

#: results that are replays of an authentic token: they never count towards a lockout
REPLAYS = frozenset({TokenResultCode.USED, TokenResultCode.OLD})


@dataclass(frozen=True)
class SourceLockout:
    """One source's consecutive refused tokens and the end of its lock, if locked."""

    source: TokenSource
    bad_count: int = 0
    locked_until: datetime | None = None

    def __post_init__(self):
        if not isinstance(self.source, TokenSource):
            raise DecoderStateError(f"a lockout's source must be a TokenSource, got {self.source!r}")
        if not isinstance(self.bad_count, int) or isinstance(self.bad_count, bool) or self.bad_count < 0:
            raise DecoderStateError(f"bad_count must be a whole number >= 0, got {self.bad_count!r}")

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    @property
    def idle(self) -> bool:
        """Nothing to remember: no count, no lock (the state keeps no such entry)."""
        return self.bad_count == 0 and self.locked_until is None


def counts(result: TokenResult) -> bool:
    """Whether a refused token counts towards its source's lockout."""
    return not result.accepted and result.code is not TokenResultCode.LOCKED_OUT and result.code not in REPLAYS


def clears(result: TokenResult) -> bool:
    """Whether an accepted token clears its source's count (meter-specific: class 0 or 2)."""
    return result.accepted and result.token_class in (0, 2)


def after(lock: SourceLockout, result: TokenResult, now: datetime, lockout_after: int,
          lockout_minutes: int) -> SourceLockout:
    """The source's lockout after ``result`` (its lock already checked and run out)."""
    if clears(result):
        return SourceLockout(lock.source)
    if not counts(result):
        return lock
    count = lock.bad_count + 1
    if lockout_after and count >= lockout_after:
        return SourceLockout(lock.source, 0, now + timedelta(minutes=lockout_minutes))
    return SourceLockout(lock.source, count, lock.locked_until)


__all__ = ["LOCAL_SOURCES", "REPLAYS", "SourceLockout", "TokenSource", "after", "clears", "counts"]
