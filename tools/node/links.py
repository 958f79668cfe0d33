"""I/O shells that carry DLMS between a byte stream and the sans-IO protocol cores.

Server side (the meter): each shell here is the thin layer around one link state
machine: bytes from a hal connection or port go into the link connection
(:mod:`dlms.link.wrapper`, :mod:`dlms.link.hdlc`, with :mod:`dlms.link.mode_e`
in front on an optical port), APDUs it yields go to
:meth:`dlms.server.Server.handle`, answers go back out. On TCP the shells are the
handlers :func:`hal.tcp.serve` calls synchronously with every chunk received
(:class:`WrapperShell`, :class:`HdlcTcpShell`): no task, no await, one write per
chunk. On a serial port the same synchronous :class:`HdlcShell` sits under a small
read loop, because the mode E baud switches must wait for the output to drain.
One association :class:`~dlms.server.Session` per client SAP per connection, at
most ``MAX_SESSIONS``, each named with its peer (:func:`peer_identity`: the TCP
source address, or the serial port), which is what the association lockout
counts failures by; a connection counts as established (the hal's long
inactivity timeout instead of its short set-up timeout) while one of them is
associated. Protocol errors close this connection only; the meter keeps serving
everyone else. :func:`add_transport_arguments` / :func:`start_transports` let
``bijli meter`` open the HDLC-over-TCP, serial and optical listeners from its
command line, with the limits of :func:`tcp_options`.

The client side (the blocking transports of ``bijli read``, the tools and the
tests) is :mod:`tools.node.client_transports` and :mod:`tools.node.hdlc_transport`,
apart from this module so a one-shot client imports no asyncio and no server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Callable

from bijli.dlms.errors import DlmsError
from bijli.dlms.link import MANAGEMENT_SAP, hdlc, mode_e, wrapper
from bijli.dlms.link.hdlc import HdlcAddress, HdlcConnection, Role
from bijli.hal.tcp_line import parse_endpoint

if TYPE_CHECKING:  # pragma: no cover
    from bijli.dlms.server import Server, Session


def _offered_hdlc() -> tuple[int, int]:
    """What the meter offers in the UA (a client proposing less gets less): the same
    values its IEC HDLC setup object reports, from the one place they are defined."""
    from bijli.firmware.cosem.communication import HDLC_MAX_INFO, HDLC_WINDOW

    return HDLC_MAX_INFO, HDLC_WINDOW


def __getattr__(name: str) -> int:  # PEP 562: links.HDLC_MAX_INFO / HDLC_WINDOW, looked up on use
    if name == "HDLC_MAX_INFO":
        return _offered_hdlc()[0]
    if name == "HDLC_WINDOW":
        return _offered_hdlc()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

log = logging.getLogger("bijli.links")

_TICK = 0.5  # seconds between link timer polls while a line is silent


# =========================================================================================
# server side
# =========================================================================================

# What one connection may make the meter hold: sessions (one per client SAP the peer
# names; a real head-end uses one to three) and the APDU of one wrapper frame.
MAX_SESSIONS = 8
MAX_REQUEST = 0xFFFF  # the most a wrapper length field can announce; HDLC bounds its own


def peer_identity(peername) -> str:
    """Who is at the other end of a TCP connection, for the association lockout: the
    source address without its port (every connection gets a new port), an IPv6 address
    by its /64 (what one subscriber line is given), an IPv4-mapped one as IPv4."""
    host = peername[0] if isinstance(peername, (tuple, list)) and peername else peername
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return f"tcp {host}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"tcp {address.ipv4_mapped}"
        return f"tcp {ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"tcp {address}"


class _Sessions:
    """The association sessions above one link connection, at most ``MAX_SESSIONS``.

    A peer naming one SAP more than that loses its sessions that are not associated
    (they hold nothing worth keeping); if every one is associated the peer is refused
    with :class:`_TooManySessions` and its connection closed. ``peer`` names the other
    end for every session made here."""

    __slots__ = ("server", "by_sap", "peer")

    def __init__(self, server: Server, peer: str = "") -> None:
        self.server = server
        self.by_sap: dict[int, Session] = {}
        self.peer = peer

    def get(self, sap: int) -> Session:
        session = self.by_sap.get(sap)
        if session is None:
            by_sap = self.by_sap
            if len(by_sap) >= MAX_SESSIONS:
                for key in [k for k, s in by_sap.items() if not s.associated]:
                    del by_sap[key]
                if len(by_sap) >= MAX_SESSIONS:
                    raise _TooManySessions(f"more than {MAX_SESSIONS} associations on one connection")
            session = by_sap[sap] = self.server.new_session(sap, self.peer)
        return session

    def any_associated(self) -> bool:
        return any(s.associated for s in self.by_sap.values())

    def clear(self) -> None:
        self.by_sap.clear()


class _TooManySessions(Exception):
    pass


class WrapperShell:
    """One TCP connection speaking the IEC 62056-47 wrapper, driven by :mod:`hal.tcp`.

    Synchronous per chunk: every whole frame in ``data`` is answered before this
    returns, and the answers leave in one write. The connection counts as active
    (``touch``) only when a request is served inside an association, so a peer that
    never associates, or trickles bytes, is closed at the set-up timeout."""

    __slots__ = ("conn", "server", "link", "sessions")

    def __init__(self, conn, server: Server) -> None:
        self.conn = conn
        self.server = server
        self.link = wrapper.WrapperConnection(MANAGEMENT_SAP, max_apdu=MAX_REQUEST)
        self.sessions = _Sessions(server, peer_identity(conn.peer))

    def data_received(self, data: bytes) -> None:
        link = self.link
        link.receive_data(data)
        out = None
        associated = False
        try:
            event = link.next_event()
            if event is wrapper.NEED_DATA:
                return
            now = time.monotonic()
            handle = self.server.handle
            sessions = self.sessions
            while event is not wrapper.NEED_DATA:
                if event.destination_wport == MANAGEMENT_SAP:  # else no such logical device: discarded
                    session = sessions.get(event.source_wport)
                    responses = handle(session, event.apdu, now)  # a GBT window is several
                    if session.associated:
                        associated = True
                    for response in responses:
                        frame = link.send(response, destination_wport=event.source_wport)
                        out = frame if out is None else out + frame
                event = link.next_event()
        except (DlmsError, _TooManySessions) as exc:
            log.info("closing %s: %s", self.conn.peer, exc)
            if out is not None:
                self.conn.write(out)
            self.conn.close()
            return
        if out is not None:
            self.conn.write(out)
        _mark(self.conn, associated, self.sessions)

    def connection_lost(self) -> None:
        self.sessions.clear()


def _mark(conn, associated: bool, sessions: _Sessions) -> None:
    """Tell the hal connection whether it carries an association, and that it was used."""
    if associated:
        conn.touch()
        if not conn.established:
            conn.set_established(True)
    elif conn.established and not sessions.any_associated():
        conn.set_established(False)  # released: the short set-up limit again


def wrapper_session(conn, server: Server) -> WrapperShell:
    """The handler :func:`hal.tcp.serve` runs for each wrapper connection."""
    return WrapperShell(conn, server)


class HdlcShell:
    """HDLC (IEC 62056-46) on one line, synchronous per chunk: bytes in, frames out.

    ``write`` takes the frames to send. On TCP (:class:`HdlcTcpShell`) the hal's idle
    timer closes a silent peer; on a serial line :func:`hdlc_session` also polls the
    link's own timers. ``disconnected`` is set when a link ends (DISC or inactivity)
    so a mode E line can go back to 300 baud."""

    __slots__ = ("server", "write", "link", "sessions", "disconnected", "_new_link")

    def __init__(self, server: Server, write: Callable[[bytes], None], *, physical_address: int = 16,
                 inactivity_timeout: float | None = 120.0, peer: str = "") -> None:
        address = HdlcAddress(MANAGEMENT_SAP, physical_address)
        max_info, window = _offered_hdlc()

        def new_link() -> HdlcConnection:
            return HdlcConnection(Role.SERVER, server_address=address, max_info_length=max_info,
                                  window=window, inactivity_timeout=inactivity_timeout)

        self._new_link = new_link
        self.server = server
        self.write = write
        self.link = new_link()
        self.sessions = _Sessions(server, peer)
        self.disconnected = False

    def feed(self, data: bytes | None, now: float) -> bool:
        """Bytes received (None: a timer tick); True when a served request was associated."""
        link = self.link
        if data:
            link.receive_data(data, now)
        else:
            link.poll(now)
        associated = False
        ev = link.next_event()
        while ev is not hdlc.NEED_DATA:
            kind = ev.__class__  # the link's events are final classes: no isinstance chain per request
            if kind is hdlc.ApduReceived:
                session = self.sessions.get(ev.client_address)
                responses = self.server.handle(session, ev.apdu, now)  # a GBT window is several
                if session.associated:
                    associated = True
                for response in responses:
                    try:
                        link.send_apdu(response)  # the link has seen ``now`` already
                    except DlmsError as exc:
                        log.info("cannot send: %s", exc)
                        break
            elif kind is hdlc.Connected:
                self.sessions.clear()  # a new link: whatever association was above it is gone
            elif kind is hdlc.Disconnected:
                self.sessions.clear()
                self.disconnected = True
            ev = link.next_event()
        out = link.data_to_send()
        if out:
            self.write(out)
        return associated

    def reset(self) -> None:
        """Drop the link and its sessions (the line went back to the mode E opening)."""
        self.link.disconnect(time.monotonic())
        self.sessions.clear()


class HdlcTcpShell:
    """One TCP connection speaking HDLC (HDLC over TCP, as many probes and gateways do)."""

    __slots__ = ("conn", "hdlc")

    def __init__(self, conn, server: Server, **kw) -> None:
        self.conn = conn
        self.hdlc = HdlcShell(server, conn.write, peer=peer_identity(conn.peer), **kw)

    def data_received(self, data: bytes) -> None:
        try:
            associated = self.hdlc.feed(data, time.monotonic())
        except (DlmsError, _TooManySessions) as exc:
            log.info("closing %s: %s", self.conn.peer, exc)
            self.conn.close()
            return
        _mark(self.conn, associated, self.hdlc.sessions)

    def connection_lost(self) -> None:
        self.hdlc.sessions.clear()


def hdlc_tcp_session(conn, server: Server, **kw) -> HdlcTcpShell:
    """The handler :func:`hal.tcp.serve` runs for each HDLC-over-TCP connection."""
    return HdlcTcpShell(conn, server, **kw)


async def hdlc_session(port, server: Server, *, physical_address: int = 16, inactivity_timeout: float = 120.0,
                       opening: mode_e.ModeEServer | None = None) -> None:
    """Serve HDLC on one serial port (a hal.serial.Port) until it closes; with ``opening``,
    each HDLC session starts with the mode E opening at 300 baud and the line goes back
    to 300 baud when the session ends (DISC or inactivity). The port queues writes
    without blocking, so the HDLC part is the same synchronous shell as on TCP; only
    the baud switches wait for the output to drain."""
    shell = HdlcShell(server, port.write, physical_address=physical_address, inactivity_timeout=inactivity_timeout,
                      peer=f"serial {getattr(port, 'peer_path', None) or getattr(port, 'spec', '')}")

    async def switch(settings: mode_e.BaudSwitch) -> None:
        await port.drain()
        port.set_framing(settings.baud, settings.bytesize, settings.parity, settings.stopbits)

    async def apply_opening_events() -> None:
        assert opening is not None
        port.write(opening.data_to_send())
        while (ev := opening.next_event()) is not mode_e.NEED_DATA:
            if isinstance(ev, mode_e.BaudSwitch):
                await switch(ev)
                if ev == mode_e.OPENING:
                    shell.reset()

    while True:
        try:
            data = await asyncio.wait_for(port.read(), _TICK)
        except asyncio.TimeoutError:
            data = None  # a tick: the link's and the opening's timers
        if data == b"":
            return
        now = time.monotonic()
        if opening is not None:
            in_hdlc = opening.phase is mode_e.Phase.HDLC
            opening.receive_data(data or b"", now)
            await apply_opening_events()
            if not in_hdlc:
                continue  # the opening owns these bytes
        shell.disconnected = False
        try:
            shell.feed(data, now)
        except (DlmsError, _TooManySessions) as exc:
            log.info("%s: %s; link reset", port.spec, exc)
            shell.reset()
            continue
        if shell.disconnected and opening is not None:
            # the UA to the DISC has been queued at the session's rate; switch back after it
            opening.reset()
            await apply_opening_events()


async def serial_session(port, server: Server, *, optical: bool, cfg=None, **kw) -> None:
    """Serve a serial port (or pty) until it closes; ``optical`` adds the mode E opening."""
    opening = None
    if optical:
        ident = getattr(cfg.meter, "identity", None) if cfg is not None else None
        manufacturer = getattr(ident, "manufacturer", "BJL")
        name = (getattr(ident, "serial", "bijli") or "bijli")[:16]
        opening = mode_e.ModeEServer(manufacturer, name, "5")
    await hdlc_session(port, server, opening=opening, **kw)


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


def tcp_options(dlms_settings) -> dict:
    """The :func:`hal.tcp.serve` limits a meter's ``[dlms]`` settings give every TCP endpoint."""
    return {"inactivity_timeout": dlms_settings.inactivity_timeout_s,
            "setup_timeout": dlms_settings.association_timeout_s,
            "max_connections": dlms_settings.max_connections}


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


