"""Known answers from an independent peer: the gurux-dlms client (a black box here).

Forward: the bytes gurux emits for SNRM, AARQ (LLS and HLS-GMAC ciphered), GET
(normal, by range, by entry), SET, ACTION and RLRQ are read field by field by our
decoders. Reverse: gurux parses the AARE, GET/SET/ACTION responses, exception
response and data-notification that our encoders produce.
"""

from __future__ import annotations

import datetime as _dt

import pytest

import gurux_dlms as gurux  # a test dependency: its absence is an error, not a skip

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from gurux_dlms import GXByteBuffer, GXDateTime, GXDLMSClient, GXReplyData  # noqa: E402
from gurux_dlms.enums import Authentication, InterfaceType, Security  # noqa: E402
from gurux_dlms.enums import DataType as GxDataType  # noqa: E402
from gurux_dlms.objects import (GXDLMSCaptureObject, GXDLMSClock, GXDLMSDisconnectControl,  # noqa: E402
                                GXDLMSProfileGeneric, GXDLMSRegister)
from gurux_dlms.secure import GXDLMSSecureClient  # noqa: E402

from bijli.dlms import acse, apdu, axdr, xdlms  # noqa: E402
from bijli.dlms.acse import AARE, AARQ, RLRQ, ApplicationContext, Mechanism  # noqa: E402
from bijli.dlms.xdlms import Conformance, InitiateRequest, InitiateResponse  # noqa: E402
from bijli.dlms.link import wrapper  # noqa: E402
from bijli.dlms.obis import Obis  # noqa: E402

CLOCK = Obis(0, 0, 1, 0, 0, 255)
PASSWORD = "12345678"
SYSTEM_TITLE = bytes.fromhex("4142434445464748")
BLOCK_KEY = bytes(range(16))
AUTH_KEY = bytes(range(0xD0, 0xE0))


def _gurux_bits(c: int) -> int:
    """gurux numbers conformance bits from the least significant end; the wire (and we) from the most."""
    return int(f"{int(c):024b}"[::-1], 2)


def _lls_client() -> GXDLMSClient:
    return GXDLMSClient(True, 32, 1, Authentication.LOW, PASSWORD, InterfaceType.WRAPPER)


def _one_apdu(frames, source=32, destination=1) -> bytes:
    frames = list(frames)
    assert len(frames) == 1
    got = wrapper.decode_frame(bytes(frames[0]))
    assert (got.source_wport, got.destination_wport) == (source, destination)
    return got.apdu


def _feed(client, apdu_bytes: bytes, notify: GXReplyData | None = None, reply: GXReplyData | None = None):
    reply = reply if reply is not None else GXReplyData()
    complete = client.getData(GXByteBuffer(wrapper.encode_frame(1, client.clientAddress, apdu_bytes)), reply, notify)
    return complete, reply


_OFFER = Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS | \
    Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.MULTIPLE_REFERENCES


def _associated_client() -> GXDLMSClient:
    """A gurux client that accepted our AARE (LLS, conformance _OFFER, PDU 512)."""
    client = _lls_client()
    client.aarqRequest()
    aare = AARE(acse.AssociationResult.ACCEPTED, mechanism=Mechanism.LLS,
                user_information=InitiateResponse(_OFFER, 512).encode()).encode()
    _, reply = _feed(client, aare)
    client.parseAareResponse(reply.data)
    return client


# --- gurux -> our decoders ---------------------------------------------------------------------


def test_snrm_frame():
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.HDLC)
    raw = bytes(client.snrmRequest())
    from bijli.dlms.link import hdlc_frame
    frame = hdlc_frame.decode_frame(raw)
    assert frame.kind is hdlc_frame.FrameType.SNRM
    assert frame.source.logical == 16 and frame.destination.logical == 1
    assert frame.info == b""  # gurux proposes no parameters: the defaults apply
    assert raw == bytes.fromhex("7ea0070321930f017e")


def test_aarq_lls():
    client = _lls_client()
    raw = _one_apdu(client.aarqRequest())
    aarq = AARQ.decode(raw)
    assert aarq.application_context is ApplicationContext.LOGICAL_NAME
    assert aarq.mechanism is Mechanism.LLS
    assert aarq.calling_authentication_value == PASSWORD.encode()
    init = InitiateRequest.decode(aarq.user_information)
    assert init.dlms_version == 6
    assert init.client_max_receive_pdu_size == 0xFFFF
    assert init.dedicated_key is None and init.response_allowed and init.proposed_quality_of_service is None
    for bit in (Conformance.GET, Conformance.SET, Conformance.ACTION, Conformance.SELECTIVE_ACCESS,
                Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ, Conformance.MULTIPLE_REFERENCES):
        assert bit in init.proposed_conformance
    assert _gurux_bits(init.proposed_conformance) == int(client.proposedConformance)
    assert aarq.encode() == raw  # our encoder writes the same bytes back


