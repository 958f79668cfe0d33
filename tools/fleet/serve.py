"""The fleet engine on the network: each meter's own listener, hydrating it per connection.

Every meter of the shard gets a listening socket at its own endpoint
(:func:`tools.fleet.addressing.meter_endpoint`: 127.x.y.z:4059 unless a host is
named), serving the IEC 62056-47 TCP wrapper through the same shell as ``bijli meter``
(:func:`tools.node.links.wrapper_session`). A connection pins its meter in the
engine's cache (hydrated and advanced to now on connect, never evicted while the
association may be open) and releases it when the connection closes. Its requests run
in the engine's batch of the event-loop round (one commit for every connection served
in that round) and their answers are held until it has committed
(:meth:`~tools.fleet.engine.FleetEngine.batched`). An idle
listener costs a file descriptor, a socket object and a reader callback on the event
loop (:func:`hal.tcp.listen`), no server object and nothing per connection. The
manifest is written without hydrating any meter (:func:`manifest`).
"""

from __future__ import annotations

from bijli.firmware.cosem.associations import utility_security
from bijli.hal import tcp
from bijli.tools.fleet.addressing import WRAPPER_PORT, meter_endpoint
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node.fleet import member_settings
from bijli.tools.node.links import tcp_options, wrapper_session
from bijli.tools.node.meter_node import manifest_row


class _HeldLine:
    """The hal connection as the wrapper shell sees it, with its output held back while the
    engine's batch is open (:meth:`FleetEngine.batched`): what a request answers leaves
    only once the steps it made are on disk. The rest is the connection's own."""

    __slots__ = ("conn", "engine")

    def __init__(self, engine: FleetEngine, conn) -> None:
        self.engine, self.conn = engine, conn

    @property
    def peer(self):
        return self.conn.peer

    @property
    def established(self) -> bool:
        return self.conn.established

    def write(self, data: bytes) -> None:
        self.engine.send(self.conn, data)

    def close(self) -> None:
        self.engine.close_after(self.conn)

    def touch(self) -> None:
        self.conn.touch()

    def set_established(self, established: bool) -> None:
        self.conn.set_established(established)


class _PinnedShell:
    """The wrapper shell of ``bijli meter``, for one connection to one fleet meter: the
    meter is pinned in the engine's cache from connect to close, and every callback runs
    in the engine's batch of the event-loop round."""

    __slots__ = ("engine", "index", "shell", "conn")

    def __init__(self, engine: FleetEngine, index: int, port: int, conn) -> None:
        engine.batched(index)
        node = engine.pin(index)
        node.tcp_port = port
        self.engine, self.index, self.conn = engine, index, conn
        self.shell = wrapper_session(_HeldLine(engine, conn), node.server)
        engine.sessions.setdefault(index, set()).add(self)

    def data_received(self, data: bytes) -> None:
        self.engine.batched(self.index)
        self.shell.data_received(data)

    def abort(self) -> None:
        """The meter lost its RAM (a batch that could not commit): this connection ends now."""
        self.conn.abort()

    def connection_lost(self) -> None:
        engine = self.engine
        try:
            engine.batched(self.index)
            self.shell.connection_lost()
        finally:
            shells = engine.sessions.get(self.index)
            if shells is not None:
                shells.discard(self)
                if not shells:
                    del engine.sessions[self.index]
            engine.unpin(self.index)


def _session(engine: FleetEngine, index: int, port: int):
    return lambda conn: _PinnedShell(engine, index, port, conn)


async def serve(engine: FleetEngine, *, host: str | None = None, base_port: int = WRAPPER_PORT,
                shards: int = 1) -> dict[int, tuple[str, int]]:
    """Listen for every meter of ``engine``; returns each meter's (host, port). The
    listeners (:func:`hal.tcp.listen`: a plain socket each, no server object) are kept
    on ``engine.listeners`` (close them to stop)."""
    options = tcp_options(engine.base.meter.dlms)
    endpoints: list[tuple[str, int, object]] = []
    for index in engine.indices:
        h, p = meter_endpoint(index, host, base_port, shards)
        endpoints.append((h, p, _session(engine, index, p)))
    listeners = tcp.listen(endpoints, **options)
    engine.listeners = listeners
    return {index: listener.sockets[0].getsockname()[:2] for index, listener in zip(engine.indices, listeners)}


def manifest(engine: FleetEngine, endpoints: dict[int, tuple[str, int]]) -> dict:
    """One row per meter, with its index, without hydrating it: the row ``bijli meter
    --manifest`` writes (:func:`~tools.node.meter_node.manifest_row`) of the meter's
    member settings (:func:`~tools.node.fleet.member_settings`: those of its member
    configuration a row reads) and the security its memory holds. Only a meter with memory in
    the shard can hold keys a head-end changed over DLMS (key_transfer, kept in its
    memory as it happens): its stored keys are read; every other meter has its
    configured ones."""
    stored = set(engine.store.meters())
    rows = []
    for index in engine.indices:
        host, port = endpoints[index]
        settings = member_settings(engine.base, index)
        security = utility_security(settings, engine.store.memory(index) if index in stored else None)
        rows.append({"index": index, **manifest_row(settings, security, host, port)})
    return {"count": len(rows), "clock": "sim" if engine.clock.simulated else "real", "meters": rows}
