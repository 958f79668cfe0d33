"""ACSE APDUs (AARQ, AARE, RLRQ, RLRE); the xDLMS InitiateRequest/Response they carry are :mod:`dlms.xdlms`.

IEC 62056-5-3 clause 9.4 (COSEM application layer, ACSE services) and ISO 8650:
an application association opens with an AARQ naming the application context
(LN or SN referencing, with or without ciphering), the authentication mechanism
(lowest, LLS, HLS 2..7), the caller's AP title (the client system title, needed
for ciphering) and an authentication value, and carries in its user-information
the xDLMS InitiateRequest: proposed conformance block, DLMS version 6 and the
client's maximum receive PDU size. The server answers an AARE with the result,
a diagnostic, its own AP title and challenge (HLS) and the InitiateResponse (or
a confirmed-service-error when the xDLMS part is refused).

BER outside, A-XDR inside; both parsed strictly and bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from bijli.dlms import ber
from bijli.dlms.errors import BerError
# the conformance block is xDLMS (dlms.xdlms); ACSE users import it from here too
from bijli.dlms.xdlms import Conformance  # noqa: F401

# --- object identifiers --------------------------------------------------------------

_APP_CONTEXT_PREFIX = bytes.fromhex("608574050801")
_MECHANISM_PREFIX = bytes.fromhex("608574050802")


class ApplicationContext(IntEnum):
    """Application context names: {joint-iso-ccitt(2) country(16) country-name(756)
    identified-organization(5) DLMS-UA(8) application-context(1) x}."""

    LOGICAL_NAME = 1
    SHORT_NAME = 2
    LOGICAL_NAME_CIPHERED = 3
    SHORT_NAME_CIPHERED = 4

    @property
    def ciphered(self) -> bool:
        return self in (ApplicationContext.LOGICAL_NAME_CIPHERED, ApplicationContext.SHORT_NAME_CIPHERED)

    def oid(self) -> bytes:
        return _APP_CONTEXT_PREFIX + bytes((self,))


class Mechanism(IntEnum):
    """Authentication mechanism names (... DLMS-UA(8) authentication-mechanism-name(2) x)."""

    LOWEST = 0
    LLS = 1
    HLS = 2  # manufacturer specific
    HLS_MD5 = 3
    HLS_SHA1 = 4
    HLS_GMAC = 5
    HLS_SHA256 = 6
    HLS_ECDSA = 7

    def oid(self) -> bytes:
        return _MECHANISM_PREFIX + bytes((self,))


def _parse_oid(value: bytes, prefix: bytes, kind: type, what: str):
    if len(value) != len(prefix) + 1 or not value.startswith(prefix):
        raise BerError(f"not a DLMS {what} name: {value.hex()}")
    try:
        return kind(value[-1])
    except ValueError:
        raise BerError(f"unknown {what} {value[-1]}") from None


# --- AARQ / AARE ---------------------------------------------------------------------

AARQ_TAG = 0x60
AARE_TAG = 0x61
RLRQ_TAG = 0x62
RLRE_TAG = 0x63


class AssociationResult(IntEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class AcseServiceUser(IntEnum):
    """Diagnostics from the acse-service-user (the server's association logic)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AP_TITLE_NOT_RECOGNIZED = 3
    CALLING_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 4
    CALLING_AE_QUALIFIER_NOT_RECOGNIZED = 5
    CALLING_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 6
    CALLED_AP_TITLE_NOT_RECOGNIZED = 7
    CALLED_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 8
    CALLED_AE_QUALIFIER_NOT_RECOGNIZED = 9
    CALLED_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 10
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14


class AcseServiceProvider(IntEnum):
    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_ACSE_VERSION = 2


_ACSE_REQUIREMENTS_AUTH = b"\x07\x80"  # BIT STRING: 7 unused bits, bit 0 (authentication) set


def _auth_value(value: bytes) -> bytes:
    return ber.tlv(0x80, value)  # charstring [0] IMPLICIT GraphicString


def _read_auth_value(value: bytes) -> bytes:
    tlvs = ber.read_tlvs(value)
    if len(tlvs) != 1 or tlvs[0][0] not in (0x80, 0x81):
        raise BerError("authentication value must be one charstring or bitstring")
    return tlvs[0][1]


def _read_user_information(value: bytes) -> bytes:
    return ber.read_one(value, 0x04)  # association-information OCTET STRING


@dataclass(frozen=True)
class AARQ:
    application_context: ApplicationContext = ApplicationContext.LOGICAL_NAME
    mechanism: Mechanism | None = None
    calling_ap_title: bytes | None = None
    calling_ae_qualifier: bytes | None = None
    calling_authentication_value: bytes | None = None
    user_information: bytes | None = None  # xDLMS InitiateRequest (plain or glo-ciphered)
    protocol_version: bytes | None = None
    called_ap_title: bytes | None = None

    def encode(self) -> bytes:
        body = bytearray()
        if self.protocol_version is not None:
            body += ber.tlv(0x80, self.protocol_version)
        body += ber.tlv(0xA1, ber.tlv(0x06, self.application_context.oid()))
        if self.called_ap_title is not None:
            body += ber.tlv(0xA2, ber.tlv(0x04, self.called_ap_title))
        if self.calling_ap_title is not None:
            body += ber.tlv(0xA6, ber.tlv(0x04, self.calling_ap_title))
        if self.calling_ae_qualifier is not None:
            body += ber.tlv(0xA7, ber.tlv(0x04, self.calling_ae_qualifier))
        # Each field goes out when set, so decode(encode(x)) == x. The acse-requirements
        # "authentication" bit accompanies every mechanism but lowest-level.
        if self.mechanism is not None:
            if self.mechanism != Mechanism.LOWEST:
                body += ber.tlv(0x8A, _ACSE_REQUIREMENTS_AUTH)
            body += ber.tlv(0x8B, self.mechanism.oid())
        if self.calling_authentication_value is not None:
            body += ber.tlv(0xAC, _auth_value(self.calling_authentication_value))
        if self.user_information is not None:
            body += ber.tlv(0xBE, ber.tlv(0x04, self.user_information))
        return ber.tlv(AARQ_TAG, bytes(body))

    @classmethod
    def decode(cls, buf: bytes) -> "AARQ":
        fields: dict = {}
        auth_required = False
        mechanism = None
        for tag, value in ber.read_tlvs(ber.read_one(buf, AARQ_TAG)):
            if tag == 0x80:
                fields["protocol_version"] = value
            elif tag == 0xA1:
                fields["application_context"] = _parse_oid(
                    ber.read_one(value, 0x06), _APP_CONTEXT_PREFIX, ApplicationContext, "application context"
                )
            elif tag == 0xA2:
                fields["called_ap_title"] = ber.read_one(value, 0x04)
            elif tag == 0xA6:
                fields["calling_ap_title"] = ber.read_one(value, 0x04)
            elif tag == 0xA7:
                fields["calling_ae_qualifier"] = ber.read_one(value, 0x04)
            elif tag == 0x8A:
                auth_required = len(value) == 2 and bool(value[1] & 0x80)
            elif tag == 0x8B:
                mechanism = _parse_oid(value, _MECHANISM_PREFIX, Mechanism, "mechanism")
            elif tag == 0xAC:
                fields["calling_authentication_value"] = _read_auth_value(value)
            elif tag == 0xBE:
                fields["user_information"] = _read_user_information(value)
            elif tag in (0xA3, 0xA4, 0xA5, 0xA8, 0xA9, 0xBD, 0x9D):
                pass  # AE qualifiers, invocation ids, implementation info: not used by COSEM
            else:
                raise BerError(f"unexpected AARQ field tag 0x{tag:02x}")
        if "application_context" not in fields:
            raise BerError("AARQ without application-context-name")
        if mechanism is not None or auth_required:
            fields["mechanism"] = mechanism if mechanism is not None else Mechanism.LOWEST
        return cls(**fields)


@dataclass(frozen=True)
class AARE:
    result: AssociationResult
    diagnostic: int = 0
    diagnostic_source: str = "user"  # "user" (acse-service-user) or "provider"
    application_context: ApplicationContext = ApplicationContext.LOGICAL_NAME
    responding_ap_title: bytes | None = None
    mechanism: Mechanism | None = None
    responding_authentication_value: bytes | None = None
    user_information: bytes | None = None  # InitiateResponse, confirmed-service-error, or glo-ciphered

    def encode(self) -> bytes:
        body = bytearray()
        body += ber.tlv(0xA1, ber.tlv(0x06, self.application_context.oid()))
        body += ber.tlv(0xA2, ber.encode_integer(self.result))
        src_tag = 0xA1 if self.diagnostic_source == "user" else 0xA2
        body += ber.tlv(0xA3, ber.tlv(src_tag, ber.encode_integer(self.diagnostic)))
        if self.responding_ap_title is not None:
            body += ber.tlv(0xA4, ber.tlv(0x04, self.responding_ap_title))
        if self.mechanism is not None:
            if self.mechanism != Mechanism.LOWEST:
                body += ber.tlv(0x88, _ACSE_REQUIREMENTS_AUTH)
            body += ber.tlv(0x89, self.mechanism.oid())
        if self.responding_authentication_value is not None:
            body += ber.tlv(0xAA, _auth_value(self.responding_authentication_value))
        if self.user_information is not None:
            body += ber.tlv(0xBE, ber.tlv(0x04, self.user_information))
        return ber.tlv(AARE_TAG, bytes(body))

    @classmethod
    def decode(cls, buf: bytes) -> "AARE":
        fields: dict = {}
        for tag, value in ber.read_tlvs(ber.read_one(buf, AARE_TAG)):
            if tag == 0x80:
                pass  # protocol version
            elif tag == 0xA1:
                fields["application_context"] = _parse_oid(
                    ber.read_one(value, 0x06), _APP_CONTEXT_PREFIX, ApplicationContext, "application context"
                )
            elif tag == 0xA2:
                try:
                    fields["result"] = AssociationResult(ber.integer(ber.read_one(value, 0x02)))
                except ValueError:
                    raise BerError("unknown association result") from None
            elif tag == 0xA3:
                diag = ber.read_tlvs(value)
                if len(diag) != 1 or diag[0][0] not in (0xA1, 0xA2):
                    raise BerError("bad result-source-diagnostic")
                ((src, inner),) = diag
                fields["diagnostic_source"] = "user" if src == 0xA1 else "provider"
                fields["diagnostic"] = ber.integer(ber.read_one(inner, 0x02))
            elif tag == 0xA4:
                fields["responding_ap_title"] = ber.read_one(value, 0x04)
            elif tag == 0x88:
                pass  # responder-acse-requirements; implied by the mechanism name
            elif tag == 0x89:
                fields["mechanism"] = _parse_oid(value, _MECHANISM_PREFIX, Mechanism, "mechanism")
            elif tag == 0xAA:
                fields["responding_authentication_value"] = _read_auth_value(value)
            elif tag == 0xBE:
                fields["user_information"] = _read_user_information(value)
            elif tag in (0xA5, 0xA6, 0xA7, 0xBD, 0x9D):
                pass
            else:
                raise BerError(f"unexpected AARE field tag 0x{tag:02x}")
        if "result" not in fields:
            raise BerError("AARE without result")
        return cls(**fields)


class ReleaseRequestReason(IntEnum):
    NORMAL = 0
    URGENT = 1
    USER_DEFINED = 30


class ReleaseResponseReason(IntEnum):
    NORMAL = 0
    NOT_FINISHED = 1
    USER_DEFINED = 30


@dataclass(frozen=True)
class RLRQ:
    reason: int | None = ReleaseRequestReason.NORMAL
    user_information: bytes | None = None

    def encode(self) -> bytes:
        body = b"" if self.reason is None else ber.tlv(0x80, bytes((self.reason,)))
        if self.user_information is not None:
            body += ber.tlv(0xBE, ber.tlv(0x04, self.user_information))
        return ber.tlv(RLRQ_TAG, body)

    @classmethod
    def decode(cls, buf: bytes) -> "RLRQ":
        reason = None
        ui = None
        for tag, value in ber.read_tlvs(ber.read_one(buf, RLRQ_TAG)):
            if tag == 0x80 and len(value) == 1:
                reason = value[0]
            elif tag == 0xBE:
                ui = _read_user_information(value)
            else:
                raise BerError(f"unexpected RLRQ field tag 0x{tag:02x}")
        return cls(reason, ui)


@dataclass(frozen=True)
class RLRE:
    reason: int | None = ReleaseResponseReason.NORMAL
    user_information: bytes | None = None

    def encode(self) -> bytes:
        body = b"" if self.reason is None else ber.tlv(0x80, bytes((self.reason,)))
        if self.user_information is not None:
            body += ber.tlv(0xBE, ber.tlv(0x04, self.user_information))
        return ber.tlv(RLRE_TAG, body)

    @classmethod
    def decode(cls, buf: bytes) -> "RLRE":
        reason = None
        ui = None
        for tag, value in ber.read_tlvs(ber.read_one(buf, RLRE_TAG)):
            if tag == 0x80 and len(value) == 1:
                reason = value[0]
            elif tag == 0xBE:
                ui = _read_user_information(value)
            else:
                raise BerError(f"unexpected RLRE field tag 0x{tag:02x}")
        return cls(reason, ui)
