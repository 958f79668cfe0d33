"""Profile generic (class 7): attribute types, the buffer, and selective access by
range (clock first and not first, non-clock columns, time zones) and by entry."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from bijli.dlms import axdr
from bijli.dlms.apdu import AccessSelection
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.profile import (
    CaptureObjectDefinition, EntryDescriptor, ProfileGeneric, RangeDescriptor,
)
from bijli.dlms.obis import Obis

from .helpers import ENUM, OCT, U16, U32, I8, roundtrip, shape

CLOCK = CaptureObjectDefinition(8, Obis(0, 0, 1, 0, 0, 255), 2, 0)
ENERGY = CaptureObjectDefinition(3, Obis(1, 0, 1, 8, 0, 255), 2, 0)
VOLTAGE = CaptureObjectDefinition(3, Obis(1, 0, 12, 27, 0, 255), 2, 0)
EVENT_CODE = CaptureObjectDefinition(1, Obis(0, 0, 96, 11, 0, 255), 2, 0)
T0 = datetime(2024, 3, 1, 0, 0)


def dt_octets(t: datetime) -> axdr.OctetString:
    return axdr.OctetString(axdr.CosemDateTime.from_datetime(t).encode())


ENCODERS = {CLOCK: dt_octets, ENERGY: axdr.DoubleLongUnsigned, VOLTAGE: axdr.LongUnsigned, EVENT_CODE: axdr.LongUnsigned}


class ListSource:
    """The firmware side for a test: rows of Python values in memory, selection done
    with the descriptors' own column helpers (as firmware.cosem does)."""

    def __init__(self, columns, rows, capacity=2880, period=900):
        self.columns = list(columns)
        self.data = list(rows)
        self.capacity = capacity
        self.period = period
        self.calls = []

    def capture_objects(self):
        return self.columns

    def rows(self, selection):
        self.calls.append(selection)
        cols = range(len(self.columns))
        picked = self.data
        if isinstance(selection, RangeDescriptor):
            c = selection.column(self.columns)
            cols = selection.selected_columns(self.columns)
            try:
                picked = [r for r in self.data if selection.from_value <= r[c] <= selection.to_value]
            except TypeError:  # bounds of another type than the column: the firmware refuses
                raise CosemError(250, "range bounds do not compare with the column") from None
        elif isinstance(selection, EntryDescriptor):
            cols = selection.selected_columns(len(self.columns))
            picked = self.data[selection.slice()]
        enc = [ENCODERS[c] for c in self.columns]
        return [tuple(enc[i](r[i]) for i in cols) for r in picked]

    def entries_in_use(self):
        return len(self.data)

    def profile_entries(self):
        return self.capacity

    def capture_period(self):
        return self.period

    def reset(self):
        self.calls.append("reset")
        self.data.clear()

    def capture(self):
        self.calls.append("capture")


def block_load(n=8):
    rows = [(T0 + timedelta(minutes=15 * k), 1000 + 10 * k, 23000 + k) for k in range(n)]
    return ListSource([CLOCK, ENERGY, VOLTAGE], rows)


def event_log():
    rows = [(101 + k % 3, T0 + timedelta(hours=k), 5 * k) for k in range(6)]
    return ListSource([EVENT_CODE, CLOCK, ENERGY], rows)


def range_of(restricting, lo, hi, selected=()):
    return AccessSelection(1, axdr.Structure((restricting.to_data(), lo, hi,
                                              axdr.Array(tuple(c.to_data() for c in selected)))))


def entries(fe, te, fs, ts):
    return AccessSelection(2, axdr.Structure((axdr.DoubleLongUnsigned(fe), axdr.DoubleLongUnsigned(te),
                                              axdr.LongUnsigned(fs), axdr.LongUnsigned(ts))))


def values(buffer: axdr.Array) -> list[list]:
    return [[c.value for c in row.value] for row in roundtrip(buffer).value]


def test_attributes_have_the_standard_types():
    p = ProfileGeneric("1.0.99.1.0.255", block_load())
    assert (p.CLASS_ID, p.VERSION) == (7, 1)
    assert shape(p.get(2)) == [(OCT, U32, U16)] * 8
    assert shape(p.get(3)) == [(U16, OCT, I8, U16)] * 3
    assert p.get(3).value[0] == CLOCK.to_data()
    assert shape(p.get(4)) == U32 and p.get(4).value == 900
    assert shape(p.get(5)) == ENUM and p.get(5).value == 1
    assert shape(p.get(6)) == (U16, OCT, I8, U16)
    assert p.get(7) == axdr.DoubleLongUnsigned(8)
    assert p.get(8) == axdr.DoubleLongUnsigned(2880)


def test_range_on_the_clock_in_the_first_column():
    p = ProfileGeneric("1.0.99.1.0.255", block_load())
    got = values(p.get(2, range_of(CLOCK, dt_octets(T0 + timedelta(minutes=30)), dt_octets(T0 + timedelta(minutes=60)))))
    assert [r[1] for r in got] == [1020, 1030, 1040]
    assert all(len(r) == 3 for r in got)


def test_range_with_selected_columns_in_the_order_asked():
    p = ProfileGeneric("1.0.99.1.0.255", block_load())
    sel = range_of(CLOCK, dt_octets(T0), dt_octets(T0 + timedelta(minutes=15)), (VOLTAGE, CLOCK))
    got = p.get(2, sel)
    assert shape(got) == [(U16, OCT), (U16, OCT)]
    assert [r[0] for r in values(got)] == [23000, 23001]


