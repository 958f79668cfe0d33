"""The meter-side STS decoder state: everything the decoder remembers between tokens.

IEC 62055-41 requires a meter to keep its decoder key and a window of recent TIDs
in non-volatile memory; meters also hold key-change sections while the rest of a
set arrives, and (our addition) a consecutive-bad-token counter with a lockout
time so nobody can brute-force the 16-bit CRC by typing. The state is one frozen
value so the decoder is a pure function, and it converts to a JSON-safe dict so
``firmware.storage`` can commit it together with the credit in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

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
        k = self.key
        return {
            "version": STATE_VERSION,
            "key": {"key": k.key.hex(), "ea": k.ea, "kt": k.kt, "krn": k.krn, "ti": k.ti,
                    "sgc": k.sgc, "base": k.base, "ken": k.ken},  # fmt: skip
            "tids": list(self.tids),
            "tid_window": self.tid_window,
            "pending": [{"subclass": p.subclass, "data": p.data, "arrived": p.arrived.isoformat()}
                        for p in self.pending],  # fmt: skip
            "key_change_window_minutes": self.key_change_window_minutes,
            "bad_count": self.bad_count,
            "locked_until": None if self.locked_until is None else self.locked_until.isoformat(),
            "lockout_after": self.lockout_after,
            "lockout_minutes": self.lockout_minutes,
            "manufacturer_code": self.manufacturer_code,
            "currency_crc": self.currency_crc.value,
        }

    @classmethod
    def from_dict(cls, d: dict) -> DecoderState:
        try:
            if d["version"] != STATE_VERSION:
                raise DecoderStateError(f"decoder state version {d['version']!r} is not {STATE_VERSION}")
            k = d["key"]
            key = DecoderKey(bytes.fromhex(k["key"]), k["ea"], k["kt"], k["krn"], k["ti"], k["sgc"],
                             k["base"], k["ken"])  # fmt: skip
            tids = tuple(sorted(int(t) for t in d["tids"]))
            if any(not 0 <= t < 1 << 24 for t in tids) or len(set(tids)) != len(tids):
                raise DecoderStateError("stored TIDs must be distinct 24-bit numbers")
            pending = tuple(
                PendingSection(int(p["subclass"]), int(p["data"]), datetime.fromisoformat(p["arrived"]))
                for p in d["pending"]
            )
            if any(p.subclass not in (3, 4, 8, 9) or not 0 <= p.data < 1 << 44 for p in pending):
                raise DecoderStateError("stored key-change sections are malformed")
            locked = d["locked_until"]
            return cls(
                key=key,
                tids=tids,
                tid_window=d["tid_window"],
                pending=pending,
                key_change_window_minutes=d["key_change_window_minutes"],
                bad_count=d["bad_count"],
                locked_until=None if locked is None else datetime.fromisoformat(locked),
                lockout_after=d["lockout_after"],
                lockout_minutes=d["lockout_minutes"],
                manufacturer_code=d["manufacturer_code"],
                # states saved before the setting existed used no currency tokens of their own rule
                currency_crc=CrcCVariant(d.get("currency_crc", DEFAULT_CURRENCY_CRC.value)),
            )
        except DecoderStateError:
            raise
        except KeyMaterialError as exc:
            raise DecoderStateError(f"stored decoder key is invalid: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecoderStateError(f"stored decoder state is malformed: {exc!r}") from None


__all__ = ["DecoderState", "PendingSection"]
