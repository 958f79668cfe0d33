"""HDLC frames of format type 3 as IEC 62056-46 (clause 6.4) lays them out, and the
SNRM/UA parameter field of clause 6.4.4.4.3.2: bytes <-> :class:`Frame`.

On the line a frame is ``7E | format (2) | destination | source | control |
[HCS (2) | information] | FCS (2) | 7E``. The format field is ``1010 S LLLLLLLLLLL``:
type 3, the segmentation bit S and the 11-bit length of everything between the
flags. Addresses are 1, 2 or 4 bytes, each byte carrying 7 address bits above an
extension bit that is 1 only in the last byte. The HCS (over format..control) is
present only when an information field follows. There is no byte stuffing in type
3: the length field, not a flag search, says where a frame ends, so
:class:`FrameReader` finds frames in a byte stream by length and checks, and
resynchronises on the next flag after a bad one. Decoding raises only
:class:`~dlms.errors.FrameError` (a :class:`~dlms.errors.DlmsError`).
"""

from __future__ import annotations

import enum
from binascii import crc_hqx
from dataclasses import dataclass

from bijli.dlms.errors import FrameError, HdlcError
from bijli.dlms.link.crc import FCS_BYTE, REVERSED, fcs16, fcs_from_state, reflected_state

FLAG = 0x7E
FORMAT_TYPE_3 = 0xA
MAX_FRAME_LENGTH = 0x7FF  # the 11-bit length field
MAX_INFO_FIELD = 2030  # what fits in one frame beside the largest header, HCS and FCS
SEGMENTATION_BIT = 0x0800
POLL_FINAL = 0x10

# IEC 62056-46 clause 6.4.3.2: the LLC header in front of every APDU in an I/UI frame.
LLC_REQUEST = b"\xe6\xe6\x00"  # client -> server (destination LSAP E6, source LSAP E6, quality 0)
LLC_RESPONSE = b"\xe6\xe7\x00"  # server -> client (source LSAP E7)


class FrameType(enum.Enum):
    """The frame kinds IEC 62056-46 uses (REJ and SREJ are not part of it)."""

    I = "I"  # noqa: E741 - the standard's name
    RR = "RR"
    RNR = "RNR"
    SNRM = "SNRM"
    DISC = "DISC"
    UA = "UA"
    DM = "DM"
    FRMR = "FRMR"
    UI = "UI"

    # members are singletons: hashing by identity is the same relation as Enum's hash of
    # the name, without a Python call for every dict and set lookup on the frame path
    __hash__ = object.__hash__


# control field of U frames with the P/F bit clear (ISO/IEC 13239 table 6)
_U_CODES = {
    FrameType.SNRM: 0x83,
    FrameType.DISC: 0x43,
    FrameType.UA: 0x63,
    FrameType.DM: 0x0F,
    FrameType.FRMR: 0x87,
    FrameType.UI: 0x03,
}
_U_BY_CODE = {code: kind for kind, code in _U_CODES.items()}
_S_CODES = {FrameType.RR: 0x01, FrameType.RNR: 0x05}
_SEQUENCED = (FrameType.I, FrameType.RR, FrameType.RNR)


@dataclass(frozen=True)
class HdlcAddress:
    """An HDLC address: ``logical`` is the upper address (the logical device on a
    server, the SAP on a client), ``physical`` the lower address of a server.

    ``size`` is the number of bytes on the line (1, 2 or 4). A 1-byte address has
    only the upper part. Left out, it is the smallest size that holds the values.
    """

    logical: int
    physical: int | None = None
    size: int = 0

    def __post_init__(self) -> None:
        size = self.size
        if size == 0:
            if self.physical is None:
                size = 1
            else:
                size = 2 if self.logical < 0x80 and self.physical < 0x80 else 4
            object.__setattr__(self, "size", size)
        if size == 1:
            ok = self.physical is None and 0 <= self.logical <= 0x7F
        elif size == 2:
            ok = self.physical is not None and 0 <= self.logical <= 0x7F and 0 <= self.physical <= 0x7F
        elif size == 4:
            ok = self.physical is not None and 0 <= self.logical <= 0x3FFF and 0 <= self.physical <= 0x3FFF
        else:
            ok = False
        if not ok:
            raise HdlcError(f"not an HDLC address: logical={self.logical} physical={self.physical} size={size}")

    def encode(self) -> bytes:
        if self.size == 1:
            return bytes(((self.logical << 1) | 1,))
        lo, hi = self.logical, self.physical
        assert hi is not None
        if self.size == 2:
            return bytes((lo << 1, (hi << 1) | 1))
        return bytes(((lo >> 7) << 1, (lo & 0x7F) << 1, (hi >> 7) << 1, ((hi & 0x7F) << 1) | 1))

    def matches(self, other: HdlcAddress) -> bool:
        """Same station, whatever the size: a frame that names only our upper
        address (a 1-byte address on a point-to-point optical port) is ours."""
        if self.logical != other.logical:
            return False
        return self.physical is None or other.physical is None or self.physical == other.physical


