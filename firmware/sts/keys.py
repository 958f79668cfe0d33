"""Decoder keys: the meter PAN, the PANBlock and CONTROLBlock, and the decoder key
generation algorithms DKGA02 (DES) and DKGA04 (HMAC-SHA-256).

IEC 62055-41 as publicly described (checked against the
``dkga02``/``dkga04`` vectors). A meter PAN is IIN + IAIN + Luhn digit, with IIN
600727 (2-digit manufacturer code) or 0000 (4-digit code); the IAIN (the DRN
printed on a meter) is manufacturer code + 8-digit serial + its own Luhn digit.
Both Luhn digits are validated. A vending key plus PAN, SGC, TI, KRN, KT, EA and
base date give the meter's decoder key; :class:`DecoderKey` is what the meter
keeps, :class:`VendingKeyMaterial` what the vending side keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

from .ciphers import key_bytes_for
from .errors import KeyMaterialError
from .tid import BASE_DATES, ken_of, tid_from_datetime

IINS = ("600727", "0000")
KEN_NEVER = 0xFF


class KeyType(IntEnum):
    """KT: the kind of decoder key."""

    DITK = 0  # initialization
    DDTK = 1  # default
    DUTK = 2  # unique
    DCTK = 3  # common


#: credit is refused on these key types (initialization and default keys): the
#: meter answers key_type_not_allowed and the vending side will not sell it
CREDIT_REFUSED_KEY_TYPES = frozenset({KeyType.DITK, KeyType.DDTK})


# --- PAN ---------------------------------------------------------------------


def luhn_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


@dataclass(frozen=True)
class Pan:
    """An 18-digit meter PAN, validated (IIN, both Luhn digits)."""

    digits: str

    def __post_init__(self):
        d = self.digits
        if not isinstance(d, str) or len(d) != 18 or not d.isascii() or not d.isdigit():
            raise KeyMaterialError(f"a meter PAN is 18 digits, got {d!r}")
        iin = "600727" if d.startswith("600727") else "0000" if d.startswith("0000") else None
        if iin is None:
            raise KeyMaterialError(f"PAN {d}: IIN must be 600727 or 0000")
        if luhn_digit(d[:17]) != d[17]:
            raise KeyMaterialError(f"PAN {d}: Luhn check digit should be {luhn_digit(d[:17])}")
        iain = d[len(iin) : 17]
        if luhn_digit(iain[:-1]) != iain[-1]:
            raise KeyMaterialError(f"PAN {d}: IAIN (DRN) {iain} Luhn digit should be {luhn_digit(iain[:-1])}")

    @classmethod
    def build(cls, manufacturer_code: str, serial: str, iin: str = "600727") -> Pan:
        """The PAN for a manufacturer code and 8-digit serial, check digits computed."""
        if iin not in IINS:
            raise KeyMaterialError(f"IIN must be 600727 or 0000, got {iin!r}")
        width = 2 if iin == "600727" else 4
        if len(manufacturer_code) != width or not manufacturer_code.isdigit():
            raise KeyMaterialError(f"manufacturer code for IIN {iin} is {width} digits")
        if len(serial) != 8 or not serial.isdigit():
            raise KeyMaterialError("serial is 8 digits")
        iain = manufacturer_code + serial
        iain += luhn_digit(iain)
        return cls(iin + iain + luhn_digit(iin + iain))

    @property
    def iin(self) -> str:
        return "600727" if self.digits.startswith("600727") else "0000"

    @property
    def iain(self) -> str:
        """The IAIN, which is the DRN printed on the meter."""
        return self.digits[len(self.iin) : 17]

    @property
    def manufacturer_code(self) -> str:
        return self.iain[: 2 if self.iin == "600727" else 4]

    def pan_block(self) -> int:
        """PANBlock: 16 digits (end of the IIN + IAIN) read as hex."""
        return int(self.iin[-5:] + self.iain if self.iin == "600727" else self.iin[-3:] + self.iain, 16)


# --- key derivation ----------------------------------------------------------


def _check_control(kt: int, sgc: str, ti: str, krn: int) -> None:
    if not isinstance(kt, int) or not 0 <= kt <= 3:
        raise KeyMaterialError(f"KT {kt!r} must be 0..3")
    if not isinstance(sgc, str) or len(sgc) != 6 or not sgc.isdigit():
        raise KeyMaterialError(f"SGC {sgc!r} must be 6 digits")
    if not isinstance(ti, str) or len(ti) != 2 or not ti.isdigit():
        raise KeyMaterialError(f"TI {ti!r} must be 2 digits")
    if not isinstance(krn, int) or not 1 <= krn <= 9:
        raise KeyMaterialError(f"KRN {krn!r} must be 1..9")


def control_block(kt: int, sgc: str, ti: str, krn: int) -> int:
    """CONTROLBlock: KT(1) SGC(6) TI(2) KRN(1) "FFFFFF", read as hex."""
    _check_control(kt, sgc, ti, krn)
    return int(f"{kt}{sgc}{ti}{krn}FFFFFF", 16)


def dkga02(vk: bytes, pan: Pan, sgc: str, ti: str, krn: int, kt: int) -> bytes:
    """DKGA02: X = PANBlock xor CONTROLBlock; key = DES_VK(X) xor X xor VK (64 bits)."""
    if len(vk) != 8:
        raise KeyMaterialError("DKGA02 takes a 64-bit vending key")
    from .ciphers.dea import des_ecb_encrypt  # DES (and cryptography) only when DKGA02 is used
    x = pan.pan_block() ^ control_block(kt, sgc, ti, krn)
    des = int.from_bytes(des_ecb_encrypt(vk, x.to_bytes(8, "big")), "big")
    return (des ^ x ^ int.from_bytes(vk, "big")).to_bytes(8, "big")


def dkga04(vk: bytes, pan: Pan, sgc: str, ti: str, krn: int, kt: int, ea: str, base: int) -> bytes:
    """DKGA04: HMAC-SHA-256 under the vending key over the length-prefixed fields
    ("04", base date, EA, TI, SGC, KT, KRN, PAN) and the key length in bits."""
    _check_control(kt, sgc, ti, krn)
    if base not in BASE_DATES:
        raise KeyMaterialError(f"base date {base!r} must be 1993, 2014 or 2035")
    if not vk:
        raise KeyMaterialError("DKGA04 needs a vending key")
    import hashlib  # only when DKGA04 is used: hashlib loads OpenSSL
    import hmac

    n_bytes = key_bytes_for(ea)
    msg = (
        b"\x04\x02" + b"04"
        + b"\x02" + f"{base % 100:02d}".encode()
        + b"\x02" + ea.encode()
        + b"\x02" + ti.encode()
        + b"\x00\x04\x06" + sgc.encode()
        + b"\x01" + f"{kt:X}".encode()
        + b"\x01" + f"{krn:X}".encode()
        + b"\x12" + pan.digits.encode()
        + (n_bytes * 8).to_bytes(4, "big")
    )  # fmt: skip
    return hmac.new(vk, msg, hashlib.sha256).digest()[:n_bytes]


def ken_for_expiry(expires: datetime, base: int) -> int:
    """The KEN for a key that must expire after ``expires`` (top 8 bits of its TID)."""
    return ken_of(tid_from_datetime(expires, base))


# --- what the meter keeps, what the vending side keeps -------------------------


@dataclass(frozen=True)
class DecoderKey:
    """The meter's current decoder key and the values that go with it."""

    key: bytes = field(repr=False)
    ea: str
    kt: int
    krn: int
    ti: str
    sgc: str
    base: int
    ken: int = KEN_NEVER

    def __post_init__(self):
        if not isinstance(self.key, bytes) or len(self.key) != key_bytes_for(self.ea):
            raise KeyMaterialError(f"EA{self.ea} needs a {key_bytes_for(self.ea) * 8}-bit decoder key")
        _check_control(self.kt, self.sgc, self.ti, self.krn)
        if self.base not in BASE_DATES:
            raise KeyMaterialError(f"base date {self.base!r} must be 1993, 2014 or 2035")
        if not isinstance(self.ken, int) or not 0 <= self.ken <= 0xFF:
            raise KeyMaterialError(f"KEN {self.ken!r} must be 0..255")

    @property
    def key_type(self) -> KeyType:
        return KeyType(self.kt)


@dataclass(frozen=True)
class VendingKeyMaterial:
    """A vending key and the meter's PAN and key attributes: everything needed to
    derive that meter's decoder key and vend tokens for it."""

    vk: bytes = field(repr=False)
    pan: Pan
    sgc: str
    ti: str
    krn: int
    kt: int
    ea: str
    dkga: str
    base: int
    ken: int = KEN_NEVER

    def __post_init__(self):
        if self.dkga not in ("02", "04"):
            raise KeyMaterialError(f"DKGA {self.dkga!r} must be 02 or 04")
        if self.dkga == "02" and key_bytes_for(self.ea) != 8:
            raise KeyMaterialError(f"DKGA02 makes 64-bit keys; EA{self.ea} needs 128")

    def decoder_key(self) -> DecoderKey:
        if self.dkga == "02":
            key = dkga02(self.vk, self.pan, self.sgc, self.ti, self.krn, self.kt)
        else:
            key = dkga04(self.vk, self.pan, self.sgc, self.ti, self.krn, self.kt, self.ea, self.base)
        return DecoderKey(key, self.ea, self.kt, self.krn, self.ti, self.sgc, self.base, self.ken)
