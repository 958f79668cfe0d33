"""The COSEM application association engine: request APDU bytes in, response bytes out.

IEC 62056-5-3 clauses 9.3-9.4 from the server side, sans-IO. The I/O shell
(hal.tcp, the serial line) owns one :class:`Session` per client association and
calls :meth:`Server.handle` with each APDU the link layer delivers; the answer
(or ``None``) goes back down the same link. Nothing here blocks, reads a clock
or raises on bad input: a malformed or refused request always gets the answer
the standard prescribes (AARE rejection, data-access-result, exception-response)
and the session survives it, so one peer's garbage never stops the meter.

Flow of one request:

1. ACSE (AARQ/RLRQ) opens and closes the association, checking the policy of
   the client SAP (application context, mechanism, password, ciphering) and
   negotiating conformance and PDU size. Authentication failures (a wrong LLS
   password, a glo-initiate-request that fails its tag or replays a counter, a
   wrong HLS reply) are counted per peer by :mod:`dlms.lockout`, whose policy
   decides which AARQs are judged: a peer that failed too often backs off, a
   peer that has not failed is always judged. Each failure is a :class:`Notice`.
2. HLS (mechanism 5, GMAC) leaves the association pending after the AARE; the
   client's reply_to_HLS_authentication action on Association LN completes it.
3. In a ciphered association every request must come as glo-, ded-,
   general-glo- or general-ded-ciphering with the security the settings
   require (security suite 0, :mod:`dlms.security`); the answer goes back in
   the same kind of container. A replayed invocation counter or a failed tag
   is refused with an exception-response and a SECURITY_FAILURE notice.
4. Inside an association, xDLMS GET/SET/ACTION (normal, with list, with
   blocks) are decoded, access rights are checked against the policy, and the
   object's hook is called. A response longer than the client accepts goes
   out in blocks (GET datablocks, ACTION pblocks) the client pulls, or, when
   general-block-transfer is negotiated, in GBT windows of the client's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, Iterable, Mapping, MutableMapping

from bijli.dlms import acse, apdu, axdr, blocks, gbt, protection, security, xdlms
from bijli.dlms.acse import AARE, AARQ, RLRE, RLRQ, AcseServiceUser, ApplicationContext, AssociationResult, Mechanism
from bijli.dlms.xdlms import Conformance, InitiateError, InitiateRequest, InitiateResponse
from bijli.dlms.apdu import ActionResult, DataAccessResult, ServiceErrorCode, StateError, Tag
from bijli.dlms.association import (Association, AssociationContext, AssociationState, Challenged, HlsFailed,
                                    HlsPassed, Opened, Released)
from bijli.dlms.cosem.association import AssociationPolicy
from bijli.dlms.cosem.base import AttributeAccess, Context, CosemError, CosemObject, MethodAccess  # noqa: F401
from bijli.dlms.errors import ApduError, CounterStoreError, DlmsError, ReplayError, SecurityError
from bijli.dlms.lockout import Lockout, LockoutPolicy
from bijli.dlms.obis import Obis
from bijli.dlms.protection import PROTECTED_TAGS, Container, Protection
from bijli.dlms.security import SecurityControl, SecuritySettings

CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
MIN_PDU = 64  # below this no useful APDU fits; the standard's InitiateError pdu-size-too-short
# confirmed-service-error [14], initiateError [1], application-reference [0], deciphering-error (6)
INITIATE_DECIPHERING_ERROR = bytes((0x0E, 0x01, 0x00, 0x06))


class ServerEvent(IntEnum):
    ASSOCIATED = 1
    RELEASED = 2
    AUTHENTICATION_FAILED = 3
    LOCKED_OUT = 4
    SECURITY_FAILURE = 5


@dataclass(frozen=True)
class Notice:
    """Something the server tells its owner (the meter logs these as events)."""

    event: ServerEvent
    client_sap: int
    detail: str = ""
    peer: str = ""  # who, as the link shell named the session's peer ("" when it did not)


class Session:
    """One client association on one connection (one per client SAP per link).

    Its status and negotiated context are :attr:`association` (the state table of
    :mod:`dlms.association`); besides that it holds only the transfers in progress
    (block transfer, general-block-transfer) and the actions to run once the current
    answer is built. The read-only properties are what COSEM objects see through
    ``ctx.association``."""

    __slots__ = ("client_sap", "server_max_pdu", "association", "outbound", "inbound", "gbt_in", "gbt_out",
                 "after_response", "_server", "peer", "_rights", "_rights_for", "object_context")

    def __init__(self, client_sap: int, server_max_pdu: int = 1024, server: "Server | None" = None, peer: str = ""):
        self.client_sap = client_sap
        self.peer = peer  # the transport's identity of the other end: what the lockout counts by
        self.server_max_pdu = server_max_pdu
        self.association = Association()
        self.outbound: blocks.Outbound | None = None  # a long GET/ACTION response being sent
        self.inbound: blocks.Inbound | None = None  # a long SET/ACTION request being received
        self.gbt_in: gbt.GbtReceiver | None = None  # a request arriving in general-block-transfer
        self.gbt_out: gbt.GbtSender | None = None  # an answer leaving in general-block-transfer
        self.after_response: list[Callable[[], object]] = []  # run once the current answer is built
        self._server = server
        # each object's rights under this association, as its policy's rule gave them: the
        # rule is asked once per object per association (see Server._lookup)
        self._rights: dict[CosemObject, object] = {}
        self._rights_for: AssociationContext | None = None
        self.object_context = Context(client_sap, self)  # what every object this session asks sees

    # --- what the association negotiated ----------------------------------------------
    @property
    def status(self) -> AssociationState:
        return self.association.state

    @property
    def associated(self) -> bool:
        return self.association.state is AssociationState.ASSOCIATED

    @property
    def policy(self) -> AssociationPolicy | None:
        return self.association.context.policy

    @property
    def conformance(self) -> Conformance:
        return self.association.context.conformance

    @property
    def client_max_pdu(self) -> int:
        return self.association.context.client_max_pdu

    @property
    def client_system_title(self) -> bytes | None:
        return self.association.context.client_system_title

    @property
    def dedicated_key(self) -> bytes | None:
        return self.association.context.dedicated_key

    def reply_to_hls(self, reply: bytes) -> axdr.Data:
        """Association LN's reply_to_HLS_authentication: f(StoC) in, f(CtoS) out."""
        if self._server is None:
            raise CosemError(ActionResult.READ_WRITE_DENIED, "no HLS authentication pending")
        return self._server._reply_to_hls(self, reply)

    def _clear_transfers(self) -> None:
        self.outbound = self.inbound = None
        self.gbt_in = self.gbt_out = None


