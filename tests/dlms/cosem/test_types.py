"""Every attribute of every class encodes with the type IEC 62056-6-2 gives it,
and every writable attribute takes back what it reports (set round-trip)."""

from __future__ import annotations

import pytest

from bijli.dlms import axdr
from bijli.dlms.cosem import CLASSES
from bijli.dlms.cosem.base import CosemError

from .helpers import BITS, BOOL, ENUM, I8, I16, I32, NULL, OCT, U8, U16, U32, UTF8, bound_objects, roundtrip, shape

LN_SHAPE = OCT
VALUE_DEF = (U16, OCT, I8)
ACTION_ITEM = (OCT, U16)
CAPTURE_DEF = (U16, OCT, I8, U16)
UNIT_CHARGE = ((I8, I8), (U16, OCT, I8), [(OCT, I16), (OCT, I16)])

EXPECTED = {
    70: {2: BOOL, 3: ENUM, 4: ENUM},
    71: {2: VALUE_DEF, 3: U32, 4: U32, 5: U32, 6: U32, 7: U32, 8: (U16, OCT, U32), 9: [U16, U16], 10: BOOL,
         11: (ACTION_ITEM, ACTION_ITEM)},
    111: {2: (ENUM, ENUM), 3: U8, 4: BITS, 5: I32, 6: I32, 7: I32, 8: I32, 9: [OCT, OCT], 10: [OCT],
          11: [(OCT, OCT, BITS)], 12: [(OCT, U8)], 13: OCT, 14: OCT, 15: (UTF8, I8, ENUM), 16: I32, 17: I32, 18: U16,
          19: U32},
    112: {2: I32, 3: ENUM, 4: U8, 5: I32, 6: I32, 7: BITS, 8: ENUM, 9: I32, 10: I32, 11: OCT},
    113: {2: I32, 3: ENUM, 4: U8, 5: UNIT_CHARGE, 6: UNIT_CHARGE, 7: OCT, 8: U32, 9: BITS, 10: OCT, 11: I32, 12: I32,
          13: U16},
    115: {2: OCT, 3: OCT, 4: [OCT], 5: ENUM, 6: (ENUM, BITS)},
    9: {2: [(U16, [(ENUM, U16, OCT, I8, I8)]), (U16, [(ENUM, U16, OCT, I8, I8)])]},
    11: {2: [(U16, OCT, U8), (U16, OCT, U8)]},
    20: {2: OCT, 3: [(OCT, OCT, OCT)], 4: [(OCT, U8, U8, U8, U8, U8, U8, U8)], 5: [(U8, [(OCT, OCT, U16)] * 2)],
         6: OCT, 7: [], 8: [], 9: [], 10: OCT},
    22: {2: ACTION_ITEM, 3: ENUM, 4: [(OCT, OCT)]},
    21: {2: [U16, U16], 3: VALUE_DEF, 4: [(ACTION_ITEM, ACTION_ITEM)] * 2},
    17: {2: [(U16, OCT)]},
    19: {2: ENUM, 3: ENUM, 4: ENUM, 5: ENUM, 6: OCT, 7: OCT, 8: OCT, 9: OCT},
    23: {2: ENUM, 3: U8, 4: U8, 5: U16, 6: U16, 7: U16, 8: U16, 9: U16},
    41: {2: U16, 3: OCT, 4: U16, 5: U8, 6: U16},
    40: {2: [CAPTURE_DEF], 3: (ENUM, OCT, ENUM), 4: [(OCT, OCT)], 5: U16, 6: U8, 7: U16},
    5: {2: U32, 3: U32, 4: (I8, ENUM), 5: NULL, 6: OCT, 7: OCT, 8: U32, 9: U16},
    61: {2: [U16, U16], 3: (U16, OCT, [U8, U8], I8), 4: (I8, ENUM)},
}

OBJECTS = bound_objects()
IDS = [type(o).__name__ for o, _ in OBJECTS]


@pytest.mark.parametrize("obj,store", OBJECTS, ids=IDS)
def test_every_attribute_has_the_standard_type(obj, store):
    expected = EXPECTED[obj.CLASS_ID]
    assert set(expected) == set(range(2, len(obj.ATTRIBUTES) + 1)), "the table covers every attribute"
    assert shape(roundtrip(obj.get(1))) == LN_SHAPE
    for index, want in expected.items():
        assert shape(roundtrip(obj.get(index))) == want, obj.ATTRIBUTES[index - 1]


@pytest.mark.parametrize("obj,store", OBJECTS, ids=IDS)
def test_writable_attributes_round_trip(obj, store):
    for index, name in enumerate(obj.ATTRIBUTES, 1):
        if index == 1 or not hasattr(obj, f"set_{name}"):
            continue
        before = obj.get(index)
        store.calls.clear()
        obj.set(index, before)
        assert store.calls and store.calls[-1][:2] == ("set", name)
        assert obj.get(index) == before, name


@pytest.mark.parametrize("obj,store", OBJECTS, ids=IDS)
def test_unbound_setters_are_refused_and_invisible(obj, store):
    for index, name in enumerate(obj.ATTRIBUTES, 1):
        if hasattr(obj, f"set_{name}"):
            continue
        with pytest.raises(CosemError) as e:
            obj.set(index, obj.get(index))
        assert e.value.result == 3  # read-write-denied


@pytest.mark.parametrize("obj,store", OBJECTS, ids=IDS)
def test_wrong_types_are_type_unmatched(obj, store):
    odd = axdr.Structure((axdr.Float64(1.5), axdr.VisibleString("x"), axdr.Array(())))
    for index, name in enumerate(obj.ATTRIBUTES, 1):
        if hasattr(obj, f"set_{name}"):
            with pytest.raises(CosemError) as e:
                obj.set(index, odd)
            assert e.value.result == 12, name


def test_registry_numbers_match_the_classes():
    for class_id, cls in CLASSES.items():
        assert cls.CLASS_ID == class_id
        assert cls.ATTRIBUTES[0] == "logical_name"
        assert len(set(cls.ATTRIBUTES)) == len(cls.ATTRIBUTES)
    for obj, _ in OBJECTS:
        assert CLASSES[obj.CLASS_ID] is type(obj)


def test_versions_are_the_ones_we_implement():
    assert {c: CLASSES[c].VERSION for c in (7, 19, 23, 40, 70, 71, 111, 112, 113, 115)} == {
        7: 1, 19: 1, 23: 1, 40: 0, 70: 0, 71: 0, 111: 0, 112: 0, 113: 0, 115: 0}
