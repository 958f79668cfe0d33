"""The COSEM application association engine: request APDU bytes in, response bytes out.

IEC 62056-5-3 clauses 9.3-9.4 from the server side, sans-IO. The I/O shell
(hal.tcp, the serial line) owns one :class:`Session` per client connection and
calls :meth:`Server.handle` with each APDU the link layer delivers; the answer
(or ``None``) goes back down the same link. Nothing here blocks, reads a clock
or raises on bad input: a malformed or refused request always gets the answer
the standard prescribes (AARE rejection, data-access-result, exception-response)
and the session survives it, so one peer's garbage never stops the meter.

Flow of one request:

1. ACSE (AARQ/RLRQ) opens and closes the association, checking the policy of
   the client SAP (mechanism, password, ciphering) and negotiating conformance
   and PDU size. Repeated authentication failures lock the SAP out for a while.
2. Inside an association, xDLMS GET/SET/ACTION are decoded, access rights are
   checked against the policy, and the object's hook is called.
3. A response longer than the client accepts goes out in blocks
   (GET with datablock) that the client pulls with get-request-next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Callable, Iterable

from dlms import acse, apdu, axdr
from dlms.acse import (AARE, AARQ, RLRE, RLRQ, AcseServiceUser, ApplicationContext, AssociationResult,
                       Conformance, InitiateError, InitiateRequest, InitiateResponse, Mechanism)
from dlms.apdu import ActionResult, DataAccessResult, ServiceErrorCode, StateError
from dlms.cosem.association import (ASSOCIATION_STATUS_ASSOCIATED, ASSOCIATION_STATUS_NON_ASSOCIATED,
                                    ASSOCIATION_STATUS_PENDING, AssociationPolicy)
from dlms.cosem.base import AttributeAccess, Context, CosemError, CosemObject, MethodAccess
from dlms.errors import DlmsError
from dlms.obis import Obis

CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
MIN_PDU = 64  # below this no useful APDU fits; the standard's InitiateError pdu-size-too-short


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
class Session:
    """One client connection's association state."""

    client_sap: int
    policy: AssociationPolicy | None = None
    status: int = ASSOCIATION_STATUS_NON_ASSOCIATED
    conformance: Conformance = Conformance(0)
    client_max_pdu: int = 0xFFFF
    server_max_pdu: int = 1024
    # long GET in progress: the encoded value and the next block number to send
    pending_blocks: bytes | None = None
    pending_block_number: int = 0
    pending_invoke_id: int = 0
    used_gbt: bool = False  # only send general-block-transfer to a client that used it
    extra: dict = field(default_factory=dict)  # for security and HLS state

    @property
    def associated(self) -> bool:
        return self.status == ASSOCIATION_STATUS_ASSOCIATED

    def reply_to_hls(self, reply: bytes):
        raise CosemError(ActionResult.READ_WRITE_DENIED, "no HLS authentication pending")

    def change_secret(self, secret: bytes) -> None:
        raise CosemError(ActionResult.READ_WRITE_DENIED, "secret change not supported")


