"""hal.serial over a real pseudo-terminal pair, a pyserial client and pyserial URLs."""

import asyncio
import os
import socket
import termios

import pytest
import serial

from bijli.hal.errors import BackendError
from bijli.hal.serial import (MODE_E_9600, MODE_E_OPENING, Framing, PortError, PtyPort,
                        SerialPort, ThreadedSerialPort, open_port)


def run(coro, timeout=5.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def read_exactly(port, n):
    out = b""
    while len(out) < n:
        chunk = await port.read()
        assert chunk, "port closed early"
        out += chunk
    return out


def client_read(client, n, timeout=2.0):
    client.timeout = timeout
    data = client.read(n)
    assert len(data) == n, data
    return data


def test_pty_bytes_both_ways_with_pyserial_client():
    async def main():
        port = open_port("pty")
        assert isinstance(port, PtyPort)
        client = serial.Serial(port.peer_path, 9600, timeout=2)
        try:
            client.write(b"/?!\r\n")
            client.flush()
            assert await read_exactly(port, 5) == b"/?!\r\n"
            # every byte value passes unchanged: the pty is raw both ways
            payload = bytes(range(256)) * 8
            port.write(payload)
            await port.drain()
            got = await asyncio.get_running_loop().run_in_executor(
                None, client_read, client, len(payload))
            assert got == payload
            client.write(payload)
            client.flush()
            assert await read_exactly(port, len(payload)) == payload
        finally:
            client.close()
            port.close()
        assert await port.read() == b""
    run(main())


def test_client_may_reconnect_without_eio():
    async def main():
        with PtyPort.open() as port:
            for msg in (b"first", b"second"):
                client = serial.Serial(port.peer_path, 9600)
                client.write(msg)
                client.flush()
                client.close()
                assert await read_exactly(port, len(msg)) == msg
    run(main())


def test_set_framing_mode_e_switch_visible_to_client():
    # Linux ptys keep the baud rate and stop bits a program sets but force CS8
    # and clear PARENB (drivers/tty/pty.c), so the character size and parity of
    # 7E1 are visible only in port.framing; on a real UART they reach the chip.
    async def main():
        with PtyPort.open(framing=MODE_E_OPENING) as port:
            client = serial.Serial(port.peer_path)  # pyserial sets 9600 8N1 on open
            fd = client.fileno()
            try:
                assert termios.tcgetattr(fd)[4] == termios.B9600
                port.set_framing(300, 7, "E", 2)
                assert port.framing == Framing(300, 7, "E", 2)
                _, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(fd)
                assert (ispeed, ospeed) == (termios.B300, termios.B300)
                assert cflag & termios.CSTOPB
                # the identification goes out at 300 baud, then the switch to 9600 8N1
                port.write(b"/BJL5\\2BIJLI\r\n")
                await port.drain()
                port.set_framing(9600, 8, "N", 1)
                assert port.framing == MODE_E_9600
                _, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(fd)
                assert (ispeed, ospeed) == (termios.B9600, termios.B9600)
                assert cflag & termios.CSIZE == termios.CS8
                assert not cflag & (termios.PARENB | termios.CSTOPB)
                port.set_framing(19200, 8, "O", 2)
                _, _, cflag, _, ispeed, _, _ = termios.tcgetattr(fd)
                assert ispeed == termios.B19200
                assert cflag & termios.PARODD and cflag & termios.CSTOPB
                assert client_read(client, 14) == b"/BJL5\\2BIJLI\r\n"
            finally:
                client.close()
    run(main())


def test_write_queued_before_switch_is_sent_first():
    async def main():
        with PtyPort.open() as port:
            client = serial.Serial(port.peer_path)
            try:
                port.write(b"A" * 3000)
                port.set_framing(300, 7, "E", 1)  # flushes the queue first
                assert client_read(client, 3000) == b"A" * 3000
            finally:
                client.close()
    run(main())


def test_large_write_is_queued_and_drained_without_blocking():
    # more than the pty buffer holds: write() must queue, drain() wait for the reader
    async def main():
        with PtyPort.open() as port:
            client = serial.Serial(port.peer_path)
            try:
                payload = os.urandom(200_000)
                port.write(payload)
                loop = asyncio.get_running_loop()
                reader = loop.run_in_executor(None, client_read, client, len(payload), 5.0)
                await port.drain()
                assert await reader == payload
            finally:
                client.close()
    run(main())


def test_stable_symlink(tmp_path):
    link = tmp_path / "state" / "optical"
    port = open_port(f"pty:{link}")
    try:
        assert os.readlink(link) == port.peer_path
        assert port.link_path == link
        # a second meter taking over the link replaces it atomically
        port2 = PtyPort.open(link)
        assert os.readlink(link) == port2.peer_path
        port.close()
        assert os.readlink(link) == port2.peer_path  # not ours any more: left alone
        port2.close()
        assert not link.exists() and not link.is_symlink()
    finally:
        port.close()


def test_loop_url_uses_thread_backend():
    async def main():
        port = open_port("loop://", MODE_E_OPENING)
        assert isinstance(port, ThreadedSerialPort)
        try:
            port.write(b"hello")
            await port.drain()
            assert await read_exactly(port, 5) == b"hello"
            port.set_framing(9600, 8, "N", 1)
            assert port.serial.baudrate == 9600 and port.serial.parity == "N"
        finally:
            port.close()
    run(main())


def test_socket_url_uses_fd_backend():
    async def main():
        server = socket.create_server(("127.0.0.1", 0))
        host, portnum = server.getsockname()
        loop = asyncio.get_running_loop()
        port = open_port(f"socket://{host}:{portnum}")
        conn, _ = await loop.run_in_executor(None, server.accept)
        try:
            assert isinstance(port, SerialPort)
            conn.sendall(b"ping")
            assert await read_exactly(port, 4) == b"ping"
            port.write(b"pong")
            await port.drain()
            conn.settimeout(2)
            assert conn.recv(4) == b"pong"
            conn.close()
            assert await port.read() == b""  # far end hung up
        finally:
            port.close()
            server.close()
    run(main())


@pytest.mark.parametrize("spec", ["/dev/does-not-exist-bijli", "nosuchscheme://x", "pty:", ""])
def test_bad_spec_raises_backend_error_naming_it(spec):
    with pytest.raises(BackendError) as info:
        open_port(spec)
    if spec:
        assert repr(spec) in str(info.value) or spec in str(info.value)


def test_bad_framing_rejected():
    with pytest.raises(PortError):
        Framing(9600, 9)
    with pytest.raises(PortError):
        Framing(9600, 8, "X")
    with PtyPort.open() as port:
        with pytest.raises(PortError):
            port.set_framing(12345)
    assert Framing(300, 7, "E", 1).char_time() == pytest.approx(10 / 300)


def test_write_after_close_raises():
    port = open_port("pty")
    port.close()
    with pytest.raises(PortError):
        port.write(b"x")


def test_serial_line_takes_the_opening_framing_on_a_pty_and_talks_to_a_port():
    """The blocking client line (tools and tests) opens 300 7E1 on a pty, which takes only
    8N1: the one framing fallback of hal.serial keeps the rate and drops to 8N1."""
    from bijli.hal.errors import LineError
    from bijli.hal.serial import SerialLine, apply_framing

    async def main():
        port = open_port("pty")
        loop = asyncio.get_running_loop()
        line = await loop.run_in_executor(None, SerialLine, port.peer_path, 300, 7, "E")
        try:
            assert line.ser.baudrate == 300
            taken = apply_framing(line.ser, MODE_E_OPENING, "client")
            assert taken.baud == 300 and taken in (MODE_E_OPENING, Framing(300, 8, "N", 1))
            await loop.run_in_executor(None, line.send, b"/?!\r\n")
            assert await read_exactly(port, 5) == b"/?!\r\n"
            port.write(b"ack")
            await port.drain()
            got = await loop.run_in_executor(None, line.recv, 2.0)
            assert got == b"ack"
            assert await loop.run_in_executor(None, line.recv, 0.1) is None  # nothing more: a time-out
            line.switch(MODE_E_9600)
            assert line.ser.baudrate == 9600
        finally:
            line.close()
            port.close()
    run(main())
    with pytest.raises(LineError):
        SerialLine("/dev/does-not-exist-bijli")