def _gurux_gmac_client() -> GXDLMSSecureClient:
    client = GXDLMSSecureClient(True, 48, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
    client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    client.ciphering.systemTitle = SYSTEM_TITLE
    client.ciphering.blockCipherKey = BLOCK_KEY
    client.ciphering.authenticationKey = AUTH_KEY
    return client


def test_aarq_hls_gmac_ciphered():
    raw = _one_apdu(_gurux_gmac_client().aarqRequest(), source=48)
    aarq = AARQ.decode(raw)
    assert aarq.application_context is ApplicationContext.LOGICAL_NAME_CIPHERED
    assert aarq.mechanism is Mechanism.HLS_GMAC
    assert aarq.calling_ap_title == SYSTEM_TITLE
    assert len(aarq.calling_authentication_value) == 16  # the client's challenge CtoS
    # user-information: glo-initiate-request = tag, length, SC || IC || ciphertext || 12-byte tag
    ui = aarq.user_information
    assert ui[0] == apdu.Tag.GLO_INITIATE_REQUEST and ui[1] == len(ui) - 2
    sc, ic, body = ui[2], ui[3:7], ui[7:]
    assert sc == 0x30
    decryptor = Cipher(algorithms.AES(BLOCK_KEY), modes.GCM(SYSTEM_TITLE + ic, body[-12:], min_tag_length=12)).decryptor()
    decryptor.authenticate_additional_data(bytes((sc,)) + AUTH_KEY)
    plain = decryptor.update(body[:-12]) + decryptor.finalize()
    init = InitiateRequest.decode(plain)
    assert init.dlms_version == 6 and Conformance.GET in init.proposed_conformance


def test_get_request_normal():
    req = apdu.decode(_one_apdu(_lls_client().read(GXDLMSClock(str(CLOCK)), 2)))
    assert req == apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(8, CLOCK, 2), None)
    assert req.invoke_id & 0x0F == 1  # invoke-id 1; 0xC0 = high priority, confirmed


def _profile() -> GXDLMSProfileGeneric:
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    pg.captureObjects.append((GXDLMSClock(str(CLOCK)), GXDLMSCaptureObject(2, 0)))
    pg.captureObjects.append((GXDLMSRegister("1.0.1.8.0.255"), GXDLMSCaptureObject(2, 0)))
    return pg


def test_get_with_selective_access_by_range():
    frames = _lls_client().readRowsByRange(_profile(), _dt.datetime(2024, 1, 1), _dt.datetime(2024, 1, 2, 12, 30))
    req = apdu.decode(_one_apdu(frames))
    assert isinstance(req, apdu.GetRequestNormal)
    assert req.attribute == apdu.AttributeDescriptor(7, Obis(1, 0, 99, 1, 0, 255), 2)
    sel = req.access_selection
    assert sel.selector == 1
    restricting, start, end, columns = sel.parameters.value
    assert restricting == axdr.structure(axdr.LongUnsigned(8), axdr.OctetString(bytes(CLOCK)), axdr.Integer(2),
                                         axdr.LongUnsigned(0))
    # from/to values travel as date-time octet strings
    for value, want in ((start, (2024, 1, 1, 0, 0)), (end, (2024, 1, 2, 12, 30))):
        dt = axdr.CosemDateTime.decode(value.value)
        assert (dt.date.year, dt.date.month, dt.date.day_of_month, dt.time.hour, dt.time.minute) == want
    assert columns == axdr.Array(())


def test_get_with_selective_access_by_entry():
    req = apdu.decode(_one_apdu(_lls_client().readRowsByEntry(_profile(), 1, 10)))
    assert req.access_selection.selector == 2
    from_entry, to_entry, from_col, to_col = req.access_selection.parameters.value
    assert (from_entry, to_entry) == (axdr.DoubleLongUnsigned(1), axdr.DoubleLongUnsigned(10))
    assert (from_col, to_col) == (axdr.LongUnsigned(1), axdr.LongUnsigned(0))


def test_set_clock():
    clock = GXDLMSClock(str(CLOCK))
    clock.time = GXDateTime(_dt.datetime(2024, 3, 4, 5, 6, 7))
    req = apdu.decode(_one_apdu(_lls_client().write(clock, 2)))
    assert isinstance(req, apdu.SetRequestNormal)
    assert req.attribute == apdu.AttributeDescriptor(8, CLOCK, 2) and req.access_selection is None
    dt = axdr.CosemDateTime.decode(req.value.value)
    assert (dt.date.year, dt.date.month, dt.date.day_of_month) == (2024, 3, 4)
    assert (dt.time.hour, dt.time.minute, dt.time.second) == (5, 6, 7)


def test_action_disconnect_control():
    client = _lls_client()
    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    for frames in (client.method(dc, 1, 0, GxDataType.INT8), dc.remoteDisconnect(client)):
        req = apdu.decode(_one_apdu(frames))
        assert req == apdu.ActionRequestNormal(0xC1, apdu.AttributeDescriptor(70, Obis(0, 0, 96, 3, 10, 255), 1),
                                               axdr.Integer(0))


