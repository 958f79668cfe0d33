"""What a decoded token means: the result code, and the effect an accepted token asks for.

IEC 62055-41 (as publicly described) lists the results a decoder reports: accept,
CRC error, format error, old, used, key expired, key type not allowed, overflow,
range error and function error; we add LOCKED_OUT for a source that refuses input
after too many bad tokens, and STORAGE_ERROR for a token the meter could not commit
(nothing changed: not credited, the token still unused). An accepted token carries one *effect*, a frozen value
that ``firmware.prepaid``/``relay``/``console`` apply: the decoder never changes
credit itself, it only says what the token asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum


class TokenResultCode(Enum):
    ACCEPT = "accepted"
    CRC_ERROR = "crc_error"
    FORMAT_ERROR = "format_error"
    OLD = "old"
    USED = "used"
    KEY_EXPIRED = "key_expired"
    KEY_TYPE_NOT_ALLOWED = "key_type_not_allowed"
    OVERFLOW = "overflow"  # decided by the firmware when it applies the credit
    RANGE_ERROR = "range_error"
    FUNCTION_ERROR = "function_error"
    LOCKED_OUT = "locked_out"
    STORAGE_ERROR = "storage_error"  # decided by the firmware: the commit failed, nothing changed


class CreditKind(Enum):
    """Class 0 subclass -> what the credit is for."""

    ELECTRICITY = 0
    WATER = 1
    GAS = 2
    TIME = 3
    CURRENCY_ELECTRICITY = 4
    CURRENCY_WATER = 5
    CURRENCY_GAS = 6
    CURRENCY_TIME = 7

    @property
    def is_currency(self) -> bool:
        return self.value >= 4


#: (units per decoded amount unit, unit name) per credit kind. Electricity is
#: 0.1 kWh and water/gas 0.1 m3 (the STS Association's public token-type table; the
#: 531-1 CTSA01/10/21/22 vectors use the same 0.1 step for all three). That table
#: gives time as 0.1 minute and currency as 0.00001 base currency unit per step; we
#: keep whole minutes and 0.01 currency units (a token then carries up to 182,016.24
#: INR, not 182.01), a choice no public vector tests. See README, STS section.
CREDIT_UNITS: dict[CreditKind, tuple[Decimal, str]] = {
    CreditKind.ELECTRICITY: (Decimal("0.1"), "kWh"),
    CreditKind.WATER: (Decimal("0.1"), "m3"),
    CreditKind.GAS: (Decimal("0.1"), "m3"),
    CreditKind.TIME: (Decimal(1), "min"),
    CreditKind.CURRENCY_ELECTRICITY: (Decimal("0.01"), "currency"),
    CreditKind.CURRENCY_WATER: (Decimal("0.01"), "currency"),
    CreditKind.CURRENCY_GAS: (Decimal("0.01"), "currency"),
    CreditKind.CURRENCY_TIME: (Decimal("0.01"), "currency"),
}


class TestRequest(Enum):
    """Class 1 control bits (bit number -> the test or display the meter performs).

    Bits 0..12 follow the order in public descriptions of the test/display token;
    bits 13..17 are our own assignment for displays a bijli meter has; higher bits
    are manufacturer specific and reported as MANUFACTURER_SPECIFIC.
    """

    __test__ = False  # not a pytest test class despite its name

    LOAD_SWITCH_TEST = 0
    DISPLAY_TEST = 1
    DISPLAY_TOTAL_ENERGY = 2
    DISPLAY_KEY_REVISION = 3
    DISPLAY_TARIFF_INDEX = 4
    KEYPAD_TEST = 5
    DISPLAY_POWER_LIMIT = 6
    DISPLAY_TAMPER_STATUS = 7
    DISPLAY_POWER = 8
    DISPLAY_SOFTWARE_VERSION = 9
    DISPLAY_PHASE_UNBALANCE_LIMIT = 10
    DISPLAY_WATER_METER_FACTOR = 11
    DISPLAY_TARIFF_RATE = 12
    DISPLAY_LAST_TIDS = 13
    DISPLAY_CREDIT = 14
    DISPLAY_KEY_EXPIRY = 15
    DISPLAY_SUPPLY_GROUP = 16
    DISPLAY_BASE_DATE = 17
    MANUFACTURER_SPECIFIC = 99

    @classmethod
    def from_control(cls, control: int) -> tuple[TestRequest, ...]:
        """The requests a control word asks for, in bit order, each at most once."""
        out = [cls(b) for b in range(18) if (control >> b) & 1]
        if control >> 18:
            out.append(cls.MANUFACTURER_SPECIFIC)
        return tuple(out)

    @classmethod
    def to_control(cls, requests) -> int:
        return sum(1 << r.value for r in requests if r is not cls.MANUFACTURER_SPECIFIC)


# --- effects -------------------------------------------------------------------


@dataclass(frozen=True)
class CreditTransfer:
    kind: CreditKind
    amount_field: int
    units: int  # decoded amount in token steps (e.g. 0.1 kWh)
    value: Decimal  # in ``unit``
    unit: str


@dataclass(frozen=True)
class SetMaxPowerLimit:
    watts: int


@dataclass(frozen=True)
class ClearCredit:
    register: int  # 0xFFFF = all registers

    @property
    def all_registers(self) -> bool:
        return self.register == 0xFFFF


@dataclass(frozen=True)
class ClearTamper:
    pass


@dataclass(frozen=True)
class SetPhaseUnbalanceLimit:
    watts: int


@dataclass(frozen=True)
class SetWaterMeterFactor:
    factor_field: int  # raw 16-bit field; UNVERIFIED scaling, left to the water meter
    factor: int  # the field decoded as an amount (exponent/mantissa)


@dataclass(frozen=True)
class KeyChangeSection:
    """One section of a key change arrived; the key changes when all have."""

    section: int  # 1..4
    complete: bool  # always False here: a completing section gives KeyChanged
    received: tuple[int, ...]  # section numbers now held
    total: int  # sections in the set: 2 for a 64-bit key, 4 for a 128-bit key

    @property
    def message(self) -> str:
        """What the console and the event log say: ``key change section 3 of 4 (2 of 4 held)``."""
        return f"key change section {self.section} of {self.total} ({len(self.received)} of {self.total} held)"


@dataclass(frozen=True)
class KeyChanged:
    section: int  # the section that completed the set
    ea: str
    kt: int
    krn: int
    ti: str
    sgc: str
    ken: int
    base: int
    rollover: bool


@dataclass(frozen=True)
class TestDisplay:
    __test__ = False

    control: int
    requests: tuple[TestRequest, ...]
    manufacturer_code: int


Effect = (
    CreditTransfer | SetMaxPowerLimit | ClearCredit | ClearTamper | SetPhaseUnbalanceLimit
    | SetWaterMeterFactor | KeyChangeSection | KeyChanged | TestDisplay
)  # fmt: skip


@dataclass(frozen=True)
class TokenResult:
    code: TokenResultCode
    tid: int | None = None
    token_class: int | None = None
    subclass: int | None = None
    effect: Effect | None = None
    detail: str = ""

    @property
    def word(self) -> str:
        """The console/display word for this result (``accepted``, ``crc_error`` ...)."""
        return self.code.value

    @property
    def accepted(self) -> bool:
        return self.code is TokenResultCode.ACCEPT
