"""Profile generic (class 7, version 1), IEC 62056-6-2 clause 4.3.6.

A profile is a table: ``capture_objects`` names the columns (one
capture_object_definition each), ``buffer`` holds the rows oldest first, and a
client may read part of it with selective access: selector 1
(range_descriptor, rows whose restricting column lies in [from_value, to_value])
or selector 2 (entry_descriptor, rows and columns by number). The rows live in
the firmware; this object parses the selective access into frozen values
(:class:`RangeDescriptor`, :class:`EntryDescriptor`), hands them to a
:class:`ProfileSource`, and encodes the answer as an array of structures.

The restricting object of a range need not be the first column (IS 15959 event
logs put the event code first); :meth:`RangeDescriptor.column` finds it
wherever it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, Protocol, Sequence

from bijli.dlms import axdr
from bijli.dlms.apdu import AccessSelection, DataAccessResult
from bijli.dlms.axdr import Data
from bijli.dlms.cosem.base import CosemError, CosemObject
from bijli.dlms.cosem.values import (
    mismatch, no_parameter, parse_array, parse_date_time, parse_int, parse_obis, parse_struct, to_local,
)
from bijli.dlms.obis import Obis

SELECTOR_RANGE = 1
SELECTOR_ENTRY = 2



class SortMethod(IntEnum):
    """Class 7 attribute 5 sort_method: the order the buffer keeps its entries in."""

    FIFO = 1
    LIFO = 2
    LARGEST = 3
    SMALLEST = 4
    NEAREST_TO_ZERO = 5
    FARTHEST_FROM_ZERO = 6


CLOCK_CLASS_ID = 8
_CLOCK_TIME = 2  # Clock attribute 2, time


@dataclass(frozen=True, slots=True)
class CaptureObjectDefinition:
    """capture_object_definition ::= structure {class_id long-unsigned, logical_name
    octet-string, attribute_index integer, data_index long-unsigned}. data_index 0
    means the whole attribute."""

    class_id: int
    logical_name: Obis
    attribute_index: int
    data_index: int = 0

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.LongUnsigned(self.class_id), axdr.OctetString(bytes(self.logical_name)),
                               axdr.Integer(self.attribute_index), axdr.LongUnsigned(self.data_index)))

    @classmethod
    def from_data(cls, value: Data) -> "CaptureObjectDefinition":
        c, ln, a, d = parse_struct(value, 4)
        return cls(parse_int(c, axdr.LongUnsigned), parse_obis(ln), parse_int(a, axdr.Integer),
                   parse_int(d, axdr.LongUnsigned))

    @property
    def is_clock_time(self) -> bool:
        return self.class_id == CLOCK_CLASS_ID and self.attribute_index == _CLOCK_TIME


NO_SORT_OBJECT = CaptureObjectDefinition(0, Obis(0, 0, 0, 0, 0, 0), 0, 0)


def _column(columns: Sequence[CaptureObjectDefinition], wanted: CaptureObjectDefinition) -> int:
    try:
        return columns.index(wanted)
    except ValueError:
        raise CosemError(DataAccessResult.OTHER_REASON,
                         f"{wanted.class_id}/{wanted.logical_name}/{wanted.attribute_index} is not captured") from None


@dataclass(frozen=True, slots=True)
class RangeDescriptor:
    """Selector 1: rows whose ``restricting_object`` column is in [from_value, to_value]
    (inclusive), only the ``selected_values`` columns (all when empty).

    from/to are datetimes when they arrive as date-times (naive meter time when the
    profile knows its time zone), ints for integer types, bytes or str otherwise."""

    restricting_object: CaptureObjectDefinition
    from_value: Any
    to_value: Any
    selected_values: tuple[CaptureObjectDefinition, ...] = ()

    def column(self, columns: Sequence[CaptureObjectDefinition]) -> int:
        """The 0-based column the range restricts (CosemError if it is not captured)."""
        return _column(columns, self.restricting_object)

    def selected_columns(self, columns: Sequence[CaptureObjectDefinition]) -> tuple[int, ...]:
        """The 0-based columns to return, in the order asked."""
        if not self.selected_values:
            return tuple(range(len(columns)))
        return tuple(_column(columns, c) for c in self.selected_values)

    @classmethod
    def from_data(cls, value: Data, time_zone: int | None = None) -> "RangeDescriptor":
        restricting, lo, hi, selected = parse_struct(value, 4)
        obj = CaptureObjectDefinition.from_data(restricting)
        sel = tuple(CaptureObjectDefinition.from_data(v) for v in parse_array(selected))
        return cls(obj, _range_value(lo, obj, time_zone), _range_value(hi, obj, time_zone), sel)


@dataclass(frozen=True, slots=True)
class EntryDescriptor:
    """Selector 2: entries from_entry..to_entry and columns from_selected_value..
    to_selected_value, all 1-based and inclusive; 0 in a "to" field means "to the last"."""

    from_entry: int = 1
    to_entry: int = 0
    from_selected_value: int = 1
    to_selected_value: int = 0

    def selected_columns(self, ncolumns: int) -> tuple[int, ...]:
        """The 0-based columns to return (empty when the range selects none)."""
        hi = ncolumns if self.to_selected_value == 0 else min(self.to_selected_value, ncolumns)
        return tuple(range(self.from_selected_value - 1, hi))

    def slice(self) -> slice:
        """The Python slice of the oldest-first entry list this descriptor picks."""
        if self.to_entry and self.to_entry < self.from_entry:
            return slice(0, 0)
        return slice(self.from_entry - 1, self.to_entry or None)

    @classmethod
    def from_data(cls, value: Data) -> "EntryDescriptor":
        fe, te, fs, ts = parse_struct(value, 4)
        from_entry = parse_int(fe, axdr.DoubleLongUnsigned)
        from_sel = parse_int(fs, axdr.LongUnsigned)
        # Entries and columns count from 1; some clients send 0 for "the first", which
        # is what they mean, so it is read as 1 rather than refused.
        return cls(max(from_entry, 1), parse_int(te, axdr.DoubleLongUnsigned), max(from_sel, 1),
                   parse_int(ts, axdr.LongUnsigned))


def _range_value(value: Data, restricting: CaptureObjectDefinition, time_zone: int | None) -> Any:
    kind = type(value)
    if kind is axdr.DateTime or (kind is axdr.OctetString and len(value.value) == 12):
        try:
            t = parse_date_time(value)
        except CosemError:
            if restricting.is_clock_time or kind is axdr.DateTime:
                raise
            return value.value  # twelve octets that are not a date-time: compare as bytes
        if t is None:
            raise mismatch("a range bound cannot be an unspecified date-time")
        if t.tzinfo is not None and time_zone is not None:
            t = to_local(t, time_zone)
        return t
    if restricting.is_clock_time:
        raise mismatch("a range on the clock needs date-time bounds")
    if kind in _SCALARS:
        return value.value
    raise mismatch(f"{kind.__name__} cannot bound a range")


_SCALARS = frozenset((*axdr.INTEGER_TYPES, axdr.OctetString, axdr.VisibleString, axdr.Utf8String,
                      axdr.Float32, axdr.Float64, axdr.Boolean, axdr.Bcd))

Selection = RangeDescriptor | EntryDescriptor | None


class ProfileSource(Protocol):
    """What the firmware provides for one profile. ``rows`` returns the buffer
    oldest first, each row the selected columns already as A-XDR Data; it may
    raise CosemError to refuse a selection."""

    def capture_objects(self) -> list[CaptureObjectDefinition]: ...

    def rows(self, selection: Selection) -> list[tuple[Data, ...]]: ...

    def entries_in_use(self) -> int: ...

    def profile_entries(self) -> int: ...

    def capture_period(self) -> int: ...

    def reset(self) -> None: ...

    def capture(self) -> None: ...


class ProfileGeneric(CosemObject):
    CLASS_ID = 7
    VERSION = 1
    ATTRIBUTES = (
        "logical_name", "buffer", "capture_objects", "capture_period", "sort_method", "sort_object",
        "entries_in_use", "profile_entries",
    )
    METHODS = ("reset", "capture")
    SELECTORS = {2: (SELECTOR_RANGE, SELECTOR_ENTRY)}

    def __init__(self, logical_name, source: ProfileSource, *, sort_method: SortMethod = SortMethod.FIFO,
                 sort_object: CaptureObjectDefinition = NO_SORT_OBJECT,
                 time_zone: "int | Callable[[], int] | None" = None,
                 set_capture_period: Callable[[int], None] | None = None):
        """``time_zone`` (the Blue Book deviation, as Clock.time_zone: IST is -330, or a
        getter of the clock's) turns range bounds sent with a deviation into naive meter
        time; None passes them on as aware datetimes."""
        super().__init__(logical_name)
        self.source = source
        self.sort_method = sort_method
        self.sort_object = sort_object
        self.time_zone = time_zone
        self._set_capture_period = set_capture_period

    def parse_selection(self, selection: AccessSelection | None) -> Selection:
        if selection is None:
            return None
        if selection.selector == SELECTOR_RANGE:
            zone = self.time_zone() if callable(self.time_zone) else self.time_zone
            rd = RangeDescriptor.from_data(selection.parameters, zone)
            columns = self.source.capture_objects()
            rd.column(columns)  # refuse a range on, or a selection of, a column we do not capture
            rd.selected_columns(columns)
            return rd
        return EntryDescriptor.from_data(selection.parameters)

    def get_buffer(self, selection: AccessSelection | None, ctx) -> Data:
        rows = self.source.rows(self.parse_selection(selection))
        structure = axdr.Structure
        # one Structure per row, no per-cell conversion: a year of 15-minute rows stays cheap
        return axdr.Array(tuple([structure(r if type(r) is tuple else tuple(r)) for r in rows]))

    def get_capture_objects(self, ctx) -> Data:
        return axdr.Array(tuple(c.to_data() for c in self.source.capture_objects()))

    def get_capture_period(self, ctx) -> Data:
        return axdr.DoubleLongUnsigned(self.source.capture_period())

    def set_capture_period(self, value: Data, ctx) -> None:
        if self._set_capture_period is None:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, "capture_period is read-only")
        self._set_capture_period(parse_int(value, axdr.DoubleLongUnsigned))

    def get_sort_method(self, ctx) -> Data:
        return axdr.Enum(self.sort_method)

    def get_sort_object(self, ctx) -> Data:
        return self.sort_object.to_data()

    def get_entries_in_use(self, ctx) -> Data:
        return axdr.DoubleLongUnsigned(self.source.entries_in_use())

    def get_profile_entries(self, ctx) -> Data:
        return axdr.DoubleLongUnsigned(self.source.profile_entries())

    def do_reset(self, params, ctx) -> None:
        no_parameter(params)
        self.source.reset()

    def do_capture(self, params, ctx) -> None:
        no_parameter(params)
        self.source.capture()
