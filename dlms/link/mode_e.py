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

Each side is a state machine written as a table, as the HDLC link's:
:data:`SERVER_TABLE` and :data:`CLIENT_TABLE` map ``(phase, input) -> (action,
next phase)`` for every pair. Received lines, calls and the passing of time are
first classified into an input (a request for this meter or for another, an
option select we offer or not, a time-out with retries left or not); the table
then says what to do and where to go.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from bijli.dlms.errors import ModeEError
from bijli.dlms.link import NEED_DATA

ACK = 0x06
CRLF = b"\r\n"
# IEC 62056-21 baud rate characters for modes C and E
BAUD_RATES = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
_MAX_LINE = 64  # the longest request is 5 + 32 address characters; beyond that, garbage
_ADDRESS_CHARS = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz ")




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


class ServerInput(enum.Enum):
    REQUEST = "a request message for this meter"
    FOREIGN_REQUEST = "a request for another device on the bus, or a malformed one"
    HDLC_SELECT = "option select: HDLC in binary mode at a rate we offer"
    OTHER_SELECT = "option select we do not offer (readout, programming, another rate)"
    TIMEOUT = "the phase's timer ran out"
    ACTIVITY = "bytes on the line in the HDLC phase"
    RESET = "reset()"


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
                self._fire(ServerInput.ACTIVITY, now)
            return
        self._buf += bytes(data).translate(_STRIP_PARITY)
        for line in _lines(self._buf):
            event, arg = self._classify(line)
            if event is not None:
                self._fire(event, now, arg)
            if self.phase is Phase.HDLC:
                return  # the switch dropped what followed CR LF: it was sent at the new rate

    def poll(self, now: float) -> None:
        limit = {Phase.IDENTIFIED: self.ack_timeout, Phase.HDLC: self.hdlc_idle_timeout}.get(self.phase)
        if limit is not None and now - self._since > limit:
            self._fire(ServerInput.TIMEOUT, now)

    def reset(self) -> None:
        """Back to 300 baud 7E1 (the HDLC session ended): queues a BaudSwitch."""
        self._fire(ServerInput.RESET, self._since)

    # --- the machine -------------------------------------------------------------------
    def _classify(self, line: bytes) -> tuple[ServerInput | None, Any]:
        """The input a received line is, with what its action needs (None: not a line
        of the opening at all)."""
        if line.startswith(b"/"):
            if len(line) < 3 or line[1:2] != b"?" or not line.endswith(b"!"):
                return ServerInput.FOREIGN_REQUEST, None
            address = line[2:-1]
            if not set(address) <= _ADDRESS_CHARS:
                return ServerInput.FOREIGN_REQUEST, None
            text = address.decode("ascii")
            if text and (self.device_address is None or text.lstrip("0") != self.device_address.lstrip("0")):
                return ServerInput.FOREIGN_REQUEST, None  # addressed to another device on the bus
            return ServerInput.REQUEST, text
        if line[:1] != bytes((ACK,)):
            return None, None
        # ACK V Z Y: V protocol control (0 normal, 2 HDLC), Z baud, Y mode (2 binary = HDLC)
        if len(line) != 4 or line[1:2] not in (b"0", b"2") or line[3:4] != b"2":
            return ServerInput.OTHER_SELECT, None  # data readout / programming mode: not offered here
        code = chr(line[2])
        if code not in BAUD_RATES or BAUD_RATES[code] > BAUD_RATES[self.baud_code]:
            return ServerInput.OTHER_SELECT, None  # a rate we never offered
        return ServerInput.HDLC_SELECT, code

    def _fire(self, event: ServerInput, now: float, arg: Any = None) -> None:
        action, next_phase = SERVER_TABLE[(self.phase, event)]
        action(self, now, arg)
        self.phase = next_phase

    # actions (referenced by SERVER_TABLE)
    def _ignore(self, now: float, arg: Any) -> None:
        pass

    def _identify(self, now: float, address: str) -> None:
        self._out += f"/{self.manufacturer}{self.baud_code}\\2{self.identification}\r\n".encode("ascii")
        self._since = now
        self._events.append(RequestReceived(address))

    def _switch(self, now: float, code: str) -> None:
        self._since = now
        self._buf.clear()  # anything after CR LF was sent at the new rate
        self.settings = _baud_switch(code)
        self._events.append(self.settings)

    def _note_activity(self, now: float, arg: Any) -> None:
        self._since = now

    def _reopen(self, now: float, arg: Any) -> None:
        self._back_to_opening()


_STRIP_PARITY = bytes(b & 0x7F for b in range(256))


class ClientPhase(enum.Enum):
    IDLE = "not started"
    REQUESTED = "request sent, waiting for the identification"
    HDLC = "switched"
    FAILED = "no usable identification"


