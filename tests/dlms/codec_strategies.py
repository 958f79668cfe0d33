"""Hypothesis strategies for the DLMS codecs: A-XDR Data, OBIS, xDLMS APDUs, ACSE.

Shared by the round-trip and the decode-never-crashes tests. Every strategy draws
only values the encoder accepts, so ``decode(encode(v)) == v`` must hold for all.
"""

from __future__ import annotations

from hypothesis import strategies as st

from bijli.dlms import acse, apdu, axdr, xdlms
from bijli.dlms.axdr import DataType, TypeDescription
from bijli.dlms.obis import Obis

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
small_bytes = st.binary(max_size=40)

obis_values = st.builds(Obis, u8, u8, u8, u8, u8, u8)

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

# --- xDLMS APDUs ------------------------------------------------------------------------------

descriptors = st.builds(apdu.AttributeDescriptor, u16, obis_values, st.integers(-128, 127))
selections = st.none() | st.builds(apdu.AccessSelection, u8, data_values)
get_data_results = data_values | st.sampled_from(list(apdu.DataAccessResult))
blocks = st.builds(apdu.DataBlockSA, st.booleans(), u32, small_bytes)
described = st.lists(st.tuples(descriptors, selections), max_size=3).map(tuple)
dars = st.lists(st.sampled_from(list(apdu.DataAccessResult)), max_size=4).map(tuple)
action_results = st.tuples(st.sampled_from(list(apdu.ActionResult)), st.none() | get_data_results)


def _exception(state, service, ic):
    return apdu.ExceptionResponse(state, service, ic if service == apdu.ServiceErrorCode.INVOCATION_COUNTER_ERROR else None)


apdus = st.one_of(
    st.builds(apdu.GetRequestNormal, u8, descriptors, selections),
    st.builds(apdu.GetRequestNext, u8, u32),
    st.builds(apdu.GetRequestWithList, u8, described),
    st.builds(apdu.GetResponseNormal, u8, get_data_results),
    st.builds(apdu.GetResponseWithDatablock, u8, st.booleans(), u32,
              small_bytes | st.sampled_from(list(apdu.DataAccessResult))),
    st.builds(apdu.GetResponseWithList, u8, st.lists(get_data_results, max_size=3).map(tuple)),
    st.builds(apdu.SetRequestNormal, u8, descriptors, data_values, selections),
    st.builds(apdu.SetRequestWithFirstDatablock, u8, descriptors, selections, blocks),
    st.builds(apdu.SetRequestWithDatablock, u8, blocks),
    st.builds(apdu.SetRequestWithList, u8, described, st.lists(data_values, max_size=3).map(tuple)),
    st.builds(apdu.SetRequestWithListAndFirstDatablock, u8, described, blocks),
    st.builds(apdu.SetResponseNormal, u8, st.sampled_from(list(apdu.DataAccessResult))),
    st.builds(apdu.SetResponseDatablock, u8, u32),
    st.builds(apdu.SetResponseLastDatablock, u8, st.sampled_from(list(apdu.DataAccessResult)), u32),
    st.builds(apdu.SetResponseLastDatablockWithList, u8, dars, u32),
    st.builds(apdu.SetResponseWithList, u8, dars),
    st.builds(apdu.ActionRequestNormal, u8, descriptors, st.none() | data_values),
    st.builds(apdu.ActionRequestNextPblock, u8, u32),
    st.builds(apdu.ActionRequestWithList, u8, st.lists(descriptors, max_size=3).map(tuple),
              st.lists(data_values, max_size=3).map(tuple)),
    st.builds(apdu.ActionRequestWithFirstPblock, u8, descriptors, blocks),
    st.builds(apdu.ActionRequestWithListAndFirstPblock, u8, st.lists(descriptors, max_size=3).map(tuple), blocks),
    st.builds(apdu.ActionRequestWithPblock, u8, blocks),
    st.builds(apdu.ActionResponseNormal, u8, st.sampled_from(list(apdu.ActionResult)), st.none() | get_data_results),
    st.builds(apdu.ActionResponseWithPblock, u8, blocks),
    st.builds(apdu.ActionResponseWithList, u8, st.lists(action_results, max_size=3).map(tuple)),
    st.builds(apdu.ActionResponseNextPblock, u8, u32),
    st.builds(_exception, st.sampled_from(list(apdu.StateError)), st.sampled_from(list(apdu.ServiceErrorCode)), u32),
    st.builds(apdu.ConfirmedServiceError, u8, u8, u8),
    st.builds(apdu.DataNotification, u32, st.none() | cosem_date_times, data_values),
    st.builds(apdu.EventNotificationRequest, st.none() | cosem_date_times, descriptors, data_values),
    st.builds(apdu.GeneralBlockTransfer, st.booleans(), st.booleans(), st.integers(0, 63), u16, u16,
              st.binary(max_size=300)),
    st.builds(apdu.CipheredApdu, st.sampled_from(sorted(apdu.GLO_TAGS | apdu.DED_TAGS)), st.binary(max_size=300)),
    st.builds(apdu.GeneralGloCiphering, st.sampled_from([apdu.Tag.GENERAL_GLO_CIPHERING, apdu.Tag.GENERAL_DED_CIPHERING]),
              st.binary(min_size=8, max_size=8) | small_bytes, st.binary(max_size=300)),
    st.builds(apdu.GeneralCiphering, small_bytes, small_bytes, small_bytes, small_bytes, small_bytes,
              st.none() | st.one_of(
                  st.builds(apdu.KeyInfo, st.just(apdu.KeyInfoKind.IDENTIFIED_KEY), st.integers(0, 1)),
                  st.builds(apdu.KeyInfo, st.just(apdu.KeyInfoKind.WRAPPED_KEY), st.just(0), st.just(b""),
                            small_bytes),
                  st.builds(apdu.KeyInfo, st.just(apdu.KeyInfoKind.AGREED_KEY), st.just(0), small_bytes,
                            small_bytes)),
              st.binary(max_size=300)),
)

