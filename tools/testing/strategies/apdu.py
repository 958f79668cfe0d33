"""Strategies for xDLMS APDUs (IEC 62056-5-3 clause 9.5) and the ACSE APDUs around them.

:data:`apdus` draws every APDU bijli's codec knows, as objects whose ``encode()``
its ``apdu.decode`` reads back equal: GET, SET and ACTION requests and responses in
every form (normal, next, with-list, with data blocks), exception responses and
confirmed-service errors, data and event notifications, general-block-transfer
(clause 9.6), and the ciphered containers (service-specific glo/ded, general-glo/ded,
general-ciphering with each key-info kind; their contents are opaque octets here).
:data:`encoded_apdus` is their octets; :data:`invalid_apdus` is those octets mutated
(:mod:`.mutation`) and kept only when bijli's decoder refuses them, so a peer's
decoder should refuse them too.

The ACSE strategies (IEC 62056-5-3 clause 9.3, the AARQ/AARE/RLRQ/RLRE of ISO 8650
as DLMS profiles them) draw any well-formed ACSE APDU, with any mechanism and any
user-information; :mod:`.association` draws the AARQs a bijli meter accepts.
"""

from __future__ import annotations

from hypothesis import strategies as st

from bijli.dlms import acse, apdu, xdlms
from bijli.dlms.errors import DlmsError
from bijli.tools.testing.strategies.axdr import cosem_date_times, data_values, small_bytes, u8, u16, u32
from bijli.tools.testing.strategies.mutation import mutated
from bijli.tools.testing.strategies.obis import obis_codes

# --- xDLMS APDUs ------------------------------------------------------------------------------

descriptors = st.builds(apdu.AttributeDescriptor, u16, obis_codes, st.integers(-128, 127))
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


# --- octets ---------------------------------------------------------------------------------------

encoded_apdus = apdus.map(lambda a: a.encode())


def _refused(raw: bytes) -> bool:
    try:
        apdu.decode(raw)
    except DlmsError:
        return True
    return False


#: mutated APDU octets that bijli's decoder refuses with a DlmsError
invalid_apdus = mutated(encoded_apdus).filter(_refused)
