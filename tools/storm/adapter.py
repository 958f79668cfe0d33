"""The one seam between ``bijli storm`` and :mod:`bijli.dlms`: every call into the DLMS
stack the storm makes is in this module, so a rename there is a fix here only.

It wraps the sans-IO pieces (IEC 62056-5-3 client session: AARQ/AARE, the HLS-GMAC
pass 3/4 exchange of clause 9.2.7.4, suite 0 ciphering, RLRQ; the xDLMS GET and
ACTION encoders; the IEC 62056-47 wrapper framing) behind a small :class:`ClientAssociation`
that turns the storm's questions into request APDUs and the meter's APDUs into Python
values, and :class:`Framer` for the wrapper byte stream. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from bijli.dlms import apdu, axdr
from bijli.dlms.apdu import ActionResult, AttributeDescriptor, DataAccessResult
from bijli.dlms.client import ClientSession, ClientSettings
from bijli.dlms.errors import DlmsError
from bijli.dlms.link import wrapper
from bijli.dlms.obis import Obis

from bijli.tools.storm import DeliveryError

SAP_PUBLIC = 16
SAP_READER = 32
SAP_UTILITY = 48
SERVER_SAP = 1  # the management logical device

# the objects a storm touches (IEC 62056-6-2, IS 15959-2)
UTILITY_INVOCATION_COUNTER = (1, "0.0.43.1.3.255", 2)
TOKEN_GATEWAY = "0.0.19.40.0.255"  # class 115
GATEWAY_TOKEN = (115, TOKEN_GATEWAY, 2)
GATEWAY_DESCRIPTIONS = (115, TOKEN_GATEWAY, 4)
GATEWAY_STATUS = (115, TOKEN_GATEWAY, 6)
TOTAL_RECHARGED = (1, "0.0.94.96.23.255", 2)  # total amount at last recharge: every recharge ever, paisa
CURRENT_BALANCE = (1, "0.0.94.96.24.255", 2)  # paisa, signed
RELAY_OUTPUT = (70, "0.0.96.3.10.255", 2)  # disconnect control output_state: True = supply on
RELAY_CONTROL = (70, "0.0.96.3.10.255", 3)  # control_state 0 disconnected, 1 connected, 2 ready
CLOCK = (8, "0.0.1.0.0.255", 2)


class Framer:
    """The IEC 62056-47 wrapper on one TCP connection, client side."""

    def __init__(self) -> None:
        self._conn = wrapper.WrapperConnection(0)

    @staticmethod
    def frame(sap: int, data: bytes) -> bytes:
        return wrapper.encode_frame(sap, SERVER_SAP, data)

    def feed(self, data: bytes) -> None:
        self._conn.receive_data(data)

    def next_apdu(self) -> tuple[int, bytes] | None:
        """(destination wPort, APDU) of the next whole frame, or None when more bytes are needed."""
        try:
            event = self._conn.next_event()
        except DlmsError as exc:
            raise DeliveryError(f"wrapper: {exc}") from None
        if event is wrapper.NEED_DATA:
            return None
        return event.destination_wport, event.apdu


@dataclass(frozen=True)
class Keys:
    """An association's secrets, from the manifest's ``dlms`` table."""

    encryption_key: bytes
    authentication_key: bytes
    reader_password: bytes

    @classmethod
    def from_manifest(cls, dlms: dict) -> "Keys":
        """The row's keys; rows with the same keys share one object (a fleet's meters often
        do: 250,000 rows are then one ``Keys``, not 250,000)."""
        text = (dlms["encryption_key"], dlms["authentication_key"], str(dlms.get("reader_password", "")))
        keys = _KEYS.get(text)
        if keys is None:
            keys = cls(bytes.fromhex(text[0]), bytes.fromhex(text[1]), text[2].encode("latin-1"))
            if len(_KEYS) >= 4096:  # every meter its own keys: keep the table small
                _KEYS.clear()
            _KEYS[text] = keys
        return keys


_KEYS: dict[tuple[str, str, str], Keys] = {}


class ClientAssociation:
    """One association, sans-IO: ask for request APDUs, hand back the meter's answers."""

    def __init__(self, sap: int, keys: Keys, *, invocation_counter: int = 0, system_title: bytes | None = None):
        kw = {"encryption_key": keys.encryption_key, "authentication_key": keys.authentication_key,
              "password": keys.reader_password, "invocation_counter": invocation_counter}
        if system_title is not None:
            kw["system_title"] = system_title
        self.sap = sap
        self._session = ClientSession(ClientSettings.for_association(sap, **kw))

    # --- ACSE --------------------------------------------------------------------------
    def aarq(self) -> bytes:
        return self._session.aarq()

    def on_aare(self, data: bytes) -> bytes | None:
        """The AARE; the HLS pass-3 request to send next, or None when associated already."""
        try:
            self._session.parse_aare(data)
            if self._session.hls_pending:
                return self._session.hls_request()
        except DlmsError as exc:  # AuthenticationError among them: a stale counter, wrong keys
            raise DeliveryError(f"association {self.sap} refused: {exc}") from None
        return None

    def on_hls(self, data: bytes) -> None:
        try:
            self._session.parse_hls_response(data)
        except DlmsError as exc:
            raise DeliveryError(f"HLS-GMAC in association {self.sap} failed: {exc}") from None

    def rlrq(self) -> bytes:
        return self._session.rlrq()

    def on_rlre(self, data: bytes) -> None:
        try:
            self._session.parse_rlre(data)
        except DlmsError as exc:
            raise DeliveryError(f"release of association {self.sap}: {exc}") from None

    @property
    def invocation_counter(self) -> int:
        """The next invocation counter this client would use."""
        return self._session.settings.invocation_counter

    # --- xDLMS -------------------------------------------------------------------------
    def get_list(self, items: list[tuple[int, str, int]]) -> bytes:
        """GET with list (or a normal GET for one item), protected when the association is ciphered."""
        iid = self._session.next_invoke_id()
        descs = _descriptors(items)
        if len(descs) == 1:
            plain = apdu.GetRequestNormal(iid, descs[0][0], None).encode()
        else:
            plain = apdu.GetRequestWithList(iid, descs).encode()
        return self._session.protect(plain)

    def parse_get(self, data: bytes, count: int) -> list:
        """Python values per item; an item the meter refused is a :class:`DataAccessResult`."""
        resp = self._decode(data)
        if isinstance(resp, apdu.GetResponseNormal) and count == 1:
            results = [resp.result]
        elif isinstance(resp, apdu.GetResponseWithList) and len(resp.results) == count:
            results = list(resp.results)
        else:
            raise DeliveryError(f"unexpected answer to GET: {type(resp).__name__}")
        return [r if isinstance(r, DataAccessResult) else r.to_python() for r in results]

    def enter_token(self, digits: str) -> bytes:
        """ACTION token_gateway.enter (class 115 method 1) with the 20 digits as an octet-string."""
        iid = self._session.next_invoke_id()
        desc = AttributeDescriptor(115, Obis.parse(TOKEN_GATEWAY), 1)
        return self._session.protect(apdu.ActionRequestNormal(iid, desc, axdr.OctetString(digits.encode("ascii"))).encode())

    def parse_action(self, data: bytes) -> object:
        """The action's return parameters (Python), or a :class:`DeliveryError` when it failed."""
        resp = self._decode(data)
        if not isinstance(resp, apdu.ActionResponseNormal):
            raise DeliveryError(f"unexpected answer to ACTION: {type(resp).__name__}")
        if resp.result != ActionResult.SUCCESS:
            # temporary-failure / scope: another try may do; a refusal of the object itself will not
            retry = resp.result in (ActionResult.TEMPORARY_FAILURE, ActionResult.HARDWARE_FAULT)
            raise DeliveryError(f"token gateway enter: {resp.result.name}", retry=retry)
        ret = resp.return_parameters
        if isinstance(ret, DataAccessResult):
            raise DeliveryError(f"token gateway enter returned {ret.name}")
        return None if ret is None else ret.to_python()

    def _decode(self, data: bytes):
        try:
            resp = apdu.decode(self._session.unprotect(data))
        except DlmsError as exc:
            raise DeliveryError(f"bad answer from the meter: {exc}") from None
        if isinstance(resp, apdu.ExceptionResponse):
            raise DeliveryError(f"exception-response: {resp.state_error.name}, {resp.service_error.name}")
        if isinstance(resp, apdu.ConfirmedServiceError):
            raise DeliveryError(f"confirmed-service-error {resp.service}/{resp.error_class}/{resp.error_value}")
        return resp


_DESCRIPTORS: dict[tuple, tuple] = {}


def _descriptors(items: list[tuple[int, str, int]]) -> tuple:
    """((descriptor, no selection), ...) for the storm's few fixed lists, built once each:
    a storm asks the same four questions of every meter."""
    key = tuple(items)
    descs = _DESCRIPTORS.get(key)
    if descs is None:
        if len(_DESCRIPTORS) > 32:
            _DESCRIPTORS.clear()
        descs = _DESCRIPTORS[key] = tuple((AttributeDescriptor(c, Obis.parse(o), a), None) for c, o, a in items)
    return descs


def is_refused(value: object) -> bool:
    """Whether a GET item came back as a data-access-result instead of a value."""
    return isinstance(value, DataAccessResult)
