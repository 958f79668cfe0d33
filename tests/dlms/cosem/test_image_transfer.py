"""Image transfer (class 18): attribute types, strict method parameters, refusals passed through."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import axdr
from bijli.dlms.apdu import ActionResult
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.image_transfer import ImageToActivateInfo, ImageTransfer, ImageTransferStatus
from tests.dlms.cosem.helpers import BITS, BOOL, ENUM, OCT, U32, roundtrip, shape


class MemoryStore:
    """A store in memory, as simple as the protocol allows: it records what it is told."""

    image_block_size = 64

    def __init__(self):
        self.blocks: dict[int, bytes] = {}
        self.size = 0
        self.identifier = b""
        self.enabled = True
        self.status = ImageTransferStatus.NOT_INITIATED
        self.calls: list = []

    def transferred_blocks(self) -> str:
        count = (self.size + self.image_block_size - 1) // self.image_block_size
        return "".join("1" if n in self.blocks else "0" for n in range(count))

    def first_not_transferred_block(self) -> int:
        bits = self.transferred_blocks()
        return bits.index("0") if "0" in bits else len(bits)

    def transfer_enabled(self) -> bool:
        return self.enabled

    def set_transfer_enabled(self, enabled: bool) -> None:
        self.enabled = enabled

    def transfer_status(self) -> int:
        return self.status

    def images_to_activate(self):
        return [ImageToActivateInfo(self.size, self.identifier, b"\x01" * 64)] if self.size else []

    def initiate(self, identifier: bytes, size: int) -> None:
        self.identifier, self.size, self.status = identifier, size, ImageTransferStatus.INITIATED

    def transfer_block(self, number: int, value: bytes) -> None:
        if number > 10:
            raise CosemError(ActionResult.OTHER_REASON, "no such block")
        self.blocks[number] = value

    def verify(self) -> None:
        self.calls.append("verify")

    def activate(self) -> None:
        self.calls.append("activate")


def make():
    store = MemoryStore()
    return ImageTransfer("0.0.44.0.0.255", store), store


def test_class_and_names_follow_the_standard():
    obj, _ = make()
    assert (obj.CLASS_ID, obj.VERSION) == (18, 0)
    assert obj.ATTRIBUTES[1:] == ("image_block_size", "image_transferred_blocks_status",
                                  "image_first_not_transferred_block_number", "image_transfer_enabled",
                                  "image_transfer_status", "image_to_activate_info")
    assert obj.METHODS == ("image_transfer_initiate", "image_block_transfer", "image_verify", "image_activate")


def test_attribute_types():
    obj, store = make()
    obj.invoke(1, axdr.Structure((axdr.OctetString(b"bijli-0.2.0"), axdr.DoubleLongUnsigned(200))))
    obj.invoke(2, axdr.Structure((axdr.DoubleLongUnsigned(1), axdr.OctetString(b"x" * 64))))
    assert shape(roundtrip(obj.get(2))) == U32
    assert shape(roundtrip(obj.get(3))) == BITS
    assert obj.get(3) == axdr.BitString("0100")
    assert obj.get(4) == axdr.DoubleLongUnsigned(0)
    assert shape(obj.get(5)) == BOOL
    assert obj.get(6) == axdr.Enum(ImageTransferStatus.INITIATED)
    assert shape(obj.get(6)) == ENUM
    assert shape(roundtrip(obj.get(7))) == [(U32, OCT, OCT)]
    assert ImageToActivateInfo.from_data(obj.get(7).value[0]) == store.images_to_activate()[0]


def test_enabled_is_writable_and_typed():
    obj, store = make()
    obj.set(5, axdr.Boolean(False))
    assert store.enabled is False
    with pytest.raises(CosemError):
        obj.set(5, axdr.Unsigned(1))
    with pytest.raises(CosemError):
        obj.set(2, axdr.DoubleLongUnsigned(128))  # block size is the meter's to say


def test_methods_reach_the_store():
    obj, store = make()
    assert obj.invoke(3, axdr.Integer(0)) is None
    assert obj.invoke(4, axdr.Integer(0)) is None
    assert store.calls == ["verify", "activate"]


def test_store_refusal_passes_through_with_its_result():
    obj, _ = make()
    with pytest.raises(CosemError) as err:
        obj.invoke(2, axdr.Structure((axdr.DoubleLongUnsigned(99), axdr.OctetString(b""))))
    assert err.value.result == ActionResult.OTHER_REASON


BAD_PARAMETERS = [
    (1, axdr.OctetString(b"x")),
    (1, axdr.Structure((axdr.OctetString(b"x"),))),
    (1, axdr.Structure((axdr.VisibleString("x"), axdr.DoubleLongUnsigned(1)))),
    (1, axdr.Structure((axdr.OctetString(b"x"), axdr.DoubleLong(-1)))),
    (1, axdr.Structure((axdr.OctetString(b"x"), axdr.Enum(1)))),
    (2, axdr.Structure((axdr.DoubleLongUnsigned(0), axdr.VisibleString("abc")))),
    (2, None),
    (3, axdr.Integer(1)),
    (4, axdr.Unsigned(0)),
]


@pytest.mark.parametrize("method,params", BAD_PARAMETERS)
def test_bad_parameters_are_type_unmatched(method, params):
    obj, store = make()
    with pytest.raises(CosemError) as err:
        obj.invoke(method, params)
    assert err.value.result == ActionResult.TYPE_UNMATCHED
    assert store.calls == [] and store.size == 0


LEAVES = st.one_of(st.integers(0, 2**32 - 1).map(axdr.DoubleLongUnsigned), st.binary(max_size=8).map(axdr.OctetString),
                   st.integers(-128, 127).map(axdr.Integer), st.just(axdr.NullData()))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3).map(lambda xs: axdr.Structure(tuple(xs))),
                      max_leaves=6)


@settings(max_examples=200)
@given(VALUES, st.integers(1, 4))
def test_any_parameter_is_taken_or_refused_with_a_cosem_error(params, method):
    obj, _ = make()
    try:
        obj.invoke(method, params)
    except CosemError:
        pass