def client_address(sap: int) -> HdlcAddress:
    """The 1-byte client address for a client SAP (16 public, 32 reader, 48 utility)."""
    address = _CLIENT_ADDRESSES.get(sap)
    if address is None:
        address = HdlcAddress(sap, None, 1)  # validates: at most 0x7F such values are kept
        _CLIENT_ADDRESSES[sap] = address
    return address


_CLIENT_ADDRESSES: dict[int, HdlcAddress] = {}


@dataclass(frozen=True)
class HdlcParameters:
    """The negotiable parameters of clause 6.4.4.4.3.2, from one side's viewpoint:
    what that side transmits (``*_tx``) and what it can receive (``*_rx``)."""

    max_info_tx: int = 128
    max_info_rx: int = 128
    window_tx: int = 1
    window_rx: int = 1

    def __post_init__(self) -> None:
        for name in ("max_info_tx", "max_info_rx"):
            if not 1 <= getattr(self, name) <= MAX_FRAME_LENGTH:
                raise HdlcError(f"{name}={getattr(self, name)} outside 1..{MAX_FRAME_LENGTH}")
        for name in ("window_tx", "window_rx"):
            if not 1 <= getattr(self, name) <= 7:
                raise HdlcError(f"{name}={getattr(self, name)} outside 1..7")

    def seen_from_peer(self) -> HdlcParameters:
        return HdlcParameters(self.max_info_rx, self.max_info_tx, self.window_rx, self.window_tx)


DEFAULT_PARAMETERS = HdlcParameters()

_PARAM_FORMAT = 0x81  # format identifier
_PARAM_GROUP = 0x80  # HDLC parameter group identifier
_P_MAX_INFO_TX, _P_MAX_INFO_RX, _P_WINDOW_TX, _P_WINDOW_RX = 0x05, 0x06, 0x07, 0x08


def encode_parameters(p: HdlcParameters) -> bytes:
    """The SNRM/UA information field. Info lengths take 1 or 2 bytes as needed;
    windows take 4 bytes, the form the standard's examples and most meters use."""
    body = bytearray()
    for pid, value in ((_P_MAX_INFO_TX, p.max_info_tx), (_P_MAX_INFO_RX, p.max_info_rx)):
        n = 1 if value < 0x100 else 2
        body += bytes((pid, n)) + value.to_bytes(n, "big")
    for pid, value in ((_P_WINDOW_TX, p.window_tx), (_P_WINDOW_RX, p.window_rx)):
        body += bytes((pid, 4)) + value.to_bytes(4, "big")
    return bytes((_PARAM_FORMAT, _PARAM_GROUP, len(body))) + bytes(body)


def decode_parameters(info: bytes, default: HdlcParameters = DEFAULT_PARAMETERS) -> HdlcParameters:
    """Read an SNRM/UA information field; absent parameters take ``default``.
    An empty field means all defaults (a client that sends a bare SNRM)."""
    if not info:
        return default
    if len(info) < 3 or info[0] != _PARAM_FORMAT or info[1] != _PARAM_GROUP:
        raise FrameError(f"not an HDLC parameter field: {bytes(info[:3]).hex()}")
    end = 3 + info[2]
    if end != len(info):
        raise FrameError(f"parameter group length {info[2]} but {len(info) - 3} bytes follow")
    values = {}
    p = 3
    while p < end:
        if p + 2 > end:
            raise FrameError("parameter field ends inside a parameter header")
        pid, n = info[p], info[p + 1]
        if not 1 <= n <= 4 or p + 2 + n > end:
            raise FrameError(f"parameter {pid:#04x} has a bad length {n}")
        values[pid] = int.from_bytes(info[p + 2 : p + 2 + n], "big")
        p += 2 + n
    # a peer that offers more than a frame or the modulo-8 count can carry is
    # satisfied with the most they can carry; zero is no offer at all
    def info(pid: int, fallback: int) -> int:
        return min(values.get(pid, fallback), MAX_FRAME_LENGTH)

    def window(pid: int, fallback: int) -> int:
        return min(values.get(pid, fallback), 7)

    try:
        return HdlcParameters(
            info(_P_MAX_INFO_TX, default.max_info_tx),
            info(_P_MAX_INFO_RX, default.max_info_rx),
            window(_P_WINDOW_TX, default.window_tx),
            window(_P_WINDOW_RX, default.window_rx),
        )
    except HdlcError as exc:
        raise FrameError(f"unusable HDLC parameter: {exc}") from None


