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
from gurux_dlms.enums import Authentication, InterfaceType, RequestTypes, Security
from gurux_dlms.secure import GXDLMSSecureClient

DEMO_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DEMO_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")


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


class SerialTransport:
    """A pseudo-terminal (or any pyserial URL) opened by path, as a probe is opened;
    ``mode_e`` runs the IEC 62056-21 opening first (with our own client code for
    the 300-baud part: gurux has no mode E)."""

    def __init__(self, path: str, *, mode_e: bool = False, timeout: float = 10.0):
        from bijli.hal.serial import SerialLine
        from bijli.tools.node.hdlc_transport import mode_e_open

        self.line = SerialLine(path, 300 if mode_e else 9600, 7 if mode_e else 8, "E" if mode_e else "N")
        if mode_e:
            mode_e_open(self.line, timeout)
        self.timeout = timeout

    def send(self, data: bytes) -> None:
        self.line.send(data)

    def recv(self) -> bytes:
        data = self.line.recv(self.timeout)
        if not data:
            raise TimeoutError("the meter said nothing")
        return data

    def close(self) -> None:
        self.line.close()


class GuruxPeer:
    """``security`` (a gurux Security value) makes a ciphered client with the given
    system title and keys (defaults: the demo meter's)."""

    def __init__(self, transport, *, client_sap: int = 16, authentication=Authentication.NONE, password=None,
                 interface=InterfaceType.WRAPPER, server_address: int = 1, timeout: float = 10.0,
                 security=None, system_title: bytes = b"GRX00001", block_cipher_key: bytes = DEMO_EK,
                 authentication_key: bytes = DEMO_AK, invocation_counter: int = 0):
        self.transport = transport
        self.timeout = timeout
        if security is None and authentication != Authentication.HIGH_GMAC:
            self.client = GXDLMSClient(True, client_sap, server_address, authentication, password, interface)
        else:
            self.client = GXDLMSSecureClient(True, client_sap, server_address, authentication, password, interface)
            c = self.client.ciphering
            c.security = Security.AUTHENTICATION_ENCRYPTION if security is None else security
            c.systemTitle = bytearray(system_title)
            c.blockCipherKey = bytearray(block_cipher_key)
            c.authenticationKey = bytearray(authentication_key)
            c.invocationCounter = invocation_counter
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
                if reply.isStreaming():
                    self._packet(None, reply)  # more blocks of this GBT window are on the way
                    continue
                if reply.moreData & RequestTypes.GBT:
                    self._number_gbt_ack()
                self._packet(self.client.receiverReady(reply), reply)
        return reply

    def _number_gbt_ack(self) -> None:
        """gurux-dlms (python) numbers its GBT acknowledgement from ``settings.blockNumber``,
        which it never sets, and checks each following block's block-number-ack against
        ``settings.blockIndex - 1``: keep both the way the Green Book counts, each
        acknowledgement being the next block this side sends."""
        settings = self.client.settings
        settings.blockNumber = settings.blockIndex

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

    def close(self) -> None:
        """Release the association and close the line, the line even when the release fails."""
        try:
            self.release()
        finally:
            self.transport.close()

    def release(self) -> None:
        try:
            self.exchange(self.client.releaseRequest())
        finally:
            if self.interface == InterfaceType.HDLC:
                try:
                    self.exchange(self.client.disconnectRequest())
                except Exception:
                    pass
