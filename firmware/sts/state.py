"""The meter-side STS decoder state: everything the decoder remembers between tokens.

IEC 62055-41 requires a meter to keep its decoder key and a window of recent TIDs
in non-volatile memory; meters also hold key-change sections while the rest of a
set arrives, and (our addition) a consecutive-bad-token counter with a lockout
time for each token source (:mod:`firmware.sts.lockout`) so nobody can brute-force
the 16-bit CRC by typing, and nobody at one source can lock out another. The state is one frozen
value so the decoder is a pure function, and it converts to a JSON-safe record (by field type,
:mod:`firmware.records`) so ``firmware.storage`` can commit it together with the credit in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bijli.firmware.errors import StorageError
from bijli.firmware.records import from_record, to_record

from .crc import DEFAULT_CURRENCY_CRC, CrcCVariant
from .errors import KeyMaterialError, DecoderStateError
from .keys import DecoderKey
from .lockout import LOCAL_SOURCES, SourceLockout, TokenSource

STATE_VERSION = 2  # 2: the lockout kept per token source (1: one bad_count and locked_until for all)


@dataclass(frozen=True)
class PendingSection:
    """A key-change section waiting for the rest of its set."""

    subclass: int  # 3, 4, 8 or 9
    data: int  # the 44-bit data field
    arrived: datetime


@dataclass(frozen=True)
class DecoderState:
    key: DecoderKey
    tids: tuple[int, ...] = ()  # sorted ascending, at most tid_window of them
    tid_window: int = 100
    pending: tuple[PendingSection, ...] = ()
    key_change_window_minutes: int = 60
    lockouts: tuple[SourceLockout, ...] = ()  # the sources with a count or a lock, in source order
    lockout_after: int = 5  # 0 disables the lockout
    lockout_minutes: int = 30
    manufacturer_code: int = 0  # class 1 tokens must carry this code
    currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC  # the CRC rule of currency tokens (crc.py)

    def __post_init__(self):
        for name in ("tid_window", "key_change_window_minutes", "lockout_after",
                     "lockout_minutes", "manufacturer_code"):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise DecoderStateError(f"{name} must be a whole number >= 0, got {v!r}")
        if self.tid_window < 1:
            raise DecoderStateError("tid_window must be at least 1")
        if self.manufacturer_code > 0xFFFF:
            raise DecoderStateError("manufacturer_code must fit in 16 bits")
        if not isinstance(self.currency_crc, CrcCVariant):
            raise DecoderStateError(f"currency_crc must be a CrcCVariant, got {self.currency_crc!r}")
        sources = [lock.source for lock in self.lockouts]
        if any(not isinstance(lock, SourceLockout) for lock in self.lockouts) or len(set(sources)) != len(sources):
            raise DecoderStateError("lockouts must be SourceLockouts, at most one per source")

    def lockout(self, source: TokenSource) -> SourceLockout:
        """``source``'s count and lock (an idle one when it has none)."""
        for lock in self.lockouts:
            if lock.source is source:
                return lock
        return SourceLockout(TokenSource(source))

    def with_lockout(self, lock: SourceLockout) -> DecoderState:
        """This state with ``lock`` as its source's lockout (an idle one is not kept)."""
        others = [x for x in self.lockouts if x.source is not lock.source]
        kept = others if lock.idle else [*others, lock]
        order = list(TokenSource)
        return replace(self, lockouts=tuple(sorted(kept, key=lambda x: order.index(x.source))))

    def locked_out(self, now: datetime, source: TokenSource = TokenSource.KEYPAD) -> bool:
        """True while ``source`` (by default the keypad) refuses tokens (show it on the display)."""
        return self.lockout(source).locked(now)

    def locked_sources(self, now: datetime) -> tuple[TokenSource, ...]:
        """The sources refusing tokens at ``now``."""
        return tuple(lock.source for lock in self.lockouts if lock.locked(now))

    @property
    def key_change_window(self) -> timedelta:
        return timedelta(minutes=self.key_change_window_minutes)

    def with_key(self, key: DecoderKey, *, clear_tids: bool = False) -> DecoderState:
        return replace(self, key=key, pending=(), tids=() if clear_tids else self.tids)

    # --- persistence ---------------------------------------------------------

    def to_dict(self) -> dict:
        """The stored record (``firmware.records`` by field type), with its format version."""
        return {"version": STATE_VERSION, **to_record(self)}

    @classmethod
    def from_dict(cls, d: dict) -> DecoderState:
        try:
            if d["version"] == 1:
                d = _from_version_1(d)
            elif d["version"] != STATE_VERSION:
                raise DecoderStateError(f"decoder state version {d['version']!r} is not {STATE_VERSION}")
            # states saved before the setting existed used no currency tokens of their own rule
            record = {"currency_crc": DEFAULT_CURRENCY_CRC.value, **d}
            state = from_record(cls, {k: v for k, v in record.items() if k != "version"})
            tids = tuple(sorted(state.tids))
            if any(not 0 <= t < 1 << 24 for t in tids) or len(set(tids)) != len(tids):
                raise DecoderStateError("stored TIDs must be distinct 24-bit numbers")
            if any(p.subclass not in (3, 4, 8, 9) or not 0 <= p.data < 1 << 44 for p in state.pending):
                raise DecoderStateError("stored key-change sections are malformed")
            order = list(TokenSource)
            lockouts = tuple(sorted((x for x in state.lockouts if not x.idle), key=lambda x: order.index(x.source)))
            return replace(state, tids=tids, lockouts=lockouts)
        except StorageError as exc:
            raise DecoderStateError(f"stored decoder state is malformed: {exc}") from None
        except DecoderStateError:
            raise
        except KeyMaterialError as exc:
            raise DecoderStateError(f"stored decoder key is invalid: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecoderStateError(f"stored decoder state is malformed: {exc!r}") from None


def _from_version_1(d: dict) -> dict:
    """A version 1 record had one lockout for every source; it becomes the lockout of each
    local source (keypad, console, optical), never of the token gateway: an authenticated
    delivery is never held back by what was typed at the meter."""
    rest = {k: v for k, v in d.items() if k not in ("bad_count", "locked_until")}
    lock = {"bad_count": d["bad_count"], "locked_until": d["locked_until"]}
    idle = lock["bad_count"] == 0 and lock["locked_until"] is None
    return {**rest, "version": STATE_VERSION,
            "lockouts": [] if idle else [{"source": s.value, **lock} for s in LOCAL_SOURCES]}


__all__ = ["DecoderState", "PendingSection"]
