"""The gurux-dlms client, an independent DLMS implementation, driven over a real transport.

Used only as a peer in tests: it proves that a client we did not write talks to
our meter. Transports are byte pipes (a TCP socket, a pty) with send/recv; the
exchange loop below is the usual way to drive gurux's sans-IO client: send each
request frame, feed received bytes to ``getData`` until a whole reply is parsed,
and pull further blocks with ``receiverReady`` while the reply says more data.
"""

from __future__ import annotations

import socket
import time

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType


class TcpTransport:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("meter closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


class GuruxPeer:
    def __init__(self, transport, *, client_sap: int = 16, authentication=Authentication.NONE, password=None,
                 interface=InterfaceType.WRAPPER, server_address: int = 1, timeout: float = 10.0):
        self.transport = transport
        self.timeout = timeout
        self.client = GXDLMSClient(True, client_sap, server_address, authentication, password, interface)
        self.interface = interface

    # --- exchange ----------------------------------------------------------------------
    def _packet(self, frame, reply: GXReplyData) -> None:
        if frame is not None:
            self.transport.send(bytes(frame))
        buf = GXByteBuffer()
        deadline = time.monotonic() + self.timeout
        while True:
            if buf.size and self.client.getData(buf, reply, None):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("no complete reply from the meter")
            buf.set(self.transport.recv())

    def exchange(self, frames) -> GXReplyData:
        reply = GXReplyData()
        for frame in frames if isinstance(frames, list) else [frames]:
            reply.clear()
            self._packet(frame, reply)
            while reply.isMoreData():
                self._packet(None if reply.isStreaming() else self.client.receiverReady(reply), reply)
        return reply

    # --- conveniences --------------------------------------------------------------------
    def connect(self) -> None:
        if self.interface == InterfaceType.HDLC:
            reply = self.exchange(self.client.snrmRequest())
            self.client.parseUAResponse(reply.data)
        reply = self.exchange(self.client.aarqRequest())
        self.client.parseAareResponse(reply.data)
        if self.client.isAuthenticationRequired:
            for frame in self.client.getApplicationAssociationRequest():
                reply = self.exchange(frame)
                self.client.parseApplicationAssociationResponse(reply.data)

    def read(self, obj, attribute: int):
        reply = self.exchange(self.client.read(obj, attribute))
        return self.client.updateValue(obj, attribute, reply.value)

    def write(self, obj, attribute: int) -> None:
        self.exchange(self.client.write(obj, attribute))

    def method(self, obj, index: int, value, data_type):
        return self.exchange(self.client.method(obj, index, value, data_type))

    def release(self) -> None:
        try:
            self.exchange(self.client.releaseRequest())
        finally:
            if self.interface == InterfaceType.HDLC:
                try:
                    self.exchange(self.client.disconnectRequest())
                except Exception:
                    pass
