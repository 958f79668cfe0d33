"""The blocking client transport over HDLC (IEC 62056-46), and the client's mode E opening (IEC 62056-21).

:class:`HdlcTransport` joins a client :class:`dlms.link.hdlc.HdlcConnection` to a
blocking line (a :class:`hal.tcp_line.SocketLine` for HDLC over TCP, a
:class:`hal.serial.SerialLine`): SNRM/UA, then one APDU out and one back with the
link's own retransmission timers polled while the line is silent, DISC on close.
:func:`mode_e_open` is the optical port's opening at 300 baud before HDLC, from the
client's seat. :func:`tools.node.client_transports.open_client_transport` imports
this module only for an HDLC or serial target, so a wrapper read loads no HDLC.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bijli.dlms.errors import DlmsError, LinkError
from bijli.dlms.link import MANAGEMENT_SAP, hdlc, mode_e
from bijli.dlms.link.hdlc import HdlcAddress, HdlcConnection, Role
from bijli.hal.errors import InactivityTimeout
from bijli.tools.node.client_transports import line_name

if TYPE_CHECKING:  # pragma: no cover
    from bijli.hal.serial import SerialLine

__all__ = ["HdlcTransport", "mode_e_open", "open_hdlc"]


class HdlcTransport:
    """Client APDUs over HDLC (on a socket or a serial line)."""

    def __init__(self, line, client_sap: int, server_address: HdlcAddress, *, max_info: int = 1024,
                 timeout: float = 10.0):
        self.line = line
        self.timeout = timeout
        self.conn = HdlcConnection(Role.CLIENT, server_address=server_address, client_address=client_sap,
                                   max_info_length=max_info, window=1, response_timeout=3.0)

    def _pump(self, until) -> object:
        deadline = time.monotonic() + self.timeout
        while True:
            out = self.conn.data_to_send()
            if out:
                self.line.send(out)
            while (ev := self.conn.next_event()) is not hdlc.NEED_DATA:
                result = until(ev)
                if result is not None:
                    return result
            now = time.monotonic()
            if now > deadline:
                raise InactivityTimeout(f"{line_name(self.line)}: no HDLC answer from the meter within "
                                        f"{self.timeout:g} s")
            data = self.line.recv(0.1)
            if data:
                self.conn.receive_data(data, time.monotonic())
            else:
                self.conn.poll(time.monotonic())

    def connect(self) -> None:
        self.conn.connect(now=time.monotonic())

        def done(ev):
            if isinstance(ev, hdlc.Connected):
                return ev
            if isinstance(ev, (hdlc.Rejected, hdlc.Disconnected)):
                raise LinkError(f"HDLC connection refused: {ev}")
            return None

        self._pump(done)

    def request(self, data: bytes) -> bytes:
        self.conn.send_apdu(data, time.monotonic())
        return self._receive()

    def receive(self) -> bytes:
        self.conn.await_apdu()
        return self._receive()

    def _receive(self) -> bytes:
        def done(ev):
            if isinstance(ev, hdlc.ApduReceived):
                return ev.apdu
            if isinstance(ev, hdlc.Disconnected):
                raise LinkError(f"HDLC link lost: {ev.reason}")
            return None

        return self._pump(done)

    def close(self) -> None:
        try:
            if self.conn.state is hdlc.State.NRM:
                self.conn.disconnect(time.monotonic())
                self.timeout = 2.0
                self._pump(lambda ev: ev if isinstance(ev, hdlc.Disconnected) or ev is True else None)
        except (DlmsError, TimeoutError, OSError):
            pass
        finally:
            self.line.close()


def open_hdlc(line, client_sap: int, physical_address: int = 16, timeout: float = 10.0) -> HdlcTransport:
    """An :class:`HdlcTransport` on ``line`` to the management logical device, connected
    (SNRM/UA); the line is closed when the link cannot be set up."""
    transport = HdlcTransport(line, client_sap, HdlcAddress(MANAGEMENT_SAP, physical_address), timeout=timeout)
    try:
        transport.connect()
    except Exception:
        line.close()
        raise
    return transport


def mode_e_open(line: SerialLine, timeout: float = 10.0, max_baud_code: str = "5") -> mode_e.Identification:
    """The IEC 62056-21 mode E opening from the client side; leaves the line at the new rate."""
    client = mode_e.ModeEClient(max_baud_code=max_baud_code)
    line.switch(mode_e.OPENING)
    client.start(time.monotonic())
    ident = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = client.data_to_send()
        if out:
            line.send(out)
        while (ev := client.next_event()) is not mode_e.NEED_DATA:
            if isinstance(ev, mode_e.Identification):
                ident = ev
            elif isinstance(ev, mode_e.OpeningFailed):
                raise LinkError(f"mode E opening failed: {ev.reason}")
            elif isinstance(ev, mode_e.BaudSwitch):
                out = client.data_to_send()
                if out:
                    line.send(out)
                time.sleep(0.05)  # let the ACK leave at 300 baud before switching
                line.switch(ev)
                assert ident is not None
                return ident
        data = line.recv(0.1)
        client.receive_data(data or b"", time.monotonic())
    raise LinkError("mode E opening timed out")
