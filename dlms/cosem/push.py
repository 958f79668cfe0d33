"""Push setup (class 40, version 0), IEC 62056-6-2 clause 4.4.8.

What the meter pushes unsolicited (a DataNotification carrying the values of
push_object_list), where to (send_destination_and_method), when it may
(communication_window), and how it retries. Method ``push`` asks the firmware's
injected handler to send one now; building and sending the notification is the
firmware's and the server's business, not this object's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from bijli.dlms import axdr
from bijli.dlms.axdr import CosemDateTime
from bijli.dlms.cosem.bound import NO_PARAMETER, BoundObject
from bijli.dlms.cosem.profile import CaptureObjectDefinition
from bijli.dlms.cosem.values import (
    LONG_UNSIGNED, UNSIGNED, array_of, date_time_octets, mismatch, parse_cosem_date_time, parse_int, parse_octets,
    parse_struct, struct_of,
)

#: push_object_list elements are object_definition, the same structure as a capture object
ObjectDefinition = CaptureObjectDefinition


class TransportService(IntEnum):
    TCP = 0
    UDP = 1
    FTP = 2
    SMTP = 3
    SMS = 4
    HDLC = 5
    M_BUS = 6
    ZIGBEE = 7


class MessageType(IntEnum):
    A_XDR_APDU = 0
    XML_APDU = 1


@dataclass(frozen=True, slots=True)
class SendDestinationAndMethod:
    """structure {transport_service enum, destination octet-string, message enum}."""

    transport_service: int = TransportService.TCP
    destination: bytes = b""
    message: int = MessageType.A_XDR_APDU

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.Enum(int(self.transport_service)), axdr.OctetString(self.destination),
                               axdr.Enum(int(self.message))))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "SendDestinationAndMethod":
        t, d, m = parse_struct(value, 3)
        transport, message = parse_int(t, axdr.Enum), parse_int(m, axdr.Enum)
        if 7 < transport < 200:  # 200..255 are manufacturer specific
            raise mismatch(f"transport_service {transport} is reserved")
        if 1 < message < 128:  # 128..255 are manufacturer specific
            raise mismatch(f"message {message} is reserved")
        return cls(transport, parse_octets(d), message)


@dataclass(frozen=True, slots=True)
class WindowElement:
    """window_element ::= structure {start_time octet-string(12), end_time octet-string(12)}
    (date-times that may hold wildcards, e.g. every day 01:00-05:00)."""

    start_time: CosemDateTime
    end_time: CosemDateTime

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((date_time_octets(self.start_time), date_time_octets(self.end_time)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "WindowElement":
        s, e = parse_struct(value, 2)
        return cls(parse_cosem_date_time(s), parse_cosem_date_time(e))


class PushSetup(BoundObject):
    """Bindings: push_object_list (ObjectDefinition sequence), send_destination_and_method,
    communication_window (WindowElement sequence; empty = always), randomisation_start_interval
    (s), number_of_retries, repetition_delay (s); ``set_`` for writable ones; ``on_push()``."""

    CLASS_ID = 40
    VERSION = 0
    ATTRIBUTES = ("logical_name", "push_object_list", "send_destination_and_method", "communication_window",
                  "randomisation_start_interval", "number_of_retries", "repetition_delay")
    METHODS = ("push",)
    TYPES = {
        "push_object_list": array_of(struct_of(CaptureObjectDefinition)),
        "send_destination_and_method": struct_of(SendDestinationAndMethod),
        "communication_window": array_of(struct_of(WindowElement)),
        "randomisation_start_interval": LONG_UNSIGNED,
        "number_of_retries": UNSIGNED,
        "repetition_delay": LONG_UNSIGNED,
    }
    PARAMS = {"push": NO_PARAMETER}
    DEFAULTS = {"communication_window": (), "randomisation_start_interval": 0, "number_of_retries": 0,
                "repetition_delay": 0}
