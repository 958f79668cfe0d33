"""hal.tcp.AsyncLine, the head-end's asyncio line, against real sockets on 127.0.0.1.

What the storm relies on: everything that arrived since the last read comes back in one
read (several frames in one chunk or one frame in several), a silent peer is an
InactivityTimeout within the time given, a closed or refused peer is a LineError, and
close() returns even when the peer never closes its side.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from bijli.hal.errors import InactivityTimeout, LineError
from bijli.hal.tcp import AsyncLine


async def _server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_what_arrived_comes_back_whole_and_a_silent_peer_times_out():
    async def go():
        async def handler(reader, writer):
            request = await reader.readexactly(4)
            writer.write(request + b"-one")  # one answer in two writes, the client reads them as they come
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"-two")
            await writer.drain()
            await reader.read()  # then silence until the client goes

        server, port = await _server(handler)
        line = AsyncLine("127.0.0.1", port)
        await line.connect(5)
        line.write(b"ping")
        got = b""
        while len(got) < len(b"ping-one-two"):
            got += await line.recv(5)
        assert got == b"ping-one-two"
        started = time.monotonic()
        with pytest.raises(InactivityTimeout, match="no answer within 0.2 s"):
            await line.recv(0.2)
        assert 0.15 < time.monotonic() - started < 2
        await line.close(5)
        server.close()
        await server.wait_closed()

    asyncio.run(go())


def test_a_peer_that_closes_is_a_line_error_for_the_next_read_and_write():
    async def go():
        async def handler(reader, writer):
            writer.write(b"bye")
            await writer.drain()
            writer.close()

        server, port = await _server(handler)
        line = AsyncLine("127.0.0.1", port)
        await line.connect(5)
        assert await line.recv(5) == b"bye"  # what came before the close is still read
        with pytest.raises(LineError, match="the peer closed the connection"):
            await line.recv(5)
        with pytest.raises(LineError):
            line.write(b"more")
        await line.close(5)
        server.close()
        await server.wait_closed()

    asyncio.run(go())


def test_a_refused_connection_is_a_line_error_and_an_unconnected_line_refuses_io():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go():
        line = AsyncLine("127.0.0.1", port)
        with pytest.raises(LineError, match=f"connect to 127.0.0.1:{port}"):
            await line.connect(5)
        with pytest.raises(LineError, match="not connected"):
            line.write(b"x")
        with pytest.raises(LineError, match="not connected"):
            await line.recv(1)
        await line.close(1)  # nothing to close: returns

    asyncio.run(go())


def test_close_returns_within_its_time_when_the_peer_keeps_the_connection_open():
    async def go():
        held = []

        async def handler(reader, writer):
            held.append(writer)
            await asyncio.sleep(30)

        server, port = await _server(handler)
        line = AsyncLine("127.0.0.1", port)
        await line.connect(5)
        started = time.monotonic()
        await line.close(1)
        assert time.monotonic() - started < 1.5
        for w in held:
            w.close()
        server.close()

    asyncio.run(go())


def test_a_write_larger_than_the_socket_buffer_arrives_whole_and_in_order():
    """The kernel takes what fits at once; the rest waits for writability, behind which a
    second write queues, so the peer reads both, whole, in the order written."""
    first = bytes(range(256)) * 98304  # 24 MB: more than a loopback socket and its peer buffer at once
    second = b"-the-end"

    async def go():
        got = bytearray()
        done = asyncio.Event()

        async def handler(reader, writer):
            await asyncio.sleep(0.2)  # let the client's writes back up first
            while len(got) < len(first) + len(second):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                got.extend(chunk)
            writer.write(b"ok")
            await writer.drain()
            done.set()
            await reader.read()

        server, port = await _server(handler)
        line = AsyncLine("127.0.0.1", port)
        await line.connect(5)
        line.write(first)
        line.write(second)
        assert await line.recv(10) == b"ok"
        await done.wait()
        assert bytes(got) == first + second
        await line.close(5)
        server.close()
        await server.wait_closed()

    asyncio.run(go())


def test_a_host_name_is_resolved_and_a_reset_is_a_line_error():
    async def go():
        async def handler(reader, writer):
            await reader.readexactly(1)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            writer.transport.abort()  # linger 0: an RST, not a FIN

        server, port = await _server(handler)
        line = AsyncLine("localhost", port)
        await line.connect(5)
        line.write(b"x")
        with pytest.raises(LineError):
            await line.recv(5)
        with pytest.raises(LineError):
            line.write(b"more")
        await line.close(5)
        await line.close(5)  # twice: nothing left to close
        server.close()
        await server.wait_closed()

    asyncio.run(go())