_HLS_PASSED = HlsPassed()
_HLS_FAILED = HlsFailed()
_RELEASED = Released()
NOTHING: tuple[bytes, ...] = ()

# the conformance bits each request needs (IEC 62056-5-3 clause 9.4.6.1); a request outside
# the negotiated conformance gets an exception-response, not a data-access-result
C = Conformance
_REQUIRED = {
    apdu.GetRequestNormal: C.GET,
    apdu.GetRequestNext: C.GET | C.BLOCK_TRANSFER_WITH_GET_OR_READ,
    apdu.GetRequestWithList: C.GET | C.MULTIPLE_REFERENCES,
    apdu.SetRequestNormal: C.SET,
    apdu.SetRequestWithList: C.SET | C.MULTIPLE_REFERENCES,
    apdu.SetRequestWithFirstDatablock: C.SET | C.BLOCK_TRANSFER_WITH_SET_OR_WRITE,
    apdu.SetRequestWithDatablock: C.SET | C.BLOCK_TRANSFER_WITH_SET_OR_WRITE,
    apdu.ActionRequestNormal: C.ACTION,
    apdu.ActionRequestWithList: C.ACTION | C.MULTIPLE_REFERENCES,
    apdu.ActionRequestWithFirstPblock: C.ACTION | C.BLOCK_TRANSFER_WITH_ACTION,
    apdu.ActionRequestWithPblock: C.ACTION | C.BLOCK_TRANSFER_WITH_ACTION,
    apdu.ActionRequestNextPblock: C.ACTION | C.BLOCK_TRANSFER_WITH_ACTION,
}
del C
# plain ints for the per-request checks: ``IntFlag & IntFlag`` runs Python code (about
# 3 us each on this machine, several per request); ``int & int`` does not
_REQUIRED_BITS = {kind: int(bits) for kind, bits in _REQUIRED.items()}
_GBT = int(Conformance.GENERAL_BLOCK_TRANSFER)
# the members every request is compared with, read once: an Enum member read as a class
# attribute costs about 200 ns on Python 3.11, several times a global
_GBT_TAG = int(Tag.GENERAL_BLOCK_TRANSFER)
_EXCEPTION_TAG = int(Tag.EXCEPTION_RESPONSE)
_NON_ASSOCIATED = AssociationState.NON_ASSOCIATED
_PENDING = AssociationState.PENDING
_SELECTIVE_ACCESS = int(Conformance.SELECTIVE_ACCESS)
_BROADCAST_KEY = int(SecurityControl.BROADCAST_KEY)
GBT_WINDOW = 8  # the window we advertise for requests the client streams to us


def _exception(state: StateError, error: ServiceErrorCode) -> bytes:
    return apdu.ExceptionResponse(state, error).encode()


