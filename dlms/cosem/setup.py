"""Communication setup classes: SAP assignment (17, v0), IEC local port setup
(19, v1), IEC HDLC setup (23, v1) and TCP-UDP setup (41, v0), IEC 62056-6-2
clauses 4.4.5 and 4.7.

They describe the ports and addresses the meter serves: which logical devices
answer at which SAP, the optical port's IEC 62056-21 settings, the HDLC link
parameters (speed, windows, information field lengths, timeouts, address) and
the TCP/UDP wrapper port. The link layers read their settings from the same
firmware configuration these objects are bound to; a written value takes effect
when the firmware applies it (typically at the next connection).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from bijli.dlms import axdr
from bijli.dlms.cosem.bound import BoundObject
from bijli.dlms.cosem.values import (
    LONG_UNSIGNED, OCTET_STRING, UNSIGNED, array_of, integer, parse_int, parse_octets, parse_struct, struct_of,
)

# --- SAP assignment (17) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SapAssignment:
    """asslist_element ::= structure {SAP long-unsigned, logical_device_name octet-string}."""

    sap: int
    logical_device_name: bytes

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.LongUnsigned(self.sap), axdr.OctetString(self.logical_device_name)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "SapAssignment":
        s, n = parse_struct(value, 2)
        return cls(parse_int(s, axdr.LongUnsigned), parse_octets(n))


class SapAssignmentObject(BoundObject):
    """Bindings: sap_assignment_list (SapAssignment sequence); ``on_connect_logical_device``
    (SapAssignment; an empty name removes the SAP, as the standard says)."""

    CLASS_ID = 17
    VERSION = 0
    ATTRIBUTES = ("logical_name", "sap_assignment_list")
    METHODS = ("connect_logical_device",)
    TYPES = {"sap_assignment_list": array_of(struct_of(SapAssignment))}
    PARAMS = {"connect_logical_device": struct_of(SapAssignment)}


# --- IEC local port setup (19) ------------------------------------------------------------


class BaudRate(IntEnum):
    """The baud rate enum of classes 19 and 23 (and the IEC 62056-21 baud character)."""

    B300 = 0
    B600 = 1
    B1200 = 2
    B2400 = 3
    B4800 = 4
    B9600 = 5
    B19200 = 6
    B38400 = 7
    B57600 = 8
    B115200 = 9

    @property
    def bps(self) -> int:
        return int(self.name[1:])


_BAUD = integer(axdr.Enum, 0, 9)


class IecLocalPortSetup(BoundObject):
    """Bindings: default_mode (0 IEC 62056-21, 1 DLMS/COSEM, 2 not specified), default_baud,
    prop_baud (BaudRate), response_time (0: 20 ms, 1: 200 ms), device_addr, pass_p1,
    pass_p2, pass_w5 (bytes)."""

    CLASS_ID = 19
    VERSION = 1
    ATTRIBUTES = ("logical_name", "default_mode", "default_baud", "prop_baud", "response_time", "device_addr",
                  "pass_p1", "pass_p2", "pass_w5")
    TYPES = {
        "default_mode": integer(axdr.Enum, 0, 2),
        "default_baud": _BAUD,
        "prop_baud": _BAUD,
        "response_time": integer(axdr.Enum, 0, 1),
        "device_addr": OCTET_STRING,
        "pass_p1": OCTET_STRING,
        "pass_p2": OCTET_STRING,
        "pass_w5": OCTET_STRING,
    }
    DEFAULTS = {"default_mode": 1, "default_baud": BaudRate.B300, "prop_baud": BaudRate.B9600, "response_time": 1,
                "device_addr": b"", "pass_p1": b"", "pass_p2": b"", "pass_w5": b""}


# --- IEC HDLC setup (23) ---------------------------------------------------------------------


class IecHdlcSetup(BoundObject):
    """Bindings: comm_speed (BaudRate), window_size_transmit/receive (1..7),
    max_info_field_length_transmit/receive (32..2030), inter_octet_time_out (ms, 20..6000),
    inactivity_time_out (s, 0 = none), device_address (0x10..0x3FFD)."""

    CLASS_ID = 23
    VERSION = 1
    ATTRIBUTES = (
        "logical_name", "comm_speed", "window_size_transmit", "window_size_receive",
        "max_info_field_length_transmit", "max_info_field_length_receive", "inter_octet_time_out",
        "inactivity_time_out", "device_address",
    )
    TYPES = {
        "comm_speed": _BAUD,
        "window_size_transmit": integer(axdr.Unsigned, 1, 7),
        "window_size_receive": integer(axdr.Unsigned, 1, 7),
        "max_info_field_length_transmit": integer(axdr.LongUnsigned, 32, 2030),
        "max_info_field_length_receive": integer(axdr.LongUnsigned, 32, 2030),
        "inter_octet_time_out": integer(axdr.LongUnsigned, 20, 6000),
        "inactivity_time_out": LONG_UNSIGNED,
        "device_address": integer(axdr.LongUnsigned, 0x10, 0x3FFD),
    }
    DEFAULTS = {"comm_speed": BaudRate.B9600, "window_size_transmit": 1, "window_size_receive": 1,
                "max_info_field_length_transmit": 128, "max_info_field_length_receive": 128,
                "inter_octet_time_out": 25, "inactivity_time_out": 120}


# --- TCP-UDP setup (41) -------------------------------------------------------------------------


class TcpUdpSetup(BoundObject):
    """Bindings: tcp_udp_port, ip_reference (logical name of the IP setup object, bytes),
    mss (40..65535), nb_of_sim_conn, inactivity_time_out (s)."""

    CLASS_ID = 41
    VERSION = 0
    ATTRIBUTES = ("logical_name", "tcp_udp_port", "ip_reference", "mss", "nb_of_sim_conn", "inactivity_time_out")
    TYPES = {
        "tcp_udp_port": LONG_UNSIGNED,
        "ip_reference": OCTET_STRING,
        "mss": integer(axdr.LongUnsigned, 40, 0xFFFF),
        "nb_of_sim_conn": UNSIGNED,
        "inactivity_time_out": LONG_UNSIGNED,
    }
    DEFAULTS = {"tcp_udp_port": 4059, "ip_reference": bytes((0, 0, 25, 1, 0, 255)), "mss": 576, "nb_of_sim_conn": 1,
                "inactivity_time_out": 180}
