"""The meter's configuration: one TOML document, validated into frozen dataclasses.

Each firmware part owns its table (``[metrology]``, ``[tariff]``, ``[prepaid]``,
``[sts]``, ``[relay]``...) and parses it with :class:`Table`, which names the
dotted key of any bad value in a :class:`~firmware.errors.ConfigError`. This
module holds the meter's identity and the DLMS settings, and assembles the
whole :class:`MeterConfig`. Every key has a default, so an empty document is a
working demo meter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bijli.firmware.errors import ConfigError

_MISSING = object()


class Table:
    """Typed, key-naming access to one TOML table."""

    def __init__(self, table: Any, prefix: str, known: set[str] | None = None):
        if not isinstance(table, dict):
            raise ConfigError(prefix, f"must be a table, not {type(table).__name__}")
        self.table = table
        self.prefix = prefix
        if known is not None:
            unknown = sorted(set(table) - known)
            if unknown:
                raise ConfigError(f"{prefix}.{unknown[0]}", "unknown key")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def get(self, name: str, default: Any, kind: type | tuple[type, ...]) -> Any:
        value = self.table.get(name, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(self.key(name), f"must be {names}, not {value!r}")
        return value

    def str(self, name: str, default: str) -> str:
        return self.get(name, default, str)

    def bool(self, name: str, default: bool) -> bool:
        return self.get(name, default, bool)

    def int(self, name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        value = self.get(name, default, int)
        self._range(name, value, lo, hi)
        return value

    def float(self, name: str, default: float, lo: float | None = None, hi: float | None = None) -> float:
        value = self.get(name, default, float)
        if not math.isfinite(value):  # NaN compares false with every bound: it would pass them all
            raise ConfigError(self.key(name), f"must be a finite number, not {value!r}")
        self._range(name, value, lo, hi)
        return value

    def hex(self, name: str, default: str, length: int | None = None) -> bytes:
        text = self.str(name, default)
        try:
            raw = bytes.fromhex(text.replace(" ", ""))
        except ValueError:
            raise ConfigError(self.key(name), f"must be hexadecimal, not {text!r}") from None
        if length is not None and len(raw) != length:
            raise ConfigError(self.key(name), f"must be {length} bytes ({2 * length} hex digits), got {len(raw)}")
        return raw

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default)
        if value not in choices:
            raise ConfigError(self.key(name), f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def sub(self, name: str) -> dict:
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(self.key(name), "must be a table")
        return value

    def _range(self, name, value, lo, hi) -> None:
        if lo is not None and value < lo:
            raise ConfigError(self.key(name), f"must be at least {lo}, not {value}")
        if hi is not None and value > hi:
            raise ConfigError(self.key(name), f"must be at most {hi}, not {value}")


@dataclass(frozen=True)
class Identity:
    serial: str = "BJL0000001"
    manufacturer: str = "BJL"  # FLAG id, also the mode E identification prefix
    logical_device_name: str = ""  # default: manufacturer + serial, padded as IS 15959 does
    time_zone_minutes: int = 330  # IST

    @property
    def ldn(self) -> str:
        if self.logical_device_name:
            return self.logical_device_name
        return (self.serial if self.serial.startswith(self.manufacturer) else self.manufacturer + self.serial)[:16]

    @property
    def system_title(self) -> bytes:
        """8 octets: the 3-letter manufacturer id and 5 octets from the serial's digits
        (IEC 62056-5-3 clause 9.2.4.8.3 suggests exactly this structure)."""
        digits = "".join(ch for ch in self.serial if ch.isdigit()) or "0"
        return self.manufacturer.encode("ascii")[:3].ljust(3, b"X") + (int(digits) % (1 << 40)).to_bytes(5, "big")

    @classmethod
    def from_table(cls, table: dict, prefix: str = "meter") -> "Identity":
        t = Table(table, prefix, {"serial", "manufacturer", "logical_device_name", "time_zone_minutes"})
        manufacturer = t.str("manufacturer", cls.manufacturer)
        if len(manufacturer) != 3 or not manufacturer.isalpha() or not manufacturer.isupper():
            raise ConfigError(t.key("manufacturer"), "must be three capital letters (the FLAG manufacturer id)")
        serial = t.str("serial", cls.serial)
        if not serial or len(serial) > 16 or not serial.isascii():
            raise ConfigError(t.key("serial"), "must be 1-16 ASCII characters")
        return cls(serial, manufacturer, t.str("logical_device_name", ""), t.int("time_zone_minutes", 330, -720, 840))


@dataclass(frozen=True)
class DlmsSettings:
    max_pdu: int = 1024
    reader_password: bytes = b"12345678"
    hls_secret: bytes = b"bijli-hls-secret"
    encryption_key: bytes = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    authentication_key: bytes = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    master_key: bytes = bytes.fromhex("000102030405060708090A0B0C0D0E0F")  # KEK for key_transfer
    hdlc_physical_address: int = 16
    lockout_after: int = 3
    lockout_minutes: float = 5.0
    inactivity_timeout_s: float = 120.0
    association_timeout_s: float = 30.0  # a peer that has not associated by then is closed
    max_connections: int = 128  # per TCP endpoint (wrapper, HDLC over TCP)

    @classmethod
    def from_table(cls, table: dict, prefix: str = "dlms") -> "DlmsSettings":
        t = Table(table, prefix, {
            "max_pdu", "reader_password", "hls_secret", "encryption_key", "authentication_key", "master_key",
            "hdlc_physical_address", "lockout_after", "lockout_minutes", "inactivity_timeout_s",
            "association_timeout_s", "max_connections",
        })
        return cls(
            max_pdu=t.int("max_pdu", 1024, 64, 65535),
            reader_password=t.str("reader_password", "12345678").encode(),
            hls_secret=t.str("hls_secret", "bijli-hls-secret").encode(),
            encryption_key=t.hex("encryption_key", "000102030405060708090A0B0C0D0E0F", 16),
            authentication_key=t.hex("authentication_key", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", 16),
            master_key=t.hex("master_key", "000102030405060708090A0B0C0D0E0F", 16),
            hdlc_physical_address=t.int("hdlc_physical_address", 16, 16, 0x3FFF),
            lockout_after=t.int("lockout_after", 3, 1, 100),
            lockout_minutes=t.float("lockout_minutes", 5.0, 0.0, 1440.0),
            inactivity_timeout_s=t.float("inactivity_timeout_s", 120.0, 1.0, 86400.0),
            association_timeout_s=t.float("association_timeout_s", 30.0, 1.0, 86400.0),
            max_connections=t.int("max_connections", 128, 1, 100_000),
        )


@dataclass(frozen=True)
class StorageSettings:
    save_interval_s: float = 60.0  # energy registers: worst-case loss on power cut = this much energy

    @classmethod
    def from_table(cls, table: dict, prefix: str = "storage") -> "StorageSettings":
        t = Table(table, prefix, {"save_interval_s"})
        return cls(t.float("save_interval_s", 60.0, 1.0, 86400.0))
