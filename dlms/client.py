"""The DLMS/COSEM client side: associate, GET/SET/ACTION, object list, profile reads.

IEC 62056-5-3 from the client's seat, in two layers. :class:`ClientSession` is
sans-IO: it builds request APDUs (AARQ, GET, SET, ACTION, RLRQ), protects them
when the association is ciphered (security suite 0, any container of
:mod:`dlms.protection`), and turns response APDUs back into values or :class:`~dlms.errors.ServiceError`.
:class:`Client` is the blocking convenience for tools and tests: it drives a
session over an :class:`ApduTransport` (one APDU out, one APDU back), following
GET datablocks, ACTION pblocks and general-block-transfer (with
``ClientSettings.gbt_window`` above 0 it sends requests in GBT and takes the
meter's answer a window at a time, acknowledging each window), and sending long
SET or ACTION parameters in blocks. The transports themselves (TCP wrapper, HDLC
over TCP or a serial line with the optional IEC 62056-21 mode E opening) do
I/O, so they live in the tools layer (``tools.node.client_transports``); anything
with a blocking ``request(apdu) -> apdu`` (and ``receive() -> apdu`` for streamed
GBT windows) will do, including a server in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from bijli.dlms import apdu, axdr, gbt, protection, security
from bijli.dlms.acse import AARE, AARQ, RLRE, RLRQ, ApplicationContext, AssociationResult, Mechanism
from bijli.dlms.xdlms import Conformance, InitiateRequest, InitiateResponse
from bijli.dlms.apdu import AccessSelection, ActionResult, AttributeDescriptor, DataAccessResult, Tag
from bijli.dlms.errors import (AssociationError, AuthenticationError, DlmsError, RemoteProtocolError, ReplayError,
                               SecurityError, ServiceError)
from bijli.dlms.obis import Obis
from bijli.dlms.protection import Container, Protection
from bijli.dlms.security import SecurityControl

CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
CLOCK = Obis(0, 0, 1, 0, 0, 255)

DEFAULT_CONFORMANCE = (Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
                       | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
                       | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.MULTIPLE_REFERENCES)

Progress = Callable[[int, int], None]  # (blocks received, octets received)


@dataclass
class ClientSettings:
    """What a client needs to associate: SAP, mechanism and secrets."""

    client_sap: int = 16
    server_sap: int = 1
    mechanism: Mechanism = Mechanism.LOWEST
    password: bytes | None = None  # LLS
    ciphered: bool = False
    system_title: bytes = b"BJLCLT01"
    encryption_key: bytes = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    authentication_key: bytes = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    dedicated_key: bytes | None = None  # ded-ciphering when set
    invocation_counter: int = 0  # the next IC to use
    control: int = SecurityControl.AUTHENTICATED_ENCRYPTED
    max_pdu: int = 0xFFFF
    conformance: Conformance = DEFAULT_CONFORMANCE
    challenge: bytes | None = None  # CtoS; random when None
    general_ciphering: bool = False  # general-glo/ded (0xDB/0xDC) instead of the service-specific containers
    gbt_window: int = 0  # above 0: requests go in general-block-transfer, answers stream this many blocks a window
    container: Container = Container.SERVICE_SPECIFIC  # or GENERAL for general-ciphering (0xDD)
    master_key: bytes = security.DEFAULT_MASTER_KEY  # the KEK, to wrap a dedicated key in general-ciphering

    def __post_init__(self) -> None:
        if self.general_ciphering and self.container is Container.SERVICE_SPECIFIC:
            self.container = Container.GENERAL_GLO_DED

    @classmethod
    def for_association(cls, sap: int, **kw) -> "ClientSettings":
        """The usual settings of the three associations: 16 public, 32 LLS, 48 HLS-GMAC ciphered."""
        if sap == 32:
            kw.setdefault("mechanism", Mechanism.LLS)
            kw.setdefault("password", b"12345678")
        elif sap == 48:
            kw.setdefault("mechanism", Mechanism.HLS_GMAC)
            kw.setdefault("ciphered", True)
        return cls(client_sap=sap, **kw)


@dataclass(frozen=True)
class ObjectListEntry:
    class_id: int
    version: int
    logical_name: Obis
    attribute_access: tuple[int, ...] = ()
    method_access: tuple[int, ...] = ()


@dataclass
class ClientSession:
    """The sans-IO client: APDU bytes out, APDU bytes in."""

    settings: ClientSettings
    negotiated_conformance: Conformance = Conformance(0)
    server_max_pdu: int = 0xFFFF
    server_system_title: bytes | None = None
    associated: bool = False
    hls_pending: bool = False
    _stoc: bytes | None = None
    _ctos: bytes = b""
    _invoke_id: int = 0
    server_ic: int = -1  # highest IC seen from the server

    # --- invoke ids --------------------------------------------------------------------
    def next_invoke_id(self) -> int:
        self._invoke_id = (self._invoke_id + 1) & 0x0F
        return 0xC0 | self._invoke_id  # high priority, confirmed service

    # --- ciphering ---------------------------------------------------------------------
    def _next_ic(self) -> int:
        ic = self.settings.invocation_counter
        self.settings.invocation_counter = ic + 1
        return ic

    def _protection(self, initiate: bool) -> Protection:
        s = self.settings
        dedicated = s.dedicated_key is not None and not initiate
        if initiate:
            # the xDLMS initiate always goes glo-ciphered under the global key
            return Protection(Container.SERVICE_SPECIFIC, False, s.control)
        if s.container is Container.GENERAL:
            key_info = None
            if s.dedicated_key is not None:
                # the dedicated key has no key-id in general-ciphering: name it wrapped under the master key
                key_info = apdu.KeyInfo(apdu.KeyInfoKind.WRAPPED_KEY, protection.KEK_ID_MASTER, b"",
                                        security.wrap_key(s.master_key, s.dedicated_key))
            return Protection(Container.GENERAL, False, s.control, self._transaction_id(), key_info)
        return Protection(s.container, dedicated, s.control)

    def _transaction_id(self) -> bytes:
        return self.settings.invocation_counter.to_bytes(8, "big")

    def protect(self, plain: bytes, *, initiate: bool = False) -> bytes:
        if not self.settings.ciphered:
            return plain
        s = self.settings
        how = self._protection(initiate)
        key = s.dedicated_key if how.dedicated or (how.key_info is not None) else s.encryption_key
        return protection.seal(plain, how, system_title=s.system_title, invocation_counter=self._next_ic(), key=key,
                               authentication_key=s.authentication_key, recipient=self.server_system_title)

    def unprotect(self, data: bytes) -> bytes:
        """The plain APDU inside a ciphered response (a plain one passes through)."""
        if not data:
            raise DlmsError("empty response")
        tag = data[0]
        if not protection.is_protected(tag):
            if self.settings.ciphered and self.associated and tag not in (Tag.EXCEPTION_RESPONSE,
                                                                             Tag.GENERAL_BLOCK_TRANSFER):
                raise SecurityError(f"unprotected response 0x{tag:02x} in a ciphered association")
            return data
        sealed = protection.read(data)
        title = sealed.originator or self.server_system_title
        if title is None:
            raise SecurityError("ciphered response but no server system title")
        if sealed.recipient and sealed.recipient != self.settings.system_title:
            raise SecurityError("general-ciphering response addressed to another system")
        s = self.settings
        key = protection.key_for(sealed.protection, encryption_key=s.encryption_key, dedicated_key=s.dedicated_key,
                                 master_key=s.master_key)
        if sealed.invocation_counter <= self.server_ic:
            raise ReplayError(f"server invocation counter {sealed.invocation_counter} replayed (last seen "
                              f"{self.server_ic})")
        plain = protection.open_content(sealed, title, key, s.authentication_key)
        self.server_ic = sealed.invocation_counter
        return plain

    # --- ACSE ----------------------------------------------------------------------------
    def aarq(self, random: Callable[[int], bytes] | None = None) -> bytes:
        s = self.settings
        initiate = InitiateRequest(s.conformance, s.max_pdu, dedicated_key=s.dedicated_key if s.ciphered else None)
        user_info = self.protect(initiate.encode(), initiate=True)
        auth_value = None
        if s.mechanism == Mechanism.LLS:
            auth_value = s.password or b""
        elif s.mechanism == Mechanism.HLS_GMAC:
            import os
            self._ctos = s.challenge or (random or os.urandom)(16)
            auth_value = self._ctos
        needs_title = s.ciphered or s.mechanism == Mechanism.HLS_GMAC
        context = ApplicationContext.LOGICAL_NAME_CIPHERED if s.ciphered else ApplicationContext.LOGICAL_NAME
        return AARQ(context, s.mechanism if s.mechanism != Mechanism.LOWEST else None,
                    calling_ap_title=s.system_title if needs_title else None,
                    calling_authentication_value=auth_value, user_information=user_info).encode()

    def parse_aare(self, data: bytes) -> None:
        aare = AARE.decode(data)
        if aare.result != AssociationResult.ACCEPTED:
            diag = aare.diagnostic
            if diag == 13:
                raise AuthenticationError(f"association refused: authentication failure (diagnostic {diag})")
            raise AssociationError(f"association refused: result {aare.result.name}, diagnostic {diag}")
        self.server_system_title = aare.responding_ap_title
        ui = aare.user_information or b""
        if ui[:1] == bytes((Tag.GLO_INITIATE_RESPONSE,)):
            if self.server_system_title is None:
                raise SecurityError("glo-initiate-response without the server system title")
            ui = self.unprotect(ui)
        response = InitiateResponse.decode(ui)
        self.negotiated_conformance = response.negotiated_conformance
        self.server_max_pdu = response.server_max_receive_pdu_size or 0xFFFF
        if self.settings.mechanism == Mechanism.HLS_GMAC:
            if aare.responding_authentication_value is None:
                raise AuthenticationError("HLS-GMAC association without a server challenge")
            self._stoc = aare.responding_authentication_value
            self.hls_pending = True
        else:
            self.associated = True

    def hls_request(self) -> bytes:
        """reply_to_HLS_authentication carrying f(StoC)."""
        s = self.settings
        assert self._stoc is not None
        f_stoc = security.hls_gmac(s.system_title, self._next_ic(), s.encryption_key, s.authentication_key, self._stoc)
        req = apdu.ActionRequestNormal(self.next_invoke_id(), AttributeDescriptor(15, CURRENT_ASSOCIATION, 1),
                                       axdr.OctetString(f_stoc))
        self.associated = True  # so the response is deciphered as ciphered-association traffic
        return self.protect(req.encode())

    def parse_hls_response(self, data: bytes) -> None:
        resp = apdu.decode(self.unprotect(data))
        if not isinstance(resp, apdu.ActionResponseNormal) or resp.result != ActionResult.SUCCESS:
            self.associated = False
            raise AuthenticationError("the meter refused our HLS-GMAC reply")
        ret = resp.return_parameters
        if not isinstance(ret, axdr.OctetString) or self.server_system_title is None:
            self.associated = False
            raise AuthenticationError("no f(CtoS) from the meter")
        s = self.settings
        try:
            security.verify_hls_gmac(ret.value, self.server_system_title, s.encryption_key, s.authentication_key,
                                     self._ctos)
        except SecurityError as exc:
            self.associated = False
            raise AuthenticationError(f"the meter failed HLS-GMAC: {exc}") from None
        self.hls_pending = False

    def rlrq(self) -> bytes:
        """The release request; in a ciphered association it carries a glo-ciphered
        InitiateRequest, so the meter's answer proves who released (Green Book 9.4.3)."""
        s = self.settings
        if not s.ciphered or self.server_system_title is None:
            return RLRQ().encode()
        initiate = InitiateRequest(s.conformance, s.max_pdu)
        return RLRQ(user_information=self.protect(initiate.encode(), initiate=True)).encode()

    def parse_rlre(self, data: bytes) -> None:
        """Take the release response; the association is gone either way, but a ciphered
        one must come back with a verifiable InitiateResponse."""
        self.associated = False
        rlre = RLRE.decode(data)
        if self.settings.ciphered and self.server_system_title is not None:
            if not rlre.user_information:
                raise SecurityError("release response without the ciphered initiate response")
            if rlre.user_information[0] != Tag.GLO_INITIATE_RESPONSE:
                raise SecurityError("release response user-information is not a glo-initiate-response")
            InitiateResponse.decode(self.unprotect(rlre.user_information))


