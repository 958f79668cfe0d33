"""dlms.server with dlms.client in-process: the three associations, ciphering, HLS-GMAC,
lockout, replay, key transfer, long SET/ACTION/GET, GBT, push; and Hypothesis driving
the server with random valid and invalid APDUs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import acse, apdu, axdr, security
from bijli.dlms.acse import Conformance, Mechanism
from bijli.dlms.client import DEFAULT_CONFORMANCE, Client, ClientSettings
from bijli.dlms.cosem.association import AssociationLN, AssociationPolicy, full_access, only, read_only
from bijli.dlms.cosem.base import CosemObject
from bijli.dlms.cosem.data import Data, Register
from bijli.dlms.cosem.security_setup import SecuritySetup
from bijli.dlms.errors import AssociationError, AuthenticationError, DlmsError, ServiceError
from bijli.dlms.obis import Obis
from bijli.dlms.protection import Container
from bijli.dlms.security import KeyId, MemoryCounterStore, SecuritySettings
from bijli.dlms.server import Server, ServerEvent
from tests.peers.direct import Direct

SERVER_TITLE = b"BJL\x00\x00\x00\x00\x07"
FULL = (Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
        | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
        | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.MULTIPLE_REFERENCES | Conformance.GENERAL_PROTECTION
        | Conformance.GENERAL_BLOCK_TRANSFER)


class Echo(CosemObject):
    """A test object: a writable big value and a method returning its parameter doubled."""

    CLASS_ID = 1
    ATTRIBUTES = ("logical_name", "value")
    METHODS = ("echo",)

    def __init__(self, ln):
        super().__init__(ln)
        self.value: axdr.Data = axdr.OctetString(b"")

    def get_value(self, ctx):
        return self.value

    def set_value(self, value, ctx):
        self.value = value

    def do_echo(self, params, ctx):
        return axdr.OctetString(params.value * 2)


def make_server(store=None, **kw):
    echo = Echo("0.0.96.128.0.255")
    objects = [Data("0.0.96.1.0.255", axdr.VisibleString("BJL0000001")),
               Register("1.0.1.8.0.255", axdr.DoubleLongUnsigned(1234), 0, 30), echo]
    pols = [AssociationPolicy(16, "public", rights=only(["0.0.96.1.0.255", "0.0.40.0.0.255"], read_only)),
            AssociationPolicy(32, "reader", Mechanism.LLS, b"12345678", read_only),
            AssociationPolicy(48, "utility", Mechanism.HLS_GMAC, None, full_access, FULL, ciphered=True,
                              logical_name=Obis(0, 0, 40, 0, 3, 255))]
    sec = SecuritySettings(system_title=SERVER_TITLE, counter_store=store or MemoryCounterStore(), reserve_step=10,
                           random=lambda n: bytes(range(n)))
    all_objects = lambda: objects  # noqa: E731
    objects.append(AssociationLN("0.0.40.0.0.255", None, all_objects))
    objects.append(SecuritySetup("0.0.43.0.3.255", sec))
    notices = []
    server = Server(objects, pols, security=sec, on_notice=notices.append, max_pdu=256, **kw)
    return server, notices, echo


def client(server, sap, **kw):
    kw.setdefault("invocation_counter", server.security.counters.expected_rx(b"BJLCLT01"))
    kw.setdefault("max_pdu", 256)
    c = Client(Direct(server, sap), ClientSettings.for_association(sap, **kw))
    c.associate()
    return c


@pytest.mark.parametrize("general", (False, True))
@pytest.mark.parametrize("dedicated", (None, bytes(range(16, 32))))
def test_utility_association_glo_ded_and_general_ciphering(general, dedicated):
    server, notices, echo = make_server()
    c = client(server, 48, general_ciphering=general, dedicated_key=dedicated)
    assert c.get(3, "1.0.1.8.0.255", 2) == axdr.DoubleLongUnsigned(1234)
    wire = c.transport.sent[-1]
    expected_tag = ({(False, False): 0xC8, (False, True): 0xD0, (True, False): 0xDB, (True, True): 0xDC}
                    [(general, dedicated is not None)])
    assert wire[0] == expected_tag
    assert bytes(range(4)) not in wire  # encrypted: the plain request is not in clear
    big = axdr.OctetString(bytes(range(256)) * 3)  # longer than the PDU: SET with datablocks
    c.set(1, echo.logical_name, 2, big)
    assert echo.value == big
    assert c.get(1, echo.logical_name, 2) == big  # GET with datablocks, each block ciphered
    assert c.action(1, echo.logical_name, 1, axdr.OctetString(b"ab" * 200)) == axdr.OctetString(b"ab" * 400)
    assert c.session.settings.ciphered and ServerEvent.ASSOCIATED in [n.event for n in notices]
    c.release()


@pytest.mark.parametrize("dedicated", (None, bytes(range(16, 32))))
def test_utility_association_with_general_ciphering(dedicated):
    """general-ciphering (0xDD): transaction-id, both system titles and, for a dedicated
    key, the key wrapped under the master key; the answer repeats the transaction-id."""
    server, notices, echo = make_server()
    c = client(server, 48, container=Container.GENERAL, dedicated_key=dedicated)
    assert c.get(3, "1.0.1.8.0.255", 2) == axdr.DoubleLongUnsigned(1234)
    request = apdu.decode(c.transport.sent[-1])
    assert isinstance(request, apdu.GeneralCiphering)
    assert request.originator_system_title == b"BJLCLT01" and request.recipient_system_title == SERVER_TITLE
    assert (request.key_info is None) == (dedicated is None)
    answer = apdu.decode(c.transport.answers[-1])
    assert isinstance(answer, apdu.GeneralCiphering)
    assert answer.transaction_id == request.transaction_id and answer.originator_system_title == SERVER_TITLE
    big = axdr.OctetString(bytes(range(256)) * 3)  # SET with datablocks, GET with datablocks, all 0xDD
    c.set(1, echo.logical_name, 2, big)
    assert c.get(1, echo.logical_name, 2) == big
    c.release()


def test_general_ciphering_with_an_unavailable_key_is_refused():
    server, notices, _ = make_server()
    c = client(server, 48)
    sec = server.security
    plain = apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(3, Obis.parse("1.0.1.8.0.255"), 2)).encode()
    ic = c.session.settings.invocation_counter
    for key_info in (apdu.KeyInfo(apdu.KeyInfoKind.AGREED_KEY, 0, b"\x01", b""),
                     apdu.KeyInfo(apdu.KeyInfoKind.IDENTIFIED_KEY, 1),
                     apdu.KeyInfo(apdu.KeyInfoKind.WRAPPED_KEY, 3, b"", bytes(24))):
        content = security.encrypt(0x30, b"BJLCLT01", ic, sec.encryption_key, sec.authentication_key, plain)
        ic += 1
        wire = apdu.GeneralCiphering(bytes(8), b"BJLCLT01", SERVER_TITLE, b"", b"", key_info, content).encode()
        answer = apdu.decode(c.transport.request(wire))
        assert answer == apdu.ExceptionResponse(apdu.StateError.SERVICE_NOT_ALLOWED,
                                                apdu.ServiceErrorCode.DECIPHERING_ERROR)
    assert [n.event for n in notices].count(ServerEvent.SECURITY_FAILURE) == 3


def test_public_and_reader_rights_are_enforced():
    server, _, echo = make_server()
    pub = client(server, 16)
    assert pub.get(1, "0.0.96.1.0.255", 2) == axdr.VisibleString("BJL0000001")
    with pytest.raises(ServiceError) as exc:
        pub.get(3, "1.0.1.8.0.255", 2)
    assert exc.value.result == apdu.DataAccessResult.OBJECT_UNDEFINED
    reader = client(server, 32)
    assert reader.get(3, "1.0.1.8.0.255", 3) == axdr.Structure((axdr.Integer(0), axdr.Enum(30)))
    with pytest.raises(ServiceError):
        reader.set(1, echo.logical_name, 2, axdr.OctetString(b"x"))
    with pytest.raises(ServiceError):
        reader.action(1, echo.logical_name, 1, axdr.OctetString(b"x"))
    assert [e.logical_name for e in pub.object_list()] == [Obis(0, 0, 96, 1, 0, 255), Obis(0, 0, 40, 0, 0, 255)]
    utility = client(server, 48)  # SET negotiated: a read-only attribute is a data-access-result
    with pytest.raises(ServiceError) as exc:
        utility.set(3, "1.0.1.8.0.255", 3, axdr.Structure((axdr.Integer(0), axdr.Enum(30))))
    assert exc.value.result == apdu.DataAccessResult.READ_WRITE_DENIED


def test_set_and_action_outside_the_negotiated_conformance_get_an_exception_response():
    """Issue 11 item 17: not data-access-results but exception-response service-not-allowed /
    service-not-supported, for every SET and ACTION form, and the association goes on."""
    server, _, echo = make_server()
    reader = client(server, 32)  # conformance: GET, selective access, GET blocks, multiple references
    desc = apdu.AttributeDescriptor(1, echo.logical_name, 2)
    refused = apdu.ExceptionResponse(apdu.StateError.SERVICE_NOT_ALLOWED, apdu.ServiceErrorCode.SERVICE_NOT_SUPPORTED)
    for request in (apdu.SetRequestNormal(0xC1, desc, axdr.OctetString(b"x")),
                    apdu.SetRequestWithList(0xC1, ((desc, None),), (axdr.OctetString(b"x"),)),
                    apdu.SetRequestWithFirstDatablock(0xC1, desc, None, apdu.DataBlockSA(True, 1, b"\x09\x00")),
                    apdu.ActionRequestNormal(0xC1, desc, None),
                    apdu.ActionRequestWithList(0xC1, (desc,), (axdr.NullData(),)),
                    apdu.ActionRequestWithFirstPblock(0xC1, desc, apdu.DataBlockSA(True, 1, b""))):
        assert apdu.decode(reader.transport.request(request.encode())) == refused, request
    assert echo.value == axdr.OctetString(b"")
    assert reader.get(1, "0.0.96.1.0.255", 2) == axdr.VisibleString("BJL0000001")


def test_wrong_hls_keys_and_passwords_lock_out_and_are_noticed():
    clock = {"t": 0.0}
    server, notices, _ = make_server(lockout_after=3, lockout_seconds=60)
    for _ in range(2):
        with pytest.raises(AssociationError):  # AARE carries a deciphering error
            c = Client(Direct(server, 48, lambda: clock["t"]),
                       ClientSettings.for_association(48, authentication_key=bytes(16)))
            c.associate()
    # the glo-initiate-request fails its tag with the wrong AK: that counts too
    events = [n.event for n in notices]
    assert events.count(ServerEvent.AUTHENTICATION_FAILED) == 2
    # a wrong HLS reply (right keys for ciphering, wrong challenge answer) counts as well
    c = Client(Direct(server, 48, lambda: clock["t"]), ClientSettings.for_association(48))
    c.session.parse_aare(c.transport.request(c.session.aarq()))
    c.session._stoc = b"not the challenge"
    with pytest.raises(AuthenticationError):
        c.session.parse_hls_response(c.transport.request(c.session.hls_request()))
    assert [n.event for n in notices][-2:] == [ServerEvent.AUTHENTICATION_FAILED, ServerEvent.LOCKED_OUT]
    with pytest.raises(DlmsError):  # locked out, even with the right keys
        Client(Direct(server, 48, lambda: clock["t"]), ClientSettings.for_association(48)).associate()
    clock["t"] = 61.0
    good = Client(Direct(server, 48, lambda: clock["t"]), ClientSettings.for_association(
        48, invocation_counter=server.security.counters.expected_rx(b"BJLCLT01")))
    good.associate()
    assert good.get(3, "1.0.1.8.0.255", 2) == axdr.DoubleLongUnsigned(1234)


def test_replay_is_refused_also_after_a_restart():
    store = MemoryCounterStore()
    server, notices, _ = make_server(store)
    c = client(server, 48)
    c.get(3, "1.0.1.8.0.255", 2)
    request = c.transport.sent[-1]
    (answer,) = server.handle(c.transport.session, request)
    assert answer[:3] == bytes((0xD8, 1, 6))
    assert notices[-1].event is ServerEvent.SECURITY_FAILURE
    assert c.get(3, "1.0.1.8.0.255", 2) == axdr.DoubleLongUnsigned(1234)  # still serving
    # a restart (new server from the same store): the old request is still a replay
    server2, _, _ = make_server(store)
    session = server2.new_session(48)
    aarq = c.transport.sent[0]
    (refused,) = server2.handle(session, aarq)
    assert refused[0] == 0x61 and b"\x0e\x01\x00\x06" in refused  # AARE with a deciphering error
    # the server never reuses one of its own ICs
    assert server2.security.counters.next_tx() > server.security.counters.next_tx() - 1


def test_key_transfer_takes_effect_after_the_answer():
    server, _, _ = make_server()
    c = client(server, 48)
    new_ek = bytes(range(100, 116))
    wrapped = security.wrap_key(security.DEFAULT_MASTER_KEY, new_ek)
    c.action(64, "0.0.43.0.3.255", 2, axdr.Array((axdr.Structure((axdr.Enum(KeyId.GLOBAL_UNICAST_ENCRYPTION),
                                                                   axdr.OctetString(wrapped))),)))
    assert server.security.encryption_key == new_ek
    c.session.settings.encryption_key = new_ek
    assert c.get(64, "0.0.43.0.3.255", 5) == axdr.OctetString(SERVER_TITLE)
    with pytest.raises(ServiceError):  # a key wrapped under another KEK is refused
        c.action(64, "0.0.43.0.3.255", 2, axdr.Array((axdr.Structure((
            axdr.Enum(0), axdr.OctetString(security.wrap_key(bytes(16), new_ek)))),)))


def test_long_answers_go_in_gbt_only_when_it_is_negotiated():
    server, _, echo = make_server()
    echo.value = axdr.OctetString(bytes(700))
    plain = client(server, 48)  # no GBT proposed: GET datablocks
    assert plain.get(1, echo.logical_name, 2) == echo.value
    assert all(a[0] != 0xE0 for a in plain.transport.answers) and len(plain.transport.answers) > 3
    # GBT negotiated: even a plain GET gets its long answer in GBT, one block until the
    # client's acknowledgement tells its window
    c = client(server, 48, conformance=DEFAULT_CONFORMANCE | Conformance.GENERAL_BLOCK_TRANSFER)
    session = c.transport.session
    req = c.session.protect(apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(1, echo.logical_name, 2)).encode())
    (first,) = server.handle(session, req)
    assert first[0] == 0xE0
    value = c.session.unprotect(c._gbt_collect(first))
    assert apdu.decode(value).result == echo.value
    # a short answer still goes whole
    assert c.get(1, "0.0.96.1.0.255", 2) == axdr.VisibleString("BJL0000001")
    assert c.transport.answers[-1][0] != 0xE0


@pytest.mark.parametrize("window", (1, 4))
def test_general_block_transfer_streams_a_whole_window_per_acknowledgement(window):
    """Issue 16: with the client's window above 1, each acknowledgement brings a whole
    window of blocks (streaming set on all but the window's last)."""
    server, _, echo = make_server()
    c = client(server, 48, conformance=DEFAULT_CONFORMANCE | Conformance.GENERAL_BLOCK_TRANSFER, gbt_window=window)
    echo.value = axdr.OctetString(bytes(range(256)) * 12)
    c.transport.sent.clear()
    c.transport.answers.clear()
    assert c.get(1, echo.logical_name, 2) == echo.value
    blocks = [apdu.decode(a) for a in c.transport.answers]
    assert all(isinstance(b, apdu.GeneralBlockTransfer) for b in blocks)
    assert [b.block_number for b in blocks] == list(range(1, len(blocks) + 1)) and blocks[-1].last_block
    assert len(blocks) > 8
    # one request block, then one acknowledgement per window (the last window needs none)
    acks = [apdu.decode(r) for r in c.transport.sent[1:]]
    assert len(acks) == -(-len(blocks) // window) - 1
    assert [a.block_number_ack for a in acks] == [window * n for n in range(1, len(acks) + 1)]
    for n, b in enumerate(blocks, 1):
        assert b.streaming == (n % window != 0 and not b.last_block)


def test_general_block_transfer_goes_back_to_the_first_block_not_acknowledged():
    server, _, echo = make_server()
    c = client(server, 48, conformance=DEFAULT_CONFORMANCE | Conformance.GENERAL_BLOCK_TRANSFER)
    echo.value = axdr.OctetString(bytes(3000))
    session = c.transport.session
    req = c.session.protect(apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(1, echo.logical_name, 2)).encode())
    first = [apdu.decode(b) for b in server.handle(session, apdu.GeneralBlockTransfer(True, False, 4, 1, 0, req).encode())]
    assert [(b.block_number, b.streaming) for b in first] == [(1, True), (2, True), (3, True), (4, False)]
    # block 3 was lost: the client acknowledges 2, the server sends 3.. again, a window's worth
    again = [apdu.decode(b) for b in server.handle(session, apdu.GeneralBlockTransfer(False, False, 4, 2, 2, b"").encode())]
    assert [b.block_number for b in again] == [3, 4, 5, 6]
    assert again[0].block_data == first[2].block_data


def test_release_of_a_ciphered_association_carries_the_initiate_response():
    """Issue 11 item 14: the RLRQ carries a glo-initiate-request, the RLRE answers with a
    glo-initiate-response the client deciphers and checks."""
    server, notices, _ = make_server()
    c = client(server, 48)
    rlrq = acse.RLRQ.decode(c.session.rlrq())
    assert rlrq.user_information[0] == apdu.Tag.GLO_INITIATE_REQUEST
    c.release()  # raises unless the RLRE holds a verifiable initiate response
    rlre = acse.RLRE.decode(c.transport.answers[-1])
    assert rlre.user_information[0] == apdu.Tag.GLO_INITIATE_RESPONSE
    assert notices[-1].event is ServerEvent.RELEASED and not c.transport.session.associated
    # a plain association releases without user-information
    pub = client(server, 16)
    pub.release()
    assert acse.RLRE.decode(pub.transport.answers[-1]).user_information is None


def test_data_notification_plain_and_ciphered():
    server, _, _ = make_server()
    plain = server.data_notification([(1, "0.0.96.1.0.255", 2), (3, "1.0.1.8.0.255", 2), (3, "9.9.9.9.9.9", 2)],
                                     long_invoke_id=7)
    n = apdu.decode(plain)
    assert n.long_invoke_id == 7 and n.body == axdr.Structure((axdr.VisibleString("BJL0000001"),
                                                               axdr.DoubleLongUnsigned(1234), axdr.NullData()))
    ciphered = server.data_notification([(1, "0.0.96.1.0.255", 2)], ciphered=True)
    g = apdu.decode(ciphered)
    assert isinstance(g, apdu.GeneralGloCiphering) and g.system_title == SERVER_TITLE
    _, inner = security.decrypt(g.content, SERVER_TITLE, server.security.encryption_key,
                                server.security.authentication_key)
    assert apdu.decode(inner).body == axdr.Structure((axdr.VisibleString("BJL0000001"),))


# --- Hypothesis: the server answers or stays silent, never raises --------------------------

_server, _, _ = make_server()
_c16 = client(_server, 16)
_c48 = client(_server, 48)
_valid = [
    _c16.session.aarq(), apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(1, Obis(0, 0, 96, 1, 0, 255), 2)).encode(),
    apdu.GetRequestNext(0xC1, 1).encode(), apdu.SetRequestNormal(0xC1, apdu.AttributeDescriptor(
        1, Obis(0, 0, 96, 128, 0, 255), 2), axdr.OctetString(b"x")).encode(),
    apdu.ActionRequestNormal(0xC1, apdu.AttributeDescriptor(15, Obis(0, 0, 40, 0, 0, 255), 1),
                             axdr.OctetString(b"x" * 17)).encode(),
    apdu.SetRequestWithDatablock(0xC1, apdu.DataBlockSA(True, 2, b"\x09\x01")).encode(),
    apdu.ActionRequestWithPblock(0xC1, apdu.DataBlockSA(False, 1, b"")).encode(),
    apdu.GeneralBlockTransfer(False, False, 1, 1, 0, b"\xc0\x01").encode(),
    bytes((0x62, 0x00)), _c48.session.aarq(), _c48.session.protect(b"\xc0\x01\xc1\x00\x01\x00\x00\x60\x01\x00\xff\x02\x00"),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_valid), st.binary(max_size=40),
                          st.sampled_from(_valid).flatmap(lambda v: st.integers(0, len(v)).map(lambda n: v[:n]))),
                max_size=12),
       st.sampled_from((16, 32, 48, 99)))
def test_random_apdu_sequences_never_raise(requests, sap):
    server, _, _ = make_server()
    session = server.new_session(sap)
    for r in requests:
        answers = server.handle(session, r)
        assert isinstance(answers, tuple) and all(isinstance(a, bytes) and a for a in answers)