class ClientInput(enum.Enum):
    START = "start()"
    MODE_E_OFFERED = "an identification offering mode E"
    NO_MODE_E = "an identification without mode E, or with a baud character we do not know"
    RETRY = "no identification in time, retries left"
    GIVE_UP = "no identification in time, retries spent"
    RESET = "reset()"


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
        self._fire(ClientInput.START, now)

    def receive_data(self, data: bytes, now: float) -> None:
        self.poll(now)
        if self.phase is not ClientPhase.REQUESTED:
            return  # nothing is expected: what comes now is not ours to read
        self._buf += bytes(data).translate(_STRIP_PARITY)
        for line in _lines(self._buf):
            ident = _identification(line)
            if ident is None:
                continue  # an echo of our own request, or not an identification
            usable = ident.mode_e and ident.baud_code in BAUD_RATES
            self._fire(ClientInput.MODE_E_OFFERED if usable else ClientInput.NO_MODE_E, now, ident)
            return

    def poll(self, now: float) -> None:
        if self.phase is ClientPhase.REQUESTED and now - self._since > self.timeout:
            self._fire(ClientInput.GIVE_UP if self._tries > self.retries else ClientInput.RETRY, now)

    def reset(self) -> None:
        """Back to 300 baud 7E1 for a new opening."""
        self._fire(ClientInput.RESET, self._since)

    # --- the machine -------------------------------------------------------------------
    def _fire(self, event: ClientInput, now: float, arg: Any = None) -> None:
        action, next_phase = CLIENT_TABLE[(self.phase, event)]
        action(self, now, arg)
        self.phase = next_phase

    # actions (referenced by CLIENT_TABLE)
    def _ignore(self, now: float, arg: Any) -> None:
        pass

    def _first_request(self, now: float, arg: Any) -> None:
        self._buf.clear()
        self._tries = 0
        self._send_request(now, arg)

    def _send_request(self, now: float, arg: Any) -> None:
        self._out += f"/?{self.device_address or ''}!\r\n".encode("ascii")
        self._since = now
        self._tries += 1

    def _select(self, now: float, ident: Identification) -> None:
        self._events.append(ident)
        chosen = min(ident.baud_code, self.max_baud_code, key=lambda c: BAUD_RATES[c])
        self._out += bytes((ACK,)) + f"2{chosen}2\r\n".encode("ascii")
        self.settings = _baud_switch(chosen)
        self._events.append(self.settings)
        self._buf.clear()

    def _not_mode_e(self, now: float, ident: Identification) -> None:
        self._events.append(ident)
        self._events.append(OpeningFailed("the meter does not offer mode E"))

    def _no_answer(self, now: float, arg: Any) -> None:
        self._events.append(OpeningFailed("no identification"))

    def _reopen(self, now: float, arg: Any) -> None:
        self._back_to_opening()


def _identification(line: bytes) -> Identification | None:
    """The identification message in ``line``, or None when it is none (our own echo too)."""
    if not line.startswith(b"/") or line.startswith(b"/?") or len(line) < 5:
        return None
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None
    maker, code, rest = text[1:4], text[4], text[5:]
    mode_e = rest.startswith("\\2")
    return Identification(maker, code, mode_e, rest[2:] if mode_e else rest)


# --- the tables ----------------------------------------------------------------------------
def _complete(rules: dict, phases, events, default_of) -> dict:
    """Every pair not written out does nothing and stays (the input is not for this phase)."""
    return {(p, e): rules.get((p, e), (default_of(p, e), p)) for p in phases for e in events}


_P, _SI, _M = Phase, ServerInput, ModeEServer
#: (phase, input) -> (action, next phase), the meter's side.
SERVER_TABLE: dict[tuple[Phase, ServerInput], tuple[Callable, Phase]] = _complete(
    {
        (_P.IDLE, _SI.REQUEST): (_M._identify, _P.IDENTIFIED),
        (_P.IDLE, _SI.RESET): (_M._reopen, _P.IDLE),
        (_P.IDENTIFIED, _SI.REQUEST): (_M._identify, _P.IDENTIFIED),  # asked again: answered again
        (_P.IDENTIFIED, _SI.HDLC_SELECT): (_M._switch, _P.HDLC),
        (_P.IDENTIFIED, _SI.OTHER_SELECT): (_M._ignore, _P.IDLE),
        (_P.IDENTIFIED, _SI.TIMEOUT): (_M._ignore, _P.IDLE),  # no option select in time
        (_P.IDENTIFIED, _SI.RESET): (_M._reopen, _P.IDLE),
        (_P.HDLC, _SI.ACTIVITY): (_M._note_activity, _P.HDLC),
        (_P.HDLC, _SI.TIMEOUT): (_M._reopen, _P.IDLE),  # the line went quiet: listen at 300 baud again
        (_P.HDLC, _SI.RESET): (_M._reopen, _P.IDLE),
    },
    tuple(Phase), tuple(ServerInput), lambda p, e: _M._ignore,
)

_C, _CI, _K = ClientPhase, ClientInput, ModeEClient
#: (phase, input) -> (action, next phase), the client's side.
CLIENT_TABLE: dict[tuple[ClientPhase, ClientInput], tuple[Callable, ClientPhase]] = _complete(
    {
        **{(p, _CI.START): (_K._first_request, _C.REQUESTED) for p in ClientPhase},
        **{(p, _CI.RESET): (_K._reopen, _C.IDLE) for p in ClientPhase},
        (_C.REQUESTED, _CI.MODE_E_OFFERED): (_K._select, _C.HDLC),
        (_C.REQUESTED, _CI.NO_MODE_E): (_K._not_mode_e, _C.FAILED),
        (_C.REQUESTED, _CI.RETRY): (_K._send_request, _C.REQUESTED),
        (_C.REQUESTED, _CI.GIVE_UP): (_K._no_answer, _C.FAILED),
    },
    tuple(ClientPhase), tuple(ClientInput), lambda p, e: _K._ignore,
)
del _P, _SI, _M, _C, _CI, _K
