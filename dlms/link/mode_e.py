"""The IEC 62056-21 mode E opening that precedes HDLC on an optical port (clause 6.4.5
and annex E of IEC 62056-21, with IEC 62056-46 for what follows), sans-IO.

At 300 baud 7E1 the client sends the request message ``/?[address]!CR LF``; the
meter answers with its identification ``/XXXZ\\2ident CR LF`` (manufacturer id,
baud character Z, the escape ``\\2`` announcing mode E); the client sends the
option select ``ACK 2 Z 2 CR LF`` (protocol control 2 = HDLC, mode control 2 =
binary) and both sides switch to baud Z at 8N1, where the HDLC session starts.
Neither side here touches a port: a :class:`BaudSwitch` event tells the I/O shell
to change the line settings, after it has written what :meth:`data_to_send`
returned. In the 300-baud phase bit 7 of every received byte is cleared, so a
shell that cannot set 7E1 (a pty) still works. Garbage never raises.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from bijli.dlms.errors import ModeEError

ACK = 0x06
CRLF = b"\r\n"
# IEC 62056-21 baud rate characters for modes C and E
BAUD_RATES = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
_MAX_LINE = 64  # the longest request is 5 + 32 address characters; beyond that, garbage
_ADDRESS_CHARS = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz ")


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


@dataclass(frozen=True)
class BaudSwitch:
    """Set the line to these settings now (after writing any pending output)."""

    baud: int
    bytesize: int
    parity: str  # "E" or "N", as pyserial spells it
    stopbits: int


OPENING = BaudSwitch(300, 7, "E", 1)


@dataclass(frozen=True)
class RequestReceived:
    """Server: a request message for us arrived; the identification is queued."""

    address: str


@dataclass(frozen=True)
class Identification:
    """Client: the meter's identification message."""

    manufacturer: str
    baud_code: str
    mode_e: bool  # the ``\\2`` escape was present
    identification: str


@dataclass(frozen=True)
class OpeningFailed:
    """Client: no (usable) identification came back."""

    reason: str


class Phase(enum.Enum):
    IDLE = "waiting for a request at 300 baud"
    IDENTIFIED = "identification sent, waiting for the option select"
    HDLC = "switched; the HDLC session owns the line"


def _baud_switch(code: str) -> BaudSwitch:
    return BaudSwitch(BAUD_RATES[code], 8, "N", 1)


def _lines(buf: bytearray):
    """Yield complete CR LF terminated lines starting at '/' or ACK; drop what
    precedes them and bound what waits for its CR LF."""
    while True:
        starts = [i for i in (buf.find(b"/"), buf.find(bytes((ACK,)))) if i >= 0]
        if not starts:
            buf.clear()
            return
        start = min(starts)
        del buf[:start]
        end = buf.find(CRLF)
        if end < 0:
            if len(buf) > _MAX_LINE:
                del buf[0]
                continue
            return
        line = bytes(buf[:end])
        del buf[: end + 2]
        if len(line) <= _MAX_LINE:
            yield line


class _Endpoint:
    """What both ends share: the line settings, a receive buffer, the bytes to send
    and the events to report, h11 style."""

    def __init__(self) -> None:
        self.settings = OPENING
        self._buf = bytearray()
        self._out = bytearray()
        self._events: deque = deque()

    def _back_to_opening(self) -> None:
        """Forget a half-read line and go back to 300 baud 7E1 (queueing the switch)."""
        self._buf.clear()
        if self.settings != OPENING:
            self.settings = OPENING
            self._events.append(OPENING)

    def next_event(self):
        return self._events.popleft() if self._events else NEED_DATA

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out


