"""The IEC 62056-47 wrapper: DLMS over TCP or UDP.

Each APDU travels behind an 8-byte header: version (0x0001), source wPort,
destination wPort, and the APDU length, all 16-bit big-endian. The wPort is the
SAP: on the client's frames the source is the client SAP (16, 32, 48) and the
destination the server's logical device (1 = management).

:class:`WrapperConnection` is sans-IO in the style of h11: feed it whatever a
socket read returned (partial headers, several APDUs at once) with
:meth:`~WrapperConnection.receive_data`, pull :class:`ApduReceived` events with
:meth:`~WrapperConnection.next_event`, and frame outgoing APDUs with
:meth:`~WrapperConnection.send`. A bad header is a :class:`~dlms.errors.WrapperError`
and leaves the connection unusable, because after a bad length there is no
way to find the next frame boundary on a byte stream.

A meter reads one request per socket read almost always, so the connection keeps
that chunk as it came (no copy into a buffer) until a partial frame makes a
buffer necessary, and builds its events without the frozen dataclass's
``__init__``: the fields are already checked values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bijli.dlms.errors import LocalProtocolError, WrapperError
from bijli.dlms.link import NEED_DATA, NeedData

VERSION = 0x0001
HEADER = struct.Struct(">HHHH")
MAX_APDU = 0xFFFF




@dataclass(frozen=True)
class ApduReceived:
    source_wport: int
    destination_wport: int
    apdu: bytes


_new = object.__new__


def encode_frame(source_wport: int, destination_wport: int, apdu: bytes) -> bytes:
    if not 0 <= source_wport <= 0xFFFF or not 0 <= destination_wport <= 0xFFFF:
        raise LocalProtocolError("wPort out of range")
    if len(apdu) > MAX_APDU:
        raise LocalProtocolError(f"APDU of {len(apdu)} bytes does not fit one wrapper frame")
    return HEADER.pack(VERSION, source_wport, destination_wport, len(apdu)) + apdu


def decode_frame(frame: bytes) -> ApduReceived:
    """Decode exactly one whole wrapper frame (a UDP datagram)."""
    if len(frame) < HEADER.size:
        raise WrapperError(f"wrapper frame of {len(frame)} bytes is shorter than its header")
    version, src, dst, length = HEADER.unpack_from(frame)
    if version != VERSION:
        raise WrapperError(f"wrapper version {version:#06x}, expected {VERSION:#06x}")
    if len(frame) - HEADER.size != length:
        raise WrapperError(f"wrapper length {length} but {len(frame) - HEADER.size} bytes follow")
    return ApduReceived(src, dst, bytes(frame[HEADER.size :]))


class WrapperConnection:
    """One end of a wrapper byte stream (TCP). ``local_wport`` is our SAP."""

    def __init__(self, local_wport: int, remote_wport: int | None = None, *, max_apdu: int = MAX_APDU):
        self.local_wport = local_wport
        self.remote_wport = remote_wport
        self.max_apdu = max_apdu
        # unread bytes from _pos on: the chunk received as it came (bytes) while it is all
        # there is, a bytearray once bytes have to be kept for the next chunk
        self._buf: bytes | bytearray = b""
        self._pos = 0  # start of the first unread frame; consumed bytes are dropped lazily
        self._error: WrapperError | None = None

    def receive_data(self, data: bytes) -> None:
        buf = self._buf
        if self._pos >= len(buf):  # everything read: the chunk itself is the buffer
            self._buf = data if data.__class__ is bytes else bytes(data)
            self._pos = 0
            return
        if buf.__class__ is bytes:
            self._buf = buf = bytearray(buf)
        if self._pos and self._pos * 2 >= len(buf):
            # drop what was read in one go, so a read holding many small frames costs O(n)
            del buf[: self._pos]
            self._pos = 0
        buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as an event."""
        return len(self._buf) - self._pos

    def next_event(self) -> "ApduReceived | NeedData":
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < HEADER.size:
            return NEED_DATA
        version, src, dst, length = HEADER.unpack_from(buf, pos)
        if version != VERSION:
            self._error = WrapperError(f"wrapper version {version:#06x}, expected {VERSION:#06x}")
            raise self._error
        if length > self.max_apdu:
            self._error = WrapperError(f"wrapper APDU length {length} exceeds {self.max_apdu}")
            raise self._error
        start = pos + HEADER.size
        end = start + length
        if len(buf) < end:
            return NEED_DATA
        apdu = buf[start:end]
        self._pos = end
        # ApduReceived(src, dst, apdu), without the frozen __init__'s three object.__setattr__
        event = _new(ApduReceived)
        fields = event.__dict__
        fields["source_wport"] = src
        fields["destination_wport"] = dst
        fields["apdu"] = apdu if apdu.__class__ is bytes else bytes(apdu)
        return event

    def send(self, apdu: bytes, *, destination_wport: int | None = None) -> bytes:
        dst = self.remote_wport if destination_wport is None else destination_wport
        if dst is None:
            raise LocalProtocolError("no destination wPort: pass one or set remote_wport")
        return encode_frame(self.local_wport, dst, apdu)
