"""A-XDR encoding of COSEM ``Data`` values (IEC 62056-6-2 clause 4.1.5, IEC 61334-6).

Every attribute value a meter sends or receives is a tagged ``Data`` choice: one
tag byte naming the type, then the value, with BER-style lengths for strings and
element counts for arrays and structures. Each type here is a frozen dataclass
named as the standard names it (``DoubleLongUnsigned``, ``OctetString``, ...), so
a value keeps its wire type through the stack: ``Unsigned(5)`` and
``LongUnsigned(5)`` are different values, as they are on the wire.

:func:`encode` and :func:`decode` are exact inverses. The decoder bounds every
length by the bytes actually present and nests at most :data:`MAX_DEPTH` deep, so
hostile input fails fast with :class:`~dlms.errors.AxdrError` instead of
allocating or recursing without limit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import time as _time
from datetime import timedelta, timezone
from enum import IntEnum
from typing import Any, ClassVar, Union

from bijli.dlms.errors import AxdrError

MAX_DEPTH = 32


class DataType(IntEnum):
    """The tags of the Data CHOICE (IEC 62056-6-2 table 2)."""

    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255


# --- lengths ------------------------------------------------------------------------


def encode_length(n: int) -> bytes:
    """BER definite length as A-XDR uses it for strings and element counts."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    if n < 0x100000000:
        return b"\x84" + n.to_bytes(4, "big")
    raise AxdrError(f"length {n} too large")


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Return (length, position after it). Raises AxdrError if truncated or oversized."""
    try:
        first = buf[pos]
    except IndexError:
        raise AxdrError("truncated length") from None
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if size == 0 or size > 4:
        raise AxdrError(f"unsupported length form 0x{first:02x}")
    end = pos + 1 + size
    if end > len(buf):
        raise AxdrError("truncated length")
    return int.from_bytes(buf[pos + 1 : end], "big"), end


# --- value types ----------------------------------------------------------------------


class Data:
    """Base of every A-XDR value. ``tag`` is the Data CHOICE tag on the wire."""

    __slots__ = ()
    tag: ClassVar[DataType]

    def to_python(self) -> Any:
        return getattr(self, "value", None)


@dataclass(frozen=True, slots=True)
class NullData(Data):
    tag: ClassVar[DataType] = DataType.NULL_DATA

    def to_python(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class DontCare(Data):
    tag: ClassVar[DataType] = DataType.DONT_CARE

    def to_python(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Boolean(Data):
    value: bool
    tag: ClassVar[DataType] = DataType.BOOLEAN


@dataclass(frozen=True, slots=True)
class BitString(Data):
    """A string of bits, most significant (first transmitted) bit first, as '0'/'1' text."""

    value: str
    tag: ClassVar[DataType] = DataType.BIT_STRING

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or self.value.strip("01"):
            raise AxdrError("bit-string value must be a string of '0' and '1'")

    @classmethod
    def from_int(cls, value: int, nbits: int) -> "BitString":
        return cls(format(value, f"0{nbits}b") if nbits else "")

    def to_int(self) -> int:
        return int(self.value, 2) if self.value else 0


def _int_type(name: str, dtype: DataType, fmt: str, lo: int, hi: int):
    packer = struct.Struct(fmt)

    @dataclass(frozen=True, slots=True)
    class _Int(Data):
        value: int
        tag: ClassVar[DataType] = dtype
        struct: ClassVar[struct.Struct] = packer
        min: ClassVar[int] = lo
        max: ClassVar[int] = hi

    _Int.__name__ = _Int.__qualname__ = name
    _Int.__doc__ = f"{dtype.name.lower().replace('_', '-')}: {lo}..{hi}"
    return _Int


Integer = _int_type("Integer", DataType.INTEGER, ">b", -(2**7), 2**7 - 1)
Long = _int_type("Long", DataType.LONG, ">h", -(2**15), 2**15 - 1)
DoubleLong = _int_type("DoubleLong", DataType.DOUBLE_LONG, ">i", -(2**31), 2**31 - 1)
Long64 = _int_type("Long64", DataType.LONG64, ">q", -(2**63), 2**63 - 1)
Unsigned = _int_type("Unsigned", DataType.UNSIGNED, ">B", 0, 2**8 - 1)
LongUnsigned = _int_type("LongUnsigned", DataType.LONG_UNSIGNED, ">H", 0, 2**16 - 1)
DoubleLongUnsigned = _int_type("DoubleLongUnsigned", DataType.DOUBLE_LONG_UNSIGNED, ">I", 0, 2**32 - 1)
Long64Unsigned = _int_type("Long64Unsigned", DataType.LONG64_UNSIGNED, ">Q", 0, 2**64 - 1)
Enum = _int_type("Enum", DataType.ENUM, ">B", 0, 2**8 - 1)

INTEGER_TYPES = (Integer, Long, DoubleLong, Long64, Unsigned, LongUnsigned, DoubleLongUnsigned, Long64Unsigned, Enum)


@dataclass(frozen=True, slots=True)
class Float32(Data):
    value: float
    tag: ClassVar[DataType] = DataType.FLOAT32


@dataclass(frozen=True, slots=True)
class Float64(Data):
    value: float
    tag: ClassVar[DataType] = DataType.FLOAT64


@dataclass(frozen=True, slots=True)
class OctetString(Data):
    value: bytes
    tag: ClassVar[DataType] = DataType.OCTET_STRING


@dataclass(frozen=True, slots=True)
class VisibleString(Data):
    """ISO 646 (printable ASCII) text."""

    value: str
    tag: ClassVar[DataType] = DataType.VISIBLE_STRING


@dataclass(frozen=True, slots=True)
class Utf8String(Data):
    value: str
    tag: ClassVar[DataType] = DataType.UTF8_STRING


@dataclass(frozen=True, slots=True)
class Bcd(Data):
    """One byte holding two decimal digits (0..99)."""

    value: int
    tag: ClassVar[DataType] = DataType.BCD


@dataclass(frozen=True, slots=True)
class Array(Data):
    """SEQUENCE OF Data; the standard expects elements of one type, we do not enforce it."""

    value: tuple
    tag: ClassVar[DataType] = DataType.ARRAY

    def to_python(self) -> list:
        return [v.to_python() for v in self.value]


@dataclass(frozen=True, slots=True)
class Structure(Data):
    value: tuple
    tag: ClassVar[DataType] = DataType.STRUCTURE

    def to_python(self) -> list:
        return [v.to_python() for v in self.value]


# --- date and time (IEC 62056-6-2 clause 4.1.6.1) -----------------------------------

NOT_SPECIFIED = None
_DEVIATION_NOT_SPECIFIED = -0x8000
# 0xFD/0xFE are the wildcards "DST end / DST begin" (month) and "2nd last / last day"
# (day of month); 0xFF (not specified) is the Python None, so it is not listed here.
_MONTH_SPECIAL = (0xFD, 0xFE)
_DAY_SPECIAL = (0xFD, 0xFE)


def _check_date(year, month, day, dow) -> None:
    """The encoder's mirror of the decoder's range checks, so encode/decode stay inverses."""
    if year is not None and not (isinstance(year, int) and 0 <= year <= 0xFFFE):
        raise AxdrError(f"date: year {year!r} out of range 0..0xFFFE (None = not specified)")
    if month is not None and month not in _MONTH_SPECIAL and not (isinstance(month, int) and 1 <= month <= 12):
        raise AxdrError(f"date: month {month!r} out of range")
    if day is not None and day not in _DAY_SPECIAL and not (isinstance(day, int) and 1 <= day <= 31):
        raise AxdrError(f"date: day {day!r} out of range")
    if dow is not None and not (isinstance(dow, int) and 1 <= dow <= 7):
        raise AxdrError(f"date: day of week {dow!r} out of range")


@dataclass(frozen=True, slots=True)
class CosemDate:
    """date: year (None = not specified), month (1..12, 0xFD DST end, 0xFE DST begin),
    day_of_month (1..31, 0xFD 2nd last, 0xFE last day), day_of_week (1 = Monday)."""

    year: int | None
    month: int | None
    day_of_month: int | None
    day_of_week: int | None = None

    def encode(self) -> bytes:
        year = 0xFFFF if self.year is None else self.year
        _check_date(self.year, self.month, self.day_of_month, self.day_of_week)
        return bytes(
            (
                year >> 8,
                year & 0xFF,
                0xFF if self.month is None else self.month,
                0xFF if self.day_of_month is None else self.day_of_month,
                0xFF if self.day_of_week is None else self.day_of_week,
            )
        )

    @classmethod
    def decode(cls, b: bytes) -> "CosemDate":
        year = (b[0] << 8) | b[1]
        month, day, dow = b[2], b[3], b[4]
        if month != 0xFF and month not in _MONTH_SPECIAL and not 1 <= month <= 12:
            raise AxdrError(f"date: month {month} out of range")
        if day != 0xFF and day not in _DAY_SPECIAL and not 1 <= day <= 31:
            raise AxdrError(f"date: day {day} out of range")
        if dow != 0xFF and not 1 <= dow <= 7:
            raise AxdrError(f"date: day of week {dow} out of range")
        return cls(
            None if year == 0xFFFF else year,
            None if month == 0xFF else month,
            None if day == 0xFF else day,
            None if dow == 0xFF else dow,
        )

    @classmethod
    def from_date(cls, d: _date) -> "CosemDate":
        return cls(d.year, d.month, d.day, d.isoweekday())

    def to_date(self) -> _date:
        if self.year is None or self.month is None or self.day_of_month is None or self.month > 12 or self.day_of_month > 31:
            raise AxdrError("date has unspecified or wildcard fields")
        try:
            return _date(self.year, self.month, self.day_of_month)
        except ValueError as exc:
            raise AxdrError(f"not a calendar date: {exc}") from None


_TIME_MAX = (23, 59, 59, 99)
_TIME_FIELDS = ("hour", "minute", "second", "hundredths")


@dataclass(frozen=True, slots=True)
class CosemTime:
    """time: hour, minute, second, hundredths; each None when not specified."""

    hour: int | None
    minute: int | None
    second: int | None = 0
    hundredths: int | None = 0

    def encode(self) -> bytes:
        for v, hi, what in zip((self.hour, self.minute, self.second, self.hundredths), _TIME_MAX, _TIME_FIELDS):
            if v is not None and not (isinstance(v, int) and 0 <= v <= hi):
                raise AxdrError(f"time: {what} {v!r} out of range")
        return bytes(0xFF if v is None else v for v in (self.hour, self.minute, self.second, self.hundredths))

    @classmethod
    def decode(cls, b: bytes) -> "CosemTime":
        vals = []
        for v, hi, what in zip(b[:4], _TIME_MAX, _TIME_FIELDS):
            if v == 0xFF:
                vals.append(None)
            elif v > hi:
                raise AxdrError(f"time: {what} {v} out of range")
            else:
                vals.append(v)
        return cls(*vals)

    @classmethod
    def from_time(cls, t: _time) -> "CosemTime":
        return cls(t.hour, t.minute, t.second, t.microsecond // 10000)

    def to_time(self) -> _time:
        if self.hour is None or self.minute is None:
            raise AxdrError("time has unspecified fields")
        return _time(self.hour, self.minute, self.second or 0, (self.hundredths or 0) * 10000)


@dataclass(frozen=True, slots=True)
class CosemDateTime:
    """date-time: 12 octets. ``deviation`` is minutes, as the standard defines it
    (UTC minus local time, so India, UTC+05:30, is -330), None when not specified.
    ``clock_status`` is the status byte (0x80 = daylight saving active), None = 0xFF."""

    date: CosemDate
    time: CosemTime
    deviation: int | None = None
    clock_status: int | None = None

    def encode(self) -> bytes:
        dev = _DEVIATION_NOT_SPECIFIED if self.deviation is None else self.deviation
        if not isinstance(dev, int) or (dev != _DEVIATION_NOT_SPECIFIED and not -720 <= dev <= 720):
            raise AxdrError(f"date-time: deviation {dev!r} out of range -720..720")
        status = 0xFF if self.clock_status is None else self.clock_status
        # 0xFF is how "not specified" travels, so an explicit 0xFF would come back as None
        if not isinstance(status, int) or not 0 <= status <= 0xFF or (status == 0xFF and self.clock_status is not None):
            raise AxdrError(f"date-time: clock status {self.clock_status!r} out of range 0..0xFE (None = not specified)")
        return self.date.encode() + self.time.encode() + dev.to_bytes(2, "big", signed=True) + bytes((status,))

    @classmethod
    def decode(cls, b: bytes) -> "CosemDateTime":
        d = CosemDate.decode(b[0:5])
        t = CosemTime.decode(b[5:9])
        dev = int.from_bytes(b[9:11], "big", signed=True)
        if dev != _DEVIATION_NOT_SPECIFIED and not -720 <= dev <= 720:
            raise AxdrError(f"date-time: deviation {dev} out of range")
        return cls(d, t, None if dev == _DEVIATION_NOT_SPECIFIED else dev, None if b[11] == 0xFF else b[11])

    @classmethod
    def from_datetime(cls, dt: _datetime, *, deviation: int | None = None, clock_status: int | None = 0) -> "CosemDateTime":
        """From a Python datetime; an aware one supplies the deviation itself."""
        if dt.tzinfo is not None and deviation is None:
            offset = dt.utcoffset()
            deviation = -int(offset.total_seconds() // 60) if offset is not None else None
        return cls(CosemDate.from_date(dt.date()), CosemTime.from_time(dt.time()), deviation, clock_status)

    def to_datetime(self) -> _datetime:
        """A naive datetime in meter time, or an aware one when the deviation is given."""
        d = self.date.to_date()
        t = self.time.to_time()
        tz = None if self.deviation is None else timezone(timedelta(minutes=-self.deviation))
        return _datetime.combine(d, t, tzinfo=tz)


@dataclass(frozen=True, slots=True)
class DateTime(Data):
    value: CosemDateTime
    tag: ClassVar[DataType] = DataType.DATE_TIME

    def to_python(self) -> Any:
        try:
            return self.value.to_datetime()
        except AxdrError:
            return self.value


@dataclass(frozen=True, slots=True)
class Date(Data):
    value: CosemDate
    tag: ClassVar[DataType] = DataType.DATE


@dataclass(frozen=True, slots=True)
class Time(Data):
    value: CosemTime
    tag: ClassVar[DataType] = DataType.TIME


# --- compact array (IEC 62056-6-2 clause 4.1.7) ---------------------------------------


@dataclass(frozen=True, slots=True)
class TypeDescription:
    """The type of compact-array elements: a simple tag, an array of one type, or a structure."""

    tag: DataType
    count: int = 0  # for ARRAY: number of elements
    elements: tuple = ()  # for ARRAY: (element TypeDescription,); for STRUCTURE: one per member

    @classmethod
    def of(cls, value: Data) -> "TypeDescription":
        if isinstance(value, Array):
            if not value.value:
                raise AxdrError("cannot describe the type of an empty array")
            return cls(DataType.ARRAY, len(value.value), (cls.of(value.value[0]),))
        if isinstance(value, Structure):
            return cls(DataType.STRUCTURE, 0, tuple(cls.of(v) for v in value.value))
        return cls(value.tag)


@dataclass(frozen=True, slots=True)
class CompactArray(Data):
    """An array whose elements share one type description and are sent without tags."""

    type_description: TypeDescription
    value: tuple
    tag: ClassVar[DataType] = DataType.COMPACT_ARRAY

    def to_python(self) -> list:
        return [v.to_python() for v in self.value]


DataValue = Union[Data]

# --- encoding --------------------------------------------------------------------------


def encode(value: Data) -> bytes:
    """A-XDR bytes of a Data value, tag included."""
    out = bytearray()
    _encode_into(out, value, True, 0)
    return bytes(out)


def _encode_into(out: bytearray, v: Data, tagged: bool, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise AxdrError("nesting too deep")
    cls = type(v)
    if tagged:
        out.append(cls.tag)
    if cls in _INT_SET:
        val = v.value
        if not isinstance(val, int) or isinstance(val, bool) or not cls.min <= val <= cls.max:
            raise AxdrError(f"{cls.__name__} value {val!r} out of range {cls.min}..{cls.max}")
        out += cls.struct.pack(val)
    elif cls is OctetString:
        val = v.value
        if not isinstance(val, (bytes, bytearray)):
            raise AxdrError("octet-string value must be bytes")
        out += encode_length(len(val))
        out += val
    elif cls is Structure or cls is Array:
        items = v.value
        out += encode_length(len(items))
        for item in items:
            if not isinstance(item, Data):
                raise AxdrError(f"{cls.__name__} element {item!r} is not a Data value")
            _encode_into(out, item, True, depth + 1)
    elif cls is Boolean:
        out.append(1 if v.value else 0)
    elif cls is VisibleString:
        try:
            raw = v.value.encode("ascii")
        except (UnicodeEncodeError, AttributeError):
            raise AxdrError("visible-string must be ASCII text") from None
        out += encode_length(len(raw))
        out += raw
    elif cls is Utf8String:
        try:
            raw = v.value.encode("utf-8")
        except (UnicodeEncodeError, AttributeError):
            raise AxdrError("utf8-string must be text") from None
        out += encode_length(len(raw))
        out += raw
    elif cls is DateTime:
        out += _fixed(v.value, CosemDateTime, 12)
    elif cls is Date:
        out += _fixed(v.value, CosemDate, 5)
    elif cls is Time:
        out += _fixed(v.value, CosemTime, 4)
    elif cls is BitString:
        bits = v.value
        out += encode_length(len(bits))
        if bits:
            nbytes = (len(bits) + 7) // 8
            out += int(bits.ljust(nbytes * 8, "0"), 2).to_bytes(nbytes, "big")
    elif cls is Float32:
        out += _pack_float(">f", v.value)
    elif cls is Float64:
        out += _pack_float(">d", v.value)
    elif cls is Bcd:
        if not isinstance(v.value, int) or not 0 <= v.value <= 99:
            raise AxdrError(f"bcd value {v.value!r} not in 0..99")
        out.append(((v.value // 10) << 4) | (v.value % 10))
    elif cls is NullData or cls is DontCare:
        pass
    elif cls is CompactArray:
        td = v.type_description
        _check_type_description(td, 0)
        if v.value and _min_size(td) == 0:
            raise AxdrError("compact-array elements of this type take no bytes; they could not be counted")
        _encode_type_description(out, td, 0)
        contents = bytearray()
        for item in v.value:
            _encode_typed(contents, item, td, depth + 1)
        out += encode_length(len(contents))
        out += contents
    else:
        raise AxdrError(f"cannot encode {cls.__name__}")


def _fixed(value: Any, kind: type, size: int) -> bytes:
    if not isinstance(value, kind):
        raise AxdrError(f"expected {kind.__name__}")
    try:
        raw = value.encode()
    except (ValueError, OverflowError, TypeError) as exc:
        raise AxdrError(f"{kind.__name__}: {exc}") from None
    if len(raw) != size:
        raise AxdrError(f"{kind.__name__}: field out of range")
    return raw


def _pack_float(fmt: str, value: Any) -> bytes:
    try:
        return struct.pack(fmt, value)
    except (struct.error, OverflowError, TypeError) as exc:
        raise AxdrError(f"float: {exc}") from None


def _min_size(td: TypeDescription) -> int:
    """The fewest bytes one untagged element of this type can take."""
    if td.tag == DataType.NULL_DATA:
        return 0
    if td.tag == DataType.STRUCTURE:
        return sum(_min_size(e) for e in td.elements)
    if td.tag == DataType.ARRAY:
        return td.count * _min_size(td.elements[0])
    return 1  # every other type is at least a length byte or one octet of value


def _check_type_description(td: TypeDescription, depth: int) -> None:
    """Reject descriptions the decoder could not walk in bounded time: unknown tags, and
    arrays of elements that take no bytes (65535 x 65535 x ... null-data from four bytes)."""
    if depth > MAX_DEPTH:
        raise AxdrError("type description nesting too deep")
    if not isinstance(td, TypeDescription) or td.tag not in _BY_TAG or td.tag in (DataType.COMPACT_ARRAY, DataType.DONT_CARE):
        raise AxdrError(f"bad type description {td!r}")
    if td.tag == DataType.ARRAY:
        if len(td.elements) != 1 or not isinstance(td.count, int) or not 0 <= td.count <= 0xFFFF:
            raise AxdrError("array type description needs one element type and a count 0..65535")
        _check_type_description(td.elements[0], depth + 1)
        if td.count and _min_size(td.elements[0]) == 0:
            raise AxdrError("array type description of elements that take no bytes")
    elif td.tag == DataType.STRUCTURE:
        for e in td.elements:
            _check_type_description(e, depth + 1)
    elif td.elements or td.count:
        raise AxdrError(f"simple type description {td.tag} with elements")


def _encode_type_description(out: bytearray, td: TypeDescription, depth: int) -> None:
    out.append(td.tag)
    if td.tag == DataType.ARRAY:
        out += td.count.to_bytes(2, "big")
        _encode_type_description(out, td.elements[0], depth + 1)
    elif td.tag == DataType.STRUCTURE:
        out += encode_length(len(td.elements))
        for e in td.elements:
            _encode_type_description(out, e, depth + 1)


def _encode_typed(out: bytearray, item: Data, td: TypeDescription, depth: int) -> None:
    """Encode one compact-array element (no tags) according to its type description."""
    if depth > MAX_DEPTH:
        raise AxdrError("nesting too deep")
    if td.tag == DataType.STRUCTURE:
        if not isinstance(item, Structure) or len(item.value) != len(td.elements):
            raise AxdrError("compact-array element does not match its structure description")
        for sub, sub_td in zip(item.value, td.elements):
            _encode_typed(out, sub, sub_td, depth + 1)
    elif td.tag == DataType.ARRAY:
        if not isinstance(item, Array) or len(item.value) != td.count:
            raise AxdrError("compact-array element does not match its array description")
        for sub in item.value:
            _encode_typed(out, sub, td.elements[0], depth + 1)
    else:
        if not isinstance(item, Data) or item.tag != td.tag:
            raise AxdrError("compact-array element does not match its type description")
        _encode_into(out, item, False, depth + 1)


# --- decoding --------------------------------------------------------------------------


def decode(buf: bytes) -> Data:
    """Decode exactly one Data value filling ``buf``."""
    value, pos = decode_prefix(buf, 0)
    if pos != len(buf):
        raise AxdrError(f"{len(buf) - pos} trailing bytes after Data")
    return value


def decode_prefix(buf: bytes, pos: int = 0) -> tuple[Data, int]:
    """Decode one Data value at ``pos``; return it and the position after it."""
    try:
        tag = buf[pos]
    except IndexError:
        raise AxdrError("truncated: no Data tag") from None
    return _decode_untagged(buf, pos + 1, tag, 0)


def _need(buf: bytes, pos: int, n: int) -> int:
    end = pos + n
    if end > len(buf):
        raise AxdrError(f"truncated: need {n} bytes at offset {pos}")
    return end


def _decode_untagged(buf: bytes, pos: int, tag: int, depth: int) -> tuple[Data, int]:
    if depth > MAX_DEPTH:
        raise AxdrError("nesting too deep")
    cls = _BY_TAG.get(tag)
    if cls is None:
        raise AxdrError(f"unknown Data tag {tag}")
    if cls in _INT_SET:
        s = cls.struct
        end = _need(buf, pos, s.size)
        return cls(s.unpack_from(buf, pos)[0]), end
    if cls is OctetString:
        n, pos = decode_length(buf, pos)
        end = _need(buf, pos, n)
        return OctetString(bytes(buf[pos:end])), end
    if cls is Structure or cls is Array:
        n, pos = decode_length(buf, pos)
        if n > len(buf) - pos:  # every element takes at least one byte
            raise AxdrError(f"{cls.__name__} claims {n} elements, only {len(buf) - pos} bytes left")
        items = []
        for _ in range(n):
            try:
                sub_tag = buf[pos]
            except IndexError:
                raise AxdrError("truncated element") from None
            item, pos = _decode_untagged(buf, pos + 1, sub_tag, depth + 1)
            items.append(item)
        return cls(tuple(items)), pos
    if cls is Boolean:
        end = _need(buf, pos, 1)
        return Boolean(buf[pos] != 0), end
    if cls is VisibleString or cls is Utf8String:
        n, pos = decode_length(buf, pos)
        end = _need(buf, pos, n)
        try:
            text = bytes(buf[pos:end]).decode("ascii" if cls is VisibleString else "utf-8")
        except UnicodeDecodeError:
            raise AxdrError(f"{cls.__name__} is not valid text") from None
        return cls(text), end
    if cls is DateTime:
        end = _need(buf, pos, 12)
        return DateTime(CosemDateTime.decode(buf[pos:end])), end
    if cls is Date:
        end = _need(buf, pos, 5)
        return Date(CosemDate.decode(buf[pos:end])), end
    if cls is Time:
        end = _need(buf, pos, 4)
        return Time(CosemTime.decode(buf[pos:end])), end
    if cls is BitString:
        nbits, pos = decode_length(buf, pos)
        nbytes = (nbits + 7) // 8
        end = _need(buf, pos, nbytes)
        if nbits == 0:
            return BitString(""), end
        bits = format(int.from_bytes(buf[pos:end], "big"), f"0{nbytes * 8}b")[:nbits]
        return BitString(bits), end
    if cls is Float32:
        end = _need(buf, pos, 4)
        return Float32(struct.unpack_from(">f", buf, pos)[0]), end
    if cls is Float64:
        end = _need(buf, pos, 8)
        return Float64(struct.unpack_from(">d", buf, pos)[0]), end
    if cls is Bcd:
        end = _need(buf, pos, 1)
        b = buf[pos]
        if (b >> 4) > 9 or (b & 0xF) > 9:
            raise AxdrError(f"bcd byte 0x{b:02x} is not two decimal digits")
        return Bcd((b >> 4) * 10 + (b & 0xF)), end
    if cls is NullData:
        return NullData(), pos
    if cls is DontCare:
        return DontCare(), pos
    if cls is CompactArray:
        td, pos = _decode_type_description(buf, pos, depth + 1)
        _check_type_description(td, 0)
        n, pos = decode_length(buf, pos)
        end = _need(buf, pos, n)
        contents = bytes(buf[pos:end])
        if contents and _min_size(td) == 0:
            raise AxdrError("compact-array contents for elements that take no bytes")
        items = []
        cpos = 0
        while cpos < len(contents):
            item, cpos = _decode_typed(contents, cpos, td, depth + 1)
            items.append(item)
        return CompactArray(td, tuple(items)), end
    raise AxdrError(f"cannot decode tag {tag}")  # pragma: no cover - every tag is handled above


def _decode_type_description(buf: bytes, pos: int, depth: int) -> tuple[TypeDescription, int]:
    if depth > MAX_DEPTH:
        raise AxdrError("type description nesting too deep")
    end = _need(buf, pos, 1)
    tag = buf[pos]
    if tag not in _BY_TAG or tag in (DataType.COMPACT_ARRAY, DataType.DONT_CARE):
        raise AxdrError(f"bad type description tag {tag}")
    if tag == DataType.ARRAY:
        cend = _need(buf, end, 2)
        count = int.from_bytes(buf[end:cend], "big")
        elem, pos = _decode_type_description(buf, cend, depth + 1)
        return TypeDescription(DataType.ARRAY, count, (elem,)), pos
    if tag == DataType.STRUCTURE:
        n, pos = decode_length(buf, end)
        if n > len(buf) - pos:
            raise AxdrError("structure description longer than the data")
        elems = []
        for _ in range(n):
            e, pos = _decode_type_description(buf, pos, depth + 1)
            elems.append(e)
        return TypeDescription(DataType.STRUCTURE, 0, tuple(elems)), pos
    return TypeDescription(DataType(tag)), end


def _decode_typed(buf: bytes, pos: int, td: TypeDescription, depth: int) -> tuple[Data, int]:
    if depth > MAX_DEPTH:
        raise AxdrError("nesting too deep")
    if td.tag == DataType.STRUCTURE:
        items = []
        for sub_td in td.elements:
            item, pos = _decode_typed(buf, pos, sub_td, depth + 1)
            items.append(item)
        return Structure(tuple(items)), pos
    if td.tag == DataType.ARRAY:
        if td.count > len(buf) - pos:  # _check_type_description made every element >= 1 byte
            raise AxdrError("array description longer than the data")
        items = []
        for _ in range(td.count):
            item, pos = _decode_typed(buf, pos, td.elements[0], depth + 1)
            items.append(item)
        return Array(tuple(items)), pos
    if td.tag == DataType.NULL_DATA:
        return NullData(), pos  # legal inside a structure; _check_type_description bounds it
    return _decode_untagged(buf, pos, td.tag, depth + 1)


_BY_TAG: dict[int, type] = {
    cls.tag: cls
    for cls in (
        NullData, DontCare, Boolean, BitString, Float32, Float64, OctetString, VisibleString,
        Utf8String, Bcd, Array, Structure, DateTime, Date, Time, CompactArray, *INTEGER_TYPES,
    )
}
_INT_SET = frozenset(INTEGER_TYPES)


# --- conveniences --------------------------------------------------------------------


def date_time(dt: _datetime, *, deviation: int | None = None, clock_status: int | None = 0) -> DateTime:
    """A DateTime Data value from a Python datetime."""
    return DateTime(CosemDateTime.from_datetime(dt, deviation=deviation, clock_status=clock_status))


def structure(*items: Data) -> Structure:
    return Structure(tuple(items))


def array(items) -> Array:
    return Array(tuple(items))
