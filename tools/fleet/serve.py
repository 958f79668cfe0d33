"""The fleet engine on the network: each meter's own listener, hydrating it per connection.

Every meter of the shard gets a listening socket at its own endpoint
(:func:`tools.fleet.addressing.meter_endpoint`: 127.x.y.z:4059 unless a host is
named), serving the IEC 62056-47 TCP wrapper through the same shell as ``bijli meter``
(:func:`tools.node.links.wrapper_session`). A connection pins its meter in the
engine's cache (hydrated and advanced to now on connect, never evicted while the
association may be open) and releases it when the connection closes. An idle
listener costs a file descriptor and no Python object per connection.
"""

from __future__ import annotations

from bijli.hal import tcp
from bijli.tools.fleet.addressing import WRAPPER_PORT, meter_endpoint
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node.links import tcp_options, wrapper_session


class _PinnedShell:
    """The wrapper shell of ``bijli meter``, for one connection to one fleet meter: the
    meter is pinned in the engine's cache from connect to close."""

    __slots__ = ("engine", "index", "shell")

    def __init__(self, engine: FleetEngine, index: int, port: int, conn) -> None:
        node = engine.pin(index)
        node.tcp_port = port
        self.engine, self.index = engine, index
        self.shell = wrapper_session(conn, node.server)

    def data_received(self, data: bytes) -> None:
        self.shell.data_received(data)

    def connection_lost(self) -> None:
        try:
            self.shell.connection_lost()
        finally:
            self.engine.unpin(self.index)


def _session(engine: FleetEngine, index: int, port: int):
    return lambda conn: _PinnedShell(engine, index, port, conn)


async def serve(engine: FleetEngine, *, host: str | None = None, base_port: int = WRAPPER_PORT,
                shards: int = 1) -> dict[int, tuple[str, int]]:
    """Listen for every meter of ``engine``; returns each meter's (host, port). The
    listeners are kept on ``engine.listeners`` (close them to stop)."""
    options = tcp_options(engine.base.meter.dlms)
    endpoints: dict[int, tuple[str, int]] = {}
    listeners: list[tcp.Listener] = []
    engine.listeners = listeners
    try:
        for index in engine.indices:
            h, p = meter_endpoint(index, host, base_port, shards)
            listener = await tcp.serve(h, p, _session(engine, index, p), **options)
            listeners.append(listener)
            endpoints[index] = listener.sockets[0].getsockname()[:2]
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    return endpoints


def manifest(engine: FleetEngine, endpoints: dict[int, tuple[str, int]]) -> dict:
    """One row per meter, built by MeterNode.manifest (the same row ``bijli meter --manifest``
    writes), plus its index. Each meter is hydrated for its row: O(meters) hydrations."""
    rows = []
    for index in engine.indices:
        host, port = endpoints[index]
        with engine.observe(index) as node:
            rows.append({"index": index, **node.manifest(host, port)})
    return {"count": len(rows), "clock": "sim" if engine.clock.simulated else "real", "meters": rows}
