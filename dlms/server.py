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
   negotiating conformance and PDU size. Repeated authentication failures (a
   wrong LLS password, a glo-initiate-request that fails its tag, a wrong
   HLS reply) lock the SAP out for a while, and each is a :class:`Notice`.
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
   out in blocks (GET datablocks, ACTION pblocks) the client pulls; a client
   that used general-block-transfer itself gets long answers in GBT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Callable, Iterable

from bijli.dlms import acse, apdu, axdr, protection, security, xdlms
from bijli.dlms.acse import AARE, AARQ, RLRE, RLRQ, AcseServiceUser, ApplicationContext, AssociationResult, Mechanism
from bijli.dlms.xdlms import Conformance, InitiateError, InitiateRequest, InitiateResponse
from bijli.dlms.apdu import ActionResult, DataAccessResult, ServiceErrorCode, StateError, Tag
from bijli.dlms.cosem.association import (ASSOCIATION_STATUS_ASSOCIATED, ASSOCIATION_STATUS_NON_ASSOCIATED,
                                    ASSOCIATION_STATUS_PENDING, AssociationPolicy)
from bijli.dlms.cosem.base import AttributeAccess, Context, CosemError, CosemObject, MethodAccess  # noqa: F401
from bijli.dlms.errors import ApduError, DlmsError, ReplayError, SecurityError
from bijli.dlms.obis import Obis
from bijli.dlms.protection import PROTECTED_TAGS, Container, Protection
from bijli.dlms.security import SecurityControl, SecuritySettings

CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
MIN_PDU = 64  # below this no useful APDU fits; the standard's InitiateError pdu-size-too-short
MAX_LONG_TRANSFER = 1 << 20  # a long SET/ACTION/GBT request may not grow beyond this
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


@dataclass
class _LongTransfer:
    """A SET with datablocks or ACTION with pblocks being received."""

    invoke_id: int
    descriptor: apdu.AttributeDescriptor
    selection: apdu.AccessSelection | None
    data: bytearray
    block_number: int  # of the last block received


@dataclass
class Session:
    """One client association's state (one per client SAP per connection)."""

    client_sap: int
    policy: AssociationPolicy | None = None
    status: int = ASSOCIATION_STATUS_NON_ASSOCIATED
    conformance: Conformance = Conformance(0)
    client_max_pdu: int = 0xFFFF
    server_max_pdu: int = 1024
    # long GET (or ACTION response) in progress: the encoded value and the next block number to send
    pending_blocks: bytes | None = None
    pending_block_number: int = 0
    pending_invoke_id: int = 0
    pending_kind: str = "get"  # "get" datablocks or "action" pblocks
    used_gbt: bool = False  # only send general-block-transfer to a client that used it
    extra: dict = field(default_factory=dict)  # room for the owner's own state
    # security (ciphered associations)
    client_system_title: bytes | None = None
    dedicated_key: bytes | None = None
    challenge: bytes | None = None  # our StoC while HLS is pending
    cipher_overhead: int = 0
    # long requests being received
    long_set: _LongTransfer | None = None
    long_action: _LongTransfer | None = None
    # general-block-transfer: request blocks received, response blocks still to send
    gbt_in: bytearray | None = None
    gbt_out: bytes | None = None
    gbt_out_number: int = 0
    gbt_in_number: int = 0
    after_response: list = field(default_factory=list)  # run once the current answer is built
    hls_handler: Callable[[bytes], axdr.Data] | None = None

    @property
    def associated(self) -> bool:
        return self.status == ASSOCIATION_STATUS_ASSOCIATED

    def reply_to_hls(self, reply: bytes):
        if self.hls_handler is None or self.status != ASSOCIATION_STATUS_PENDING:
            raise CosemError(ActionResult.READ_WRITE_DENIED, "no HLS authentication pending")
        return self.hls_handler(reply)

    def change_secret(self, secret: bytes) -> None:
        raise CosemError(ActionResult.READ_WRITE_DENIED, "secret change not supported")

    def _reset(self) -> None:
        self.policy = None
        self.status = ASSOCIATION_STATUS_NON_ASSOCIATED
        self.pending_blocks = None
        self.long_set = self.long_action = None
        self.gbt_in = self.gbt_out = None
        self.dedicated_key = None
        self.challenge = None
        self.hls_handler = None
        self.used_gbt = False
        self.cipher_overhead = 0


