"""STS token codec: 20 digits <-> 66-bit token <-> class + 64-bit block, and the
fields of the token data block.

IEC 62055-41 as publicly described (README, STS section). The 66-bit data block is
``class(2) | subclass(4) | data(44) | CRC(16)``. The 64 bits after the class are
what the cipher sees. In the 66-bit token number the two class bits sit at bits 28
and 27, and the cipher's bits 28 and 27 move to bits 65 and 64 (the "class-bit
transposition"). The 44-bit data field has one layout per kind of token: a
transfer (RND, TID, amount) for class 0 and the class 2 register tokens, a test
control word for class 1, and the four key-change sections of class 2.

Everything here is pure bit arithmetic on ints; no cipher, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .crc import DEFAULT_CURRENCY_CRC, CrcCVariant, block_crc
from .errors import VendError
from bijli.firmware.errors import TokenError

TOKEN_LIMIT = 1 << 66
_M64 = (1 << 64) - 1
_CLASS_BITS = 3 << 27
_M44 = (1 << 44) - 1

# --- digits <-> 66-bit number -------------------------------------------------

_SEPARATORS = str.maketrans("", "", " -_\t")


def parse_digits(text: str) -> int:
    """The 66-bit token number typed as 20 digits (spaces and dashes allowed)."""
    if not isinstance(text, str):
        raise TokenError("a token is a string of 20 digits")
    digits = text.translate(_SEPARATORS)
    if len(digits) != 20 or not digits.isascii() or not digits.isdigit():
        raise TokenError(f"a token is 20 decimal digits, got {text!r}")
    n = int(digits)
    if n >= TOKEN_LIMIT:
        raise TokenError(f"{digits} is larger than a 66-bit token can be")
    return n


def format_digits(n: int) -> str:
    return f"{n:020d}"


def group_digits(digits: str) -> str:
    """``2371 6100 5011 8319 4197``: how a token is printed on a receipt."""
    return " ".join(digits[i : i + 4] for i in range(0, 20, 4))


# --- 66-bit number <-> class + 64-bit (cipher) block --------------------------


def split_token(n: int) -> tuple[int, int]:
    """(class, 64-bit block as it left the cipher) from a 66-bit token number."""
    token_class = (n >> 27) & 3
    block = (n & _M64 & ~_CLASS_BITS) | (((n >> 64) & 3) << 27)
    return token_class, block


def join_token(token_class: int, block: int) -> int:
    """The 66-bit token number for a class and a 64-bit (encrypted) block."""
    return (((block >> 27) & 3) << 64) | (block & ~_CLASS_BITS) | ((token_class & 3) << 27)


# --- 64-bit plain block <-> subclass, data, CRC -------------------------------


def seal_block(token_class: int, subclass: int, data: int,
               currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> int:  # fmt: skip
    """The 64-bit plain block ``subclass | data | CRC`` with its CRC filled in."""
    if not 0 <= subclass < 16 or not 0 <= data <= _M44:
        raise VendError("subclass or data field out of range")
    head = (token_class << 48) | (subclass << 44) | data
    return (head << 16 | block_crc(head, token_class, subclass, currency_crc)) & _M64


def open_block(token_class: int, block: int,
               currency_crc: CrcCVariant = DEFAULT_CURRENCY_CRC) -> tuple[int, int, bool]:  # fmt: skip
    """(subclass, 44-bit data, crc_ok) of a 64-bit plain block."""
    subclass = block >> 60
    data = (block >> 16) & _M44
    head = (token_class << 48) | (block >> 16)
    return subclass, data, block_crc(head, token_class, subclass, currency_crc) == block & 0xFFFF


# --- the 44-bit data field layouts --------------------------------------------


@dataclass(frozen=True)
class TransferFields:
    """RND(4) TID(24) amount(16): class 0 credit and the class 2 register tokens."""

    rnd: int
    tid: int
    amount_field: int

    def pack(self) -> int:
        _check(("rnd", self.rnd, 4), ("tid", self.tid, 24), ("amount", self.amount_field, 16))
        return (self.rnd << 40) | (self.tid << 16) | self.amount_field

    @classmethod
    def unpack(cls, data: int) -> TransferFields:
        return cls((data >> 40) & 0xF, (data >> 16) & 0xFFFFFF, data & 0xFFFF)


@dataclass(frozen=True)
class TestFields:
    """Class 1: control(36) + manufacturer code(8) for subclass 0, control(28) +
    manufacturer code(16) for subclass 1."""

    __test__ = False  # not a pytest class despite its name

    subclass: int
    control: int
    mfr: int

    @staticmethod
    def widths(subclass: int) -> tuple[int, int]:
        return (36, 8) if subclass == 0 else (28, 16)

    def pack(self) -> int:
        c_bits, m_bits = self.widths(self.subclass)
        _check(("control", self.control, c_bits), ("manufacturer code", self.mfr, m_bits))
        return (self.control << m_bits) | self.mfr

    @classmethod
    def unpack(cls, subclass: int, data: int) -> TestFields:
        _, m_bits = cls.widths(subclass)
        return cls(subclass, data >> m_bits, data & ((1 << m_bits) - 1))


@dataclass(frozen=True)
class KeySection1:
    """Class 2 subclass 3: KENHO(4) KRN(4) RO(1) RES(1) KT(2) NKHO(32)."""

    ken_ho: int
    krn: int
    ro: int
    res: int
    kt: int
    nkho: int

    def pack(self) -> int:
        _check(("KENHO", self.ken_ho, 4), ("KRN", self.krn, 4), ("RO", self.ro, 1),
               ("RES", self.res, 1), ("KT", self.kt, 2), ("NKHO", self.nkho, 32))  # fmt: skip
        return ((self.ken_ho << 40) | (self.krn << 36) | (self.ro << 35) | (self.res << 34)
                | (self.kt << 32) | self.nkho)  # fmt: skip

    @classmethod
    def unpack(cls, data: int) -> KeySection1:
        return cls((data >> 40) & 0xF, (data >> 36) & 0xF, (data >> 35) & 1,
                   (data >> 34) & 1, (data >> 32) & 3, data & 0xFFFFFFFF)  # fmt: skip


@dataclass(frozen=True)
class KeySection2:
    """Class 2 subclass 4: KENLO(4) TI(8) NKLO(32)."""

    ken_lo: int
    ti: int
    nklo: int

    def pack(self) -> int:
        _check(("KENLO", self.ken_lo, 4), ("TI", self.ti, 8), ("NKLO", self.nklo, 32))
        return (self.ken_lo << 40) | (self.ti << 32) | self.nklo

    @classmethod
    def unpack(cls, data: int) -> KeySection2:
        return cls((data >> 40) & 0xF, (data >> 32) & 0xFF, data & 0xFFFFFFFF)


@dataclass(frozen=True)
class KeySectionMid:
    """Class 2 subclass 8 (3rd section: SGC low 12 bits + NKMO2) and subclass 9
    (4th section: SGC high 12 bits + NKMO1), for 128-bit keys. The SGC is the
    6-digit code as a binary number (123457 = 0x01E241), as the public 531-1
    CTSA19 tokens carry it."""

    sgc_part: int
    nk_part: int

    def pack(self) -> int:
        _check(("SGC part", self.sgc_part, 12), ("key part", self.nk_part, 32))
        return (self.sgc_part << 32) | self.nk_part

    @classmethod
    def unpack(cls, data: int) -> KeySectionMid:
        return cls((data >> 32) & 0xFFF, data & 0xFFFFFFFF)


def _check(*fields: tuple[str, int, int]) -> None:
    for name, value, bits in fields:
        if not isinstance(value, int) or not 0 <= value < (1 << bits):
            raise VendError(f"{name} {value!r} does not fit in {bits} bits")