async def start_transports(args, server: Server, cfg, *, echo: Callable[[str], None] | None = None,
                           hostile=None) -> list:
    """Start the listeners named by --hdlc-tcp/--serial/--optical (the optical port also from
    ``[hal] optical`` when no --optical is given); print one line per
    listener (``echo``, default print with flush) and return :class:`RunningTransport`s.
    ``hostile`` (a :class:`tools.chaos.shell.HostileMeter`, ``bijli meter --chaos``) puts
    its misbehaviour on the HDLC-over-TCP listeners."""
    from bijli.hal import serial as hal_serial
    from bijli.hal import tcp

    say = echo or (lambda line: print(line, flush=True))
    dl = cfg.meter.dlms
    kw = {"physical_address": dl.hdlc_physical_address, "inactivity_timeout": dl.inactivity_timeout_s}
    running: list[RunningTransport] = []
    for spec in getattr(args, "hdlc_tcp", None) or []:
        host, port = parse_endpoint(spec)
        factory = lambda s: hdlc_tcp_session(s, server, **kw)  # noqa: E731
        if hostile is not None:
            factory = hostile.factory(lambda s, srv: hdlc_tcp_session(s, srv, **kw), server, "hdlc")
        listener = await tcp.serve(host, port, factory, **tcp_options(dl))
        bound = listener.sockets[0].getsockname()
        line = f"DLMS HDLC listening on {bound[0]}:{bound[1]} (server address 1/{dl.hdlc_physical_address})"
        say(line)
        running.append(RunningTransport(line, [listener.close]))
    hal = getattr(cfg, "hal", None)
    configured_optical = [hal.optical] if hal is not None and hal.optical != "none" else []
    for kind, specs in (("serial", getattr(args, "serial", None) or []),
                        ("optical", getattr(args, "optical", None) or configured_optical)):
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