class Server:
    """The application association engine for one logical device.

    ``security`` (suite 0 keys, system title, invocation counter store) is needed
    only by policies with ``ciphered=True`` or mechanism HLS-GMAC. ``lockout`` is the
    :class:`~dlms.lockout.Lockout` table (its owner keeps and restores its record);
    without one, a fresh table with ``lockout_after`` free failures per peer and waits
    up to ``lockout_seconds``. ``host_refusal`` maps an exception the objects' host
    (the meter) raised from a GET, SET or ACTION to the CosemError it means (None: not
    one of the host's refusals, a defect that is raised): a meter whose storage fails
    answers temporary-failure on every object, not only on those that ask for it.
    """

    def __init__(
        self,
        objects: "Iterable[CosemObject] | MutableMapping[Obis, CosemObject]",
        policies: Iterable[AssociationPolicy],
        *,
        max_pdu: int = 1024,
        lockout_after: int = 3,
        lockout_seconds: float = 300.0,
        on_notice: Callable[[Notice], None] | None = None,
        security: SecuritySettings | None = None,
        lockout: Lockout | None = None,
        host_refusal: Callable[[Exception], CosemError | None] | None = None,
    ):
        self.objects: MutableMapping[Obis, CosemObject]
        if isinstance(objects, Mapping):
            # an index the owner keeps (a meter's object list builds its objects when first
            # looked up): the server only ever looks names up in it, and adds to it
            self.objects = objects  # type: ignore[assignment]
        else:
            self.objects = {}
            for obj in objects:
                self.add(obj)
        self.policies = {p.client_sap: p for p in policies}
        self.max_pdu = max_pdu
        self.on_notice = on_notice or (lambda n: None)
        self.security = security
        self.host_refusal = host_refusal or (lambda exc: None)
        self.lockout = lockout if lockout is not None else Lockout(
            LockoutPolicy(allowance=lockout_after, max_delay=lockout_seconds))
        # the last octet-string value a GET answered and its A-XDR: objects that keep their
        # value between changes (the Clock within a tick) hand back the very same object
        self._encoded: tuple[axdr.Data | None, bytes] = (None, b"")

    def add(self, obj: CosemObject) -> None:
        self.objects[obj.logical_name] = obj

    def replace_policy(self, policy: AssociationPolicy) -> None:
        """A changed association policy (e.g. a new LLS password): new associations use it;
        open ones keep the policy they were opened with until released."""
        self.policies[policy.client_sap] = policy

    def new_session(self, client_sap: int, peer: str = "") -> Session:
        """A session for ``client_sap`` on one link; ``peer`` names the other end (a TCP
        source address, a serial port) for the lockout."""
        return Session(client_sap, self.max_pdu, self, peer)

    def locked_out(self, client_sap: int, now: float, peer: str = "") -> bool:
        """Whether ``peer`` is backing off from ``client_sap`` (its AARQs refused unjudged)."""
        return self.lockout.waiting(peer, client_sap, now) > 0

    # --- entry point -------------------------------------------------------------------
    def handle(self, session: Session, request: bytes, now: float = 0.0) -> tuple[bytes, ...]:
        """Answer one APDU with the APDUs to send back, in order: usually one, none for
        an empty request or a general-block-transfer block that needs no answer, several
        when a window of general-block-transfer blocks streams out. Never raises for
        anything the peer sent."""
        if not request:
            return NOTHING
        tag = request[0]
        try:
            if tag == _GBT_TAG:
                if session.association.state is _NON_ASSOCIATED:
                    return (_exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE),)
                return self._general_block_transfer(session, request, now)
            context = session.association.context
            if not int(context.conformance) & _GBT:
                response = self._answer(session, request, now, context.room)
                return NOTHING if response is None else (response,)
            # general-block-transfer negotiated: a long answer goes in GBT, not in
            # service-specific blocks (a client that proposes GBT takes it; gurux, for one,
            # never wraps a short request in GBT, yet takes GBT answers in its window)
            response = self._answer(session, request, now, 1 << 30)
            if response is None:
                return NOTHING
            if len(response) <= context.room + context.cipher_overhead:
                return (response,)
            return self._gbt_answer(session, response, 1, 0)
        except CounterStoreError:
            # the host cannot keep a counter reservation (its storage fails): refuse for now,
            # in words that say "later", and keep the connection (the host logs its storage
            # failure once; a log line per refused request would be a flood)
            session.after_response.clear()
            if tag == acse.AARQ_TAG:
                if session.association.state is not AssociationState.NON_ASSOCIATED:
                    self._drop(session)
                return (self._reject(AcseServiceUser.NO_REASON_GIVEN, result=AssociationResult.REJECTED_TRANSIENT),)
            return (_exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE),)
        except DlmsError:
            # malformed: the standard answers an undecodable APDU with an exception-response
            session.after_response.clear()
            return (_exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON),)
        finally:
            if session.after_response:
                self._run_after_response(session)

    def _answer(self, session: Session, request: bytes, now: float, room: int) -> bytes | None:
        """One whole request APDU (as it came, or reassembled from GBT) to its one answer;
        a longer answer than ``room`` goes out in service-specific blocks."""
        tag = request[0]
        if tag == acse.AARQ_TAG:
            return self._associate(session, request, now)
        if tag == acse.RLRQ_TAG:
            return self._release(session, request)
        if session.association.state is _NON_ASSOCIATED:
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
        return self._protected(session, request, room)

    def _run_after_response(self, session: Session) -> None:
        while session.after_response:
            action = session.after_response.pop(0)
            try:
                action()
            except DlmsError:
                pass

    # --- ciphering (dlms.protection does the containers) -----------------------------------
    def _protected(self, session: Session, request: bytes, room: int) -> bytes | None:
        """Decipher (when the association is ciphered), serve, and cipher the answer."""
        policy = session.association.context.policy
        is_ciphered = request[0] in PROTECTED_TAGS
        if policy is None or not policy.ciphered or self.security is None:
            if is_ciphered:
                return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.DECIPHERING_ERROR)
            return self._service(session, apdu.decode(request), room)
        if not is_ciphered:
            # the security policy of this association requires protected requests
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
        context = session.association.context
        try:
            plain, how, key = self._open(request, context.client_system_title, context.dedicated_key)
        except ReplayError as exc:
            self.on_notice(Notice(ServerEvent.SECURITY_FAILURE, session.client_sap, str(exc)))
            # the answer tells the client the lowest IC we would accept, so it can resynchronise
            expected = self.security.counters.expected_rx(context.client_system_title or b"")
            return apdu.ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.INVOCATION_COUNTER_ERROR,
                                          min(expected, security.IC_LIMIT)).encode()
        except SecurityError as exc:
            self.on_notice(Notice(ServerEvent.SECURITY_FAILURE, session.client_sap, str(exc)))
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.DECIPHERING_ERROR)
        if not plain or plain[0] in (_GBT_TAG, acse.AARQ_TAG, acse.RLRQ_TAG):
            return _exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON)
        response = self._service(session, apdu.decode(plain), room)
        if response is None or response[0] == _EXCEPTION_TAG:
            return response
        return self._seal(session, response, how, key)

    def _open(self, data: bytes, title: bytes | None, dedicated_key: bytes | None, *,
              initiate: bool = False) -> tuple[bytes, Protection, bytes]:
        """The plain APDU inside ``data`` from the client ``title``, how it came and the
        key it used; checks the security policy and the replay window first."""
        sec = self.security
        if sec is None:
            raise SecurityError("no security settings: ciphered APDUs are not accepted")
        sealed = protection.read(data)
        if initiate and sealed.tag != Tag.GLO_INITIATE_REQUEST:
            raise SecurityError("a ciphered context needs a glo-initiate-request")
        if title is None:
            raise SecurityError("no client system title in this association")
        if sealed.originator is not None and sealed.originator != title:
            raise SecurityError("general ciphering from another system title")
        if sealed.recipient and sealed.recipient != sec.system_title:
            raise SecurityError("general ciphering addressed to another system")
        control, required = sealed.header.control, int(sec.required_control)
        if control & required != required or control & _BROADCAST_KEY:
            raise SecurityError(f"security control 0x{control:02x} weaker than required 0x{required:02x}")
        key = protection.key_for(sealed.protection, encryption_key=sec.encryption_key, dedicated_key=dedicated_key,
                                 master_key=sec.master_key)
        sec.counters.check_rx(title, sealed.invocation_counter)
        plain = protection.open_content(sealed, title, key, sec.authentication_key)
        sec.counters.accept_rx(title, sealed.invocation_counter)
        return plain, sealed.protection, key

    def _seal(self, session: Session, response: bytes, how: Protection, key: bytes) -> bytes:
        sec = self.security
        assert sec is not None  # only a ciphered association seals
        return protection.seal(response, how, system_title=sec.system_title, invocation_counter=sec.counters.next_tx(),
                               key=key, authentication_key=sec.authentication_key,
                               recipient=session.association.context.client_system_title)

    # --- ACSE -----------------------------------------------------------------------------
    def _reject(self, diagnostic: AcseServiceUser, context=ApplicationContext.LOGICAL_NAME,
                user_information: bytes | None = None,
                result: AssociationResult = AssociationResult.REJECTED_PERMANENT) -> bytes:
        return AARE(result, diagnostic, "user", context, user_information=user_information).encode()

    def _drop(self, session: Session) -> None:
        self.lockout.release_pending(session)
        session.association.handle(_RELEASED)
        session._clear_transfers()

    def _associate(self, session: Session, request: bytes, now: float) -> bytes:
        if session.association.state is not AssociationState.NON_ASSOCIATED:
            # a new AARQ in an open association ends it (the client lost track)
            self._drop(session)
        try:
            aarq = AARQ.decode(request)
        except DlmsError:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN)
        sap = session.client_sap
        policy = self.policies.get(sap)
        context = aarq.application_context
        if policy is None:
            return self._reject(AcseServiceUser.CALLING_AP_TITLE_NOT_RECOGNIZED, context)
        expected_context = ApplicationContext.LOGICAL_NAME_CIPHERED if policy.ciphered else ApplicationContext.LOGICAL_NAME
        if context != expected_context:
            return self._reject(AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED, expected_context)
        mechanism = aarq.mechanism or Mechanism.LOWEST
        if mechanism != policy.mechanism:
            diag = (AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_REQUIRED if mechanism == Mechanism.LOWEST
                    else AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED)
            return self._reject(diag, context)
        if not self.lockout.admit(session.peer, sap, now):
            # rejected-transient: the same request may succeed later, which is what tells a client
            # "locked out, wait" apart from "wrong password" (rejected-permanent, same diagnostic)
            wait = self.lockout.waiting(session.peer, sap, now)
            self.on_notice(Notice(ServerEvent.AUTHENTICATION_FAILED, sap,
                                  f"refused unjudged: backing off for {wait:.0f} s more", session.peer))
            return self._reject(AcseServiceUser.AUTHENTICATION_FAILURE, context,
                                result=AssociationResult.REJECTED_TRANSIENT)
        if aarq.user_information is None:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context)
        needs_title = policy.ciphered or mechanism == Mechanism.HLS_GMAC
        if needs_title:
            if self.security is None:
                return self._reject(AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED, context)
            if aarq.calling_ap_title is None or len(aarq.calling_ap_title) != security.SYSTEM_TITLE_LENGTH:
                return self._reject(AcseServiceUser.CALLING_AP_TITLE_NOT_RECOGNIZED, context)
        title = aarq.calling_ap_title if needs_title else None
        sealed_by: tuple[Protection, bytes] | None = None
        initiate_bytes = aarq.user_information
        if policy.ciphered:
            try:
                initiate_bytes, how, key = self._open(initiate_bytes, title, None, initiate=True)
                sealed_by = (how, key)
            except SecurityError as exc:
                # a replayed counter counts too: whoever sends it has not shown the key now
                self._auth_failed(session, now, f"glo-initiate-request refused: {exc}")
                return self._reject(AcseServiceUser.NO_REASON_GIVEN, context, INITIATE_DECIPHERING_ERROR)
        try:
            initiate = InitiateRequest.decode(initiate_bytes)
        except DlmsError:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context)
        if initiate.dlms_version < 6:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context,
                                xdlms.encode_initiate_error(InitiateError.DLMS_VERSION_TOO_LOW))
        if initiate.client_max_receive_pdu_size and initiate.client_max_receive_pdu_size < MIN_PDU:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context,
                                xdlms.encode_initiate_error(InitiateError.PDU_SIZE_TOO_SHORT))
        if initiate.dedicated_key is not None and (not policy.ciphered or len(initiate.dedicated_key) != 16):
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context,
                                xdlms.encode_initiate_error(InitiateError.REFUSED_BY_THE_VDE_HANDLER))
        conformance = initiate.proposed_conformance & policy.conformance
        if not conformance:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context,
                                xdlms.encode_initiate_error(InitiateError.INCOMPATIBLE_CONFORMANCE))
        challenge = None
        if mechanism == Mechanism.LLS:
            if aarq.calling_authentication_value != policy.secret:
                self._auth_failed(session, now, "wrong LLS password")
                return self._reject(AcseServiceUser.AUTHENTICATION_FAILURE, context)
        elif mechanism != Mechanism.LOWEST:
            challenge = self._hls_challenge(aarq)
            if challenge is None:
                return self._reject(AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED, context)
        client_max_pdu = initiate.client_max_receive_pdu_size or 0xFFFF
        overhead = protection.overhead(Container.GENERAL) if policy.ciphered else 0
        negotiated = AssociationContext(
            policy, conformance, client_max_pdu, title, initiate.dedicated_key, overhead,
            min(client_max_pdu, self.max_pdu) - overhead, challenge,
            aarq.calling_authentication_value or b"" if challenge is not None else b"", now)
        if challenge is None:
            session.association.handle(Opened(negotiated))
            self.lockout.passed(session.peer, sap, now)
            self.on_notice(Notice(ServerEvent.ASSOCIATED, sap, policy.name, session.peer))
        else:
            session.association.handle(Challenged(negotiated))
            for dropped in self.lockout.hold_pending(session, session.peer):  # the caps on pending HLS
                if dropped.association.state is AssociationState.PENDING:
                    self._drop(dropped)
        response = InitiateResponse(conformance, self.max_pdu).encode()
        if sealed_by is not None:
            response = self._seal(session, response, *sealed_by)
        diag = AcseServiceUser.AUTHENTICATION_REQUIRED if challenge is not None else AcseServiceUser.NULL
        return AARE(AssociationResult.ACCEPTED, diag, "user", context,
                    responding_ap_title=self.security.system_title if needs_title else None,
                    mechanism=mechanism if mechanism != Mechanism.LOWEST else None,
                    responding_authentication_value=challenge, user_information=response).encode()

    def _auth_failed(self, session: Session, now: float, why: str) -> None:
        sap, peer = session.client_sap, session.peer
        self.on_notice(Notice(ServerEvent.AUTHENTICATION_FAILED, sap, why, peer))
        wait = self.lockout.failed(peer, sap, now)
        if wait > 0:
            self.on_notice(Notice(ServerEvent.LOCKED_OUT, sap, f"backing off {wait:.0f} s after failed "
                                                               f"authentications", peer))

    def _hls_challenge(self, aarq: AARQ) -> bytes | None:
        """HLS-GMAC: our StoC if the client's CtoS is acceptable (None: refuse)."""
        if aarq.mechanism != Mechanism.HLS_GMAC or self.security is None:
            return None
        ctos = aarq.calling_authentication_value
        if ctos is None or not 8 <= len(ctos) <= 64:
            return None
        return self.security.random(self.security.challenge_length)

    def _reply_to_hls(self, session: Session, reply: bytes) -> axdr.Data:
        """HLS pass 3 and 4: check f(StoC), answer f(CtoS)."""
        association = session.association
        context = association.context
        sec = self.security
        if association.state is not AssociationState.PENDING or context.challenge is None or sec is None:
            raise CosemError(ActionResult.READ_WRITE_DENIED, "no HLS authentication pending")
        title = context.client_system_title
        if title is None:
            raise SecurityError("no client system title in this association")
        sap = session.client_sap
        try:
            security.verify_hls_gmac(reply, title, sec.encryption_key, sec.authentication_key, context.challenge)
        except SecurityError as exc:
            # the association is dropped once this answer is out; the client starts again (or is locked out)
            session.after_response.append(lambda: self._fail_hls(session))
            self._auth_failed(session, context.opened_at, f"HLS-GMAC: {exc}")
            raise CosemError(ActionResult.OTHER_REASON, str(exc)) from None
        # f(StoC) first: a counter that cannot be reserved (CounterStoreError) leaves the
        # association pending, not open with an answer the client never got
        answer = security.hls_gmac(sec.system_title, sec.counters.next_tx(), sec.encryption_key,
                                   sec.authentication_key, context.client_challenge)
        association.handle(_HLS_PASSED)
        self.lockout.release_pending(session)
        self.lockout.passed(session.peer, sap, context.opened_at)
        self.on_notice(Notice(ServerEvent.ASSOCIATED, sap, context.policy.name if context.policy else "",
                              session.peer))
        return axdr.OctetString(answer)

    def _fail_hls(self, session: Session) -> None:
        self.lockout.release_pending(session)
        session.association.handle(_HLS_FAILED)
        session._clear_transfers()

    def _release(self, session: Session, request: bytes) -> bytes:
        """RLRQ: release whatever is open. A release request carrying a (ciphered)
        initiate request gets the initiate response back in the RLRE's user-information,
        protected the same way, so the client can verify whom it released."""
        try:
            rlrq: RLRQ | None = RLRQ.decode(request)
        except DlmsError:
            rlrq = None  # release anyway: a client that wants to go should be let go
        context = session.association.context
        user_information = None
        if rlrq is not None and rlrq.user_information and context.policy is not None:
            user_information = self._release_initiate(session, rlrq.user_information)
        if session.association.state is not AssociationState.NON_ASSOCIATED:
            self._drop(session)
        if context.policy is not None:
            self.on_notice(Notice(ServerEvent.RELEASED, session.client_sap, context.policy.name))
        return RLRE(user_information=user_information).encode()

    def _release_initiate(self, session: Session, user_information: bytes) -> bytes | None:
        context = session.association.context
        try:
            if context.policy is not None and context.policy.ciphered:
                plain, how, key = self._open(user_information, context.client_system_title, None, initiate=True)
                InitiateRequest.decode(plain)
                return self._seal(session, InitiateResponse(context.conformance, self.max_pdu).encode(), how, key)
            InitiateRequest.decode(user_information)
            return InitiateResponse(context.conformance, self.max_pdu).encode()
        except SecurityError as exc:
            self.on_notice(Notice(ServerEvent.SECURITY_FAILURE, session.client_sap, str(exc)))
        except DlmsError:
            pass
        return None

    # --- general-block-transfer (dlms.gbt) ---------------------------------------------------
    def _general_block_transfer(self, session: Session, request: bytes, now: float) -> tuple[bytes, ...]:
        block = apdu.decode(request)
        if not isinstance(block, apdu.GeneralBlockTransfer):
            raise ApduError("not a general-block-transfer")
        if not session.conformance & Conformance.GENERAL_BLOCK_TRANSFER:
            return (_exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED),)
        sender = session.gbt_out
        if sender is not None and not block.block_data:
            # the client acknowledges (part of) our window and asks for the next
            sender.receive_ack(block)
            if sender.done:
                session.gbt_out = None
                return NOTHING
            return tuple(b.encode() for b in sender.next_window())
        receiver = session.gbt_in
        if receiver is None or block.block_number == 1:
            # a new request: its blocks are numbered on from the first one we see
            receiver = session.gbt_in = gbt.GbtReceiver(window=GBT_WINDOW, max_size=blocks.MAX_LONG_TRANSFER,
                                                        first_block=block.block_number)
            session.gbt_out = None
        ack_due = receiver.receive(block)
        if not receiver.complete:
            return (receiver.ack().encode(),) if ack_due else NOTHING
        whole = receiver.data
        session.gbt_in = None
        # the whole answer goes in GBT: no service-specific blocks inside it
        response = self._answer(session, whole, now, room=1 << 30)
        if response is None:
            return NOTHING
        return self._gbt_answer(session, response, block.window or 1, receiver.received)

    def _gbt_answer(self, session: Session, response: bytes, window: int, ack: int) -> tuple[bytes, ...]:
        """The first window of ``response`` in GBT blocks (``window``: the client's, 1 until
        it has told us); the rest follows its acknowledgements."""
        size = max(16, min(session.client_max_pdu, self.max_pdu) - 10)  # GBT header: tag, control, numbers, length
        sender = gbt.GbtSender(response, size, peer_window=window, own_window=GBT_WINDOW, block_number_ack=ack)
        session.gbt_out = sender  # kept until acknowledged whole or a new request starts
        return tuple(b.encode() for b in sender.next_window())

    # --- xDLMS services ----------------------------------------------------------------
    def _service(self, session: Session, req, room: int) -> bytes:
        kind = type(req)
        association = session.association
        if association.state is _PENDING:
            # only reply_to_HLS_authentication is allowed before HLS completes
            if kind is not apdu.ActionRequestNormal:
                return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
        else:
            try:
                required = _REQUIRED_BITS[kind]
            except KeyError:
                return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED)
            if int(association.context.conformance) & required != required:
                return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED)
        ctx = session.object_context
        if kind is apdu.GetRequestNormal:
            return self._get_normal(session, req, ctx, room)
        if kind is apdu.GetRequestNext:
            return self._next_block(session, blocks.BlockService.GET, req.invoke_id, req.block_number)
        if kind is apdu.GetRequestWithList:
            results = tuple(self._get_value(session, d, s, ctx) for d, s in req.attributes)
            response = apdu.GetResponseWithList(req.invoke_id, results).encode()
            # DataBlock-G raw-data of a with-list answer is its result sequence
            return self._limit(session, blocks.BlockService.GET, req.invoke_id, response, response[3:], room)
        if kind is apdu.SetRequestNormal:
            return apdu.SetResponseNormal(req.invoke_id, self._set_value(session, req.attribute, req.value, ctx)).encode()
        if kind is apdu.SetRequestWithList:
            if len(req.attributes) != len(req.values):
                return _exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON)
            results = tuple(self._set_value(session, d, v, ctx) for (d, _), v in zip(req.attributes, req.values))
            return apdu.SetResponseWithList(req.invoke_id, results).encode()
        if kind is apdu.SetRequestWithFirstDatablock:
            refused = self._set_refused(session, req.attribute)
            if refused is not None:
                session.inbound = None
                return blocks.final(blocks.BlockService.SET, req.invoke_id, refused, req.block.block_number)
            return self._first_block(session, blocks.BlockService.SET, req.invoke_id, req.attribute,
                                     req.access_selection, req.block, ctx, room)
        if kind is apdu.SetRequestWithDatablock:
            return self._more_block(session, blocks.BlockService.SET, req.invoke_id, req.block, ctx, room)
        if kind is apdu.ActionRequestNormal:
            result, ret = self._action(session, req.method, req.parameters, ctx)
            return self._action_response(session, req.invoke_id, result, ret, room)
        if kind is apdu.ActionRequestWithList:
            if len(req.methods) != len(req.parameters):
                return _exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON)
            results = tuple(self._action(session, m, p, ctx) for m, p in zip(req.methods, req.parameters))
            return apdu.ActionResponseWithList(req.invoke_id, results).encode()
        if kind is apdu.ActionRequestWithFirstPblock:
            return self._first_block(session, blocks.BlockService.ACTION, req.invoke_id, req.method, None, req.block,
                                     ctx, room)
        if kind is apdu.ActionRequestWithPblock:
            return self._more_block(session, blocks.BlockService.ACTION, req.invoke_id, req.block, ctx, room)
        # ActionRequestNextPblock: the only kind left in _REQUIRED
        return self._next_block(session, blocks.BlockService.ACTION, req.invoke_id, req.block_number)

    def _lookup(self, session: Session, desc: apdu.AttributeDescriptor):
        obj = self.objects.get(desc.instance)
        if obj is None or obj.CLASS_ID != desc.class_id:
            return None, None
        context = session.association.context
        cache = session._rights
        if session._rights_for is not context:
            # a new association (or its HLS completed, or it was released): the context is a
            # new value at every transition, so rights kept from the old one are dropped
            cache.clear()
            session._rights_for = context
        try:
            return obj, cache[obj]
        except KeyError:
            pass
        policy = context.policy
        rights = cache[obj] = policy.rights(obj) if policy else None
        return obj, rights

    def _get_value(self, session, desc, selection, ctx):
        obj, rights = self._lookup(session, desc)
        if obj is None or rights is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if not rights.attribute(desc.attribute).readable:
            return DataAccessResult.READ_WRITE_DENIED
        if selection is not None and not int(session.association.context.conformance) & _SELECTIVE_ACCESS:
            return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
        try:
            return obj.get(desc.attribute, selection, ctx)
        except CosemError as exc:
            return _data_result(exc.result)
        except DlmsError:
            return DataAccessResult.OTHER_REASON
        except Exception as exc:
            return _data_result(self._refused_by_host(exc).result)

    def _get_normal(self, session: Session, req: apdu.GetRequestNormal, ctx, room: int) -> bytes:
        result = self._get_value(session, req.attribute, req.access_selection, ctx)
        if isinstance(result, DataAccessResult):
            return apdu.GetResponseNormal(req.invoke_id, result).encode()
        last, encoded = self._encoded
        if result is not last:
            try:
                encoded = axdr.encode(result)
            except DlmsError:
                return apdu.GetResponseNormal(req.invoke_id, DataAccessResult.OTHER_REASON).encode()
            # a frozen value over immutable bytes encodes the same every time: kept by identity
            if result.__class__ is axdr.OctetString and result.value.__class__ is bytes:
                self._encoded = (result, encoded)
        response = b"\xc4\x01" + bytes((req.invoke_id, 0)) + encoded
        if len(response) <= room:
            return response
        return self._limit(session, blocks.BlockService.GET, req.invoke_id, response, encoded, room)

    # --- service-specific block transfer (dlms.blocks) --------------------------------------
    def _limit(self, session: Session, service: blocks.BlockService, invoke_id: int, response: bytes,
               raw_data: bytes, room: int) -> bytes:
        """``response`` whole if it fits ``room``, else the first block of ``raw_data``."""
        if len(response) <= room:
            return response
        needed = (Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ if service is blocks.BlockService.GET
                  else Conformance.BLOCK_TRANSFER_WITH_ACTION)
        if not session.association.context.conformance & needed:
            if service is blocks.BlockService.GET:
                return apdu.GetResponseNormal(invoke_id, DataAccessResult.OTHER_REASON).encode()
            return apdu.ActionResponseNormal(invoke_id, ActionResult.OTHER_REASON, None).encode()
        # header: tag, choice, invoke-id, last, block number, choice, length
        session.outbound = blocks.Outbound(service, invoke_id, raw_data, max(16, room - 16))
        return session.outbound.next_block()

    def _next_block(self, session: Session, service: blocks.BlockService, invoke_id: int, block_number: int) -> bytes:
        outbound = session.outbound
        if outbound is None or outbound.service is not service:
            return blocks.no_transfer(service, invoke_id, block_number)
        if block_number != outbound.sent:
            session.outbound = None
            return blocks.aborted(service, invoke_id, block_number)
        response = outbound.next_block()
        if outbound.done:
            session.outbound = None
        return response

    def _first_block(self, session: Session, service: blocks.BlockService, invoke_id: int,
                     descriptor: apdu.AttributeDescriptor, selection, block: apdu.DataBlockSA, ctx, room: int) -> bytes:
        if block.block_number != 1:
            session.inbound = None
            return blocks.out_of_sequence(service, invoke_id, block.block_number)
        session.inbound = blocks.Inbound(service, invoke_id, descriptor, selection)
        return self._more_block(session, service, invoke_id, block, ctx, room)

    def _more_block(self, session: Session, service: blocks.BlockService, invoke_id: int, block: apdu.DataBlockSA,
                    ctx, room: int) -> bytes:
        """Take one block of a long SET or ACTION; act on the data after the last."""
        inbound = session.inbound
        if inbound is None or inbound.service is not service:
            return blocks.no_transfer(service, invoke_id, block.block_number)
        outcome = inbound.take(block)
        if outcome is blocks.Outcome.MORE:
            return blocks.acknowledge(service, invoke_id, block.block_number)
        session.inbound = None
        if outcome is blocks.Outcome.OUT_OF_SEQUENCE:
            return blocks.out_of_sequence(service, invoke_id, block.block_number)
        if outcome is blocks.Outcome.TOO_LONG:
            return blocks.aborted(service, invoke_id, block.block_number)
        raw = inbound.data
        try:
            value = axdr.decode(raw) if raw or service is blocks.BlockService.SET else None
        except DlmsError:
            return blocks.final(service, invoke_id, DataAccessResult.TYPE_UNMATCHED, block.block_number)
        if service is blocks.BlockService.SET:
            result = self._set_value(session, inbound.descriptor, value, ctx)
            return blocks.final(service, invoke_id, result, block.block_number)
        result, ret = self._action(session, inbound.descriptor, value, ctx)
        return self._action_response(session, invoke_id, result, ret, room)

    # --- SET and ACTION ---------------------------------------------------------------------
    def _set_value(self, session, desc, value, ctx) -> DataAccessResult:
        refused = self._set_refused(session, desc)
        if refused is not None:
            return refused
        obj = self.objects[desc.instance]
        try:
            obj.set(desc.attribute, value, ctx)
        except CosemError as exc:
            return _data_result(exc.result)
        except DlmsError:
            return DataAccessResult.OTHER_REASON
        except Exception as exc:
            return _data_result(self._refused_by_host(exc).result)
        return DataAccessResult.SUCCESS

    def _set_refused(self, session, desc) -> DataAccessResult | None:
        obj, rights = self._lookup(session, desc)
        if obj is None or rights is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if not rights.attribute(desc.attribute).writable:
            return DataAccessResult.READ_WRITE_DENIED
        return None

    def _action(self, session, desc, params, ctx):
        obj, rights = self._lookup(session, desc)
        if obj is None or rights is None:
            return ActionResult.OBJECT_UNDEFINED, None
        pending_hls = session.association.state is AssociationState.PENDING
        is_hls_reply = obj.CLASS_ID == 15 and desc.attribute == 1
        if pending_hls and not is_hls_reply:
            return ActionResult.READ_WRITE_DENIED, None
        if not is_hls_reply and rights.method(desc.attribute) == MethodAccess.NO_ACCESS:
            return ActionResult.READ_WRITE_DENIED, None
        try:
            ret = obj.invoke(desc.attribute, params, ctx)
        except CosemError as exc:
            return _action_result(exc.result), None
        except DlmsError:
            return ActionResult.OTHER_REASON, None
        except Exception as exc:
            return _action_result(self._refused_by_host(exc).result), None
        return ActionResult.SUCCESS, ret

    def _refused_by_host(self, exc: Exception) -> CosemError:
        """The host's refusal ``exc`` as its COSEM result; anything else is re-raised."""
        refused = self.host_refusal(exc)
        if refused is None:
            raise exc
        return refused

    def _action_response(self, session: Session, invoke_id: int, result: ActionResult, ret, room: int) -> bytes:
        if ret is None:
            return apdu.ActionResponseNormal(invoke_id, result, None).encode()
        try:
            encoded = axdr.encode(ret)
        except DlmsError:
            return apdu.ActionResponseNormal(invoke_id, ActionResult.OTHER_REASON, None).encode()
        response = bytes((0xC7, 1, invoke_id, result, 1, 0)) + encoded
        return self._limit(session, blocks.BlockService.ACTION, invoke_id, response, encoded, room)

    # --- push --------------------------------------------------------------------------
    def data_notification(self, push_object_list: Iterable[tuple[int, "Obis | str", int]], *, long_invoke_id: int = 0,
                          date_time: axdr.CosemDateTime | None = None, ciphered: bool = False,
                          control: int = SecurityControl.AUTHENTICATED_ENCRYPTED) -> bytes:
        """A DataNotification APDU carrying the listed attributes ``(class_id, obis, attribute)``
        as one structure, as a Push setup object sends it; ``ciphered`` wraps it in
        general-glo-ciphering with the server system title. An attribute that cannot be
        read travels as null-data, so the receiver still sees every position."""
        values = []
        for class_id, obis, attribute in push_object_list:
            obj = self.objects.get(Obis.parse(obis))
            value: axdr.Data = axdr.NullData()
            if obj is not None and obj.CLASS_ID == class_id:
                try:
                    value = obj.get(attribute, None, Context(0))
                except DlmsError:
                    pass
            values.append(value)
        notification = apdu.DataNotification(long_invoke_id & 0xFFFFFFFF, date_time, axdr.Structure(tuple(values))).encode()
        if not ciphered:
            return notification
        if self.security is None:
            raise DlmsError("a ciphered data-notification needs security settings")
        sec = self.security
        return protection.seal(notification, Protection(Container.GENERAL_GLO_DED, False, control),
                               system_title=sec.system_title, invocation_counter=sec.counters.next_tx(),
                               key=sec.encryption_key, authentication_key=sec.authentication_key)


def _data_result(code: int) -> DataAccessResult:
    try:
        return DataAccessResult(code)
    except ValueError:
        return DataAccessResult.OTHER_REASON


def _action_result(code: int) -> ActionResult:
    try:
        return ActionResult(code)
    except ValueError:
        return ActionResult.OTHER_REASON