@dataclass(frozen=True)
class Frame:
    """One HDLC frame. ``send_sequence`` is N(S) (I frames only), ``receive_sequence``
    N(R) (I, RR, RNR); both are 0 on frames that do not carry them."""

    kind: FrameType
    destination: HdlcAddress
    source: HdlcAddress
    info: bytes = b""
    poll_final: bool = True
    send_sequence: int = 0
    receive_sequence: int = 0
    segmented: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.info, bytes):
            object.__setattr__(self, "info", bytes(self.info))
        if not 0 <= self.send_sequence <= 7 or not 0 <= self.receive_sequence <= 7:
            raise HdlcError("N(S) and N(R) count modulo 8")
        if self.send_sequence and self.kind is not FrameType.I:
            raise HdlcError(f"{self.kind.value} frames carry no N(S)")
        if self.receive_sequence and self.kind not in _SEQUENCED:
            raise HdlcError(f"{self.kind.value} frames carry no N(R)")

    @property
    def control(self) -> int:
        pf = POLL_FINAL if self.poll_final else 0
        if self.kind is FrameType.I:
            return (self.receive_sequence << 5) | pf | (self.send_sequence << 1)
        if self.kind in _S_CODES:
            return (self.receive_sequence << 5) | pf | _S_CODES[self.kind]
        return _U_CODES[self.kind] | pf


def encode_frame(frame: Frame) -> bytes:
    """The frame with its flags, HCS and FCS, ready for the line."""
    return frame_bytes(frame.destination.encode() + frame.source.encode(), frame.control, frame.info,
                       frame.segmented)


def frame_bytes(addresses: bytes, control: int, info: bytes, segmented: bool = False) -> bytes:
    """A frame from its encoded addresses (destination then source) and control byte:
    what :func:`encode_frame` does once the addresses are known, for a link that sends
    many frames between the same two stations without building a :class:`Frame` each."""
    length = 2 + len(addresses) + 1 + 2 + (len(info) + 2 if info else 0)
    if length > MAX_FRAME_LENGTH:
        raise HdlcError(f"frame of {length} bytes exceeds the 11-bit length field")
    fmt = (FORMAT_TYPE_3 << 12) | (SEGMENTATION_BIT if segmented else 0) | length
    body = bytearray(fmt.to_bytes(2, "big"))
    body += addresses
    body.append(control)
    if info:
        body += fcs16(body).to_bytes(2, "little")
        body += info
    body += fcs16(body).to_bytes(2, "little")
    return b"\x7e" + bytes(body) + b"\x7e"