class ApduTransport(Protocol):
    """One APDU out, the next APDU back (blocking); the link layer is its business.
    ``receive`` waits for a further APDU without sending (a streamed GBT window)."""

    def request(self, data: bytes) -> bytes: ...

    def receive(self) -> bytes: ...

    def close(self) -> None: ...


def _raise_exception(resp) -> None:
    if isinstance(resp, apdu.ExceptionResponse):
        raise ServiceError(f"exception-response: {resp.state_error.name}, {resp.service_error.name}",
                           int(resp.service_error))
    if isinstance(resp, apdu.ConfirmedServiceError):
        raise ServiceError(f"confirmed-service-error {resp.service}/{resp.error_class}/{resp.error_value}")


class Client:
    """A blocking client over one transport (``tools.node.client_transports.open_client_transport``)."""

    def __init__(self, transport: ApduTransport, settings: ClientSettings | None = None):
        self.transport = transport
        self.session = ClientSession(settings or ClientSettings())
        self._gbt_next_number = 1  # the number our next GBT acknowledgement carries
        self._classes: dict[Obis, int] | None = None

    # --- association ----------------------------------------------------------------------
    def associate(self) -> None:
        s = self.session
        s.parse_aare(self.transport.request(s.aarq()))
        if s.hls_pending:
            s.parse_hls_response(self.transport.request(s.hls_request()))

    def release(self) -> None:
        try:
            if self.session.associated:
                self.session.parse_rlre(self.transport.request(self.session.rlrq()))
        finally:
            self.session.associated = False

    def close(self) -> None:
        try:
            self.release()
        except (DlmsError, OSError, TimeoutError):
            pass
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- exchange -------------------------------------------------------------------------
    def _exchange(self, request: bytes):
        wire = self.session.protect(request)
        if self._use_gbt():
            response = self._gbt_send(wire)
        else:
            response = self.transport.request(wire)
        if response[:1] == bytes((Tag.GENERAL_BLOCK_TRANSFER,)):
            response = self._gbt_collect(response)
        plain = self.session.unprotect(response)
        resp = apdu.decode(plain)
        _raise_exception(resp)
        return resp

    def _use_gbt(self) -> bool:
        s = self.session
        return bool(s.settings.gbt_window) and bool(s.negotiated_conformance & Conformance.GENERAL_BLOCK_TRANSFER) \
            and (s.associated or s.hls_pending)

    def _gbt_send(self, wire: bytes) -> bytes:
        """Send one APDU in general-block-transfer blocks (dlms.gbt), advertising our
        window; the first block of the answer comes back."""
        window = self.session.settings.gbt_window
        sender = gbt.GbtSender(wire, max(16, self._room() - 10), peer_window=1, own_window=window)
        while True:
            # requests are short: each block waits for its acknowledgement (window 1 our way)
            (block,) = sender.next_window()
            answer = self.transport.request(block.encode())
            self._gbt_next_number = block.block_number + 1
            if block.last_block:
                return answer
            ack = apdu.decode(answer)
            if not isinstance(ack, apdu.GeneralBlockTransfer):
                return answer  # refused before the request was whole
            sender.receive_ack(ack)
            sender.peer_window = 1

    def _gbt_collect(self, first: bytes) -> bytes:
        """Reassemble an answer the meter sent in general-block-transfer: take each
        streamed block as it comes and acknowledge at the end of every window."""
        window = self.session.settings.gbt_window or 1
        receiver = gbt.GbtReceiver(window=window, max_size=1 << 24, block_number=self._gbt_next_number)
        block = apdu.decode(first)
        while True:
            if not isinstance(block, apdu.GeneralBlockTransfer):
                raise ServiceError("general-block-transfer interrupted")
            if receiver.received == 0 and block.block_number > 1:
                raise ServiceError(f"general-block-transfer answer starts at block {block.block_number}")
            ack_due = receiver.receive(block)
            if receiver.complete:
                return receiver.data
            if ack_due:
                block = apdu.decode(self.transport.request(receiver.ack().encode()))
            else:
                block = apdu.decode(self.transport.receive())

    # --- GET -----------------------------------------------------------------------------
    def get(self, class_id: int, obis: "Obis | str", attribute: int, selection: AccessSelection | None = None,
            progress: Progress | None = None) -> axdr.Data:
        desc = AttributeDescriptor(class_id, Obis.parse(obis), attribute)
        iid = self.session.next_invoke_id()
        resp = self._exchange(apdu.GetRequestNormal(iid, desc, selection).encode())
        if isinstance(resp, apdu.GetResponseNormal):
            return _value_or_raise(resp.result, desc)
        if isinstance(resp, apdu.GetResponseWithDatablock):
            raw = self._follow_get_blocks(iid, resp, progress)
            return axdr.decode(raw)
        raise ServiceError(f"unexpected answer to GET: {type(resp).__name__}")

    def _follow_get_blocks(self, iid: int, resp, progress: Progress | None) -> bytes:
        data = bytearray()
        blocks = 0
        while True:
            if not isinstance(resp, apdu.GetResponseWithDatablock):
                raise ServiceError(f"unexpected answer in a long GET: {type(resp).__name__}")
            if isinstance(resp.raw_data, DataAccessResult):
                raise ServiceError(f"long GET failed: {resp.raw_data.name}", int(resp.raw_data))
            # blocks are numbered from 1, one up each time (IEC 62056-5-3 9.4.6.4): a block
            # repeated or skipped would put the wrong octets into the value
            _check_block_number("long GET", resp.block_number, blocks + 1)
            data += resp.raw_data
            blocks += 1
            if progress:
                progress(blocks, len(data))
            if resp.last_block:
                return bytes(data)
            resp = self._exchange(apdu.GetRequestNext(iid, resp.block_number).encode())

    def get_list(self, items: list[tuple[int, "Obis | str", int]]) -> list:
        """GET with list: a value or a DataAccessResult per item."""
        iid = self.session.next_invoke_id()
        attrs = tuple((AttributeDescriptor(c, Obis.parse(o), a), None) for c, o, a in items)
        resp = self._exchange(apdu.GetRequestWithList(iid, attrs).encode())
        if isinstance(resp, apdu.GetResponseWithDatablock):
            raw = self._follow_get_blocks(iid, resp, None)
            resp = apdu.decode(bytes((0xC4, 3, iid)) + raw)
        if not isinstance(resp, apdu.GetResponseWithList):
            raise ServiceError(f"unexpected answer to GET with list: {type(resp).__name__}")
        return list(resp.results)

    # --- SET -----------------------------------------------------------------------------
    def set(self, class_id: int, obis: "Obis | str", attribute: int, value: axdr.Data) -> None:
        desc = AttributeDescriptor(class_id, Obis.parse(obis), attribute)
        iid = self.session.next_invoke_id()
        encoded = axdr.encode(value)
        room = self._room() - 24
        if len(encoded) + 16 <= self._room() or not self.session.negotiated_conformance \
                & Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE:
            resp = self._exchange(apdu.SetRequestNormal(iid, desc, value).encode())
            if not isinstance(resp, apdu.SetResponseNormal):
                raise ServiceError(f"unexpected answer to SET: {type(resp).__name__}")
            _check_result(resp.result, desc)
            return
        chunks = [encoded[i:i + room] for i in range(0, len(encoded), room)]
        for n, chunk in enumerate(chunks, 1):
            block = apdu.DataBlockSA(n == len(chunks), n, chunk)
            req = (apdu.SetRequestWithFirstDatablock(iid, desc, None, block) if n == 1
                   else apdu.SetRequestWithDatablock(iid, block))
            resp = self._exchange(req.encode())
            if isinstance(resp, apdu.SetResponseLastDatablock):
                _check_result(resp.result, desc)
                if n != len(chunks):
                    raise ServiceError("the meter ended the long SET early")
                return
            if not isinstance(resp, apdu.SetResponseDatablock) or resp.block_number != n:
                raise ServiceError(f"unexpected answer in a long SET: {resp}")
        raise ServiceError("long SET without a final answer")

    def set_list(self, items: list[tuple[int, "Obis | str", int, axdr.Data]]) -> list[DataAccessResult]:
        iid = self.session.next_invoke_id()
        attrs = tuple((AttributeDescriptor(c, Obis.parse(o), a), None) for c, o, a, _ in items)
        resp = self._exchange(apdu.SetRequestWithList(iid, attrs, tuple(v for *_, v in items)).encode())
        if not isinstance(resp, apdu.SetResponseWithList):
            raise ServiceError(f"unexpected answer to SET with list: {type(resp).__name__}")
        return list(resp.results)

    # --- ACTION --------------------------------------------------------------------------
    def action(self, class_id: int, obis: "Obis | str", method: int, parameters: axdr.Data | None = None,
               progress: Progress | None = None) -> axdr.Data | None:
        desc = AttributeDescriptor(class_id, Obis.parse(obis), method)
        iid = self.session.next_invoke_id()
        encoded = b"" if parameters is None else axdr.encode(parameters)
        room = self._room() - 24
        if len(encoded) + 16 <= self._room() or not self.session.negotiated_conformance \
                & Conformance.BLOCK_TRANSFER_WITH_ACTION:
            resp = self._exchange(apdu.ActionRequestNormal(iid, desc, parameters).encode())
        else:
            chunks = [encoded[i:i + room] for i in range(0, len(encoded), room)]
            for n, chunk in enumerate(chunks, 1):
                block = apdu.DataBlockSA(n == len(chunks), n, chunk)
                req = (apdu.ActionRequestWithFirstPblock(iid, desc, block) if n == 1
                       else apdu.ActionRequestWithPblock(iid, block))
                resp = self._exchange(req.encode())
                if n < len(chunks):
                    if isinstance(resp, apdu.ActionResponseNextPblock) and resp.block_number == n:
                        continue
                    if isinstance(resp, apdu.ActionResponseNormal):
                        _check_action(resp.result, desc)
                    raise ServiceError(f"unexpected answer in a long ACTION: {resp}")
        if isinstance(resp, apdu.ActionResponseWithPblock):
            data = bytearray()
            blocks = 0
            while True:
                _check_block_number("long ACTION response", resp.block.block_number, blocks + 1)
                data += resp.block.raw_data
                blocks += 1
                if progress:
                    progress(blocks, len(data))
                if resp.block.last_block:
                    return axdr.decode(bytes(data))
                resp = self._exchange(apdu.ActionRequestNextPblock(iid, resp.block.block_number).encode())
                if isinstance(resp, apdu.ActionResponseNormal):
                    _check_action(resp.result, desc)
                if not isinstance(resp, apdu.ActionResponseWithPblock):
                    raise ServiceError(f"unexpected answer in a long ACTION response: {resp}")
        if not isinstance(resp, apdu.ActionResponseNormal):
            raise ServiceError(f"unexpected answer to ACTION: {type(resp).__name__}")
        _check_action(resp.result, desc)
        ret = resp.return_parameters
        if isinstance(ret, DataAccessResult):
            raise ServiceError(f"ACTION {desc.instance}/{method} return: {ret.name}", int(ret))
        return ret

    def _room(self) -> int:
        room = min(self.session.server_max_pdu, 0xFFFF)
        if self.session.settings.ciphered:
            room -= protection.overhead(self.session.settings.container)
        return room

    # --- conveniences --------------------------------------------------------------------
    def object_list(self, progress: Progress | None = None) -> list[ObjectListEntry]:
        value = self.get(15, CURRENT_ASSOCIATION, 2, progress=progress)
        entries = []
        for item in _items(value):
            fields = _items(item)
            if len(fields) < 3:
                continue
            access_attr: tuple[int, ...] = ()
            access_meth: tuple[int, ...] = ()
            if len(fields) > 3:
                rights = _items(fields[3])
                if rights:
                    access_attr = tuple(int(_items(a)[1].value) for a in _items(rights[0]))
                if len(rights) > 1:
                    access_meth = tuple(int(_items(m)[1].value) for m in _items(rights[1]))
            entries.append(ObjectListEntry(int(fields[0].value), int(fields[1].value), Obis.parse(fields[2].value),
                                           access_attr, access_meth))
        self._classes = {e.logical_name: e.class_id for e in entries}
        return entries

    def class_of(self, obis: "Obis | str") -> int:
        """The class id of an object, from the object list (read once)."""
        if self._classes is None:
            self.object_list()
        assert self._classes is not None
        try:
            return self._classes[Obis.parse(obis)]
        except KeyError:
            raise ServiceError(f"{Obis.parse(obis)} is not in this association's object list",
                               int(DataAccessResult.OBJECT_UNDEFINED)) from None

    def read_clock(self) -> datetime:
        value = self.get(8, CLOCK, 2)
        if not isinstance(value, axdr.OctetString) or len(value.value) != 12:
            raise ServiceError("the clock is not a 12-octet date-time")
        return axdr.CosemDateTime.decode(value.value).to_datetime()

    def write_clock(self, when: datetime) -> None:
        self.set(8, CLOCK, 2, axdr.OctetString(axdr.CosemDateTime.from_datetime(when, clock_status=None).encode()))

    def capture_objects(self, obis: "Obis | str") -> list[tuple[int, Obis, int, int]]:
        value = self.get(7, obis, 3)
        out = []
        for item in _items(value):
            f = _items(item)
            out.append((int(f[0].value), Obis.parse(f[1].value), int(f[2].value), int(f[3].value)))
        return out

    def profile_by_range(self, obis: "Obis | str", start: datetime, end: datetime, *,
                         progress: Progress | None = None) -> tuple[list, list[list]]:
        """Capture objects and the rows whose restricting (clock) value is in [start, end]."""
        columns = self.capture_objects(obis)
        restricting = next((c for c in columns if c[0] == 8 and c[2] == 2), None)
        if restricting is None:
            restricting = columns[0] if columns else (8, CLOCK, 2, 0)
        cls, ln, attr, idx = restricting

        def dt(t: datetime) -> axdr.OctetString:
            return axdr.OctetString(axdr.CosemDateTime.from_datetime(t, clock_status=None).encode())

        selection = AccessSelection(1, axdr.Structure((
            axdr.Structure((axdr.LongUnsigned(cls), axdr.OctetString(bytes(ln)), axdr.Integer(attr),
                            axdr.LongUnsigned(idx))),
            dt(start), dt(end), axdr.Array(()),
        )))
        value = self.get(7, obis, 2, selection, progress=progress)
        return columns, [list(_items(row)) for row in _items(value)]

    def profile_by_entry(self, obis: "Obis | str", first: int, last: int = 0, *,
                         progress: Progress | None = None) -> tuple[list, list[list]]:
        """Rows ``first``..``last`` (1-based; last 0 = to the newest)."""
        columns = self.capture_objects(obis)
        selection = AccessSelection(2, axdr.Structure((
            axdr.DoubleLongUnsigned(first), axdr.DoubleLongUnsigned(last), axdr.LongUnsigned(1), axdr.LongUnsigned(0),
        )))
        value = self.get(7, obis, 2, selection, progress=progress)
        return columns, [list(_items(row)) for row in _items(value)]


def _check_block_number(what: str, number: int, expected: int) -> None:
    if number != expected:
        raise RemoteProtocolError(f"{what}: the meter sent block {number} where block {expected} was due")


def _items(value) -> tuple:
    if isinstance(value, (axdr.Array, axdr.Structure)):
        return tuple(value.value)
    raise ServiceError(f"expected an array or structure, got {type(value).__name__}")


def _value_or_raise(result, desc: AttributeDescriptor) -> axdr.Data:
    if isinstance(result, DataAccessResult):
        raise ServiceError(f"GET {desc.class_id}/{desc.instance}/{desc.attribute}: {result.name}", int(result))
    return result


def _check_result(result: DataAccessResult, desc: AttributeDescriptor) -> None:
    if result != DataAccessResult.SUCCESS:
        raise ServiceError(f"SET {desc.class_id}/{desc.instance}/{desc.attribute}: {result.name}", int(result))


def _check_action(result: ActionResult, desc: AttributeDescriptor) -> None:
    if result != ActionResult.SUCCESS:
        raise ServiceError(f"ACTION {desc.class_id}/{desc.instance}/{desc.attribute}: {result.name}", int(result))