# --- ACSE ------------------------------------------------------------------------------------------

conformances = st.integers(0, 0xFFFFFF).map(xdlms.Conformance)
initiate_requests = st.builds(
    xdlms.InitiateRequest, conformances, u16, u8, st.none() | st.binary(max_size=32), st.booleans(),
    st.none() | st.integers(-128, 127),
)
initiate_responses = st.builds(xdlms.InitiateResponse, conformances, u16, u8, u16, st.none() | st.integers(-128, 127))
_titles = st.none() | st.binary(max_size=16)
_user_info = st.none() | initiate_requests.map(lambda r: r.encode()) | st.binary(max_size=200)
aarqs = st.builds(
    acse.AARQ, st.sampled_from(list(acse.ApplicationContext)), st.none() | st.sampled_from(list(acse.Mechanism)),
    _titles, _titles, _titles, _user_info, st.none() | st.binary(min_size=1, max_size=2), _titles,
)
aares = st.one_of(
    st.builds(acse.AARE, st.sampled_from(list(acse.AssociationResult)),
              st.sampled_from(list(acse.AcseServiceUser)), st.just("user"),
              st.sampled_from(list(acse.ApplicationContext)), _titles,
              st.none() | st.sampled_from(list(acse.Mechanism)), _titles,
              st.none() | initiate_responses.map(lambda r: r.encode()) | st.binary(max_size=200)),
    st.builds(acse.AARE, st.sampled_from(list(acse.AssociationResult)),
              st.sampled_from(list(acse.AcseServiceProvider)), st.just("provider")),
)
rlrqs = st.builds(acse.RLRQ, st.none() | st.sampled_from(list(acse.ReleaseRequestReason)), st.none() | small_bytes)
rlres = st.builds(acse.RLRE, st.none() | st.sampled_from(list(acse.ReleaseResponseReason)), st.none() | small_bytes)
