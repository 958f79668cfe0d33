"""The ``[sts]`` table of the meter's TOML configuration -> an :class:`StsConfig`.

The meter's decoder key is given either directly (``decoder_key = "HEX"`` with
``ea``, ``kt``, ``krn``, ``ti``, ``sgc``, ``base``, ``ken``) or, as on a test rig
that also vends, as vending key material (``vending_key``, ``pan``, ``sgc``,
``ti``, ``krn``, ``kt``, ``ea``, ``dkga``, ``base``) from which the meter derives
it (IEC 62055-41 DKGA02/DKGA04, see :mod:`firmware.sts.keys`). Decoder behaviour
settings sit beside them, among them ``currency_crc`` (``"crc16"``, the default, or
``"append-01"``): the CRC rule of currency tokens, which no public vector settles
(see :mod:`firmware.sts.crc`). Missing key-material fields take the DEMO values below,
so an empty table runs a demo meter; every bad value raises
``ConfigError(key="sts.<name>")``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bijli.firmware.errors import ConfigError

from .ciphers import ALGORITHMS
from .crc import DEFAULT_CURRENCY_CRC, CrcCVariant
from .errors import KeyMaterialError
from .keys import KEN_NEVER, DecoderKey, Pan, VendingKeyMaterial
from .state import DecoderState
from .tid import BASE_DATES

#: The demo meter: a 160-bit vending key with DKGA04 and MISTY1. Base 2014 because
#: base 1993 rolled over in November 2024.
DEMO = {
    "vending_key": "ABABABABABABABAB949494949494949401234567",
    "pan": "600727000000000009",
    "sgc": "123457",
    "ti": "01",
    "krn": 1,
    "kt": 2,
    "ea": "11",
    "dkga": "04",
    "base": 2014,
}

_KEY_FIELDS = {"decoder_key", "vending_key", "pan", "sgc", "ti", "krn", "kt", "ea", "dkga", "base", "ken"}
_BEHAVIOUR = {
    "tid_window": (100, 1, 10_000),
    "lockout_after": (5, 0, 1000),
    "lockout_minutes": (30, 0, 7 * 24 * 60),
    "key_change_window_minutes": (60, 1, 7 * 24 * 60),
    "manufacturer_code": (0, 0, 0xFFFF),
}


@dataclass(frozen=True)
class StsConfig:
    decoder_key: DecoderKey
    vending: VendingKeyMaterial | None  # None when the table gives decoder_key directly
    tid_window: int = 100
    lockout_after: int = 5
    lockout_minutes: int = 30
    key_change_window_minutes: int = 60
    manufacturer_code: int = 0
    currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC

    @classmethod
    def from_table(cls, table: dict, prefix: str = "sts") -> StsConfig:
        if not isinstance(table, dict):
            raise ConfigError(prefix, "must be a table")
        for name in table:
            if name not in _KEY_FIELDS and name not in _BEHAVIOUR and name != "currency_crc":
                raise ConfigError(f"{prefix}.{name}", "unknown setting")
        p = _Parser(table, prefix)
        behaviour = {name: p.integer(name, *spec) for name, spec in _BEHAVIOUR.items()}
        behaviour["currency_crc"] = p.currency_crc()
        if "decoder_key" in table:
            for name in ("vending_key", "pan", "dkga"):
                if name in table:
                    raise ConfigError(f"{prefix}.{name}", "give decoder_key or vending key material, not both")
            return cls(p.decoder_key(), None, **behaviour)
        vending = p.vending()
        try:
            key = vending.decoder_key()
        except KeyMaterialError as exc:
            raise ConfigError(f"{prefix}.vending_key", str(exc)) from None
        return cls(key, vending, **behaviour)

    def initial_state(self) -> DecoderState:
        """The decoder state of a newly installed meter with this configuration."""
        return DecoderState(
            key=self.decoder_key,
            tid_window=self.tid_window,
            key_change_window_minutes=self.key_change_window_minutes,
            lockout_after=self.lockout_after,
            lockout_minutes=self.lockout_minutes,
            manufacturer_code=self.manufacturer_code,
            currency_crc=self.currency_crc,
        )

    def vend_key(self) -> DecoderKey:
        """The key ``bijli token vend`` encrypts with: this meter's decoder key."""
        return self.decoder_key


