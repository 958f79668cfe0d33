"""Shared value types and strict parsers of the COSEM interface classes (IEC 62056-6-2 clause 4).

Several classes share the same small structures: value_definition (Limiter,
Register monitor, Charge commodity), action_item / script (Limiter, Register
monitor, Single action schedule, Activity calendar), date-times carried as
12-octet octet-strings. They live here as frozen dataclasses with ``to_data``
and ``from_data``, so each class module reads like its standard text.

Every ``parse_*`` / ``from_data`` accepts exactly the type the standard defines
and raises :class:`~dlms.cosem.base.CosemError` with TYPE_UNMATCHED otherwise:
a hostile or confused client gets a data-access-result, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable

from bijli.dlms import axdr
from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.axdr import CosemDate, CosemDateTime, CosemTime
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.errors import DlmsError
from bijli.dlms.obis import Obis

TYPE_UNMATCHED = DataAccessResult.TYPE_UNMATCHED

#: date-time with every field "not specified" (year 0xFFFF ... deviation 0x8000, status 0xFF)
DATE_TIME_NOT_SPECIFIED = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"
DATE_NOT_SPECIFIED = b"\xff\xff\xff\xff\xff"
TIME_NOT_SPECIFIED = b"\xff\xff\xff\xff"


def mismatch(message: str) -> CosemError:
    return CosemError(TYPE_UNMATCHED, message)


def constant(value: Any) -> Callable[[], Any]:
    """A getter that always answers ``value`` (for attributes the firmware never changes)."""
    return lambda: value


def getter(value: Any) -> Callable[[], Any]:
    """``value`` itself if callable, else a constant getter: constructors take either."""
    return value if callable(value) else constant(value)


# --- strict scalar parsers ----------------------------------------------------------


def parse_int(value: axdr.Data, kind: type) -> int:
    """The int of an A-XDR integer of exactly type ``kind`` (Unsigned, LongUnsigned, Enum, ...)."""
    if type(value) is not kind:
        raise mismatch(f"expected {kind.__name__}, got {type(value).__name__}")
    return value.value


def parse_bool(value: axdr.Data) -> bool:
    if type(value) is not axdr.Boolean:
        raise mismatch(f"expected Boolean, got {type(value).__name__}")
    return bool(value.value)


def parse_octets(value: axdr.Data, size: int | None = None) -> bytes:
    if type(value) is not axdr.OctetString:
        raise mismatch(f"expected OctetString, got {type(value).__name__}")
    if size is not None and len(value.value) != size:
        raise mismatch(f"expected {size} octets, got {len(value.value)}")
    return value.value


def parse_bits(value: axdr.Data, size: int | None = None) -> str:
    if type(value) is not axdr.BitString:
        raise mismatch(f"expected BitString, got {type(value).__name__}")
    if size is not None and len(value.value) != size:
        raise mismatch(f"expected {size} bits, got {len(value.value)}")
    return value.value


def parse_struct(value: axdr.Data, n: int) -> tuple:
    if type(value) is not axdr.Structure or len(value.value) != n:
        raise mismatch(f"expected a structure of {n} elements")
    return value.value


def parse_array(value: axdr.Data) -> tuple:
    if type(value) is not axdr.Array:
        raise mismatch(f"expected Array, got {type(value).__name__}")
    return value.value


def parse_obis(value: axdr.Data) -> Obis:
    return Obis.from_bytes(parse_octets(value, 6))


def no_parameter(params: axdr.Data | None) -> None:
    """The ``data ::= integer (0)`` of parameterless methods; absent or null-data also pass."""
    if params is None or type(params) in (axdr.Integer, axdr.NullData):
        return
    raise mismatch(f"method takes integer (0), got {type(params).__name__}")


# --- date and time ----------------------------------------------------------------


def date_time_octets(dt: "datetime | CosemDateTime | None") -> axdr.OctetString:
    """A date-time as the 12-octet octet-string most attributes use; None = not specified."""
    if dt is None:
        return axdr.OctetString(DATE_TIME_NOT_SPECIFIED)
    if isinstance(dt, datetime):
        dt = CosemDateTime.from_datetime(dt)  # status 0x00, as the Clock object sends
    return axdr.OctetString(dt.encode())


def date_octets(d: "date | CosemDate | None") -> axdr.OctetString:
    if d is None:
        return axdr.OctetString(DATE_NOT_SPECIFIED)
    if isinstance(d, date):
        d = CosemDate(d.year, d.month, d.day, d.isoweekday())
    return axdr.OctetString(d.encode())


def time_octets(t: "time | CosemTime | None") -> axdr.OctetString:
    if t is None:
        return axdr.OctetString(TIME_NOT_SPECIFIED)
    if isinstance(t, time):
        t = CosemTime.from_time(t)
    return axdr.OctetString(t.encode())


def parse_cosem_date_time(value: axdr.Data) -> CosemDateTime:
    """A date-time sent as octet-string (12) or as the date-time Data type, wildcards kept."""
    if type(value) is axdr.DateTime:
        return value.value
    raw = parse_octets(value, 12)
    try:
        return CosemDateTime.decode(raw)
    except DlmsError as exc:
        raise mismatch(f"bad date-time: {exc}") from None


def parse_date_time(value: axdr.Data) -> datetime | None:
    """A fully specified date-time as a datetime (aware when the deviation is sent);
    None for the all-"not specified" value; TYPE_UNMATCHED for a partial wildcard."""
    if type(value) is axdr.OctetString and value.value == DATE_TIME_NOT_SPECIFIED:
        return None
    cdt = parse_cosem_date_time(value)
    try:
        return cdt.to_datetime()
    except (DlmsError, ValueError) as exc:  # day 31 of February, or unspecified fields
        raise mismatch(f"date-time is not a point in time: {exc}") from None


def to_local(t: datetime, deviation: int) -> datetime:
    """An aware datetime as naive local time of the zone whose Blue Book deviation
    (UTC minus local, minutes) is ``deviation``."""
    return t.astimezone(timezone(timedelta(minutes=-deviation))).replace(tzinfo=None)


def parse_cosem_date(value: axdr.Data) -> CosemDate:
    if type(value) is axdr.Date:
        return value.value
    raw = parse_octets(value, 5)
    try:
        return CosemDate.decode(raw)
    except DlmsError as exc:
        raise mismatch(f"bad date: {exc}") from None


def parse_cosem_time(value: axdr.Data) -> CosemTime:
    if type(value) is axdr.Time:
        return value.value
    raw = parse_octets(value, 4)
    try:
        return CosemTime.decode(raw)
    except DlmsError as exc:
        raise mismatch(f"bad time: {exc}") from None


# --- shared structures ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueDefinition:
    """value_definition ::= structure {class_id long-unsigned, logical_name octet-string,
    attribute_index integer}: the attribute a Limiter or Register monitor watches."""

    class_id: int
    logical_name: Obis
    attribute_index: int

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.LongUnsigned(self.class_id), axdr.OctetString(bytes(self.logical_name)),
                               axdr.Integer(self.attribute_index)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ValueDefinition":
        c, ln, a = parse_struct(value, 3)
        return cls(parse_int(c, axdr.LongUnsigned), parse_obis(ln), parse_int(a, axdr.Integer))


@dataclass(frozen=True, slots=True)
class ScriptReference:
    """action_item / script ::= structure {script_logical_name octet-string,
    script_selector long-unsigned}: which script of which Script table to run."""

    script_logical_name: Obis
    script_selector: int

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.OctetString(bytes(self.script_logical_name)),
                               axdr.LongUnsigned(self.script_selector)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ScriptReference":
        ln, sel = parse_struct(value, 2)
        return cls(parse_obis(ln), parse_int(sel, axdr.LongUnsigned))


#: the standard calls the same structure "action_item" in classes 21 and 71
ActionItem = ScriptReference


# --- codecs: one per A-XDR attribute type ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Codec:
    """How one attribute type crosses the seam: ``encode`` turns the firmware's Python
    value into Data, ``parse`` turns an incoming Data into the Python value (strictly,
    raising TYPE_UNMATCHED). ``name`` is the standard's type name, for docs and errors."""

    name: str
    encode: Callable[[Any], axdr.Data]
    parse: Callable[[axdr.Data], Any]


