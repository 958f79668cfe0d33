"""Strategies for A-XDR ``Data`` values (IEC 62056-6-2 clause 4.1.5, the Data CHOICE).

Every strategy draws only values bijli's encoder accepts, so for each of them
``axdr.decode(axdr.encode(v)) == v``: every simple type at its full range, the
COSEM date, time and date-time with each "not specified" and wildcard value of
IEC 62056-6-2 clause 4.1.6.1, compact arrays (with their type description, clause
4.1.5 "compact-array"), and arrays and structures nested in them.
:data:`encoded_data` is the octets, for a decoder that is not bijli's.
"""

from __future__ import annotations

from hypothesis import strategies as st

from bijli.dlms import axdr
from bijli.dlms.axdr import DataType, TypeDescription

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
small_bytes = st.binary(max_size=40)

# --- date and time, with every "not specified" and wildcard value ---------------------

cosem_dates = st.builds(
    axdr.CosemDate,
    st.none() | st.integers(0, 0xFFFE),
    st.none() | st.integers(1, 12) | st.sampled_from([0xFD, 0xFE]),
    st.none() | st.integers(1, 31) | st.sampled_from([0xFD, 0xFE]),
    st.none() | st.integers(1, 7),
)
cosem_times = st.builds(
    axdr.CosemTime,
    st.none() | st.integers(0, 23),
    st.none() | st.integers(0, 59),
    st.none() | st.integers(0, 59),
    st.none() | st.integers(0, 99),
)
cosem_date_times = st.builds(
    axdr.CosemDateTime, cosem_dates, cosem_times, st.none() | st.integers(-720, 720), st.none() | st.integers(0, 0xFE)
)

# --- simple Data values by tag -------------------------------------------------------------

_INT_STRATEGIES = {cls.tag: st.builds(cls, st.integers(cls.min, cls.max)) for cls in axdr.INTEGER_TYPES}

SIMPLE: dict[int, st.SearchStrategy] = {
    DataType.BOOLEAN: st.builds(axdr.Boolean, st.booleans()),
    DataType.BIT_STRING: st.builds(axdr.BitString, st.text("01", max_size=70)),
    DataType.OCTET_STRING: st.builds(axdr.OctetString, st.binary(max_size=300)),
    DataType.VISIBLE_STRING: st.builds(axdr.VisibleString, st.text(st.characters(max_codepoint=127), max_size=30)),
    DataType.UTF8_STRING: st.builds(axdr.Utf8String, st.text(max_size=30)),
    DataType.BCD: st.builds(axdr.Bcd, st.integers(0, 99)),
    DataType.FLOAT32: st.builds(axdr.Float32, st.floats(width=32, allow_nan=False)),
    DataType.FLOAT64: st.builds(axdr.Float64, st.floats(allow_nan=False)),
    DataType.DATE_TIME: st.builds(axdr.DateTime, cosem_date_times),
    DataType.DATE: st.builds(axdr.Date, cosem_dates),
    DataType.TIME: st.builds(axdr.Time, cosem_times),
    **_INT_STRATEGIES,
}
_SIMPLE_TAGS = sorted(SIMPLE)

simple_data = st.one_of(st.just(axdr.NullData()), st.just(axdr.DontCare()), *SIMPLE.values())


# --- compact arrays --------------------------------------------------------------------------

def _min_size(td: TypeDescription) -> int:
    if td.tag == DataType.NULL_DATA:
        return 0
    if td.tag == DataType.STRUCTURE:
        return sum(_min_size(e) for e in td.elements)
    if td.tag == DataType.ARRAY:
        return td.count * _min_size(td.elements[0])
    return 1


_leaf_tds = st.sampled_from(_SIMPLE_TAGS).map(lambda t: TypeDescription(DataType(t)))
type_descriptions = st.recursive(
    _leaf_tds | st.just(TypeDescription(DataType.NULL_DATA)),
    lambda children: st.one_of(
        st.builds(lambda n, e: TypeDescription(DataType.ARRAY, n, (e,)), st.integers(0, 3),
                  children.filter(lambda e: _min_size(e) > 0)),
        st.lists(children, max_size=4).map(lambda es: TypeDescription(DataType.STRUCTURE, 0, tuple(es))),
    ),
    max_leaves=6,
).filter(lambda td: _min_size(td) > 0)


def values_of(td: TypeDescription) -> st.SearchStrategy:
    """Data values that match a compact-array type description."""
    if td.tag == DataType.NULL_DATA:
        return st.just(axdr.NullData())
    if td.tag == DataType.STRUCTURE:
        return st.tuples(*(values_of(e) for e in td.elements)).map(axdr.Structure)
    if td.tag == DataType.ARRAY:
        return st.tuples(*(values_of(td.elements[0]) for _ in range(td.count))).map(axdr.Array)
    return SIMPLE[td.tag]


compact_arrays = type_descriptions.flatmap(
    lambda td: st.lists(values_of(td), max_size=4).map(lambda items: axdr.CompactArray(td, tuple(items)))
)

data_values = st.recursive(
    simple_data | compact_arrays,
    lambda children: st.one_of(
        st.lists(children, max_size=5).map(lambda xs: axdr.Array(tuple(xs))),
        st.lists(children, max_size=5).map(lambda xs: axdr.Structure(tuple(xs))),
    ),
    max_leaves=12,
)


#: the A-XDR encoding of a drawn value (the first octet is its Data tag)
encoded_data = data_values.map(axdr.encode)
