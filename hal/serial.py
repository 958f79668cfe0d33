"""Serial ports for the meter's optical and service interfaces, asyncio style.

The firmware runs one asyncio event loop, so a port here never blocks it: a port
with a real file descriptor (a tty, a pseudo-terminal, a ``socket://`` URL) is
read with ``loop.add_reader`` and written with non-blocking ``os.write``; only
pyserial URL backends without a descriptor (``loop://``, ``rfc2217://``) get one
small reader thread that hands bytes to the loop with ``call_soon_threadsafe``.

:meth:`Port.set_framing` is the baud and character-format switch of the
IEC 62056-21 mode E opening (the client starts at 300 baud 7E1, both sides move to
the announced rate at 8N1 once the ACK ``2 Z 2`` is received, and back to 300 7E1
when the session ends). The output is drained before the switch so the last
bytes at the old rate are not garbled by the new one.

:class:`PtyPort` is the emulation backend: a pseudo-terminal pair whose slave
side (``peer_path``, optionally behind a stable symlink such as
``state/optical``) a client program opens exactly as it would open a USB
optical probe. (Linux ptys take the baud rate and stop bits but force CS8 and
no parity, so on a pty the 7E1 of the opening shows only in :attr:`Port.framing`.)

:class:`SerialLine` is the blocking client side of the same (a tool's optical probe,
a test's peer); it shares :func:`apply_framing`, the one framing fallback, with the
ports above.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import struct
import termios
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import serial

from bijli.hal.errors import BackendError, HalError, LineError

__all__ = [
    "Framing",
    "SerialLine",
    "MODE_E_OPENING",
    "MODE_E_9600",
    "Port",
    "PortError",
    "PtyPort",
    "SerialPort",
    "open_port",
]


class PortError(HalError):
    """An open port failed: the device went away, or a setting it cannot take."""


@dataclass(frozen=True)
class Framing:
    """Baud rate and character format, as pyserial names them (parity 'N', 'E', 'O')."""

    baud: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    def __post_init__(self) -> None:
        if self.bytesize not in (5, 6, 7, 8):
            raise PortError(f"bytesize {self.bytesize} not in 5..8")
        if self.parity not in ("N", "E", "O"):
            raise PortError(f"parity {self.parity!r} not one of N, E, O")
        if self.stopbits not in (1, 2):
            raise PortError(f"stopbits {self.stopbits} not 1 or 2")
        if not isinstance(self.baud, int) or self.baud <= 0:
            raise PortError(f"baud {self.baud!r} is not a positive integer")

    def char_time(self) -> float:
        """Seconds one character takes on the wire (start + data + parity + stop)."""
        bits = 1 + self.bytesize + (self.parity != "N") + self.stopbits
        return bits / self.baud

    def __str__(self) -> str:
        return f"{self.baud} {self.bytesize}{self.parity}{self.stopbits}"


# IEC 62056-21: the opening runs at 300 baud 7E1; mode E HDLC usually at 9600 8N1.
MODE_E_OPENING = Framing(300, 7, "E", 1)
MODE_E_9600 = Framing(9600, 8, "N", 1)

_READ_CHUNK = 4096
_MAX_BUFFERED = 1 << 16  # stop reading the fd until the consumer catches up


class Port:
    """One byte stream with a framing; subclasses provide the descriptor or thread.

    ``read()`` returns at least one byte, or ``b""`` once the port is closed or
    the far end hung up. ``write()`` never blocks: what the OS does not take at
    once is queued and sent when the descriptor is writable; ``drain()`` waits
    until every byte has left the OS output queue.
    """

    spec: str

    def __init__(self, spec: str, framing: Framing) -> None:
        self.spec = spec
        self._framing = framing
        self._rbuf = bytearray()
        self._wbuf = bytearray()
        self._eof = False
        self._error: PortError | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readable: asyncio.Event | None = None
        self._writable: asyncio.Event | None = None

    # ---- public API -----------------------------------------------------
    @property
    def framing(self) -> Framing:
        return self._framing

    @property
    def closed(self) -> bool:
        return self._closed

    async def read(self, max_bytes: int = _READ_CHUNK) -> bytes:
        """The next bytes received (1..max_bytes), waiting for at least one."""
        self._bind_loop()
        assert self._readable is not None
        while not self._rbuf:
            if self._error is not None:
                raise self._error
            if self._eof or self._closed:
                return b""
            self._readable.clear()
            self._start_reading()
            await self._readable.wait()
        data = bytes(self._rbuf[:max_bytes])
        del self._rbuf[:max_bytes]
        if len(self._rbuf) < _MAX_BUFFERED:
            self._start_reading()
        return data

    def write(self, data: bytes) -> None:
        if self._closed:
            raise PortError(f"{self.spec}: write on a closed port")
        if not data:
            return
        self._wbuf += data
        self._flush_some()
        if self._wbuf:
            self._start_writing()

    async def drain(self) -> None:
        """Wait until every written byte has been transmitted."""
        self._bind_loop()
        assert self._writable is not None
        while self._wbuf:
            if self._closed:
                raise PortError(f"{self.spec}: closed with {len(self._wbuf)} bytes unsent")
            self._writable.clear()
            self._start_writing()
            await self._writable.wait()
        await self._drain_os()

    def set_framing(self, baud: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> None:
        """Switch baud rate and character format (the mode E baud switch).

        Output still queued is sent at the old framing first; call after
        ``await drain()`` so this does not block the event loop while it waits.
        """
        framing = Framing(baud, bytesize, parity, stopbits)
        if self._closed:
            raise PortError(f"{self.spec}: set_framing on a closed port")
        self._flush_blocking()
        self._apply_framing(framing)
        self._framing = framing

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_io()
        self._close_backend()
        if self._readable is not None:
            self._readable.set()
        if self._writable is not None:
            self._writable.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- shared plumbing ------------------------------------------------
    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._readable = asyncio.Event()
            self._writable = asyncio.Event()
        elif self._loop is not loop:
            raise PortError(f"{self.spec}: used from two event loops")

    def _feed(self, data: bytes) -> None:
        """Bytes arrived (called in the loop thread)."""
        if data:
            self._rbuf += data
        else:
            self._eof = True
        if self._readable is not None:
            self._readable.set()

    # ---- backend hooks --------------------------------------------------
    def _start_reading(self) -> None:
        raise NotImplementedError

    def _start_writing(self) -> None:
        raise NotImplementedError

    def _flush_some(self) -> None:
        raise NotImplementedError

    def _flush_blocking(self) -> None:
        raise NotImplementedError

    async def _drain_os(self) -> None:
        raise NotImplementedError

    def _apply_framing(self, framing: Framing) -> None:
        raise NotImplementedError

    def _stop_io(self) -> None:
        raise NotImplementedError

    def _close_backend(self) -> None:
        raise NotImplementedError


class _FdPort(Port):
    """A port on a non-blocking file descriptor, driven by the event loop."""

    def __init__(self, spec: str, framing: Framing, fd: int) -> None:
        super().__init__(spec, framing)
        self._fd = fd
        self._reading = False
        self._writing = False
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self._fd

    def _start_reading(self) -> None:
        if self._reading or self._closed or self._eof or self._loop is None:
            return
        self._loop.add_reader(self._fd, self._on_readable)
        self._reading = True

    def _stop_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._reading = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO/ENXIO/ENODEV: a pty whose other side is gone, or a USB adapter
            # unplugged: the end of this stream. Anything else is reported by read().
            if exc.errno not in (errno.EIO, errno.ENXIO, errno.ENODEV):
                self._error = PortError(f"{self.spec}: read failed: {exc}")
            data = b""
        if not data:
            self._stop_reading()
        elif len(self._rbuf) + len(data) >= _MAX_BUFFERED:
            self._stop_reading()
        self._feed(data)

    def _flush_some(self) -> None:
        while self._wbuf:
            try:
                n = os.write(self._fd, self._wbuf)
            except BlockingIOError:
                return
            except OSError as exc:
                raise PortError(f"{self.spec}: write failed: {exc}") from exc
            del self._wbuf[:n]

    def _start_writing(self) -> None:
        if self._writing or self._closed:
            return
        if self._loop is None:
            try:
                self._bind_loop()
            except RuntimeError:
                return  # no loop yet: drain() or the next write() sends the rest
        assert self._loop is not None
        self._loop.add_writer(self._fd, self._on_writable)
        self._writing = True

    def _on_writable(self) -> None:
        try:
            self._flush_some()
        except PortError:
            self._wbuf.clear()
        if not self._wbuf:
            assert self._loop is not None
            self._loop.remove_writer(self._fd)
            self._writing = False
            if self._writable is not None:
                self._writable.set()

    def _flush_blocking(self) -> None:
        if self._wbuf:
            os.set_blocking(self._fd, True)
            try:
                self._flush_some()
            finally:
                os.set_blocking(self._fd, False)
        self._tcdrain()

    def _tcdrain(self) -> None:
        try:
            termios.tcdrain(self._fd)
        except termios.error:
            pass  # not a terminal (socket://): nothing queued below us to wait for

    def _out_waiting(self) -> int:
        try:
            buf = fcntl.ioctl(self._fd, termios.TIOCOUTQ, struct.pack("I", 0))
        except OSError:
            return 0
        return struct.unpack("I", buf)[0]

    async def _drain_os(self) -> None:
        # Poll the kernel's output queue so the loop keeps running at 300 baud,
        # then tcdrain for the last characters (by then a short wait).
        while (pending := self._out_waiting()) > 0 and not self._closed:
            await asyncio.sleep(min(pending, 64) * self._framing.char_time())
        if not self._closed:
            self._tcdrain()

    def _stop_io(self) -> None:
        self._stop_reading()
        if self._writing and self._loop is not None:
            self._loop.remove_writer(self._fd)
        self._writing = False


_BAUD_CONSTANTS = {
    rate: getattr(termios, f"B{rate}")
    for rate in (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600,
                 19200, 38400, 57600, 115200, 230400, 460800, 921600)
    if hasattr(termios, f"B{rate}")
}
_CSIZE = {5: termios.CS5, 6: termios.CS6, 7: termios.CS7, 8: termios.CS8}


def _apply_termios(fd: int, framing: Framing) -> None:
    """Set baud and character format on a terminal fd (raw mode assumed)."""
    try:
        speed = _BAUD_CONSTANTS[framing.baud]
    except KeyError:
        raise PortError(f"baud {framing.baud} has no termios constant") from None
    iflag, oflag, cflag, lflag, _ispeed, _ospeed, cc = termios.tcgetattr(fd)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB)
    cflag |= _CSIZE[framing.bytesize] | termios.CREAD | termios.CLOCAL
    if framing.parity != "N":
        cflag |= termios.PARENB
        if framing.parity == "O":
            cflag |= termios.PARODD
    if framing.stopbits == 2:
        cflag |= termios.CSTOPB
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


class PtyPort(_FdPort):
    """The meter's side of a pseudo-terminal pair (the emulated optical head).

    A client opens :attr:`peer_path` (or :attr:`link_path`) as it would open
    ``/dev/ttyUSB0``. We keep the slave side open ourselves so the master never
    reads EIO while no client is attached, and a client may come and go.
    """

    def __init__(self, master: int, slave: int, peer_path: str, link_path: Path | None,
                 framing: Framing) -> None:
        super().__init__("pty" if link_path is None else f"pty:{link_path}", framing, master)
        self._slave = slave
        self.peer_path = peer_path
        self.link_path = link_path

    @classmethod
    def open(cls, link: str | os.PathLike | None = None,
             framing: Framing = MODE_E_9600) -> "PtyPort":
        try:
            master, slave = os.openpty()
        except OSError as exc:
            raise BackendError(f"cannot open a pseudo-terminal for spec 'pty': {exc}") from exc
        try:
            tty.setraw(slave)
            _apply_termios(slave, framing)
            peer_path = os.ttyname(slave)
            link_path = None
            if link is not None:
                link_path = Path(link)
                link_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = link_path.with_name(f".{link_path.name}.{os.getpid()}.tmp")
                tmp.unlink(missing_ok=True)
                os.symlink(peer_path, tmp)
                os.replace(tmp, link_path)  # atomic: a client never sees no link
        except (OSError, termios.error) as exc:
            os.close(master)
            os.close(slave)
            raise BackendError(f"cannot set up pty for spec 'pty:{link}': {exc}") from exc
        return cls(master, slave, peer_path, link_path, framing)

    def _apply_framing(self, framing: Framing) -> None:
        # Master and slave share one termios; set it on the slave, which is
        # what the client's tcgetattr sees.
        _apply_termios(self._slave, framing)

    def _close_backend(self) -> None:
        if self.link_path is not None:
            try:
                if os.readlink(self.link_path) == self.peer_path:
                    self.link_path.unlink()
            except OSError:
                pass
        os.close(self._fd)
        os.close(self._slave)


class SerialPort(_FdPort):
    """A pyserial device or URL whose object has a file descriptor."""

    def __init__(self, spec: str, ser: serial.SerialBase, framing: Framing) -> None:
        super().__init__(spec, framing, ser.fileno())
        self.serial = ser

    def _apply_framing(self, framing: Framing) -> None:
        apply_framing(self.serial, framing, self.spec)

    def _close_backend(self) -> None:
        self.serial.close()


def apply_framing(ser: serial.SerialBase, framing: Framing, spec: str) -> Framing:
    """Set ``framing`` on a pyserial port; returns the framing the port really took.

    The one framing fallback of the hal: a port that refuses the character format
    (a pseudo-terminal refuses 7E1, Linux ptys being 8N1 only) is set to 8N1 at the
    same rate and stop bits, which the IEC 62056-21 opening tolerates (its code does
    not look at the parity bit). A rate the port cannot take is a PortError."""
    def settings(f: Framing) -> dict:
        return {"baudrate": f.baud, "bytesize": f.bytesize, "parity": f.parity, "stopbits": f.stopbits}

    try:
        ser.apply_settings(settings(framing))
        return framing
    except (serial.SerialException, ValueError, OSError, termios.error) as exc:
        first = exc
    if (framing.bytesize, framing.parity) != (8, "N"):
        fallback = Framing(framing.baud, 8, "N", framing.stopbits)
        try:
            ser.apply_settings(settings(fallback))
            return fallback
        except (serial.SerialException, ValueError, OSError, termios.error):
            pass
    raise PortError(f"{spec}: cannot set {framing}: {first}") from first


class ThreadedSerialPort(Port):
    """A pyserial URL backend without a descriptor (``loop://``, ``rfc2217://``).

    One daemon thread blocks in ``read`` with a short timeout and passes what it
    gets to the loop; the firmware itself still sees only the asyncio API.
    """

    _POLL = 0.05

    def __init__(self, spec: str, ser: serial.SerialBase, framing: Framing) -> None:
        super().__init__(spec, framing)
        self.serial = ser
        ser.timeout = self._POLL
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _start_reading(self) -> None:
        if self._thread is not None or self._closed:
            return
        loop = self._loop
        assert loop is not None
        self._thread = threading.Thread(target=self._reader, args=(loop,),
                                        name=f"bijli-serial {self.spec}", daemon=True)
        self._thread.start()

    def _reader(self, loop: asyncio.AbstractEventLoop) -> None:
        while not self._stop.is_set():
            try:
                data = self.serial.read(max(1, self.serial.in_waiting))
            except (serial.SerialException, OSError):
                data = None  # closed under us or the far end went away
            if data is None:
                if not self._stop.is_set():
                    loop.call_soon_threadsafe(self._feed, b"")
                return
            if data:
                try:
                    loop.call_soon_threadsafe(self._feed, data)
                except RuntimeError:
                    return  # loop closed

    def _flush_some(self) -> None:
        try:
            self.serial.write(bytes(self._wbuf))
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"{self.spec}: write failed: {exc}") from exc
        self._wbuf.clear()

    def _start_writing(self) -> None:
        pass  # _flush_some hands everything to pyserial at once

    def _flush_blocking(self) -> None:
        self._flush_some()
        self.serial.flush()

    async def _drain_os(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.serial.flush)

    def _apply_framing(self, framing: Framing) -> None:
        apply_framing(self.serial, framing, self.spec)

    def _stop_io(self) -> None:
        self._stop.set()

    def _close_backend(self) -> None:
        self.serial.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def open_port(spec: str, framing: Framing = MODE_E_9600) -> Port:
    """Open the port a config string names.

    ``"pty"`` a fresh pseudo-terminal; ``"pty:PATH"`` the same with a stable
    symlink at PATH; anything else is a device path or a pyserial URL
    (``/dev/ttyUSB0``, ``loop://``, ``socket://host:port``, ``rfc2217://...``).
    """
    if not isinstance(spec, str) or not spec:
        raise BackendError(f"serial port spec {spec!r} is empty or not a string")
    if spec == "pty":
        return PtyPort.open(framing=framing)
    if spec.startswith("pty:"):
        link = spec[4:]
        if not link:
            raise BackendError("serial port spec 'pty:' needs a link path after the colon")
        return PtyPort.open(link, framing=framing)
    try:
        ser = serial.serial_for_url(
            spec, baudrate=framing.baud, bytesize=framing.bytesize,
            parity=framing.parity, stopbits=framing.stopbits, timeout=0,
        )
    except (serial.SerialException, ValueError, OSError) as exc:
        raise BackendError(f"cannot open serial port {spec!r}: {exc}") from exc
    try:
        ser.fileno()
    except (AttributeError, NotImplementedError, OSError, serial.SerialException):
        return ThreadedSerialPort(spec, ser, framing)
    return SerialPort(spec, ser, framing)


class SerialLine:
    """A blocking serial line for a client (a probe on ``/dev/ttyUSB0``, a meter's pty):
    ``send`` and wait until sent, ``recv`` with a time-out, ``switch`` the framing (the
    mode E baud change, with :func:`apply_framing`'s fallback). Failures are
    :class:`~hal.errors.LineError`."""

    _POLL = 0.05

    def __init__(self, url: str, baud: int = 9600, bytesize: int = 8, parity: str = "N"):
        try:
            self.ser = serial.serial_for_url(url, baudrate=baud, timeout=self._POLL)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LineError(f"cannot open {url}: {exc}") from None
        self.name = url
        try:
            apply_framing(self.ser, Framing(baud, bytesize, parity, 1), url)
        except PortError:
            self.ser.close()
            raise

    def send(self, data: bytes) -> None:
        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise LineError(f"{self.name}: write failed: {exc}") from exc

    def recv(self, timeout: float) -> bytes | None:
        """Bytes, or None when nothing came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                first = self.ser.read(1)
                if first:
                    return first + self.ser.read(self.ser.in_waiting)
                if time.monotonic() >= deadline:
                    return None
        except (serial.SerialException, OSError) as exc:
            raise LineError(f"{self.name}: read failed: {exc}") from exc

    def discard_input(self) -> None:
        """Drop what has arrived and not been read (a console's stale prompt)."""
        try:
            self.ser.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise LineError(f"{self.name}: {exc}") from exc

    def switch(self, framing) -> None:
        """Change baud and character format once what was sent has left (anything with
        baud, bytesize, parity and stopbits, such as a mode E BaudSwitch)."""
        self.ser.flush()
        apply_framing(self.ser, Framing(framing.baud, framing.bytesize, framing.parity, framing.stopbits), self.name)

    def close(self) -> None:
        self.ser.close()