class FrameEncoder:
    """Frames between one pair of stations: what :func:`frame_bytes` gives, with the
    header of each (format, addresses, control, HCS) made once and kept.

    A link sends the same few headers again and again (the information length and
    N(S)/N(R) vary, the addresses do not), so the header bytes and the CRC state
    after them are kept per (format, control) value; a frame then costs one CRC over
    its information field, continued from that state, and one join. At most
    ``KEPT`` headers are kept (a link with many lengths starts the cache again).
    """

    KEPT = 64

    __slots__ = ("addresses", "_headers")

    def __init__(self, addresses: bytes) -> None:
        self.addresses = bytes(addresses)  # destination then source, encoded
        self._headers: dict[int, tuple[bytes, int]] = {}

    def encode(self, control: int, info: bytes, segmented: bool = False) -> bytes:
        length = 2 + len(self.addresses) + 1 + 2 + (len(info) + 2 if info else 0)
        if length > MAX_FRAME_LENGTH:
            raise HdlcError(f"frame of {length} bytes exceeds the 11-bit length field")
        key = (((FORMAT_TYPE_3 << 12) | (SEGMENTATION_BIT if segmented else 0) | length) << 8) | control
        cached = self._headers.get(key)
        if cached is None:
            cached = self._header(key, bool(info))
        head, state = cached
        if info:
            # reflected_state(info, state) and fcs_from_state, inline: this runs once per frame
            state = crc_hqx(info.translate(REVERSED), state)
            return b"".join((head, info, bytes((FCS_BYTE[state >> 8], FCS_BYTE[state & 0xFF], FLAG))))
        return head  # a frame without information field is all header, and kept whole

    def _header(self, key: int, with_info: bool) -> tuple[bytes, int]:
        body = (key >> 8).to_bytes(2, "big") + self.addresses + bytes((key & 0xFF,))
        body += fcs_from_state(reflected_state(body))  # the HCS, or the FCS of a frame without information
        if len(self._headers) >= self.KEPT:
            self._headers.clear()
        if with_info:  # the FCS goes on over the HCS and the information field
            entry = (b"\x7e" + body, reflected_state(body))
        else:
            entry = (b"\x7e" + body + b"\x7e", 0)
        self._headers[key] = entry
        return entry


class _Truncated(FrameError):
    """The header runs past the bytes at hand: bad in a whole frame, but in a
    stream it may only mean that the rest has not arrived yet."""


def _decode_address(b, p: int, end: int) -> tuple[HdlcAddress, int]:
    start = p
    while True:
        if p >= end:
            raise _Truncated("frame ends inside an address")
        if b[p] & 1:
            break
        p += 1
        if p - start >= 4:
            raise FrameError("address longer than 4 bytes")
    p += 1
    raw = bytes(b[start:p])
    address = _ADDRESSES.get(raw)
    if address is not None:
        return address, p
    n = len(raw)
    if n == 1:
        address = HdlcAddress(raw[0] >> 1, None, 1)
    elif n == 2:
        address = HdlcAddress(raw[0] >> 1, raw[1] >> 1, 2)
    elif n == 4:
        address = HdlcAddress(((raw[0] >> 1) << 7) | (raw[1] >> 1), ((raw[2] >> 1) << 7) | (raw[3] >> 1), 4)
    else:
        raise FrameError(f"address of {n} bytes (only 1, 2 or 4 are allowed)")
    if len(_ADDRESSES) >= _ADDRESSES_KEPT:
        _ADDRESSES.clear()  # a line full of strangers cannot grow it without bound
    _ADDRESSES[raw] = address
    return address, p


# every frame names the same two stations: their decoded addresses (frozen values) are kept
_ADDRESSES: dict[bytes, HdlcAddress] = {}
_ADDRESSES_KEPT = 256


def _decode_control(c: int) -> tuple[FrameType, int, int, bool]:
    pf = bool(c & POLL_FINAL)
    if not c & 1:
        return FrameType.I, (c >> 1) & 7, c >> 5, pf
    if c & 3 == 1:
        s = (c >> 2) & 3
        if s == 0:
            return FrameType.RR, 0, c >> 5, pf
        if s == 1:
            return FrameType.RNR, 0, c >> 5, pf
        raise FrameError(f"control field {c:#04x}: REJ/SREJ are not used by IEC 62056-46")
    kind = _U_BY_CODE.get(c & ~POLL_FINAL)
    if kind is None:
        raise FrameError(f"unknown control field {c:#04x}")
    return kind, 0, 0, pf


def _header_end(b, end: int) -> int:
    """Index just past the control byte of the body ``b`` (format at 0)."""
    p = _decode_address(b, 2, end)[1]
    p = _decode_address(b, p, end)[1]
    if p >= end:
        raise _Truncated("frame ends before its control field")
    return p + 1


