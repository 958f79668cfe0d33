"""Profile pages (firmware.pages): every entry comes back exactly as a per-entry row gives it."""

from __future__ import annotations

import math
import struct
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.firmware import pages
from bijli.firmware.errors import StorageError
from bijli.firmware.storage import dumps, loads

T0 = datetime(2024, 6, 14, 17, 0)


def same(a, b) -> bool:
    """Equal, of the same type, floats bit for bit (NaN as NaN), date-times with the same text."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, datetime):
        return a.isoformat() == b.isoformat()
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def as_a_row_keeps_it(seq, t, values):
    """What a per-entry row gives back: its time column's ISO text and its JSON value."""
    return seq, datetime.fromisoformat(t.isoformat()), loads(dumps(values))


naive = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1))
aware = st.builds(lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))), naive, st.integers(-720, 840))
short_decimal = st.builds(lambda n, k: round(n / 10**k, k), st.integers(-10**9, 10**9), st.integers(0, 3))
odd = st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.binary(max_size=4), aware,
                st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=False),
                st.decimals(allow_nan=False, allow_infinity=False, places=2), st.lists(st.integers(), max_size=2))
# a column is mostly of one kind, as a profile's capture object is; sometimes mixed
column_kind = st.sampled_from([
    st.integers(0, 5000), st.integers(-2**63, 2**63 - 1), short_decimal, st.floats(), naive, st.none(), odd,
    st.just(float("-0.0")), st.sampled_from([0.0, 229.99, 230.0, 5.6]),
])


@st.composite
def page_entries(draw):
    n = draw(st.integers(1, 40))
    ncol = draw(st.integers(0, 7))
    kinds = [draw(column_kind) for _ in range(ncol)]
    capture = draw(st.sampled_from([None, *range(ncol)]))  # a column holding the capture time
    t = draw(st.one_of(naive, aware))
    seq0 = draw(st.integers(1, 10**6))
    entries = []
    for i in range(n):
        t = t + timedelta(seconds=draw(st.sampled_from([900, 1800, 0, -3600, 1, 0.25])))
        values = [draw(k) for k in kinds]
        if capture is not None:
            values[capture] = t
        if draw(st.integers(0, 30)) == 0:  # now and then a row of another shape
            values = draw(st.one_of(st.lists(odd, max_size=3), st.tuples(st.integers())))
        entries.append((seq0 + i, t, values))
    return entries


@given(page_entries())
@settings(max_examples=150, deadline=None)
def test_a_page_gives_back_every_entry_as_its_row_would(entries):
    rows = [as_a_row_keeps_it(*e) for e in entries]
    for source in (entries, rows):  # as the firmware appends it, and as the shard packs its tail
        back = pages.unpack(pages.pack(source), entries[0][0])
        assert same([list(e) for e in back], [list(r) for r in rows])


def test_values_at_a_register_resolution_pack_small_and_noise_still_round_trips():
    day = [(i + 1, T0 + timedelta(minutes=30 * i), [T0 + timedelta(minutes=30 * i), round(229.9 + i % 3 / 100, 2),
            round(5.6 + i % 5 / 100, 2), 290 + i % 7, 0, 140, 0, 322, 0]) for i in range(48)]
    packed = pages.pack(day)
    assert len(packed) < 160  # a day of 30-minute block load, all eight columns
    assert len(dumps([e[2] for e in day])) > 10 * len(packed)
    noisy = [(s, t, [v[0], v[1] + 1e-9, *v[2:]]) for s, t, v in day]
    assert same([list(e) for e in pages.unpack(pages.pack(noisy), 1)], [list(e) for e in noisy])
    money = [(1, T0, [Decimal("12.345"), "token 1234", 2**80, True, -0.0, float("inf")])]
    assert same(list(pages.unpack(pages.pack(money), 1)[0]), list(money[0]))


def test_pages_that_do_not_decode_are_a_typed_error():
    good = pages.pack([(1, T0, [1, 2.5])])
    body = zlib.decompress(good)
    for bad in (b"not zlib", zlib.compress(bytes([9]) + body[1:]), zlib.compress(body[:-3]),
                zlib.compress(body + b"x"), zlib.compress(b"")):
        with pytest.raises(pages.PageError):
            pages.unpack(bad, 1)
    assert issubclass(pages.PageError, StorageError)
    for bad_entries in ([], [(1, T0, [1]), (3, T0, [1])]):
        with pytest.raises(pages.PageError):
            pages.pack(bad_entries)