def test_rlrq():
    req = RLRQ.decode(_one_apdu(_associated_client().releaseRequest()))
    assert req.reason == acse.ReleaseRequestReason.NORMAL and req.user_information is None


# --- our encoders -> gurux ------------------------------------------------------------------------


def test_gurux_accepts_our_aare():
    client = _associated_client()
    assert int(client.negotiatedConformance) == _gurux_bits(_OFFER)
    assert client.maxReceivePDUSize == 512


@pytest.mark.parametrize("diagnostic", [acse.AcseServiceUser.AUTHENTICATION_FAILURE,
                                        acse.AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED])
def test_gurux_sees_our_rejection(diagnostic):
    client = _lls_client()
    client.aarqRequest()
    _, reply = _feed(client, AARE(acse.AssociationResult.REJECTED_PERMANENT, diagnostic).encode())
    with pytest.raises(Exception) as info:
        client.parseAareResponse(reply.data)
    assert int(info.value.result) == acse.AssociationResult.REJECTED_PERMANENT
    assert int(info.value.diagnostic) == diagnostic


def test_gurux_reads_get_response_normal():
    client = _associated_client()
    complete, reply = _feed(client, apdu.GetResponseNormal(0xC1, axdr.DoubleLongUnsigned(123456)).encode())
    assert complete and reply.value == 123456 and reply.error == 0
    _, reply = _feed(client, apdu.GetResponseNormal(0xC1, apdu.DataAccessResult.OBJECT_UNDEFINED).encode())
    assert reply.error == apdu.DataAccessResult.OBJECT_UNDEFINED


def test_gurux_reads_get_response_with_datablock_and_asks_for_the_next():
    client = _associated_client()
    client.read(GXDLMSClock(str(CLOCK)), 2)
    value = axdr.encode(axdr.array([axdr.LongUnsigned(i) for i in range(100)]))
    complete, reply = _feed(client, apdu.GetResponseWithDatablock(0xC1, False, 1, value[:150]).encode())
    assert reply.isMoreData()
    # gurux's get-request-next, read by our decoder
    nxt = apdu.decode(_one_apdu([client.receiverReady(reply)]))
    assert nxt == apdu.GetRequestNext(0xC1, 1)
    _feed(client, apdu.GetResponseWithDatablock(0xC1, True, 2, value[150:]).encode(), reply=reply)
    assert not reply.isMoreData()
    assert list(reply.value) == list(range(100))


def test_gurux_reads_get_response_with_list():
    client = _associated_client()
    results = (axdr.Unsigned(5), apdu.DataAccessResult.READ_WRITE_DENIED, axdr.VisibleString("abc"))
    complete, reply = _feed(client, apdu.GetResponseWithList(0xC1, results).encode())
    assert complete and list(reply.value) == [5, None, "abc"]


@pytest.mark.parametrize("result", [apdu.DataAccessResult.SUCCESS, apdu.DataAccessResult.READ_WRITE_DENIED])
def test_gurux_reads_set_response(result):
    complete, reply = _feed(_associated_client(), apdu.SetResponseNormal(0xC1, result).encode())
    assert complete and reply.error == result and reply.command == apdu.Tag.SET_RESPONSE


def test_gurux_reads_action_response_with_return_data():
    complete, reply = _feed(_associated_client(),
                            apdu.ActionResponseNormal(0xC1, apdu.ActionResult.SUCCESS, axdr.OctetString(b"hi")).encode())
    assert complete and reply.error == 0 and bytes(reply.value) == b"hi"


def test_gurux_reads_exception_response():
    with pytest.raises(Exception) as info:
        _feed(_associated_client(), apdu.ExceptionResponse(apdu.StateError.SERVICE_NOT_ALLOWED,
                                                           apdu.ServiceErrorCode.OPERATION_NOT_POSSIBLE).encode())
    assert "not allowed" in str(info.value).lower() and "not possible" in str(info.value).lower()


def test_gurux_reads_data_notification():
    client = _associated_client()
    notify = GXReplyData()
    stamp = axdr.CosemDateTime(axdr.CosemDate(2024, 3, 4, 1), axdr.CosemTime(5, 6, 7, 0), -330, 0)
    body = axdr.structure(axdr.Unsigned(1), axdr.OctetString(b"x"), axdr.DoubleLongUnsigned(99))
    _feed(client, apdu.DataNotification(7, stamp, body).encode(), notify=notify)
    assert notify.command == apdu.Tag.DATA_NOTIFICATION
    assert list(notify.value)[0] == 1 and bytes(list(notify.value)[1]) == b"x" and list(notify.value)[2] == 99
    # deviation -330 is IST (UTC+05:30) in the standard's sign: 05:06:07 IST is 23:36:07 UTC the day before
    t = notify.time.value
    assert t.astimezone(_dt.timezone.utc).replace(tzinfo=None) == _dt.datetime(2024, 3, 3, 23, 36, 7)