class Server:
    """The application association engine for one logical device."""

    def __init__(
        self,
        objects: Iterable[CosemObject],
        policies: Iterable[AssociationPolicy],
        *,
        max_pdu: int = 1024,
        lockout_after: int = 3,
        lockout_seconds: float = 300.0,
        on_notice: Callable[[Notice], None] | None = None,
    ):
        self.objects: dict[Obis, CosemObject] = {}
        for obj in objects:
            self.add(obj)
        self.policies = {p.client_sap: p for p in policies}
        self.max_pdu = max_pdu
        self.lockout_after = lockout_after
        self.lockout_seconds = lockout_seconds
        self.on_notice = on_notice or (lambda n: None)
        self._failures: dict[int, int] = {}
        self._locked_until: dict[int, float] = {}

    def add(self, obj: CosemObject) -> None:
        self.objects[obj.logical_name] = obj

    def new_session(self, client_sap: int) -> Session:
        return Session(client_sap, server_max_pdu=self.max_pdu)

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
            if not session.associated:
                return apdu.ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE).encode()
            return self._service(session, apdu.decode(request))
        except DlmsError:
            # malformed: the standard answers an undecodable APDU with an exception-response
            return apdu.ExceptionResponse(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON).encode()

    # --- ACSE -----------------------------------------------------------------------------
    def _reject(self, diagnostic: AcseServiceUser, context=ApplicationContext.LOGICAL_NAME,
                user_information: bytes | None = None) -> bytes:
        return AARE(AssociationResult.REJECTED_PERMANENT, diagnostic, "user", context,
                    user_information=user_information).encode()

    def _associate(self, session: Session, request: bytes, now: float) -> bytes:
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
        if self._locked_until.get(sap, 0.0) > now:
            return self._reject(AcseServiceUser.AUTHENTICATION_FAILURE, context)
        if aarq.user_information is None:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context)
        try:
            initiate_bytes = self._unwrap_initiate(session, policy, aarq)
            initiate = InitiateRequest.decode(initiate_bytes)
        except DlmsError:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context)
        if initiate.dlms_version < 6:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context,
                                acse.encode_initiate_error(InitiateError.DLMS_VERSION_TOO_LOW))
        if initiate.client_max_receive_pdu_size and initiate.client_max_receive_pdu_size < MIN_PDU:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context,
                                acse.encode_initiate_error(InitiateError.PDU_SIZE_TOO_SHORT))
        conformance = initiate.proposed_conformance & policy.conformance
        if not conformance:
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, context,
                                acse.encode_initiate_error(InitiateError.INCOMPATIBLE_CONFORMANCE))
        challenge = None
        if mechanism == Mechanism.LLS:
            if aarq.calling_authentication_value != policy.secret:
                self._auth_failed(sap, now, "wrong LLS password")
                return self._reject(AcseServiceUser.AUTHENTICATION_FAILURE, context)
            status = ASSOCIATION_STATUS_ASSOCIATED
        elif mechanism == Mechanism.LOWEST:
            status = ASSOCIATION_STATUS_ASSOCIATED
        else:
            challenge = self._start_hls(session, policy, aarq)
            if challenge is None:
                return self._reject(AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED, context)
            status = ASSOCIATION_STATUS_PENDING
        self._failures.pop(sap, None)
        session.policy = policy
        session.status = status
        session.conformance = conformance
        session.client_max_pdu = initiate.client_max_receive_pdu_size or 0xFFFF
        session.pending_blocks = None
        response = InitiateResponse(conformance, self.max_pdu).encode()
        response = self._wrap_initiate(session, policy, response)
        if status == ASSOCIATION_STATUS_ASSOCIATED:
            self.on_notice(Notice(ServerEvent.ASSOCIATED, sap, policy.name))
        diag = AcseServiceUser.AUTHENTICATION_REQUIRED if status == ASSOCIATION_STATUS_PENDING else AcseServiceUser.NULL
        return AARE(AssociationResult.ACCEPTED, diag, "user", context,
                    responding_ap_title=session.extra.get("server_system_title"),
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

    # hooks for ciphering and HLS; plain associations pass the bytes through
    def _unwrap_initiate(self, session: Session, policy: AssociationPolicy, aarq: AARQ) -> bytes:
        if policy.ciphered:
            raise DlmsError("ciphered association not configured")
        return aarq.user_information

    def _wrap_initiate(self, session: Session, policy: AssociationPolicy, response: bytes) -> bytes:
        return response

    def _start_hls(self, session: Session, policy: AssociationPolicy, aarq: AARQ) -> bytes | None:
        return None

    def _release(self, session: Session, request: bytes) -> bytes:
        try:
            RLRQ.decode(request)
        except DlmsError:
            pass  # release anyway: a client that wants to go should be let go
        was = session.policy
        session.policy = None
        session.status = ASSOCIATION_STATUS_NON_ASSOCIATED
        session.pending_blocks = None
        if was is not None:
            self.on_notice(Notice(ServerEvent.RELEASED, session.client_sap, was.name))
        return RLRE().encode()

    # --- xDLMS services ----------------------------------------------------------------
    def _service(self, session: Session, req) -> bytes:
        if session.status == ASSOCIATION_STATUS_PENDING and not isinstance(req, apdu.ActionRequestNormal):
            # only reply_to_HLS_authentication is allowed before HLS completes
            return apdu.ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE).encode()
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
                return apdu.ExceptionResponse(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON).encode()
            results = tuple(self._set_value(session, d, v, ctx) for (d, _), v in zip(req.attributes, req.values))
            return apdu.SetResponseWithList(req.invoke_id, results).encode()
        if kind is apdu.ActionRequestNormal:
            result, ret = self._action(session, req.method, req.parameters, ctx)
            return apdu.ActionResponseNormal(req.invoke_id, result, ret).encode()
        if kind is apdu.ActionRequestWithList:
            if len(req.methods) != len(req.parameters):
                return apdu.ExceptionResponse(StateError.SERVICE_UNKNOWN, ServiceErrorCode.OTHER_REASON).encode()
            results = tuple(self._action(session, m, p, ctx) for m, p in zip(req.methods, req.parameters))
            return apdu.ActionResponseWithList(req.invoke_id, results).encode()
        return apdu.ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED).encode()

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
        try:
            return obj.get(desc.attribute, selection, ctx)
        except CosemError as exc:
            return _data_result(exc.result)

    def _get_normal(self, session: Session, req: apdu.GetRequestNormal, ctx) -> bytes:
        result = self._get_value(session, req.attribute, req.access_selection, ctx)
        if isinstance(result, DataAccessResult):
            return apdu.GetResponseNormal(req.invoke_id, result).encode()
        encoded = axdr.encode(result)
        return self._limit(session, req.invoke_id, b"\xc4\x01" + bytes((req.invoke_id, 0)) + encoded, encoded)

    def _limit(self, session: Session, invoke_id: int, response: bytes, encoded_value: bytes | None) -> bytes:
        """Send ``response`` whole if it fits the client's PDU size, else start a block transfer."""
        limit = min(session.client_max_pdu, self.max_pdu)
        if len(response) <= limit:
            return response
        if not session.conformance & Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ:
            return apdu.GetResponseNormal(invoke_id, DataAccessResult.OTHER_REASON).encode()
        # DataBlock-G raw-data carries the encoded Data (or the with-list result sequence)
        session.pending_blocks = encoded_value if encoded_value is not None else response[3:]
        session.pending_block_number = 1
        session.pending_invoke_id = invoke_id
        return self._next_block(session)

    def _next_block(self, session: Session) -> bytes:
        limit = min(session.client_max_pdu, self.max_pdu)
        room = max(16, limit - 16)  # header: tag, choice, iid, last, block number, choice, length
        data = session.pending_blocks or b""
        chunk, rest = data[:room], data[room:]
        number = session.pending_block_number
        last = not rest
        session.pending_blocks = None if last else rest
        session.pending_block_number = number + 1
        return apdu.GetResponseWithDatablock(session.pending_invoke_id, last, number, chunk).encode()

    def _get_next(self, session: Session, req: apdu.GetRequestNext) -> bytes:
        if session.pending_blocks is None:
            return apdu.GetResponseWithDatablock(req.invoke_id, True, req.block_number,
                                                 DataAccessResult.NO_LONG_GET_IN_PROGRESS).encode()
        if req.block_number != session.pending_block_number - 1:
            session.pending_blocks = None
            return apdu.GetResponseWithDatablock(req.invoke_id, True, req.block_number,
                                                 DataAccessResult.LONG_GET_ABORTED).encode()
        return self._next_block(session)

    def _set_value(self, session, desc, value, ctx) -> DataAccessResult:
        obj, rights = self._lookup(session, desc)
        if obj is None or rights is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if not session.conformance & Conformance.SET or not rights.attribute(desc.attribute).writable:
            return DataAccessResult.READ_WRITE_DENIED
        try:
            obj.set(desc.attribute, value, ctx)
        except CosemError as exc:
            return _data_result(exc.result)
        return DataAccessResult.SUCCESS

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
        return ActionResult.SUCCESS, ret


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