class ModeEServer(_Endpoint):
    """The meter's side. ``device_address`` None answers only ``/?!``; otherwise
    ``/?!`` and ``/?<device_address>!`` (leading zeros not significant)."""

    def __init__(self, manufacturer: str = "BJL", identification: str = "bijli", baud_code: str = "5",
                 device_address: str | None = None, *, ack_timeout: float = 1.5,
                 hdlc_idle_timeout: float = 120.0) -> None:
        if len(manufacturer) != 3 or not manufacturer.isascii() or not manufacturer.isalpha():
            raise ModeEError(f"manufacturer id must be 3 letters, not {manufacturer!r}")
        if baud_code not in BAUD_RATES:
            raise ModeEError(f"baud code must be one of {''.join(BAUD_RATES)}, not {baud_code!r}")
        if not 0 < len(identification) <= 16 or not identification.isascii() or "/" in identification \
                or "!" in identification or not identification.isprintable():
            raise ModeEError(f"identification must be 1..16 printable ASCII characters, not {identification!r}")
        if device_address is not None and (
            not 0 < len(device_address) <= 32 or not set(device_address.encode()) <= _ADDRESS_CHARS
        ):
            raise ModeEError(f"device address must be 1..32 letters or digits, not {device_address!r}")
        self.manufacturer = manufacturer
        self.identification = identification
        self.baud_code = baud_code
        self.device_address = device_address
        self.ack_timeout = ack_timeout
        self.hdlc_idle_timeout = hdlc_idle_timeout
        super().__init__()
        self.phase = Phase.IDLE
        self._since = 0.0

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the line. In the HDLC phase they only count as activity
        (feed the same bytes to the HDLC connection)."""
        self.poll(now)
        if self.phase is Phase.HDLC:
            if data:
                self._since = now
            return
        self._buf += bytes(data).translate(_STRIP_PARITY)
        for line in _lines(self._buf):
            if line.startswith(b"/"):
                self._on_request(line, now)
            elif self.phase is Phase.IDENTIFIED:
                self._on_option_select(line, now)
                if self.phase is Phase.HDLC:
                    self._buf.clear()  # anything after CR LF was sent at the new rate
                    return

    def _on_request(self, line: bytes, now: float) -> None:
        if len(line) < 3 or line[1:2] != b"?" or not line.endswith(b"!"):
            return
        address = line[2:-1]
        if not set(address) <= _ADDRESS_CHARS:
            return
        text = address.decode("ascii")
        if text and (self.device_address is None or text.lstrip("0") != self.device_address.lstrip("0")):
            return  # addressed to another device on the bus: stay silent
        self._out += f"/{self.manufacturer}{self.baud_code}\\2{self.identification}\r\n".encode("ascii")
        self.phase = Phase.IDENTIFIED
        self._since = now
        self._events.append(RequestReceived(text))

    def _on_option_select(self, line: bytes, now: float) -> None:
        # ACK V Z Y: V protocol control (0 normal, 2 HDLC), Z baud, Y mode (2 binary = HDLC)
        if len(line) != 4 or line[1:2] not in (b"0", b"2") or line[3:4] != b"2":
            self.phase = Phase.IDLE  # data readout / programming mode: not offered here
            return
        code = chr(line[2])
        if code not in BAUD_RATES or BAUD_RATES[code] > BAUD_RATES[self.baud_code]:
            self.phase = Phase.IDLE  # a rate we never offered
            return
        self.phase = Phase.HDLC
        self._since = now
        self.settings = _baud_switch(code)
        self._events.append(self.settings)

    def poll(self, now: float) -> None:
        if self.phase is Phase.IDENTIFIED and now - self._since > self.ack_timeout:
            self.phase = Phase.IDLE
        elif self.phase is Phase.HDLC and now - self._since > self.hdlc_idle_timeout:
            self.reset()

    def reset(self) -> None:
        """Back to 300 baud 7E1 (the HDLC session ended): queues a BaudSwitch."""
        self.phase = Phase.IDLE
        self._back_to_opening()


_STRIP_PARITY = bytes(b & 0x7F for b in range(256))


class ClientPhase(enum.Enum):
    IDLE = "not started"
    REQUESTED = "request sent, waiting for the identification"
    HDLC = "switched"
    FAILED = "no usable identification"


class ModeEClient(_Endpoint):
    """Our client tool's side: :meth:`start` queues the request; on the
    identification it queues ``ACK 2 Z 2`` and emits :class:`Identification` then
    :class:`BaudSwitch` (write data_to_send() first, then switch)."""

    def __init__(self, device_address: str | None = None, *, max_baud_code: str = "6",
                 timeout: float = 2.0, retries: int = 2) -> None:
        if max_baud_code not in BAUD_RATES:
            raise ModeEError(f"baud code must be one of {''.join(BAUD_RATES)}")
        self.device_address = device_address
        self.max_baud_code = max_baud_code
        self.timeout = timeout
        self.retries = retries
        super().__init__()
        self.phase = ClientPhase.IDLE
        self._since = 0.0
        self._tries = 0

    def start(self, now: float) -> None:
        self._buf.clear()
        self._tries = 0
        self._send_request(now)

    def _send_request(self, now: float) -> None:
        self._out += f"/?{self.device_address or ''}!\r\n".encode("ascii")
        self.phase = ClientPhase.REQUESTED
        self._since = now
        self._tries += 1

    def receive_data(self, data: bytes, now: float) -> None:
        self.poll(now)
        if self.phase is not ClientPhase.REQUESTED:
            return
        self._buf += bytes(data).translate(_STRIP_PARITY)
        for line in _lines(self._buf):
            if not line.startswith(b"/") or line.startswith(b"/?") or len(line) < 5:
                continue  # an echo of our own request, or not an identification
            try:
                text = line.decode("ascii")
            except UnicodeDecodeError:
                continue
            maker, code, rest = text[1:4], text[4], text[5:]
            mode_e = rest.startswith("\\2")
            ident = Identification(maker, code, mode_e, rest[2:] if mode_e else rest)
            self._events.append(ident)
            if not mode_e or code not in BAUD_RATES:
                self.phase = ClientPhase.FAILED
                self._events.append(OpeningFailed("the meter does not offer mode E"))
                return
            chosen = min(code, self.max_baud_code, key=lambda c: BAUD_RATES[c])
            self._out += bytes((ACK,)) + f"2{chosen}2\r\n".encode("ascii")
            self.phase = ClientPhase.HDLC
            self.settings = _baud_switch(chosen)
            self._events.append(self.settings)
            self._buf.clear()
            return

    def poll(self, now: float) -> None:
        if self.phase is ClientPhase.REQUESTED and now - self._since > self.timeout:
            if self._tries > self.retries:
                self.phase = ClientPhase.FAILED
                self._events.append(OpeningFailed("no identification"))
            else:
                self._send_request(now)

    def reset(self) -> None:
        """Back to 300 baud 7E1 for a new opening."""
        self.phase = ClientPhase.IDLE
        self._back_to_opening()
