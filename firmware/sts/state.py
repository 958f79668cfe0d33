"""The meter-side STS decoder state: everything the decoder remembers between tokens.

IEC 62055-41 requires a meter to keep its decoder key and a window of recent TIDs
in non-volatile memory; meters also hold key-change sections while the rest of a
set arrives, and (our addition) a consecutive-bad-token counter with a lockout
time so nobody can brute-force the 16-bit CRC by typing. The state is one frozen
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

STATE_VERSION = 1


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
    bad_count: int = 0
    locked_until: datetime | None = None
    lockout_after: int = 5  # 0 disables the lockout
    lockout_minutes: int = 30
    manufacturer_code: int = 0  # class 1 tokens must carry this code
    currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC  # the CRC rule of currency tokens (crc.py)

    def __post_init__(self):
        for name in ("tid_window", "key_change_window_minutes", "bad_count", "lockout_after",
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

    def locked_out(self, now: datetime) -> bool:
        """True while the keypad refuses tokens (show it on the display)."""
        return self.locked_until is not None and now < self.locked_until

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
            if d["version"] != STATE_VERSION:
                raise DecoderStateError(f"decoder state version {d['version']!r} is not {STATE_VERSION}")
            # states saved before the setting existed used no currency tokens of their own rule
            record = {"currency_crc": DEFAULT_CURRENCY_CRC.value, **d}
            state = from_record(cls, {k: v for k, v in record.items() if k != "version"})
            tids = tuple(sorted(state.tids))
            if any(not 0 <= t < 1 << 24 for t in tids) or len(set(tids)) != len(tids):
                raise DecoderStateError("stored TIDs must be distinct 24-bit numbers")
            if any(p.subclass not in (3, 4, 8, 9) or not 0 <= p.data < 1 << 44 for p in state.pending):
                raise DecoderStateError("stored key-change sections are malformed")
            return replace(state, tids=tids)
        except StorageError as exc:
            raise DecoderStateError(f"stored decoder state is malformed: {exc}") from None
        except DecoderStateError:
            raise
        except KeyMaterialError as exc:
            raise DecoderStateError(f"stored decoder key is invalid: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecoderStateError(f"stored decoder state is malformed: {exc!r}") from None


__all__ = ["DecoderState", "PendingSection"]