def _decode_body(b: bytes, hcs_checked: bool = False) -> Frame:
    """The bytes between the flags: format field through FCS (``hcs_checked``: the
    reader has already checked the HCS of this very header)."""
    n = len(b)
    if n < 7:
        raise FrameError(f"frame body of {n} bytes is shorter than the minimum 7")
    fmt = (b[0] << 8) | b[1]
    if fmt >> 12 != FORMAT_TYPE_3:
        raise FrameError(f"format type {fmt >> 12:#x}, expected 0xA")
    if fmt & MAX_FRAME_LENGTH != n:
        raise FrameError(f"length field {fmt & MAX_FRAME_LENGTH} but {n} bytes between the flags")
    p = 2
    dest, p = _decode_address(b, p, n)
    src, p = _decode_address(b, p, n)
    if p >= n:
        raise FrameError("frame ends before its control field")
    control = b[p]
    p += 1
    if n == p + 2:
        info = b""
    elif n >= p + 5:
        if not hcs_checked and fcs16(b[:p]) != b[p] | (b[p + 1] << 8):
            raise FrameError("bad HCS")
        info = bytes(b[p + 2 : n - 2])
    else:
        raise FrameError("length leaves room for an HCS but no information field")
    if fcs16(b[: n - 2]) != b[n - 2] | (b[n - 1] << 8):
        raise FrameError("bad FCS")
    kind, ns, nr, pf = _decode_control(control)
    # every field is checked above and _decode_control gives N(S) only to I frames and N(R)
    # only to I/RR/RNR, as 3-bit fields: the frame is filled in directly instead of being
    # validated again by __post_init__ (a frozen dataclass's __init__ is the slow part)
    frame = _new_frame(Frame)
    frame.__dict__.update(kind=kind, destination=dest, source=src, info=info, poll_final=pf, send_sequence=ns,
                          receive_sequence=nr, segmented=bool(fmt & SEGMENTATION_BIT))
    return frame


_new_frame = object.__new__


def decode_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Decode exactly one frame, opening and closing flags included."""
    data = bytes(data)
    if len(data) < 2 or data[0] != FLAG or data[-1] != FLAG:
        raise FrameError("a frame starts and ends with the flag 0x7E")
    return _decode_body(data[1:-1])


class FrameReader:
    """Splits a byte stream into frames. :meth:`next` returns a :class:`Frame`, a
    :class:`~dlms.errors.FrameError` (returned, not raised: the bad frame is gone
    and reading goes on), or ``None`` when more bytes are needed.

    The closing flag of one frame may be the opening flag of the next (clause
    6.4.1), so it is left in the buffer. The HCS is checked as soon as the header
    is in, so a garbage header does not make the reader wait for up to 2047 bytes
    of a frame that never was.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def discard_partial(self) -> None:
        """Forget a partly received frame (the caller saw the inter-octet time-out)."""
        self._buf.clear()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def between_frames(self) -> bool:
        """Nothing of a frame is held: the buffer is empty or only the flag that closed
        the last frame (kept in case it opens the next one, which a frame that brings
        its own opening flag makes redundant)."""
        buf = self._buf
        return not buf or (len(buf) == 1 and buf[0] == FLAG)

    def next(self) -> Frame | FrameError | None:
        buf = self._buf
        while True:
            i = buf.find(FLAG)
            if i < 0:
                buf.clear()
                return None
            if i:
                del buf[:i]
            if len(buf) < 3:
                return None
            if buf[1] == FLAG or buf[1] >> 4 != FORMAT_TYPE_3:
                # a run of flags, or a closing flag followed by something else
                del buf[0]
                continue
            length = ((buf[1] << 8) | buf[2]) & MAX_FRAME_LENGTH
            avail = len(buf) - 1  # body bytes we have, and maybe more
            try:
                if length < 7:
                    raise FrameError(f"length field {length} is shorter than the minimum 7")
                body_view = buf[1 : 1 + min(avail, length)]
                p = _header_end(body_view, len(body_view))
                if length != p + 2 and length >= p + 5:
                    if avail < p + 2:
                        return None
                    if fcs16(body_view[:p]) != body_view[p] | (body_view[p + 1] << 8):
                        raise FrameError("bad HCS")
            except _Truncated as exc:
                if avail < length:
                    return None  # the header is still arriving
                del buf[0]
                return exc
            except FrameError as exc:
                del buf[0]
                return exc
            if avail < length + 1:
                return None
            if buf[1 + length] != FLAG:
                del buf[0]
                return FrameError("no closing flag where the length field says the frame ends")
            body = bytes(buf[1 : 1 + length])
            del buf[: 1 + length]  # keep the closing flag: it may open the next frame
            try:
                return _decode_body(body, hcs_checked=True)
            except FrameError as exc:
                return exc
