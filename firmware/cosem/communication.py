"""Communication set-up: how the meter's ports describe themselves to a head-end.

IEC HDLC setup (IC 23, 0.0.22.0.0.255; IEC 62056-46 link parameters), TCP-UDP setup
(IC 41, 0.0.25.0.0.255; the IEC 62056-47 wrapper port), SAP assignment (IC 17,
0.0.41.0.0.255) and the optical port's IEC local port setup (IC 19,
0.0.20.0.0.255; IEC 62056-21 mode E). The link figures are the ones the HDLC link
actually serves: :mod:`bijli.tools.node.links` imports them from here (a test
checks they agree). The TCP-UDP setup's IP_reference is empty: the wrapper rides on
the host's IP stack, whose address, mask and gateway the meter neither sets nor
knows, so an IPv4 setup object (IC 42) would publish invented figures, and naming
one that does not exist would leave a dangling reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from bijli.dlms.cosem.base import CosemObject
from bijli.dlms.cosem.setup import (BaudRate, IecHdlcSetup, IecLocalPortSetup, SapAssignment, SapAssignmentObject,
                                    TcpUdpSetup)
from bijli.firmware.cosem.catalogue import HDLC_SETUP, IEC_LOCAL_PORT_SETUP, SAP_ASSIGNMENT, TCP_UDP_SETUP

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter

# the HDLC link the meter serves
HDLC_MAX_INFO = 1024
HDLC_WINDOW = 1
HDLC_INTER_OCTET_MS = 25
TCP_MSS = 1460  # Ethernet's; the wrapper frames up to max_pdu ride in several segments
WRAPPER_PORT = 4059  # IANA's DLMS/COSEM port


def communication_setup(meter: "Meter", tcp_port: "int | Callable[[], int]") -> list[CosemObject]:
    dl = meter.config.dlms
    return [
        IecHdlcSetup(HDLC_SETUP, comm_speed=BaudRate.B9600, window_size_transmit=HDLC_WINDOW,
                     window_size_receive=HDLC_WINDOW, max_info_field_length_transmit=HDLC_MAX_INFO,
                     max_info_field_length_receive=HDLC_MAX_INFO, inter_octet_time_out=HDLC_INTER_OCTET_MS,
                     inactivity_time_out=min(int(dl.inactivity_timeout_s), 0xFFFF),
                     device_address=dl.hdlc_physical_address),
        TcpUdpSetup(TCP_UDP_SETUP, tcp_udp_port=tcp_port, ip_reference=b"", mss=TCP_MSS,
                    nb_of_sim_conn=0xFF,  # hal.tcp sets no limit: the most the attribute can say
                    inactivity_time_out=min(int(dl.inactivity_timeout_s), 0xFFFF)),
        SapAssignmentObject(SAP_ASSIGNMENT, sap_assignment_list=(
            SapAssignment(1, meter.config.identity.ldn.encode("ascii")),)),
        # the optical port: an IEC 62056-21 sign-on at 300 baud (any address, no
        # passwords) that mode E turns into HDLC at 9600 (tools.node.links, --optical)
        IecLocalPortSetup(IEC_LOCAL_PORT_SETUP, default_mode=0, default_baud=BaudRate.B300,
                          prop_baud=BaudRate.B9600, response_time=1),
    ]
