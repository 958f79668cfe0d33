"""Blocking client transports: DLMS APDUs to a meter over TCP or a serial line.

The client side of :mod:`tools.node.links` (which holds the meter's shells): each
transport has the :class:`dlms.client.ApduTransport` shape (one APDU out, one
back, ``receive`` for a streamed GBT window) and joins a sans-IO link connection
to a blocking line. :class:`WrapperTransport` speaks the IEC 62056-47 wrapper over a
:class:`hal.tcp_line.SocketLine`; HDLC (IEC 62056-46, over TCP or a serial line with
the optional IEC 62056-21 mode E opening) is :mod:`tools.node.hdlc_transport`'s.
:func:`open_client_transport` picks one from a ``tcp://HOST:PORT`` or
``serial://DEVICE-OR-URL`` target.

``bijli read`` and the other one-shot commands start here, and start-up is most
of their cost (issue 16): this module imports no asyncio, no server, no firmware
and neither HDLC nor pyserial, which load only when a target needs them.
"""

from __future__ import annotations

import time

from bijli.dlms.link import MANAGEMENT_SAP, wrapper
from bijli.hal.errors import InactivityTimeout
from bijli.hal.tcp_line import SocketLine, parse_endpoint

__all__ = ["WrapperTransport", "line_name", "open_client_transport", "parse_target"]


def line_name(line) -> str:
    """What a failure message calls ``line``."""
    return getattr(line, "name", "the line")


class WrapperTransport:
    """Client APDUs over the TCP wrapper. Every failure is typed: a
    :class:`~dlms.errors.DlmsError` for what the bytes say, a :class:`~hal.errors.HalError`
    for the line (:class:`~hal.errors.InactivityTimeout`, also a TimeoutError, when
    the meter stays silent)."""

    def __init__(self, line: SocketLine, client_sap: int, server_sap: int = MANAGEMENT_SAP, timeout: float = 10.0):
        self.line = line
        self.conn = wrapper.WrapperConnection(client_sap, server_sap)
        self.timeout = timeout

    def request(self, data: bytes) -> bytes:
        self.line.send(self.conn.send(data))
        return self.receive()

    def send_only(self, data: bytes) -> None:
        self.line.send(self.conn.send(data))

    def receive(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while True:
            ev = self.conn.next_event()
            if ev is not wrapper.NEED_DATA:
                return ev.apdu
            left = deadline - time.monotonic()
            if left <= 0:
                raise InactivityTimeout(f"{line_name(self.line)}: no answer from the meter within {self.timeout:g} s")
            data = self.line.recv(left)
            if data:
                self.conn.receive_data(data)

    def close(self) -> None:
        self.line.close()


def parse_target(target: str) -> tuple[str, str]:
    """'tcp://HOST:PORT' -> ('tcp', 'HOST:PORT'); 'serial://X' -> ('serial', 'X')."""
    for scheme in ("tcp", "serial"):
        prefix = scheme + "://"
        if target.startswith(prefix) and len(target) > len(prefix):
            return scheme, target[len(prefix):]
    raise ValueError(f"target must be tcp://HOST:PORT or serial://DEVICE-OR-URL, not {target!r}")


def open_client_transport(target: str, client_sap: int, *, hdlc_over_tcp: bool = False, use_mode_e: bool = False,
                          physical_address: int = 16, timeout: float = 10.0):
    """A connected transport for ``dlms.client.Client``."""
    scheme, rest = parse_target(target)
    if scheme == "tcp":
        host, port = parse_endpoint(rest)
        line = SocketLine(host, port, timeout)
        if not hdlc_over_tcp:
            return WrapperTransport(line, client_sap, MANAGEMENT_SAP, timeout)
        from bijli.tools.node.hdlc_transport import open_hdlc

        return open_hdlc(line, client_sap, physical_address, timeout)
    from bijli.hal.serial import SerialLine
    from bijli.tools.node.hdlc_transport import mode_e_open, open_hdlc

    sline = SerialLine(rest, 300 if use_mode_e else 9600, 7 if use_mode_e else 8, "E" if use_mode_e else "N")
    try:
        if use_mode_e:
            mode_e_open(sline, timeout)
    except Exception:
        sline.close()
        raise
    return open_hdlc(sline, client_sap, physical_address, timeout)
