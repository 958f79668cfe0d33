"""The hostile meter's thin I/O shell: the plan of :mod:`.plan` put between the link shells and the wire.

``bijli meter --chaos SEED`` builds one :class:`HostileMeter` and hands
:meth:`HostileMeter.factory` to :func:`hal.tcp.serve` in place of the plain
per-connection factory of :mod:`tools.node.links`. For each accepted connection it
numbers the connection, takes that connection's :class:`~.plan.ConnectionChaos`, and
builds the ordinary link shell (:class:`~tools.node.links.WrapperShell`,
:class:`~tools.node.links.HdlcTcpShell`) with two stand-ins: a server whose
``handle`` passes every response APDU through :meth:`~.plan.ConnectionChaos.answer`,
and a connection whose ``write`` passes the framed bytes through
:meth:`~.plan.ConnectionChaos.output` and carries out its steps on the event loop
(a delayed write on a timer, a hang-up). The link shells, the DLMS server and the
firmware are the normal meter's, unchanged: without ``--chaos`` none of this is
built, and a normal meter pays nothing for it.

Every misbehaviour shown is logged (logger ``bijli.chaos``, at warning so it shows
at ``bijli meter``'s default level) with its connection and answer number: with the
seed the meter printed at start, that is what a user needs to replay a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Callable

from bijli.tools.chaos.plan import HDLC, WRAPPER, ChaosPlan, ConnectionChaos, Emit, Hangup

log = logging.getLogger("bijli.chaos")

__all__ = ["HDLC", "WRAPPER", "HostileMeter"]


class HostileMeter:
    """One meter's hostile mode: its plan, and the connections numbered per link."""

    def __init__(self, plan: ChaosPlan, report: Callable[[str], None] | None = None):
        self.plan = plan
        self.report = report or log.warning
        self.connections = {WRAPPER: 0, HDLC: 0}

    def factory(self, make_shell: Callable, server, link: str = WRAPPER) -> Callable:
        """A :func:`hal.tcp.serve` handler factory: ``make_shell(connection, server)`` (the
        normal meter's) with the hostile stand-ins for both."""

        def start(conn):
            self.connections[link] += 1
            chaos = self.plan.connection(self.connections[link], link, self.report)
            return make_shell(_HostileConnection(conn, chaos), _HostileServer(server, chaos))

        return start


class _HostileServer:
    """The DLMS server as the link shell sees it: the same sessions, each answer through the plan."""

    __slots__ = ("_server", "_chaos")

    def __init__(self, server, chaos: ConnectionChaos):
        self._server = server
        self._chaos = chaos

    def new_session(self, sap: int, peer: str = ""):
        return self._server.new_session(sap, peer)

    def handle(self, session, apdu: bytes, now: float) -> list[bytes]:
        answer = self._chaos.answer
        return [answer(response) for response in self._server.handle(session, apdu, now)]

    def __getattr__(self, name):
        return getattr(self._server, name)


class _HostileConnection:
    """The hal connection as the link shell sees it: writes go through the plan's steps."""

    def __init__(self, conn, chaos: ConnectionChaos):
        self._conn = conn
        self._chaos = chaos
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Emit | Hangup] = deque()  # steps due later, in order
        self._timer: asyncio.TimerHandle | None = None

    def write(self, data: bytes) -> None:
        steps = self._chaos.output(data, self._loop.time())
        if not self._queue:
            now = self._loop.time()
            while steps and steps[0].at <= now:
                self._do(steps.pop(0))
        self._queue.extend(steps)
        self._arm()

    def _do(self, step: Emit | Hangup) -> None:
        if isinstance(step, Emit):
            self._conn.write(step.data)
        else:
            self._conn.close()

    def _arm(self) -> None:
        if self._timer is None and self._queue and not self._conn.closed:
            self._timer = self._loop.call_at(self._queue[0].at, self._due)

    def _due(self) -> None:
        self._timer = None
        now = self._loop.time()
        while self._queue and self._queue[0].at <= now:
            self._do(self._queue.popleft())
        self._arm()

    def __getattr__(self, name):  # peer, closed, established, touch, set_established, close, abort
        return getattr(self._conn, name)