class _Parser:
    def __init__(self, table: dict, prefix: str):
        self.t = table
        self.prefix = prefix

    def err(self, name: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.prefix}.{name}", msg)

    def get(self, name: str):
        return self.t.get(name, DEMO.get(name))

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        v = self.t.get(name, default)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.err(name, f"must be a whole number {lo}..{hi}, got {v!r}")
        return v

    def currency_crc(self) -> CrcCVariant:
        v = self.t.get("currency_crc", DEFAULT_CURRENCY_CRC.value)
        try:
            return CrcCVariant(v)
        except ValueError:
            choices = ", ".join(repr(c.value) for c in CrcCVariant)
            raise self.err("currency_crc", f"must be one of {choices}, got {v!r}") from None

    def digits(self, name: str, width: int) -> str:
        v = self.get(name)
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**width:
            v = f"{v:0{width}d}"
        if not isinstance(v, str) or len(v) != width or not v.isdigit():
            raise self.err(name, f"must be {width} digits, got {v!r}")
        return v

    def hexbytes(self, name: str) -> bytes:
        v = self.t.get(name, DEMO.get(name))
        try:
            out = bytes.fromhex(v)
        except (TypeError, ValueError):
            raise self.err(name, f"must be a hex string, got {v!r}") from None
        if not out:
            raise self.err(name, "must not be empty")
        return out

    def ea(self, default: str | None = None) -> str:
        v = self.t.get("ea", default or DEMO["ea"])
        v = f"{v:02d}" if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(v, str) or v not in ALGORITHMS:
            raise self.err("ea", f"must be 07, 09 or 11, got {v!r}")
        return v

    def common(self) -> dict:
        base = self.get("base")
        if not isinstance(base, int) or isinstance(base, bool) or base not in BASE_DATES:
            raise self.err("base", f"must be 1993, 2014 or 2035, got {base!r}")
        return dict(
            sgc=self.digits("sgc", 6),
            ti=self.digits("ti", 2),
            krn=self.integer("krn", DEMO["krn"], 1, 9),
            kt=self.integer("kt", DEMO["kt"], 0, 3),
            base=base,
            ken=self.integer("ken", KEN_NEVER, 0, 255),
        )

    def decoder_key(self) -> DecoderKey:
        key = self.hexbytes("decoder_key")
        if len(key) not in (8, 16):
            raise self.err("decoder_key", "must be 16 or 32 hex digits (64 or 128 bits)")
        ea = self.ea("07" if len(key) == 8 else "11")
        c = self.common()
        try:
            return DecoderKey(key, ea, c["kt"], c["krn"], c["ti"], c["sgc"], c["base"], c["ken"])
        except KeyMaterialError as exc:
            raise self.err("decoder_key", str(exc)) from None

    def vending(self) -> VendingKeyMaterial:
        vk = self.hexbytes("vending_key")
        try:
            pan = Pan(self.digits("pan", 18))
        except KeyMaterialError as exc:
            raise self.err("pan", str(exc)) from None
        dkga = self.get("dkga")
        dkga = f"{dkga:02d}" if isinstance(dkga, int) and not isinstance(dkga, bool) else dkga
        if dkga not in ("02", "04"):
            raise self.err("dkga", f"must be 02 or 04, got {dkga!r}")
        ea = self.ea()
        if dkga == "02" and ea == "11":
            raise self.err("dkga", "DKGA02 makes 64-bit keys; EA11 (MISTY1) needs DKGA04")
        if dkga == "02" and len(vk) != 8:
            raise self.err("vending_key", "DKGA02 needs a 64-bit (16 hex digit) vending key")
        c = self.common()
        return VendingKeyMaterial(vk, pan, c["sgc"], c["ti"], c["krn"], c["kt"], ea, dkga, c["base"], c["ken"])
