"""The xDLMS InitiateRequest and InitiateResponse (IEC 62056-5-3 clause 9.5, the
xDLMS-Initiate.request/.response of clause 9.4.6) and the conformance block they
negotiate (clause 9.4.6.1).

They travel A-XDR encoded in the user-information of an AARQ/AARE (plain, or
glo-ciphered in a ciphered context); :mod:`dlms.acse` carries them as octets and
the association engine decodes them here. A refused initiate is answered with a
confirmed-service-error (:func:`encode_initiate_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from bijli.dlms import axdr
from bijli.dlms.errors import ApduError
from bijli.dlms.reader import Reader

# --- conformance block (IEC 62056-5-3 clause 9.4.6.1) --------------------------------


class Conformance(IntFlag):
    """The 24-bit conformance block; bit n of the standard is 1 << (23 - n) here,
    because bit 0 is the first (most significant) bit on the wire."""

    GENERAL_PROTECTION = 1 << (23 - 1)
    GENERAL_BLOCK_TRANSFER = 1 << (23 - 2)
    READ = 1 << (23 - 3)
    WRITE = 1 << (23 - 4)
    UNCONFIRMED_WRITE = 1 << (23 - 5)
    DELTA_VALUE_ENCODING = 1 << (23 - 6)
    ATTRIBUTE0_SUPPORTED_WITH_SET = 1 << (23 - 8)
    PRIORITY_MGMT_SUPPORTED = 1 << (23 - 9)
    ATTRIBUTE0_SUPPORTED_WITH_GET = 1 << (23 - 10)
    BLOCK_TRANSFER_WITH_GET_OR_READ = 1 << (23 - 11)
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = 1 << (23 - 12)
    BLOCK_TRANSFER_WITH_ACTION = 1 << (23 - 13)
    MULTIPLE_REFERENCES = 1 << (23 - 14)
    INFORMATION_REPORT = 1 << (23 - 15)
    DATA_NOTIFICATION = 1 << (23 - 16)
    ACCESS = 1 << (23 - 17)
    PARAMETERIZED_ACCESS = 1 << (23 - 18)
    GET = 1 << (23 - 19)
    SET = 1 << (23 - 20)
    SELECTIVE_ACCESS = 1 << (23 - 21)
    EVENT_NOTIFICATION = 1 << (23 - 22)
    ACTION = 1 << (23 - 23)


_CONFORMANCE_TAG = b"\x5f\x1f\x04\x00"  # [APPLICATION 31] IMPLICIT BIT STRING (SIZE(24)), 0 unused bits


def _conformance_bytes(c: int) -> bytes:
    return _CONFORMANCE_TAG + int(c).to_bytes(3, "big")


def _qos(value: int | None) -> bytes:
    """[0] IMPLICIT Integer8 OPTIONAL: presence flag, then a signed octet."""
    if value is None:
        return b"\x00"
    return b"\x01" + value.to_bytes(1, "big", signed=True)


def _read_conformance(rd: Reader) -> Conformance:
    if rd.take(4) != _CONFORMANCE_TAG:
        raise ApduError("bad conformance block")
    return Conformance(int.from_bytes(rd.take(3), "big"))


# --- xDLMS initiate -----------------------------------------------------------------

INITIATE_REQUEST = 0x01
INITIATE_RESPONSE = 0x08
CONFIRMED_SERVICE_ERROR = 0x0E
VAA_NAME_LN = 0x0007
VAA_NAME_SN = 0xFA00


@dataclass(frozen=True)
class InitiateRequest:
    proposed_conformance: Conformance
    client_max_receive_pdu_size: int
    dlms_version: int = 6
    dedicated_key: bytes | None = None
    response_allowed: bool = True
    proposed_quality_of_service: int | None = None

    def encode(self) -> bytes:
        out = bytearray((INITIATE_REQUEST,))
        if self.dedicated_key is None:
            out.append(0)
        else:
            out += b"\x01" + axdr.encode_length(len(self.dedicated_key)) + self.dedicated_key
        # response-allowed BOOLEAN DEFAULT TRUE: A-XDR sends 0 for the default value
        out += b"\x00" if self.response_allowed else b"\x01\x00"
        out += _qos(self.proposed_quality_of_service)
        out.append(self.dlms_version)
        out += _conformance_bytes(self.proposed_conformance)
        out += self.client_max_receive_pdu_size.to_bytes(2, "big")
        return bytes(out)

    @classmethod
    def decode(cls, buf: bytes) -> "InitiateRequest":
        rd = Reader(buf, 0, ApduError)
        if rd.u8() != INITIATE_REQUEST:
            raise ApduError(f"not an InitiateRequest (tag {buf[0]})")
        key = rd.octets() if rd.optional() else None
        allowed = bool(rd.u8()) if rd.optional() else True
        qos = rd.i8() if rd.optional() else None
        version = rd.u8()
        conformance = _read_conformance(rd)
        pdu = rd.u16()
        rd.end("InitiateRequest")
        return cls(conformance, pdu, version, key, allowed, qos)


@dataclass(frozen=True)
class InitiateResponse:
    negotiated_conformance: Conformance
    server_max_receive_pdu_size: int
    dlms_version: int = 6
    vaa_name: int = VAA_NAME_LN
    negotiated_quality_of_service: int | None = None

    def encode(self) -> bytes:
        out = bytearray((INITIATE_RESPONSE,))
        out += _qos(self.negotiated_quality_of_service)
        out.append(self.dlms_version)
        out += _conformance_bytes(self.negotiated_conformance)
        out += self.server_max_receive_pdu_size.to_bytes(2, "big")
        out += self.vaa_name.to_bytes(2, "big")
        return bytes(out)

    @classmethod
    def decode(cls, buf: bytes) -> "InitiateResponse":
        rd = Reader(buf, 0, ApduError)
        if rd.u8() != INITIATE_RESPONSE:
            raise ApduError(f"not an InitiateResponse (tag {buf[0]})")
        qos = rd.i8() if rd.optional() else None
        version = rd.u8()
        conformance = _read_conformance(rd)
        pdu = rd.u16()
        vaa = rd.u16()
        rd.end("InitiateResponse")
        return cls(conformance, pdu, version, vaa, qos)


class InitiateError(IntEnum):
    """ServiceError initiate values, sent in a confirmed-service-error when the xDLMS
    InitiateRequest cannot be honoured."""

    OTHER = 0
    DLMS_VERSION_TOO_LOW = 1
    INCOMPATIBLE_CONFORMANCE = 2
    PDU_SIZE_TOO_SHORT = 3
    REFUSED_BY_THE_VDE_HANDLER = 4


def encode_initiate_error(error: InitiateError) -> bytes:
    # confirmed-service-error [14], initiateError [1], ServiceError initiate [6], value
    return bytes((CONFIRMED_SERVICE_ERROR, 0x01, 0x06, error))
