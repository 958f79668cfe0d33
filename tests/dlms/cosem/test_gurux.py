"""An independent decoder (gurux-dlms, test-time only) reads every attribute we encode
to the same values and consumes exactly the bytes we produced."""

from __future__ import annotations

import pytest

from bijli.dlms import axdr

from .helpers import bound_objects
from .test_profile import block_load, event_log
from bijli.dlms.cosem.profile import ProfileGeneric

import gurux_dlms as gurux  # a test dependency: its absence is an error, not a skip
from gurux_dlms import GXBitString, GXByteBuffer, GXDLMSSettings  # noqa: E402
from gurux_dlms.internal._GXCommon import _GXCommon  # noqa: E402
from gurux_dlms.internal._GXDataInfo import _GXDataInfo  # noqa: E402


def gurux_decode(raw: bytes):
    info = _GXDataInfo()
    buf = GXByteBuffer(raw)
    value = _GXCommon.getData(GXDLMSSettings(False, None), buf, info)
    assert info.complete and buf.position == len(raw), "gurux read a different length"
    return int(info.type_), value


def normal(v):
    """Plain Python of a gurux value (lists, ints, bytes, '0101' bit text)."""
    if isinstance(v, GXBitString):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, list):
        return [normal(x) for x in v]
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    return v


def ours(d: axdr.Data):
    if isinstance(d, (axdr.Structure, axdr.Array)):
        return [ours(x) for x in d.value]
    return d.to_python()


def _values():
    out = []
    for obj, _ in bound_objects():
        for i, name in enumerate(obj.ATTRIBUTES, 1):
            out.append(pytest.param(obj.get(i), id=f"{type(obj).__name__}.{name}"))
    for src in (block_load(), event_log()):
        out.append(pytest.param(ProfileGeneric("1.0.99.1.0.255", src).get(2), id="ProfileGeneric.buffer"))
    return out


@pytest.mark.parametrize("value", _values())
def test_gurux_reads_our_encoding(value):
    tag, decoded = gurux_decode(axdr.encode(value))
    assert tag == value.tag
    assert normal(decoded) == ours(value)
