"""Hostile values: whatever Data a client sends to a set or an action, the objects
answer with a CosemError (a data-access-result / action-result) or accept it; they
never raise anything else, and an accepted value leaves the attribute readable."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.dlms import axdr
from bijli.dlms.apdu import AccessSelection
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.profile import ProfileGeneric

from .helpers import bound_objects
from .test_profile import block_load, event_log

_INTS = [st.builds(k, st.integers(k.min, k.max)) for k in axdr.INTEGER_TYPES]
_DATETIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1))
_SIMPLE = st.one_of(
    *_INTS,
    st.builds(axdr.Boolean, st.booleans()),
    st.builds(axdr.OctetString, st.binary(max_size=14)),
    st.builds(axdr.OctetString, st.sampled_from([4, 5, 6, 12]).flatmap(lambda n: st.binary(min_size=n, max_size=n))),
    _DATETIMES.map(lambda t: axdr.OctetString(axdr.CosemDateTime.from_datetime(t).encode())),
    _DATETIMES.map(axdr.date_time),
    st.builds(axdr.VisibleString, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=8)),
    st.builds(axdr.Utf8String, st.text(max_size=8)),
    st.builds(axdr.BitString, st.text(alphabet="01", max_size=12)),
    st.builds(axdr.Float32, st.floats(width=32)),
    st.builds(axdr.Float64, st.floats()),
    st.just(axdr.NullData()),
)
DATA = st.recursive(
    _SIMPLE,
    lambda inner: st.one_of(st.lists(inner, max_size=5).map(lambda xs: axdr.Structure(tuple(xs))),
                            st.lists(inner, max_size=4).map(lambda xs: axdr.Array(tuple(xs)))),
    max_leaves=16,
)


@st.composite
def mutated(draw, value: axdr.Data) -> axdr.Data:
    """``value`` with one node replaced by random Data: deep in otherwise valid input."""
    if isinstance(value, (axdr.Structure, axdr.Array)) and value.value and draw(st.booleans()):
        items = list(value.value)
        i = draw(st.integers(0, len(items) - 1))
        items[i] = draw(mutated(items[i]))
        if draw(st.integers(0, 9)) == 0:
            del items[i]
        return type(value)(tuple(items))
    return draw(DATA)


def _objects():
    return bound_objects()


def _check_readable(obj, index):
    axdr.encode(obj.get(index))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sets_accept_or_refuse_with_a_result(data):
    obj, _ = data.draw(st.sampled_from(_objects()), label="object")
    index = data.draw(st.integers(1, len(obj.ATTRIBUTES) + 1), label="attribute")
    base = obj.get(index) if index <= len(obj.ATTRIBUTES) else axdr.NullData()
    value = data.draw(st.one_of(DATA, mutated(base)), label="value")
    try:
        obj.set(index, value)
    except CosemError:
        return
    _check_readable(obj, index)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_actions_accept_or_refuse_with_a_result(data):
    obj, _ = data.draw(st.sampled_from(_objects()), label="object")
    index = data.draw(st.integers(0, len(obj.METHODS) + 1), label="method")
    # a valid-looking start for structured parameters: the value of an attribute of the same object
    seed = obj.get(data.draw(st.integers(1, len(obj.ATTRIBUTES))))
    params = data.draw(st.one_of(st.none(), DATA, mutated(seed)), label="parameters")
    try:
        obj.invoke(index, params)
    except CosemError:
        return
    for i in range(1, len(obj.ATTRIBUTES) + 1):
        _check_readable(obj, i)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_selective_access_accepts_or_refuses_with_a_result(data):
    source = data.draw(st.sampled_from([block_load, event_log]))()
    p = ProfileGeneric("1.0.99.1.0.255", source, time_zone=-330)
    good = [
        axdr.Structure((source.columns[0].to_data(), axdr.DoubleLongUnsigned(0), axdr.DoubleLongUnsigned(9),
                        axdr.Array(()))),
        axdr.Structure((axdr.DoubleLongUnsigned(1), axdr.DoubleLongUnsigned(0), axdr.LongUnsigned(1),
                        axdr.LongUnsigned(0))),
    ]
    selector = data.draw(st.integers(0, 3))
    params = data.draw(st.one_of(DATA, st.sampled_from(good).flatmap(mutated)))
    try:
        buffer = p.get(2, AccessSelection(selector, params))
    except CosemError:
        return
    axdr.encode(buffer)