def integer(kind: type, lo: int | None = None, hi: int | None = None) -> Codec:
    """An integer type, optionally narrowed to lo..hi (an enum's defined values)."""
    lo = kind.min if lo is None else lo
    hi = kind.max if hi is None else hi

    def parse(value: axdr.Data) -> int:
        v = parse_int(value, kind)
        if not lo <= v <= hi:
            raise mismatch(f"{v} is outside {lo}..{hi}")
        return v

    return Codec(kind.__name__, lambda v: kind(int(v)), parse)


def bits(size: int | None = None) -> Codec:
    """A bit-string; the Python value is an int of ``size`` bits (first bit = most significant),
    or the '0'/'1' text when the size is free."""
    if size is None:
        return Codec("bit-string", lambda v: axdr.BitString(v), parse_bits)
    return Codec(f"bit-string({size})", lambda v: axdr.BitString.from_int(int(v), size),
                 lambda d: int(parse_bits(d, size) or "0", 2))


def octets(size: int | None = None) -> Codec:
    return Codec("octet-string" if size is None else f"octet-string({size})",
                 lambda v: axdr.OctetString(bytes(v)), lambda d: parse_octets(d, size))


def struct_of(cls: type) -> Codec:
    """A structure mapped onto a frozen dataclass with ``to_data`` / ``from_data``."""
    return Codec(cls.__name__, lambda v: v.to_data(), cls.from_data)