def _exception(state: StateError, error: ServiceErrorCode) -> bytes:
    return apdu.ExceptionResponse(state, error).encode()


class Server:
    """The application association engine for one logical device.

    ``security`` (suite 0 keys, system title, invocation counter store) is needed
    only by policies with ``ciphered=True`` or mechanism HLS-GMAC.
    """

    def __init__(
        self,
        objects: Iterable[CosemObject],
        policies: Iterable[AssociationPolicy],
        *,
        max_pdu: int = 1024,
        lockout_after: int = 3,
        lockout_seconds: float = 300.0,
        on_notice: Callable[[Notice], None] | None = None,
        security: SecuritySettings | None = None,
    ):
        self.objects: dict[Obis, CosemObject] = {}
        for obj in objects:
            self.add(obj)
        self.policies = {p.client_sap: p for p in policies}
        self.max_pdu = max_pdu
        self.lockout_after = lockout_after
        self.lockout_seconds = lockout_seconds
        self.on_notice = on_notice or (lambda n: None)
        self.security = security
        self._failures: dict[int, int] = {}
        self._locked_until: dict[int, float] = {}

    def add(self, obj: CosemObject) -> None:
        self.objects[obj.logical_name] = obj

    def replace_policy(self, policy: AssociationPolicy) -> None:
        """A changed association policy (e.g. a new LLS password): new associations use it;
        open ones keep the policy they were opened with until released."""
        self.policies[policy.client_sap] = policy

    def new_session(self, client_sap: int) -> Session:
        return Session(client_sap, server_max_pdu=self.max_pdu)

    def locked_out(self, client_sap: int, now: float) -> bool:
        return self._locked_until.get(client_sap, 0.0) > now

    # --- entry point -------------------------------------------------------------------
    def handle(self, session: Session, request: bytes, now: float = 0.0) -> bytes | None:
        """Answer one APDU. Never raises for anything the peer sent."""
        if not request:
            return None
        tag = request[0]
        try:
            if tag == acse.AARQ_TAG:
                return self._associate(session, request, now)
            if tag == acse.RLRQ_TAG:
                return self._release(session, request)
            if session.status == ASSOCIATION_STATUS_NON_ASSOCIATED:
                return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
            if tag == Tag.GENERAL_BLOCK_TRANSFER:
                return self._general_block_transfer(session, request, now)
            return self._protected(session, request, now)
        except DlmsError:
            # malformed: the standard answers an undecodable APDU with an exception-response
            session.after_response.clear()
            return _exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON)
        finally:
            self._run_after_response(session)

    def _run_after_response(self, session: Session) -> None:
        while session.after_response:
            action = session.after_response.pop(0)
            try:
                action()
            except DlmsError:
                pass

    # --- ciphering (dlms.protection does the containers) -----------------------------------
    def _protected(self, session: Session, request: bytes, now: float) -> bytes | None:
        """Decipher (when the association is ciphered), serve, and cipher the answer."""
        policy = session.policy
        is_ciphered = request[0] in PROTECTED_TAGS
        if policy is None or not policy.ciphered or self.security is None:
            if is_ciphered:
                return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.DECIPHERING_ERROR)
            return self._service(session, apdu.decode(request))
        if not is_ciphered:
            # the security policy of this association requires protected requests
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
        try:
            plain, how, key = self._open(session, request)
        except ReplayError as exc:
            self.on_notice(Notice(ServerEvent.SECURITY_FAILURE, session.client_sap, str(exc)))
            # the answer tells the client the lowest IC we would accept, so it can resynchronise
            expected = self.security.counters.expected_rx(session.client_system_title or b"")
            return apdu.ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.INVOCATION_COUNTER_ERROR,
                                          min(expected, security.IC_LIMIT)).encode()
        except SecurityError as exc:
            self.on_notice(Notice(ServerEvent.SECURITY_FAILURE, session.client_sap, str(exc)))
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.DECIPHERING_ERROR)
        if not plain or plain[0] in (Tag.GENERAL_BLOCK_TRANSFER, acse.AARQ_TAG, acse.RLRQ_TAG):
            return _exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON)
        response = self._service(session, apdu.decode(plain))
        if response is None or response[0] == Tag.EXCEPTION_RESPONSE:
            return response
        return self._seal(session, response, how, key)

    def _open(self, session: Session, data: bytes, *, initiate: bool = False) -> tuple[bytes, Protection, bytes]:
        """The plain APDU inside ``data`` from this association's client, how it came and
        the key it used; checks the security policy and the replay window first."""
        sec = self.security
        if sec is None:
            raise SecurityError("no security settings: ciphered APDUs are not accepted")
        sealed = protection.read(data)
        if initiate and sealed.tag != Tag.GLO_INITIATE_REQUEST:
            raise SecurityError("a ciphered context needs a glo-initiate-request")
        title = session.client_system_title
        if title is None:
            raise SecurityError("no client system title in this association")
        if sealed.originator is not None and sealed.originator != title:
            raise SecurityError("general ciphering from another system title")
        if sealed.recipient and sealed.recipient != sec.system_title:
            raise SecurityError("general ciphering addressed to another system")
        control, required = sealed.header.control, sec.required_control
        if control & required != required or control & SecurityControl.BROADCAST_KEY:
            raise SecurityError(f"security control 0x{control:02x} weaker than required 0x{required:02x}")
        key = protection.key_for(sealed.protection, encryption_key=sec.encryption_key,
                                 dedicated_key=session.dedicated_key, master_key=sec.master_key)
        sec.counters.check_rx(title, sealed.invocation_counter)
        plain = protection.open_content(sealed, title, key, sec.authentication_key)
        sec.counters.accept_rx(title, sealed.invocation_counter)
        return plain, sealed.protection, key

    def _seal(self, session: Session, response: bytes, how: Protection, key: bytes) -> bytes:
        sec = self.security
        assert sec is not None  # only a ciphered association seals
        return protection.seal(response, how, system_title=sec.system_title, invocation_counter=sec.counters.next_tx(),
                               key=key, authentication_key=sec.authentication_key,
                               recipient=session.client_system_title)

    # --- ACSE -----------------------------------------------------------------------------
    def _reject(self, diagnostic: AcseServiceUser, context=ApplicationContext.LOGICAL_NAME,
                user_information: bytes | None = None) -> bytes:
        return AARE(AssociationResult.REJECTED_PERMANENT, diagnostic, "user", context,
                    user_information=user_information).encode()

    def _associate(self, session: Session, request: bytes, now: float) -> bytes:
        if session.policy is not None:
            # a new AARQ in an open association replaces it (the client lost track)
            session._reset()
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
        if self.locked_out(sap, now):
            return self._reject(AcseServiceUser.AUTHENTICATION_FAILURE, context)
        if aarq.user_information is None:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context)
        needs_title = policy.ciphered or mechanism == Mechanism.HLS_GMAC
        if needs_title:
            if self.security is None:
                return self._reject(AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED, context)
            if aarq.calling_ap_title is None or len(aarq.calling_ap_title) != security.SYSTEM_TITLE_LENGTH:
                return self._reject(AcseServiceUser.CALLING_AP_TITLE_NOT_RECOGNIZED, context)
        session.client_system_title = aarq.calling_ap_title if needs_title else None
        try:
            initiate_bytes, sealed_by = self._unwrap_initiate(session, policy, aarq)
        except ReplayError as exc:
            self.on_notice(Notice(ServerEvent.SECURITY_FAILURE, sap, str(exc)))
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context, INITIATE_DECIPHERING_ERROR)
        except SecurityError as exc:
            self.on_notice(Notice(ServerEvent.SECURITY_FAILURE, sap, str(exc)))
            self._auth_failed(sap, now, f"glo-initiate-request refused: {exc}")
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
                self._auth_failed(sap, now, "wrong LLS password")
                return self._reject(AcseServiceUser.AUTHENTICATION_FAILURE, context)
            status = ASSOCIATION_STATUS_ASSOCIATED
        elif mechanism == Mechanism.LOWEST:
            status = ASSOCIATION_STATUS_ASSOCIATED
        else:
            challenge = self._start_hls(session, policy, aarq, now)
            if challenge is None:
                return self._reject(AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED, context)
            status = ASSOCIATION_STATUS_PENDING
        if status == ASSOCIATION_STATUS_ASSOCIATED:
            self._failures.pop(sap, None)
        session.policy = policy
        session.status = status
        session.conformance = conformance
        session.client_max_pdu = initiate.client_max_receive_pdu_size or 0xFFFF
        session.pending_blocks = None
        session.dedicated_key = initiate.dedicated_key
        session.cipher_overhead = protection.overhead(Container.GENERAL) if policy.ciphered else 0
        response = InitiateResponse(conformance, self.max_pdu).encode()
        if sealed_by is not None:
            response = self._seal(session, response, *sealed_by)
        if status == ASSOCIATION_STATUS_ASSOCIATED:
            self.on_notice(Notice(ServerEvent.ASSOCIATED, sap, policy.name))
        diag = AcseServiceUser.AUTHENTICATION_REQUIRED if status == ASSOCIATION_STATUS_PENDING else AcseServiceUser.NULL
        return AARE(AssociationResult.ACCEPTED, diag, "user", context,
                    responding_ap_title=self.security.system_title if needs_title else None,
                    mechanism=mechanism if mechanism != Mechanism.LOWEST else None,
                    responding_authentication_value=challenge, user_information=response).encode()

    def _auth_failed(self, sap: int, now: float, why: str) -> None:
        count = self._failures.get(sap, 0) + 1
        self._failures[sap] = count
        self.on_notice(Notice(ServerEvent.AUTHENTICATION_FAILED, sap, why))
        if count >= self.lockout_after:
            self._locked_until[sap] = now + self.lockout_seconds
            self._failures[sap] = 0
            self.on_notice(Notice(ServerEvent.LOCKED_OUT, sap, f"{count} failed authentications"))

    def _unwrap_initiate(self, session: Session, policy: AssociationPolicy,
                         aarq: AARQ) -> tuple[bytes, tuple[Protection, bytes] | None]:
        """The plain InitiateRequest, and how it came protected (None: in clear)."""
        ui = aarq.user_information or b""
        if not policy.ciphered:
            return ui, None
        plain, how, key = self._open(session, ui, initiate=True)
        return plain, (how, key)

    def _start_hls(self, session: Session, policy: AssociationPolicy, aarq: AARQ, now: float) -> bytes | None:
        """HLS-GMAC: check CtoS, send StoC, and wait for reply_to_HLS_authentication."""
        if aarq.mechanism != Mechanism.HLS_GMAC or self.security is None:
            return None
        ctos = aarq.calling_authentication_value
        if ctos is None or not 8 <= len(ctos) <= 64:
            return None
        sec = self.security
        stoc = sec.random(sec.challenge_length)
        session.challenge = stoc
        sap = session.client_sap

        def verify(reply: bytes) -> axdr.Data:
            title = session.client_system_title
            if title is None:
                raise SecurityError("no client system title in this association")
            try:
                security.verify_hls_gmac(reply, title, sec.encryption_key, sec.authentication_key, stoc)
            except SecurityError as exc:
                # the association is dropped; the client has to start again (and may be locked out)
                session.after_response.append(session._reset)
                self._auth_failed(sap, now, f"HLS-GMAC: {exc}")
                raise CosemError(ActionResult.OTHER_REASON, str(exc)) from None
            session.status = ASSOCIATION_STATUS_ASSOCIATED
            session.challenge = None
            session.hls_handler = None
            self._failures.pop(sap, None)
            self.on_notice(Notice(ServerEvent.ASSOCIATED, sap, policy.name))
            return axdr.OctetString(security.hls_gmac(sec.system_title, sec.counters.next_tx(), sec.encryption_key,
                                                      sec.authentication_key, ctos))

        session.hls_handler = verify
        return stoc

    def _release(self, session: Session, request: bytes) -> bytes:
        try:
            RLRQ.decode(request)
        except DlmsError:
            pass  # release anyway: a client that wants to go should be let go
        was = session.policy
        session._reset()
        if was is not None:
            self.on_notice(Notice(ServerEvent.RELEASED, session.client_sap, was.name))
        return RLRE().encode()

    # --- general-block-transfer ------------------------------------------------------------
    def _general_block_transfer(self, session: Session, request: bytes, now: float) -> bytes | None:
        gbt = apdu.decode(request)
        if not isinstance(gbt, apdu.GeneralBlockTransfer):
            raise ApduError("not a general-block-transfer")
        if not session.conformance & Conformance.GENERAL_BLOCK_TRANSFER:
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED)
        session.used_gbt = True
        if not gbt.block_data and session.gbt_out is not None:
            # the client acknowledges our block and asks for the next
            return self._gbt_next(session, gbt.block_number)
        if session.gbt_in is None or gbt.block_number == 1:
            session.gbt_in = bytearray()
        elif gbt.block_number != session.gbt_in_number + 1:
            session.gbt_in = None
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OTHER_REASON)
        session.gbt_in_number = gbt.block_number
        session.gbt_in += gbt.block_data
        if len(session.gbt_in) > MAX_LONG_TRANSFER:
            session.gbt_in = None
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.PDU_TOO_LONG)
        if not gbt.last_block:
            # acknowledge and ask for the next block (window 1, no streaming)
            return apdu.GeneralBlockTransfer(False, False, 1, 0, gbt.block_number, b"").encode()
        whole = bytes(session.gbt_in)
        session.gbt_in = None
        session.gbt_out_number = 0
        session.extra["in_gbt"] = True
        try:
            response = self._protected(session, whole, now)
        finally:
            session.extra.pop("in_gbt", None)
        if response is None:
            return None
        session.gbt_out = response
        return self._gbt_next(session, gbt.block_number)

    def _gbt_next(self, session: Session, ack: int) -> bytes:
        data = session.gbt_out or b""
        room = max(16, min(session.client_max_pdu, self.max_pdu) - 10)
        chunk, rest = data[:room], data[room:]
        session.gbt_out = rest or None
        session.gbt_out_number += 1
        return apdu.GeneralBlockTransfer(not rest, False, 1, session.gbt_out_number, ack, chunk).encode()

    # --- xDLMS services ----------------------------------------------------------------
    def _service(self, session: Session, req) -> bytes:
        if session.status == ASSOCIATION_STATUS_PENDING and not isinstance(req, apdu.ActionRequestNormal):
            # only reply_to_HLS_authentication is allowed before HLS completes
            return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE)
        ctx = Context(session.client_sap, session)
        kind = type(req)
        if kind is apdu.GetRequestNormal:
            return self._get_normal(session, req, ctx)
        if kind is apdu.GetRequestNext:
            return self._get_next(session, req)
        if kind is apdu.GetRequestWithList:
            results = tuple(self._get_value(session, d, s, ctx) for d, s in req.attributes)
            return self._limit(session, req.invoke_id, apdu.GetResponseWithList(req.invoke_id, results).encode(),
                               encoded_value=None)
        if kind is apdu.SetRequestNormal:
            return apdu.SetResponseNormal(req.invoke_id, self._set_value(session, req.attribute, req.value, ctx)).encode()
        if kind is apdu.SetRequestWithList:
            if len(req.attributes) != len(req.values):
                return _exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON)
            results = tuple(self._set_value(session, d, v, ctx) for (d, _), v in zip(req.attributes, req.values))
            return apdu.SetResponseWithList(req.invoke_id, results).encode()
        if kind is apdu.SetRequestWithFirstDatablock or kind is apdu.SetRequestWithDatablock:
            return self._set_block(session, req, ctx)
        if kind is apdu.ActionRequestNormal:
            result, ret = self._action(session, req.method, req.parameters, ctx)
            return self._action_response(session, req.invoke_id, result, ret)
        if kind is apdu.ActionRequestWithList:
            if len(req.methods) != len(req.parameters):
                return _exception(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON)
            results = tuple(self._action(session, m, p, ctx) for m, p in zip(req.methods, req.parameters))
            return apdu.ActionResponseWithList(req.invoke_id, results).encode()
        if kind is apdu.ActionRequestWithFirstPblock or kind is apdu.ActionRequestWithPblock:
            return self._action_block(session, req, ctx)
        if kind is apdu.ActionRequestNextPblock:
            return self._action_next(session, req)
        return _exception(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED)

    def _lookup(self, session: Session, desc: apdu.AttributeDescriptor):
        obj = self.objects.get(desc.instance)
        if obj is None or obj.CLASS_ID != desc.class_id:
            return None, None
        rights = session.policy.rights(obj) if session.policy else None
        return obj, rights

    def _get_value(self, session, desc, selection, ctx):
        obj, rights = self._lookup(session, desc)
        if obj is None or rights is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if not rights.attribute(desc.attribute).readable:
            return DataAccessResult.READ_WRITE_DENIED
        if selection is not None and not session.conformance & Conformance.SELECTIVE_ACCESS:
            return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
        try:
            return obj.get(desc.attribute, selection, ctx)
        except CosemError as exc:
            return _data_result(exc.result)
        except DlmsError:
            return DataAccessResult.OTHER_REASON

    def _get_normal(self, session: Session, req: apdu.GetRequestNormal, ctx) -> bytes:
        result = self._get_value(session, req.attribute, req.access_selection, ctx)
        if isinstance(result, DataAccessResult):
            return apdu.GetResponseNormal(req.invoke_id, result).encode()
        try:
            encoded = axdr.encode(result)
        except DlmsError:
            return apdu.GetResponseNormal(req.invoke_id, DataAccessResult.OTHER_REASON).encode()
        return self._limit(session, req.invoke_id, b"\xc4\x01" + bytes((req.invoke_id, 0)) + encoded, encoded)

    def _room(self, session: Session) -> int:
        return min(session.client_max_pdu, self.max_pdu) - session.cipher_overhead

    def _limit(self, session: Session, invoke_id: int, response: bytes, encoded_value: bytes | None) -> bytes:
        """Send ``response`` whole if it fits the client's PDU size, else start a block transfer."""
        if len(response) <= self._room(session) or session.extra.get("in_gbt"):
            return response  # inside general-block-transfer the GBT layer splits it
        if not session.conformance & Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ:
            return apdu.GetResponseNormal(invoke_id, DataAccessResult.OTHER_REASON).encode()
        # DataBlock-G raw-data carries the encoded Data (or the with-list result sequence)
        session.pending_blocks = encoded_value if encoded_value is not None else response[3:]
        session.pending_block_number = 1
        session.pending_invoke_id = invoke_id
        session.pending_kind = "get"
        return self._next_block(session)

    def _next_block(self, session: Session) -> bytes:
        room = max(16, self._room(session) - 16)  # header: tag, choice, iid, last, block number, choice, length
        data = session.pending_blocks or b""
        chunk, rest = data[:room], data[room:]
        number = session.pending_block_number
        last = not rest
        session.pending_blocks = None if last else rest
        session.pending_block_number = number + 1
        if session.pending_kind == "action":
            return apdu.ActionResponseWithPblock(session.pending_invoke_id,
                                                 apdu.DataBlockSA(last, number, chunk)).encode()
        return apdu.GetResponseWithDatablock(session.pending_invoke_id, last, number, chunk).encode()

    def _get_next(self, session: Session, req: apdu.GetRequestNext) -> bytes:
        if session.pending_blocks is None or session.pending_kind != "get":
            return apdu.GetResponseWithDatablock(req.invoke_id, True, req.block_number,
                                                 DataAccessResult.NO_LONG_GET_IN_PROGRESS).encode()
        if req.block_number != session.pending_block_number - 1:
            session.pending_blocks = None
            return apdu.GetResponseWithDatablock(req.invoke_id, True, req.block_number,
                                                 DataAccessResult.LONG_GET_ABORTED).encode()
        return self._next_block(session)

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
        return DataAccessResult.SUCCESS

    def _set_refused(self, session, desc) -> DataAccessResult | None:
        obj, rights = self._lookup(session, desc)
        if obj is None or rights is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if not session.conformance & Conformance.SET or not rights.attribute(desc.attribute).writable:
            return DataAccessResult.READ_WRITE_DENIED
        return None

    def _set_block(self, session: Session, req, ctx) -> bytes:
        """SET with datablocks: collect the raw data, set the value after the last block."""
        block = req.block
        if isinstance(req, apdu.SetRequestWithFirstDatablock):
            if not session.conformance & Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE:
                return apdu.SetResponseLastDatablock(req.invoke_id, DataAccessResult.READ_WRITE_DENIED,
                                                     block.block_number).encode()
            refused = self._set_refused(session, req.attribute)
            if refused is not None or block.block_number != 1:
                session.long_set = None
                return apdu.SetResponseLastDatablock(req.invoke_id, refused or DataAccessResult.DATA_BLOCK_NUMBER_INVALID,
                                                     block.block_number).encode()
            session.long_set = _LongTransfer(req.invoke_id, req.attribute, req.access_selection, bytearray(), 0)
        transfer = session.long_set
        if transfer is None:
            return apdu.SetResponseLastDatablock(req.invoke_id, DataAccessResult.NO_LONG_SET_IN_PROGRESS,
                                                 block.block_number).encode()
        if block.block_number != transfer.block_number + 1:
            session.long_set = None
            return apdu.SetResponseLastDatablock(req.invoke_id, DataAccessResult.DATA_BLOCK_NUMBER_INVALID,
                                                 block.block_number).encode()
        transfer.block_number = block.block_number
        transfer.data += block.raw_data
        if len(transfer.data) > MAX_LONG_TRANSFER:
            session.long_set = None
            return apdu.SetResponseLastDatablock(req.invoke_id, DataAccessResult.LONG_SET_ABORTED,
                                                 block.block_number).encode()
        if not block.last_block:
            return apdu.SetResponseDatablock(req.invoke_id, block.block_number).encode()
        session.long_set = None
        try:
            value = axdr.decode(bytes(transfer.data))
        except DlmsError:
            return apdu.SetResponseLastDatablock(req.invoke_id, DataAccessResult.TYPE_UNMATCHED,
                                                 block.block_number).encode()
        result = self._set_value(session, transfer.descriptor, value, ctx)
        return apdu.SetResponseLastDatablock(req.invoke_id, result, block.block_number).encode()

    def _action(self, session, desc, params, ctx):
        obj, rights = self._lookup(session, desc)
        if obj is None or rights is None:
            return ActionResult.OBJECT_UNDEFINED, None
        pending_hls = session.status == ASSOCIATION_STATUS_PENDING
        is_hls_reply = obj.CLASS_ID == 15 and desc.attribute == 1
        if pending_hls and not is_hls_reply:
            return ActionResult.READ_WRITE_DENIED, None
        if not is_hls_reply and (not session.conformance & Conformance.ACTION
                                 or rights.method(desc.attribute) == MethodAccess.NO_ACCESS):
            return ActionResult.READ_WRITE_DENIED, None
        try:
            ret = obj.invoke(desc.attribute, params, ctx)
        except CosemError as exc:
            return _action_result(exc.result), None
        except DlmsError:
            return ActionResult.OTHER_REASON, None
        return ActionResult.SUCCESS, ret

    def _action_response(self, session: Session, invoke_id: int, result: ActionResult, ret) -> bytes:
        if ret is None:
            return apdu.ActionResponseNormal(invoke_id, result, None).encode()
        try:
            encoded = axdr.encode(ret)
        except DlmsError:
            return apdu.ActionResponseNormal(invoke_id, ActionResult.OTHER_REASON, None).encode()
        response = bytes((0xC7, 1, invoke_id, result, 1, 0)) + encoded
        if len(response) <= self._room(session) or session.extra.get("in_gbt"):
            return response
        if not session.conformance & Conformance.BLOCK_TRANSFER_WITH_ACTION:
            return apdu.ActionResponseNormal(invoke_id, ActionResult.OTHER_REASON, None).encode()
        session.pending_blocks = encoded
        session.pending_block_number = 1
        session.pending_invoke_id = invoke_id
        session.pending_kind = "action"
        return self._next_block(session)

    def _action_next(self, session: Session, req: apdu.ActionRequestNextPblock) -> bytes:
        if session.pending_blocks is None or session.pending_kind != "action":
            return apdu.ActionResponseNormal(req.invoke_id, ActionResult.NO_LONG_ACTION_IN_PROGRESS).encode()
        if req.block_number != session.pending_block_number - 1:
            session.pending_blocks = None
            return apdu.ActionResponseNormal(req.invoke_id, ActionResult.LONG_ACTION_ABORTED).encode()
        return self._next_block(session)

    def _action_block(self, session: Session, req, ctx) -> bytes:
        """ACTION with parameter blocks: collect, acknowledge each, invoke after the last."""
        block = req.block
        if isinstance(req, apdu.ActionRequestWithFirstPblock):
            if not session.conformance & Conformance.BLOCK_TRANSFER_WITH_ACTION or block.block_number != 1:
                session.long_action = None
                return apdu.ActionResponseNormal(req.invoke_id, ActionResult.READ_WRITE_DENIED).encode()
            session.long_action = _LongTransfer(req.invoke_id, req.method, None, bytearray(), 0)
        transfer = session.long_action
        if transfer is None:
            return apdu.ActionResponseNormal(req.invoke_id, ActionResult.NO_LONG_ACTION_IN_PROGRESS).encode()
        if block.block_number != transfer.block_number + 1:
            session.long_action = None
            return apdu.ActionResponseNormal(req.invoke_id, ActionResult.LONG_ACTION_ABORTED).encode()
        transfer.block_number = block.block_number
        transfer.data += block.raw_data
        if len(transfer.data) > MAX_LONG_TRANSFER:
            session.long_action = None
            return apdu.ActionResponseNormal(req.invoke_id, ActionResult.LONG_ACTION_ABORTED).encode()
        if not block.last_block:
            return apdu.ActionResponseNextPblock(req.invoke_id, block.block_number).encode()
        session.long_action = None
        params = None
        if transfer.data:
            try:
                params = axdr.decode(bytes(transfer.data))
            except DlmsError:
                return apdu.ActionResponseNormal(req.invoke_id, ActionResult.TYPE_UNMATCHED).encode()
        result, ret = self._action(session, transfer.descriptor, params, ctx)
        return self._action_response(session, req.invoke_id, result, ret)

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
