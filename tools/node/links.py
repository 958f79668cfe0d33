"""I/O shells that carry DLMS between a byte stream and the sans-IO protocol cores.

Server side (the meter): each coroutine here is the thin loop around one link
state machine: bytes from a hal stream or port go into the link connection
(:mod:`dlms.link.wrapper`, :mod:`dlms.link.hdlc`, with :mod:`dlms.link.mode_e`
in front on an optical port), APDUs it yields go to
:meth:`dlms.server.Server.handle`, answers go back out. One association
:class:`~dlms.server.Session` per client SAP per connection. Protocol errors
close this connection only; the meter keeps serving everyone else.
:func:`add_transport_arguments` / :func:`start_transports` let ``bijli meter``
open the HDLC-over-TCP, serial and optical listeners from its command line.

Client side (tools and tests): blocking transports with the
:class:`dlms.client.ApduTransport` shape (one APDU out, one back) over a TCP
socket (wrapper or HDLC) or a pyserial port (HDLC, optionally after the
IEC 62056-21 mode E opening at 300 baud); :func:`open_client_transport` picks
one from a ``tcp://HOST:PORT`` or ``serial://DEVICE-OR-URL`` target.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Callable

from bijli.dlms.errors import DlmsError, LinkError
from bijli.dlms.link import hdlc, mode_e, wrapper
from bijli.dlms.link.hdlc import HdlcAddress, HdlcConnection, Role
from bijli.dlms.server import Server, Session
# what the meter offers in the UA (a client proposing less gets less): the same values its
# IEC HDLC setup object reports, from the one place they are defined
from bijli.firmware.objects import HDLC_MAX_INFO, HDLC_WINDOW

log = logging.getLogger("bijli.links")

MANAGEMENT_SAP = 1
_TICK = 0.5  # seconds between link timer polls while a line is silent


# =========================================================================================
# server side
# =========================================================================================


async def wrapper_session(stream, server: Server, *, on_activity: Callable[[], None] | None = None) -> None:
    """Serve one TCP connection speaking the IEC 62056-47 wrapper."""
    conn = wrapper.WrapperConnection(MANAGEMENT_SAP)
    sessions: dict[int, Session] = {}
    while True:
        data = await stream.read()
        if not data:
            return
        conn.receive_data(data)
        while True:
            try:
                event = conn.next_event()
            except DlmsError as exc:
                log.info("closing %s: %s", stream.peer, exc)
                return
            if event is wrapper.NEED_DATA:
                break
            if event.destination_wport != MANAGEMENT_SAP:
                continue  # no such logical device: the wrapper discards, as a router would
            session = sessions.get(event.source_wport)
            if session is None:
                session = sessions[event.source_wport] = server.new_session(event.source_wport)
            responses = server.handle(session, event.apdu, time.monotonic())
            if on_activity:
                on_activity()
            for response in responses:
                await stream.write(conn.send(response, destination_wport=event.source_wport))


class _TcpLine:
    """hal.tcp.Stream as a line: read with a tick timeout."""

    def __init__(self, stream):
        self.stream = stream
        self.name = str(stream.peer)

    async def read(self, timeout: float) -> bytes | None:
        """Bytes, b'' at end of stream, None when nothing came within ``timeout``."""
        saved = self.stream.inactivity_timeout
        self.stream.inactivity_timeout = timeout
        try:
            return await self.stream.read()
        except Exception as exc:  # hal.tcp.InactivityTimeout: only a tick here
            if type(exc).__name__ == "InactivityTimeout":
                return None
            raise
        finally:
            self.stream.inactivity_timeout = saved

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)

    async def switch(self, settings: mode_e.BaudSwitch) -> None:  # pragma: no cover - never on TCP
        pass


class _PortLine:
    """hal.serial.Port as a line; ``switch`` applies a mode E baud change."""

    def __init__(self, port):
        self.port = port
        self.name = port.spec

    async def read(self, timeout: float) -> bytes | None:
        try:
            return await asyncio.wait_for(self.port.read(), timeout)
        except asyncio.TimeoutError:
            return None

    async def write(self, data: bytes) -> None:
        if data:
            self.port.write(data)
            await self.port.drain()

    async def switch(self, settings: mode_e.BaudSwitch) -> None:
        await self.port.drain()
        self.port.set_framing(settings.baud, settings.bytesize, settings.parity, settings.stopbits)


async def hdlc_session(line, server: Server, *, physical_address: int = 16, inactivity_timeout: float = 120.0,
                       opening: mode_e.ModeEServer | None = None,
                       on_activity: Callable[[], None] | None = None) -> None:
    """Serve HDLC (IEC 62056-46) on one line until it ends; with ``opening``, each
    HDLC session starts with the mode E opening at 300 baud and the line goes back
    to 300 baud when the session ends (DISC or inactivity)."""
    address = HdlcAddress(MANAGEMENT_SAP, physical_address)

    def new_link() -> HdlcConnection:
        return HdlcConnection(Role.SERVER, server_address=address, max_info_length=HDLC_MAX_INFO,
                              window=HDLC_WINDOW, inactivity_timeout=inactivity_timeout)

    conn = new_link()
    sessions: dict[int, Session] = {}

    async def apply_opening_events() -> None:
        assert opening is not None
        out = opening.data_to_send()
        if out:
            await line.write(out)
        while (ev := opening.next_event()) is not mode_e.NEED_DATA:
            if isinstance(ev, mode_e.BaudSwitch):
                await line.switch(ev)
                if ev == mode_e.OPENING:
                    conn.disconnect(time.monotonic())
                    sessions.clear()

    while True:
        data = await line.read(_TICK)
        if data == b"":
            return
        now = time.monotonic()
        if opening is not None:
            in_hdlc = opening.phase is mode_e.Phase.HDLC
            opening.receive_data(data or b"", now)
            await apply_opening_events()
            if not in_hdlc:
                continue  # the opening owns these bytes
        if data:
            conn.receive_data(data, now)
        else:
            conn.poll(now)
        while (ev := conn.next_event()) is not hdlc.NEED_DATA:
            if isinstance(ev, hdlc.Connected):
                sessions.clear()  # a new link: whatever association was above it is gone
            elif isinstance(ev, hdlc.ApduReceived):
                session = sessions.get(ev.client_address)
                if session is None:
                    session = sessions[ev.client_address] = server.new_session(ev.client_address)
                responses = server.handle(session, ev.apdu, now)
                if on_activity:
                    on_activity()
                for response in responses:
                    try:
                        conn.send_apdu(response, now)
                    except DlmsError as exc:
                        log.info("%s: cannot send: %s", line.name, exc)
            elif isinstance(ev, hdlc.Disconnected):
                sessions.clear()
                if opening is not None:
                    await line.write(conn.data_to_send())  # the UA to the DISC, at the session's rate
                    opening.reset()
                    await apply_opening_events()
        await line.write(conn.data_to_send())


async def hdlc_tcp_session(stream, server: Server, **kw) -> None:
    """Serve one TCP connection speaking HDLC (HDLC over TCP, as many probes and gateways do)."""
    await hdlc_session(_TcpLine(stream), server, **kw)


async def serial_session(port, server: Server, *, optical: bool, cfg=None, **kw) -> None:
    """Serve a serial port (or pty) until it closes; ``optical`` adds the mode E opening."""
    opening = None
    if optical:
        ident = getattr(cfg.meter, "identity", None) if cfg is not None else None
        manufacturer = getattr(ident, "manufacturer", "BJL")
        name = (getattr(ident, "serial", "bijli") or "bijli")[:16]
        opening = mode_e.ModeEServer(manufacturer, name, "5")
    await hdlc_session(_PortLine(port), server, opening=opening, **kw)


# --- wiring for `bijli meter` ---------------------------------------------------------------


def add_transport_arguments(parser) -> None:
    """The meter's extra DLMS listeners (the wrapper's --tcp stays with meter_cmd)."""
    parser.add_argument("--hdlc-tcp", metavar="HOST:PORT", action="append", default=[],
                        help="serve DLMS over HDLC on TCP (port 0 picks a free one); repeatable")
    parser.add_argument("--serial", metavar="URL", action="append", default=[],
                        help="serve DLMS over HDLC on a serial line at 9600 8N1: a device, a pyserial URL, "
                             "'pty' or 'pty:LINK' for an emulated port; repeatable")
    parser.add_argument("--optical", metavar="URL", action="append", default=[],
                        help="serve the optical port: IEC 62056-21 mode E opening at 300 baud, then HDLC "
                             "(same port syntax as --serial); repeatable")


class RunningTransport:
    """One started listener: ``description`` as printed, ``close()`` stops it."""

    def __init__(self, description: str, closers: list[Callable[[], None]]):
        self.description = description
        self._closers = closers

    def close(self) -> None:
        for fn in self._closers:
            try:
                fn()
            except Exception:  # closing is best effort at shutdown
                pass


async def start_transports(args, server: Server, cfg, *, echo: Callable[[str], None] | None = None) -> list:
    """Start the listeners named by --hdlc-tcp/--serial/--optical; print one line per
    listener (``echo``, default print with flush) and return :class:`RunningTransport`s."""
    from bijli.hal import serial as hal_serial
    from bijli.hal import tcp

    say = echo or (lambda line: print(line, flush=True))
    dl = cfg.meter.dlms
    kw = {"physical_address": dl.hdlc_physical_address, "inactivity_timeout": dl.inactivity_timeout_s}
    running: list[RunningTransport] = []
    for spec in getattr(args, "hdlc_tcp", None) or []:
        host, port = tcp.parse_endpoint(spec)
        listener = await tcp.serve(host, port, lambda s: hdlc_tcp_session(s, server, **kw),
                                   inactivity_timeout=dl.inactivity_timeout_s)
        bound = listener.sockets[0].getsockname()
        line = f"DLMS HDLC listening on {bound[0]}:{bound[1]} (server address 1/{dl.hdlc_physical_address})"
        say(line)
        running.append(RunningTransport(line, [listener.close]))
    for kind, specs in (("serial", getattr(args, "serial", None) or []),
                        ("optical", getattr(args, "optical", None) or [])):
        for spec in specs:
            optical = kind == "optical"
            framing = hal_serial.MODE_E_OPENING if optical else hal_serial.MODE_E_9600
            port = hal_serial.open_port(spec, framing)
            task = asyncio.create_task(_serve_port(port, server, optical=optical, cfg=cfg, **kw))
            where = getattr(port, "peer_path", None) or spec
            line = f"DLMS {kind} on {where}" + (" (mode E opening at 300 baud)" if optical else "")
            say(line)
            running.append(RunningTransport(line, [task.cancel, port.close]))
    return running


async def _serve_port(port, server: Server, **kw) -> None:
    while not port.closed:
        try:
            await serial_session(port, server, **kw)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a port error must not stop the meter
            log.warning("%s: %s", port.spec, exc)
            await asyncio.sleep(1.0)
        else:
            return


# =========================================================================================
# client side (blocking)
# =========================================================================================


class SocketLine:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float) -> bytes | None:
        """Bytes; None on time-out; raises ConnectionError at end of stream."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        if not data:
            raise ConnectionError("the meter closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


class SerialLine:
    """A pyserial port. A pseudo-terminal refuses 7E1 (Linux ptys are 8N1 only), so a
    framing the port rejects falls back to 8N1 at the same rate; the mode E code
    ignores the parity bit anyway."""

    _POLL = 0.05

    def __init__(self, url: str, baud: int = 9600, bytesize: int = 8, parity: str = "N"):
        import serial

        try:
            self.ser = serial.serial_for_url(url, baudrate=baud, timeout=self._POLL)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LinkError(f"cannot open {url}: {exc}") from None
        self._apply(baud, bytesize, parity, 1)

    def _apply(self, baud: int, bytesize: int, parity: str, stopbits: int) -> None:
        import termios

        import serial

        try:
            self.ser.apply_settings({"baudrate": baud, "bytesize": bytesize, "parity": parity, "stopbits": stopbits})
        except (serial.SerialException, ValueError, OSError, termios.error):
            self.ser.apply_settings({"baudrate": baud, "bytesize": 8, "parity": "N", "stopbits": stopbits})

    def send(self, data: bytes) -> None:
        self.ser.write(data)
        self.ser.flush()

    def recv(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            first = self.ser.read(1)
            if first:
                return first + self.ser.read(self.ser.in_waiting)
            if time.monotonic() >= deadline:
                return None

    def switch(self, s: mode_e.BaudSwitch) -> None:
        self.ser.flush()
        self._apply(s.baud, s.bytesize, s.parity, s.stopbits)

    def close(self) -> None:
        self.ser.close()


class WrapperTransport:
    """Client APDUs over the TCP wrapper."""

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
                raise TimeoutError("no answer from the meter")
            data = self.line.recv(left)
            if data:
                self.conn.receive_data(data)

    def close(self) -> None:
        self.line.close()


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
                raise TimeoutError("no answer from the meter (HDLC)")
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
    server_address = HdlcAddress(MANAGEMENT_SAP, physical_address)
    if scheme == "tcp":
        from bijli.hal.tcp import parse_endpoint

        host, port = parse_endpoint(rest)
        line = SocketLine(host, port, timeout)
        if not hdlc_over_tcp:
            return WrapperTransport(line, client_sap, MANAGEMENT_SAP, timeout)
        transport = HdlcTransport(line, client_sap, server_address, timeout=timeout)
    else:
        sline = SerialLine(rest, 300 if use_mode_e else 9600, 7 if use_mode_e else 8, "E" if use_mode_e else "N")
        try:
            if use_mode_e:
                mode_e_open(sline, timeout)
        except Exception:
            sline.close()
            raise
        transport = HdlcTransport(sline, client_sap, server_address, timeout=timeout)
    try:
        transport.connect()
    except Exception:
        transport.line.close()
        raise
    return transport
