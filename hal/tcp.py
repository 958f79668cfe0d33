"""TCP listeners for DLMS (wrapper or HDLC over TCP): many connections, one event loop.

The hal knows sockets, not protocols: :func:`serve` accepts connections and hands
each to a session coroutine from the tools layer as a :class:`Stream`, which
reads with a per-connection inactivity timeout. A peer that stays silent longer
than that is closed, so a forgotten probe cannot hold an association forever.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable


class InactivityTimeout(Exception):
    """The peer sent nothing for the configured time."""


class Stream:
    """One accepted connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inactivity_timeout: float | None):
        self._reader = reader
        self._writer = writer
        self.inactivity_timeout = inactivity_timeout
        self.peer = writer.get_extra_info("peername")

    async def read(self, n: int = 65536) -> bytes:
        """Bytes from the peer; b'' at end of stream. Raises InactivityTimeout."""
        try:
            return await asyncio.wait_for(self._reader.read(n), self.inactivity_timeout)
        except asyncio.TimeoutError:
            raise InactivityTimeout(f"{self.peer}: silent for {self.inactivity_timeout} s") from None
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        if data:
            self._writer.write(data)
            try:
                await self._writer.drain()
            except (ConnectionError, OSError):
                pass

    async def close(self) -> None:
        try:
            self._writer.close()
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


SessionFactory = Callable[[Stream], Awaitable[None]]


async def serve(host: str, port: int, session: SessionFactory, *, inactivity_timeout: float | None = 120.0) -> asyncio.Server:
    """Start listening; each connection runs ``session(stream)`` and is closed after it."""

    async def _on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = Stream(reader, writer, inactivity_timeout)
        try:
            await session(stream)
        except InactivityTimeout:
            pass
        finally:
            await stream.close()

    return await asyncio.start_server(_on_connection, host, port, reuse_address=True)


def parse_endpoint(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'HOST:PORT', ':PORT' or 'PORT' -> (host, port)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"not HOST:PORT: {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range: {text!r}")
    return (host.strip("[]") or default_host), number
