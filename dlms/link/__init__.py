"""Data-link layers, one sans-IO state machine per file: HDLC (IEC 62056-46),
the TCP/UDP wrapper (IEC 62056-47) and the optical mode E opening (IEC 62056-21).

Each connection's ``next_event()`` returns :data:`NEED_DATA` when it has no
event until more bytes arrive (h11's convention); it is one object, shared by
the three layers. :data:`MANAGEMENT_SAP` is the address every one of them gives
the management logical device.
"""

MANAGEMENT_SAP = 1
"""The management logical device (DLMS UA Green Book, mandatory in every physical device): its
server SAP, the wrapper's wPort 1 (IEC 62056-47) and HDLC's upper address 1 (IEC 62056-46)."""


class NeedData:
    """The type of NEED_DATA (there is one instance)."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()