def test_range_on_the_clock_when_it_is_not_the_first_column():
    p = ProfileGeneric("0.0.99.98.0.255", event_log())
    got = values(p.get(2, range_of(CLOCK, dt_octets(T0 + timedelta(hours=2)), dt_octets(T0 + timedelta(hours=4)))))
    assert [r[0] for r in got] == [103, 101, 102]
    assert [r[2] for r in got] == [10, 15, 20]


def test_range_bounds_as_date_time_type_and_with_a_deviation():
    src = block_load()
    p = ProfileGeneric("1.0.99.1.0.255", src, time_zone=-330)
    ist = timezone(timedelta(minutes=330))
    lo = axdr.date_time(T0.replace(tzinfo=ist).astimezone(timezone.utc))  # the same instant, sent as UTC
    hi = dt_octets(T0 + timedelta(minutes=15))
    got = values(p.get(2, range_of(CLOCK, lo, hi)))
    assert len(got) == 2
    assert src.calls[-1].from_value == T0 and src.calls[-1].from_value.tzinfo is None


def test_range_on_a_register_column():
    p = ProfileGeneric("1.0.99.1.0.255", block_load())
    got = values(p.get(2, range_of(ENERGY, axdr.DoubleLongUnsigned(1015), axdr.DoubleLongUnsigned(1050), (ENERGY,))))
    assert got == [[1020], [1030], [1040], [1050]]


def test_entry_descriptor_with_selected_columns():
    p = ProfileGeneric("1.0.99.1.0.255", block_load())
    assert values(p.get(2, entries(2, 3, 2, 3))) == [[1010, 23001], [1020, 23002]]
    assert len(values(p.get(2, entries(7, 0, 1, 0)))) == 2  # to the last entry
    assert values(p.get(2, entries(1, 1, 3, 0))) == [[23000]]  # to the last column
    assert values(p.get(2, entries(0, 1, 0, 1)))[0][0] == dt_octets(T0).value  # 0 read as "first"
    assert values(p.get(2, entries(5, 3, 1, 0))) == []


@pytest.mark.parametrize("selection,result", [
    (AccessSelection(1, axdr.Structure((CLOCK.to_data(), dt_octets(T0)))), 12),
    (AccessSelection(1, axdr.Integer(1)), 12),
    (range_of(CLOCK, axdr.DoubleLongUnsigned(1), axdr.DoubleLongUnsigned(2)), 12),
    (range_of(CLOCK, axdr.OctetString(b"\xff" * 9 + b"\x80\x00\xff"), dt_octets(T0)), 12),
    (range_of(CLOCK, axdr.OctetString(bytes(12)), dt_octets(T0)), 12),
    (range_of(ENERGY, axdr.Structure(()), axdr.DoubleLongUnsigned(2)), 12),
    (range_of(EVENT_CODE, axdr.LongUnsigned(1), axdr.LongUnsigned(2)), 250),
    (range_of(CLOCK, dt_octets(T0), dt_octets(T0), (EVENT_CODE,)), 250),
    (AccessSelection(2, axdr.Structure((axdr.LongUnsigned(1), axdr.DoubleLongUnsigned(0), axdr.LongUnsigned(1),
                                        axdr.LongUnsigned(0)))), 12),
    (AccessSelection(2, axdr.Array(())), 12),
    (AccessSelection(3, axdr.NullData()), 13),
])
def test_malformed_selective_access_is_refused_with_a_result(selection, result):
    src = block_load()
    p = ProfileGeneric("1.0.99.1.0.255", src)
    with pytest.raises(CosemError) as e:
        p.get(2, selection)
    assert e.value.result == result
    assert src.calls == []  # refused before the firmware is asked


def test_methods_and_capture_period():
    src = block_load()
    seen = []
    p = ProfileGeneric("1.0.99.1.0.255", src, set_capture_period=seen.append)
    p.invoke(2, axdr.Integer(0))
    p.invoke(1, axdr.Integer(0))
    assert src.calls == ["capture", "reset"] and p.get(7).value == 0
    p.set(4, axdr.DoubleLongUnsigned(1800))
    assert seen == [1800]
    with pytest.raises(CosemError) as e:
        p.set(4, axdr.LongUnsigned(1800))
    assert e.value.result == 12
    with pytest.raises(CosemError):
        p.invoke(1, axdr.OctetString(b""))
    with pytest.raises(CosemError) as e:
        ProfileGeneric("1.0.99.1.0.255", src).set(4, axdr.DoubleLongUnsigned(60))
    assert e.value.result == 3


def test_a_month_of_quarter_hours_builds_and_encodes_quickly():
    rows = [(T0 + timedelta(minutes=15 * k), k, 23000) for k in range(2976)]
    src = ListSource([CLOCK, ENERGY, VOLTAGE], rows)
    encoded = [tuple(ENCODERS[c](v) for c, v in zip(src.columns, r)) for r in rows]
    src.rows = lambda selection: encoded  # the firmware hands over pre-encoded rows
    p = ProfileGeneric("1.0.99.1.0.255", src)
    start = time.perf_counter()
    raw = axdr.encode(p.get(2))
    elapsed = time.perf_counter() - start
    assert raw[:4] == b"\x01\x82\x0b\xa0"  # array, 2976 elements
    assert elapsed < 1.0
