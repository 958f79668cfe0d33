"""The blocking TCP line of a one-shot DLMS client, and the ``HOST:PORT`` syntax of an endpoint.

A client that reads one meter and exits (``bijli read``, a test, the bench) sends a
request and waits for the answer: :class:`SocketLine` is that, one ``sendall`` and a
``recv`` with a time-out, the byte pipe under the IEC 62056-47 wrapper or HDLC over
TCP (the framing is the tools' transports', not ours: the hal knows sockets, not
protocols). It lives apart from :mod:`hal.tcp` (the meter's asyncio listeners) so a
client that only talks imports no event loop: start-up is most of a one-shot call's
cost (issue 16). Failures are :class:`~hal.errors.LineError`, a ConnectionError too.
"""

from __future__ import annotations

import socket

from bijli.hal.errors import LineError

__all__ = ["SocketLine", "parse_endpoint"]


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


class SocketLine:
    """A blocking TCP line for a client: ``send`` all, ``recv`` with a time-out.
    Failures are :class:`~hal.errors.LineError` (a ConnectionError too)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise LineError(f"cannot connect to {host}:{port}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.name = f"{host}:{port}"

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise LineError(f"{self.name}: send failed: {exc}") from exc

    def recv(self, timeout: float) -> bytes | None:
        """Bytes; None on time-out; raises LineError at end of stream."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except OSError as exc:
            raise LineError(f"{self.name}: receive failed: {exc}") from exc
        if not data:
            raise LineError(f"{self.name}: the peer closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()
