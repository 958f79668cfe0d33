"""TCP for DLMS (the IEC 62056-47 wrapper, HDLC over TCP): listeners, the push sender, an asyncio line.

The hal knows sockets, not protocols. :func:`serve` accepts connections on one
endpoint and gives each to a *handler* that the tools layer builds around a
sans-IO protocol core: the handler's ``data_received(data)`` is called
synchronously with every chunk the kernel delivers and answers with
:meth:`Connection.write`; nothing here runs a task per connection or per read.
That shape (an :class:`asyncio.Protocol`) is what keeps the shell's cost per
request near the event loop's floor: one ``recv`` callback, one ``send``.

Each connection keeps one timer, re-armed lazily: :meth:`Connection.touch` only
stores the time of the last useful exchange, and when the timer fires it
either closes a peer that stayed idle for :attr:`Connection.timeout` seconds or
schedules itself again for the remaining time. The handler decides what counts
as activity (a whole request served, not a trickled byte), and may shorten the
timeout for a peer that has not associated yet.

Writes go straight to the transport; only when its buffer passes the high-water
mark (a peer that sends requests but does not read the answers) does the
connection stop reading from that peer until the buffer drains: real
back-pressure, and a bound on what one peer can make the meter hold.

Two ways to listen, one connection path. :func:`serve` is an asyncio server for one
endpoint (``bijli meter``: a host name may resolve to several addresses). :func:`listen`
opens many endpoints at once for a fleet (a meter at each of 250,000 loopback
addresses): each is a plain non-blocking socket (``socket``, ``bind``, ``listen``, as
POSIX describes them) registered with the event loop by one reader callback, with no
server object, no coroutine and no look-up of the open descriptors per endpoint
(an asyncio server cost about 560 us each; measured in README's fleet table). Both
hand every accepted connection to the same :class:`Connection` through
``loop.connect_accepted_socket``, so what a peer sees is the same.

Each endpoint caps its concurrent connections (configurable): a peer over the
cap is closed at once, and the condition is logged once when it starts and once
when it has been over for a while (with the count), never per refused peer. Every error here is a
:class:`~hal.errors.HalError`.

Client side, for callers that already run the event loop: :func:`send_once`
delivers one frame on a fresh connection (push) and :class:`AsyncLine` is the
line of a head-end talking to many meters at once. The blocking line of a
one-shot client and the ``HOST:PORT`` parser are in :mod:`hal.tcp_line`, which
imports no asyncio.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from typing import Callable, Iterable, Protocol

from bijli.hal.errors import HalError, InactivityTimeout, LineError

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "Connection",
    "Handler",
    "InactivityTimeout",
    "LineError",
    "Listener",
    "listen",
    "send_once",
    "serve",
]

log = logging.getLogger("bijli.hal.tcp")

DEFAULT_MAX_CONNECTIONS = 128  # per endpoint; well under a Raspberry Pi's default fd limit of 1024
WRITE_HIGH_WATER = 64 * 1024  # bytes queued for a peer before we stop reading its requests
CAP_QUIET_S = 10.0  # seconds without a refused peer before the cap condition counts as over
BACKLOG = 256  # pending connections the kernel queues per endpoint
ACCEPT_RETRY_S = 1.0  # out of descriptors: accept again after this long (asyncio's own delay)
# accept() failing for lack of resources: the endpoint pauses rather than spinning
_ACCEPT_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Handler(Protocol):
    """What the tools layer gives :func:`serve` for each connection."""

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self) -> None: ...


HandlerFactory = Callable[["Connection"], Handler]


class Connection(asyncio.Protocol):
    """One accepted connection: the asyncio protocol and the handler's view of it."""

    __slots__ = ("_listener", "_transport", "_handler", "_loop", "_timer", "_last", "timeout", "peer", "closed",
                 "established")

    def __init__(self, listener: "Listener") -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._handler: Handler | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = listener.loop
        self._last = 0.0
        self.timeout: float | None = listener.setup_timeout
        self.peer = None
        self.closed = False
        self.established = False

    # ---- the handler's side ----------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue ``data`` for the peer; never waits (see the module's note on back-pressure)."""
        if data and not self.closed:
            self._transport.write(data)

    def touch(self) -> None:
        """A useful exchange happened now: the idle clock starts again."""
        self._last = self._loop.time()

    def set_established(self, established: bool) -> None:
        """The handler's protocol has (or no longer has) a session above it: the idle limit
        becomes the endpoint's inactivity timeout (or again its shorter set-up timeout),
        counted from now."""
        if established == self.established:
            return
        self.established = established
        self._last = self._loop.time()
        listener = self._listener
        self.timeout = listener.inactivity_timeout if established else listener.setup_timeout
        self._arm(self._last)

    def close(self) -> None:
        """Close after what is queued has been sent."""
        if not self.closed and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close now, dropping what is queued (shutdown, a peer that will not read)."""
        if self._transport is not None:
            self._transport.abort()

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport
        listener = self._listener
        self.peer = transport.get_extra_info("peername")
        if not listener._admit(self):
            self.closed = True
            transport.abort()
            return
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._last = self._loop.time()
        try:
            self._handler = listener.factory(self)
        except Exception:
            log.exception("%s: the connection handler could not start", listener.name)
            self.abort()
            return
        self._arm(self._last)

    def data_received(self, data: bytes) -> None:
        handler = self._handler
        if handler is None or self.closed:
            return
        try:
            handler.data_received(data)
        except Exception:  # a bug in a handler ends this connection, not the meter
            log.exception("%s: closing %s after an error in its handler", self._listener.name, self.peer)
            self.abort()

    def eof_received(self) -> bool:
        return False  # close our side too: a DLMS peer that half-closes has gone

    def pause_writing(self) -> None:
        # the peer does not read what we send: stop reading what it sends until it does
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        was_open = not self.closed
        self.closed = True
        if self._handler is not None:
            handler, self._handler = self._handler, None
            try:
                handler.connection_lost()
            except Exception:
                log.exception("%s: error while closing %s", self._listener.name, self.peer)
        if was_open:
            self._listener._release(self)

    # ---- the one timer ---------------------------------------------------------------------
    def _arm(self, since: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.timeout is not None and not self.closed:
            self._timer = self._loop.call_at(since + self.timeout, self._check_idle)

    def _check_idle(self) -> None:
        self._timer = None
        if self.closed or self.timeout is None:
            return
        deadline = self._last + self.timeout
        if self._loop.time() >= deadline:
            log.debug("%s: closing %s, idle for %s s", self._listener.name, self.peer, self.timeout)
            self.abort()
        else:
            self._timer = self._loop.call_at(deadline, self._check_idle)


class Listener:
    """One listening endpoint; :meth:`close` stops it and closes its connections."""

    def __init__(self, factory: HandlerFactory, *, name: str, inactivity_timeout: float | None,
                 setup_timeout: float | None, max_connections: int) -> None:
        if max_connections < 1:
            raise HalError(f"{name}: max_connections must be at least 1, not {max_connections}")
        self.factory = factory
        self.name = name
        self.inactivity_timeout = inactivity_timeout
        # a peer that has not set up a session yet gets the shorter of the two
        self.setup_timeout = (inactivity_timeout if setup_timeout is None
                              else setup_timeout if inactivity_timeout is None
                              else min(setup_timeout, inactivity_timeout))
        self.max_connections = max_connections
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self.refused = 0  # peers closed at the cap since the condition began
        self._at_cap = False
        self._last_refused = 0.0
        self._server: asyncio.AbstractServer | None = None
        self._sock: socket.socket | None = None  # a plain listening socket (listen), not a server
        self.closed = False

    @property
    def sockets(self):
        if self._sock is not None:
            return (self._sock,)
        return self._server.sockets if self._server is not None else ()

    # ---- a plain listening socket (listen) ---------------------------------------------------
    def _start_accepting(self) -> None:
        if not self.closed:
            self.loop.add_reader(self._sock.fileno(), self._accept)

    def _accept(self) -> None:
        """The socket is readable: accept what is pending (at most a backlog's worth per
        callback, as asyncio's servers do, so one busy endpoint cannot starve the others)."""
        for _ in range(BACKLOG):
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_SHORTAGE:
                    # out of descriptors: stop reading this endpoint for a while instead of
                    # being woken again at once for the same pending peer
                    log.warning("%s: cannot accept (%s); trying again in %.0f s", self.name, exc.strerror,
                                ACCEPT_RETRY_S)
                    self.loop.remove_reader(self._sock.fileno())
                    self.loop.call_later(ACCEPT_RETRY_S, self._start_accepting)
                # else a peer that reset before we accepted it: its error, not the endpoint's
                return
            conn.setblocking(False)
            self.loop.create_task(self._connect(conn))

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: Connection(self), conn)
        except Exception as exc:  # one peer's failure (reset at once, out of memory) ends only that peer
            log.debug("%s: accepted peer lost before its connection was made: %s", self.name, exc)
            conn.close()

    def _admit(self, conn: Connection) -> bool:
        if self.closed:  # accepted just before close(): refused as a closed endpoint would
            return False
        if len(self.connections) >= self.max_connections:
            self._last_refused = self.loop.time()
            if not self._at_cap:
                self._at_cap = True
                log.warning("%s: %d connections, the cap: closing new peers (logged again once none has been "
                            "closed for %.0f s)", self.name, self.max_connections, CAP_QUIET_S)
                self.loop.call_later(CAP_QUIET_S, self._cap_episode_over)
            self.refused += 1
            return False
        self.connections.add(conn)
        return True

    def _cap_episode_over(self) -> None:
        # a flood keeps the cap flapping (peers closed, new ones let in): the condition is
        # over only once no peer has been refused for CAP_QUIET_S seconds
        if not self._at_cap:
            return
        quiet_since = self.loop.time() - self._last_refused
        if quiet_since < CAP_QUIET_S:
            self.loop.call_later(CAP_QUIET_S - quiet_since, self._cap_episode_over)
            return
        self._at_cap = False
        log.warning("%s: below the cap again after closing %d peers", self.name, self.refused)
        self.refused = 0

    def _release(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def close(self) -> None:
        """Stop listening and close every connection (shutdown): no task is left to cancel."""
        self.closed = True
        if self._server is not None:
            self._server.close()
        if self._sock is not None and self._sock.fileno() >= 0:
            self.loop.remove_reader(self._sock.fileno())
            self._sock.close()
        for conn in list(self.connections):
            conn.abort()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()


async def serve(host: str, port: int, factory: HandlerFactory, *, inactivity_timeout: float | None = 120.0,
                setup_timeout: float | None = None, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                name: str | None = None) -> Listener:
    """Listen on ``host:port``; each connection gets ``factory(connection)`` as its handler.

    A connection may stay idle ``setup_timeout`` seconds until its handler calls
    :meth:`Connection.set_established`, then ``inactivity_timeout`` seconds (None: no limit);
    ``max_connections`` caps the connections open at once on this endpoint.
    """
    listener = Listener(factory, name=name or f"tcp {host}:{port}", inactivity_timeout=inactivity_timeout,
                        setup_timeout=setup_timeout, max_connections=max_connections)
    room = _descriptors_free()
    if room is not None and room < max_connections:
        # a cap above what the process can open would turn into accept() failing with
        # EMFILE; closing peers at a cap it can reach answers them instead
        listener.max_connections = max(1, room)
        log.warning("%s: connection cap %d lowered to %d by the open-file limit", listener.name, max_connections,
                    listener.max_connections)
    try:
        listener._server = await listener.loop.create_server(lambda: Connection(listener), host, port,
                                                             reuse_address=True, backlog=256)
    except OSError as exc:
        raise HalError(f"cannot listen on {host}:{port}: {exc}") from exc
    if name is None:
        bound = listener.sockets[0].getsockname()
        listener.name = f"tcp {bound[0]}:{bound[1]}"
    return listener


def listen(endpoints: Iterable[tuple[str, int, HandlerFactory]], *, inactivity_timeout: float | None = 120.0,
           setup_timeout: float | None = None, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> list[Listener]:
    """Listen on every ``(host, port, factory)`` of ``endpoints`` (numeric IPv4 or IPv6 hosts), with
    the limits of :func:`serve`; returns the listeners in order. Each is a plain socket
    with one reader callback on the running loop (see the module text). If one endpoint
    cannot be opened (address in use, out of descriptors), those already opened are
    closed and a :class:`HalError` names it: all of them or none."""
    loop = asyncio.get_running_loop()
    listeners: list[Listener] = []
    try:
        for host, port, factory in endpoints:
            listener = Listener(factory, name="", inactivity_timeout=inactivity_timeout,
                                setup_timeout=setup_timeout, max_connections=max_connections)
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            listener._sock = sock
            listeners.append(listener)  # closed with the others if what follows fails
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setblocking(False)
                sock.bind((host, port))
                sock.listen(BACKLOG)
            except OSError as exc:
                raise HalError(f"cannot listen on {host}:{port}: {exc}") from exc
            bound = sock.getsockname()
            listener.name = f"tcp {bound[0]}:{bound[1]}"
            loop.add_reader(sock.fileno(), listener._accept)
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    room = _descriptors_free()  # once for all of them, not once per endpoint
    if room is not None and room < max_connections:
        for listener in listeners:
            listener.max_connections = max(1, room)
        if listeners:
            log.warning("%d endpoints: connection cap %d lowered to %d by the open-file limit", len(listeners),
                        max_connections, max(1, room))
    return listeners


_FD_RESERVE = 32  # descriptors kept for the state database, logs, ptys and the next listener


def _descriptors_free() -> int | None:
    """Descriptors this process may still open, less a reserve; None when unknown."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return None
        in_use = len(os.listdir("/proc/self/fd"))
    except (ImportError, OSError, ValueError):
        return None
    return soft - in_use - _FD_RESERVE


# =========================================================================================
# client side
# =========================================================================================


async def send_once(host: str, port: int, data: bytes, *, timeout: float = 10.0) -> None:
    """Connect, send ``data``, close (an unconfirmed push). Raises LineError on any failure."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        raise LineError(f"{host}:{port}: no connection within {timeout} s") from None
    except OSError as exc:
        raise LineError(f"{host}:{port}: {exc}") from exc
    try:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        raise LineError(f"{host}:{port}: sending failed: {exc or 'timed out'}") from exc
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


class AsyncLine:
    """An asyncio TCP line for a client that talks to many meters at once (a head-end's
    storm): ``await connect``, ``write`` (no drain round trip: the kernel buffers a
    request), ``await recv`` with a time-out, ``await close``. Failures are
    :class:`~hal.errors.LineError`; a time-out is :class:`~hal.errors.InactivityTimeout`.

    Built on a bare non-blocking socket registered with the event loop (``add_reader``),
    as :func:`listen` is on the server side, not on an asyncio transport or streams: a
    storm opens two connections per meter, 500,000 for a fleet of 250,000, and a
    transport's connection (``create_connection``: the address resolved twice, a future
    per step, three loop callbacks to hand over the transport, ``connection_made`` and
    ``connection_lost``) cost more of the head-end's CPU than the DLMS work of a
    read-back. Here a connect is ``connect`` (``EINPROGRESS``), one wait for writability
    (a future and a timer) and the socket handed to the reader callback; a read that
    finds data waiting costs no future at all, one that waits one future and one timer;
    a write is one ``send`` (what the kernel does not take at once waits for
    writability, in order); a close is the descriptor taken off the loop and closed."""

    __slots__ = ("host", "port", "name", "_loop", "_sock", "_chunks", "_waiter", "_lost", "_out")

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.name = f"{host}:{port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._chunks: list[bytes] = []  # what arrived since the last recv
        self._waiter: asyncio.Future | None = None  # the pending recv's
        self._lost: BaseException | bool = False  # True (end of stream) or the OSError that ended it
        self._out = b""  # what the kernel has not taken yet (a write larger than the socket buffer)

    async def connect(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        for family, address in await _addresses(loop, self.host, self.port, timeout, self.name):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a request is one write: send it now
                err = sock.connect_ex(address)
                if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EINTR):
                    await _writable(loop, sock, timeout, self.name)
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
            except InactivityTimeout:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                errors.append(exc.strerror or str(exc))
                continue
            except BaseException:  # cancelled: the socket is ours to close
                sock.close()
                raise
            self._loop, self._sock = loop, sock
            loop.add_reader(sock.fileno(), self._readable)
            return
        raise LineError(f"connect to {self.name}: {'; '.join(dict.fromkeys(errors)) or 'no address'}")

    def _readable(self) -> None:
        try:
            data = self._sock.recv(65536)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._end(exc)
            return
        if not data:
            self._end(True)
            return
        self._chunks.append(data)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, why: BaseException | bool) -> None:
        """The peer closed or the socket failed: stop watching it and wake the reader."""
        if not self._lost:
            self._lost = why
        self._unwatch()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _unwatch(self) -> None:
        sock, loop = self._sock, self._loop
        if sock is not None and loop is not None and sock.fileno() >= 0:
            loop.remove_reader(sock.fileno())
            if self._out:
                loop.remove_writer(sock.fileno())
                self._out = b""

    def write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise LineError(f"{self.name}: not connected")
        if self._lost:
            raise LineError(f"{self.name}: {_why(self._lost)}")
        if self._out:  # earlier bytes still wait: keep the order
            self._out += data
            return
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:  # seen by the next recv, as a failed send always was
            self._end(exc)
            return
        if sent < len(data):
            self._out = data[sent:]
            self._loop.add_writer(sock.fileno(), self._flush)  # type: ignore[union-attr]

    def _flush(self) -> None:
        sock = self._sock
        try:
            sent = sock.send(self._out)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._end(exc)
            return
        self._out = self._out[sent:]
        if not self._out:
            self._loop.remove_writer(sock.fileno())  # type: ignore[union-attr]

    async def recv(self, timeout: float) -> bytes:
        """The next bytes from the peer (all that arrived since the last call); LineError at
        end of stream."""
        if self._sock is None:
            raise LineError(f"{self.name}: not connected")
        if not self._chunks and not self._lost:
            loop = self._loop
            waiter = self._waiter = loop.create_future()  # type: ignore[union-attr]
            timer = loop.call_later(timeout, _expire, waiter)  # type: ignore[union-attr]
            try:
                await waiter
            except TimeoutError:
                raise InactivityTimeout(f"{self.name}: no answer within {timeout:g} s") from None
            finally:
                timer.cancel()
                self._waiter = None
        chunks = self._chunks
        if chunks:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            return data
        raise LineError(f"{self.name}: {_why(self._lost)}")

    async def close(self, timeout: float) -> None:
        """Close the connection; returns at once (the kernel sends the FIN and whatever the
        socket still buffers; what ``write`` could not hand it yet is dropped)."""
        sock = self._sock
        if sock is None or sock.fileno() < 0:
            return
        self._unwatch()
        self._lost = self._lost or True
        sock.close()


async def _addresses(loop: asyncio.AbstractEventLoop, host: str, port: int, timeout: float,
                     name: str) -> list[tuple[int, tuple]]:
    """(family, socket address) to try for ``host``: a numeric address as it is (a fleet
    manifest's targets are), a name as the resolver gives it."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, (host, port))]
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise InactivityTimeout(f"connect to {name}: timed out resolving the host") from None
    except OSError as exc:
        raise LineError(f"connect to {name}: {exc.strerror or exc}") from None
    return [(family, address) for family, _, _, _, address in infos]


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float, name: str) -> None:
    """Wait until a connecting ``sock`` is writable (connected or failed), at most ``timeout``."""
    fd = sock.fileno()
    waiter = loop.create_future()
    loop.add_writer(fd, _done, waiter)
    timer = loop.call_later(timeout, _expire, waiter)
    try:
        await waiter
    except TimeoutError:
        raise InactivityTimeout(f"connect to {name}: timed out") from None
    finally:
        timer.cancel()
        loop.remove_writer(fd)


def _done(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _why(lost: BaseException | bool) -> str:
    if isinstance(lost, OSError):
        return lost.strerror or str(lost)
    return "the peer closed the connection"