def array_of(codec: Codec) -> Codec:
    return Codec(f"array of {codec.name}", lambda v: axdr.Array(tuple(codec.encode(x) for x in v)),
                 lambda d: tuple(codec.parse(x) for x in parse_array(d)))


_SIMPLE = frozenset((*axdr.INTEGER_TYPES, axdr.Boolean, axdr.BitString, axdr.OctetString, axdr.VisibleString,
                     axdr.Utf8String, axdr.Bcd, axdr.Float32, axdr.Float64, axdr.NullData, axdr.DateTime,
                     axdr.Date, axdr.Time))


def _parse_simple(value: axdr.Data) -> axdr.Data:
    if type(value) not in _SIMPLE:
        raise mismatch(f"expected a simple type, got {type(value).__name__}")
    return value


def _encode_data(value: axdr.Data) -> axdr.Data:
    if not isinstance(value, axdr.Data):
        raise TypeError(f"the binding must supply A-XDR Data here, not {value!r}")
    return value


BOOLEAN = Codec("boolean", lambda v: axdr.Boolean(bool(v)), parse_bool)
INTEGER = integer(axdr.Integer)
LONG = integer(axdr.Long)
DOUBLE_LONG = integer(axdr.DoubleLong)
UNSIGNED = integer(axdr.Unsigned)
LONG_UNSIGNED = integer(axdr.LongUnsigned)
DOUBLE_LONG_UNSIGNED = integer(axdr.DoubleLongUnsigned)
ENUM = integer(axdr.Enum)
OCTET_STRING = octets()
UTF8_STRING = Codec("utf8-string", lambda v: axdr.Utf8String(str(v)),
                    lambda d: d.value if type(d) is axdr.Utf8String else _raise(mismatch("expected utf8-string")))
LOGICAL_NAME = Codec("octet-string(6)", lambda v: axdr.OctetString(bytes(Obis.parse(v))), parse_obis)
DATE_TIME = Codec("octet-string(12) date-time", date_time_octets, parse_date_time)
DATE = Codec("octet-string(5) date", date_octets, parse_cosem_date)
TIME = Codec("octet-string(4) time", time_octets, parse_cosem_time)
#: CHOICE of simple types (a threshold, a monitored value): the binding supplies Data itself
SIMPLE_DATA = Codec("CHOICE", _encode_data, _parse_simple)
#: any Data (a script's parameter)
ANY_DATA = Codec("Data", _encode_data, lambda d: d)
VALUE_DEFINITION = struct_of(ValueDefinition)
ACTION_ITEM = struct_of(ScriptReference)


def _raise(exc: Exception):
    raise exc


def _encode_cosem_date_time(v: "datetime | CosemDateTime | None") -> axdr.OctetString:
    return date_time_octets(v)


#: a date-time that may carry wildcards (season starts, push windows): CosemDateTime in Python
DATE_TIME_PATTERN = Codec("octet-string(12) date-time", _encode_cosem_date_time, parse_cosem_date_time)


@dataclass(frozen=True, slots=True)
class ScalerUnit:
    """scaler_unit ::= structure {scaler integer, unit enum}."""

    scaler: int = 0
    unit: int = 255

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.Integer(self.scaler), axdr.Enum(int(self.unit))))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ScalerUnit":
        s, u = parse_struct(value, 2)
        return cls(parse_int(s, axdr.Integer), parse_int(u, axdr.Enum))


SCALER_UNIT = Codec("scaler_unit", lambda v: v.to_data(), ScalerUnit.from_data)
