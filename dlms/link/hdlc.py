"""The HDLC data link of IEC 62056-46 (normal response mode, frame format type 3)
as a sans-IO connection object in the style of h11: bytes in, events out, bytes to
send; no sockets, no threads, no clock reads (the caller passes ``now``).

Theory of operation. The client is the primary station, the server the
secondary. In NRM the secondary transmits only when polled: the client sends up
to ``window`` frames and sets the P bit on the last; the server answers with up to
its window of frames and sets the F bit on the last; then the turn is the
client's again (clauses 6.4.4.4, 6.4.4.8). N(S)/N(R) count modulo 8. Recovery is
go-back-N driven by the poll: when a side gets the turn, the peer's N(R) tells it
which of its frames arrived; any it sent that are still unacknowledged were lost
and go again, before new ones. Frames that fail the HCS/FCS are dropped silently
(a :class:`FrameDropped` event is the only trace), out-of-sequence I frames
(duplicates and frames after a gap) are dropped and re-acknowledged, never
delivered twice, and the client resends its last poll when no F comes within
``response_timeout``. An APDU larger than the negotiated maximum information
field travels as several I frames with the segmentation bit set on all but the
last; the receiver polls for the rest with RR.

The state rules are data: :data:`SERVER_TABLE` and :data:`CLIENT_TABLE` map
``(state, trigger)`` to ``(action, next_state)`` for every pair, the action being
a reference to one of the connection's ``_do_*`` methods; the connection only
looks the pair up, runs the action and moves to the next state (an action that
refuses raises, and the state stays). Responses to a poll are built
lazily in :meth:`HdlcConnection.data_to_send`, so a server that answers an
:class:`ApduReceived` with :meth:`~HdlcConnection.send_apdu` before collecting
its output sends the answer in the same turn instead of a bare RR.

The data path is written for its common case, since a meter runs it for every
request. A server in NRM that receives exactly one whole, in-sequence I frame from
its client (the request of a GET, a SET, an ACTION) takes it in one pass
(:meth:`HdlcConnection._receive_whole_i`): the header is compared with the one
the link's SNRM used, HCS and FCS are checked against the CRC residue, the table's
(NRM, I) entry is looked up and its effect applied without building a
:class:`Frame`; everything else takes the general path (the reader, then the
table). Answers are framed by a per-link :class:`FrameEncoder` that keeps each
header with its HCS, so a frame costs one CRC over its information field.
"""

from __future__ import annotations

import enum
from binascii import crc_hqx
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from bijli.dlms.errors import DlmsError, FrameError, HdlcError, LocalProtocolError
from bijli.dlms.link import NEED_DATA, NeedData
from bijli.dlms.link.crc import RESIDUE, REVERSED
from bijli.dlms.link.hdlc_frame import (
    DEFAULT_PARAMETERS,
    FLAG,
    LLC_REQUEST,
    LLC_RESPONSE,
    MAX_FRAME_LENGTH,
    MAX_INFO_FIELD,
    POLL_FINAL,
    Frame,
    FrameEncoder,
    FrameReader,
    FrameType,
    HdlcAddress,
    HdlcParameters,
    client_address,
    decode_frame,
    decode_parameters,
    encode_frame,
    encode_parameters,
)

_client_addr = client_address  # the constructor's keyword of the same name shadows it

__all__ = [
    "CLIENT_TABLE",
    "DEFAULT_PARAMETERS",
    "NEED_DATA",
    "SERVER_TABLE",
    "ApduReceived",
    "Connected",
    "Disconnected",
    "Frame",
    "FrameDropped",
    "FrameReader",
    "FrameType",
    "HdlcAddress",
    "HdlcConnection",
    "HdlcParameters",
    "HdlcTrigger",
    "Rejected",
    "Role",
    "State",
    "UiReceived",
    "client_address",
    "decode_frame",
    "decode_parameters",
    "encode_frame",
    "encode_parameters",
]




# --- events ------------------------------------------------------------------------
@dataclass(frozen=True)
class Connected:
    """SNRM accepted (server: UA already queued) or UA received (client).
    ``parameters`` are the negotiated ones from this side's viewpoint. On a server,
    a second Connected without a Disconnected between means the client reset the
    link with a new SNRM: whatever was above it (the association) is gone."""

    client_address: int
    parameters: HdlcParameters


@dataclass(frozen=True)
class ApduReceived:
    """A whole APDU, reassembled from its segments, LLC header removed."""

    client_address: int
    apdu: bytes


@dataclass(frozen=True)
class UiReceived:
    """An unnumbered information frame (no sequence, no acknowledgement)."""

    client_address: int
    info: bytes


@dataclass(frozen=True)
class Disconnected:
    """The link is down: ``reason`` is "DISC", "DM", "FRMR", "inactivity timeout"
    or "no response"."""

    client_address: int
    reason: str


@dataclass(frozen=True)
class Rejected:
    """Client only: the server answered the SNRM with DM (or FRMR)."""

    reason: str


@dataclass(frozen=True)
class FrameDropped:
    """A frame was discarded (bad HCS/FCS, bad length, bad N(R), ...): diagnostics only."""

    reason: str


Event = Connected | ApduReceived | UiReceived | Disconnected | Rejected | FrameDropped


# --- states and triggers ------------------------------------------------------------------
class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"

    # members are singletons: hashing by identity is the same relation as Enum's hash of
    # the name, without a Python call for every lookup in the state tables
    __hash__ = object.__hash__


class State(enum.Enum):
    NDM = "normal disconnected mode"
    AWAIT_UA = "SNRM sent"  # client only
    NRM = "normal response mode"
    AWAIT_DISC_UA = "DISC sent"  # client only

    # members are singletons: hashing by identity is the same relation as Enum's hash of
    # the name, without a Python call for every lookup in the state tables
    __hash__ = object.__hash__


class HdlcTrigger(enum.Enum):
    # a frame received (addressed to us)
    I = "I"  # noqa: E741
    RR = "RR"
    RNR = "RNR"
    SNRM = "SNRM"
    DISC = "DISC"
    UA = "UA"
    DM = "DM"
    FRMR = "FRMR"
    UI = "UI"
    # our own side
    CONNECT = "connect()"
    DISCONNECT = "disconnect()"
    SEND_APDU = "send_apdu()"
    # time passing (poll / receive_data)
    TIMEOUT = "timeout"
    GIVE_UP = "retries exhausted"
    # server only: frames that are not the link's own business
    BAD_SNRM = "SNRM with unreadable parameters"
    STRANGER_POLL = "I/RR/RNR/DISC from a client the link is not with"

    # members are singletons: hashing by identity is the same relation as Enum's hash of
    # the name, without a Python call for every lookup in the state tables
    __hash__ = object.__hash__


# the members the data path compares with for every frame, looked up once: reading an
# Enum member as a class attribute costs several times a plain attribute on Python 3.11
_NRM = State.NRM
_I = HdlcTrigger.I
_SEND_APDU = HdlcTrigger.SEND_APDU


# --- the connection ---------------------------------------------------------------------
class HdlcConnection:
    """One end of an HDLC link.

    Server: ``HdlcConnection(Role.SERVER, server_address=HdlcAddress(1, 16))``; it
    answers frames for that address (a frame naming only the upper address is
    taken as ours too) and ignores everything else on a multi-drop line.
    Client: ``HdlcConnection(Role.CLIENT, server_address=..., client_address=16)``.

    ``max_info_length`` and ``window`` are what this side offers (both
    directions); the negotiated values are in :attr:`parameters` once connected.
    Time is whatever float the caller passes as ``now``; :meth:`poll` runs the
    timers (server inactivity, client response time-out and retries).
    """

    def __init__(
        self,
        role: Role,
        *,
        server_address: HdlcAddress,
        client_address: int | None = None,
        max_info_length: int = 128,
        window: int = 1,
        inactivity_timeout: float | None = 120.0,
        response_timeout: float = 3.0,
        max_retries: int = 3,
        poll_interval: float = 0.5,
        inter_octet_timeout: float | None = 1.0,
        max_apdu_length: int = 0x10000,
    ) -> None:
        self.role = role
        self.server_address = server_address
        if role is Role.CLIENT:
            if client_address is None:
                raise LocalProtocolError("a client connection needs its client_address (SAP)")
            self.own_client = _client_addr(client_address)
        elif client_address is not None:
            raise LocalProtocolError("a server connection learns the client address from the SNRM")
        try:
            self.offered = HdlcParameters(max_info_length, max_info_length, window, window)
        except HdlcError as exc:
            raise LocalProtocolError(str(exc)) from None
        if max_info_length > MAX_INFO_FIELD:
            raise LocalProtocolError(f"max_info_length above {MAX_INFO_FIELD} does not fit a frame")
        self.inactivity_timeout = inactivity_timeout
        self.response_timeout = response_timeout
        self.max_retries = max_retries
        self.poll_interval = poll_interval
        self.inter_octet_timeout = inter_octet_timeout
        self.max_apdu_length = max_apdu_length
        self._table = SERVER_TABLE if role is Role.SERVER else CLIENT_TABLE
        self._is_client = role is Role.CLIENT

        self.state = State.NDM
        self.parameters = DEFAULT_PARAMETERS
        self.peer_client: int | None = client_address  # the client SAP we talk to
        self._reader = FrameReader()
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []  # frames due on the line, in order
        self._now = 0.0
        self._last_bytes_at: float | None = None
        self._last_heard = 0.0  # last valid frame from our peer (inactivity)
        self._deadline: float | None = None  # client: when to resend / poll again
        self._deadline_is_retry = True  # False: a poll for a late answer, not a failure
        self._retries = 0
        self._snrm_info: bytes = b""
        self._proposal = DEFAULT_PARAMETERS  # client: what our SNRM offered
        self._reply_source: HdlcAddress = server_address  # server: the address form the client used
        # the data path's frames (I, RR) to our peer: a client's are to one server from the start, a
        # server's to the client and in the address form of the SNRM that opened the link
        self._encoder = FrameEncoder(server_address.encode() + self.own_client.encode()) if role is Role.CLIENT else None
        self._rx_addresses: bytes | None = None  # server in NRM: our client's frames' (see _receive_whole_i)
        self._reset_link()

    # -- public API ---------------------------------------------------------------------
    @property
    def send_sequence(self) -> int:
        """V(S): the N(S) of the next new I frame."""
        return self._vs

    @property
    def receive_sequence(self) -> int:
        """V(R): the N(S) expected next from the peer."""
        return self._vr

    def receive_data(self, data: bytes | bytearray | memoryview, now: float | None = None) -> None:
        """Bytes from the line. Never raises on bad bytes: bad frames become
        :class:`FrameDropped` events. Frames are processed at once; their events
        wait in :meth:`next_event`."""
        self._advance(now)
        if self._rx_addresses is not None and self._reader.between_frames and self._receive_whole_i(data):
            return
        if data and self.inter_octet_timeout is not None and self._last_bytes_at is not None:
            if self._now - self._last_bytes_at > self.inter_octet_timeout and self._reader.buffered:
                self._reader.discard_partial()
        if data:
            self._last_bytes_at = self._now
        self._reader.feed(data)
        while True:
            item = self._reader.next()
            if item is None:
                return
            if isinstance(item, FrameError):
                self._events.append(FrameDropped(str(item)))
                continue
            try:
                self._on_frame(item)
            except DlmsError as exc:  # a frame we could parse but not honour
                self._events.append(FrameDropped(f"{item.kind.value} frame: {exc}"))

    def _receive_whole_i(self, data) -> bool:
        """The server's common case in one pass: ``data`` is exactly one I frame from our
        client, carrying a whole request (LLC header and APDU, not segmented), in sequence,
        acknowledging every frame we sent, while no segmented request is being joined.
        It does what the reader, :meth:`_on_frame` and the table's action for (NRM, I)
        do with such a frame, without building a :class:`Frame`: the header is compared
        with the one this link's SNRM used, and the HCS and FCS are each checked by one
        CRC over the header or frame with its check bytes (:data:`~dlms.link.crc.RESIDUE`).
        Anything else (a second frame in the chunk, a partial one, a bad check, another
        address form) returns False and takes the general path, which says why."""
        n = len(data)
        addresses = self._rx_addresses  # destination and source as this link's SNRM gave them
        k = 3 + len(addresses)  # the control byte's index
        if n < k + 9 or n > MAX_FRAME_LENGTH + 2 or data[0] != FLAG or data[-1] != FLAG:
            return False
        # format type 3, not segmented, the length of exactly this chunk; then the addresses
        if (data[1] << 8) | data[2] != 0xA000 | (n - 2) or data[3:k] != addresses:
            return False
        c = data[k]
        # an I frame (bit 0 clear) with N(S) = V(R) and N(R) = V(S): every frame of ours is acknowledged
        if c & 1 or (c >> 1) & 7 != self._vr or c >> 5 != self._vs:
            return False
        if data[k + 3 : k + 6] != LLC_REQUEST or self._rx_parts or self._rx_discarding:
            return False
        if n - k - 6 > self.max_apdu_length + len(LLC_REQUEST):  # the information field's length
            return False
        state = self.state
        if state is not _NRM:
            return False
        action, next_state = self._table[(state, _I)]
        if action is not _RECEIVE_I:
            return False
        checked = data.translate(REVERSED)
        if crc_hqx(checked[1 : k + 3], 0xFFFF) != RESIDUE or crc_hqx(checked[1:-1], 0xFFFF) != RESIDUE:
            return False
        # the frame is good: what _on_frame and _do_receive_i would have done with it
        self._last_bytes_at = self._last_heard = self._now
        self._unacked.clear()
        self._vr = (self._vr + 1) % 8
        # ApduReceived(client, apdu) without the frozen __init__'s object.__setattr__ per field
        event = _new(ApduReceived)
        fields = event.__dict__
        fields["client_address"] = self.peer_client
        fields["apdu"] = data[k + 6 : -3] if data.__class__ is bytes else bytes(data[k + 6 : -3])
        self._events.append(event)
        if c & POLL_FINAL:
            self._turn = True
        self.state = next_state
        return True

    def next_event(self) -> Event | NeedData:
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def data_to_send(self) -> bytes:
        """Everything due on the line now: answers already queued, then (if it is
        our turn) the I frames the window allows, or an RR."""
        self._transmit_turn()
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def poll(self, now: float) -> None:
        """Let time pass: server inactivity time-out, client resend and retries."""
        self._advance(now)

    def await_apdu(self) -> None:
        """Client: one more APDU is due from the server without a request of ours (a
        streamed general-block-transfer block), so keep polling with RR until it comes."""
        if self.role is Role.CLIENT:
            self._outstanding += 1

    def send_apdu(self, apdu: bytes, now: float | None = None) -> None:
        """Queue an APDU (the LLC header is added here); it goes out as the turn
        and the window allow, segmented to the negotiated information field."""
        self._advance(now)
        self._fire(_SEND_APDU, apdu if apdu.__class__ is bytes else bytes(apdu))

    def connect(self, parameters: HdlcParameters | None = None, *, with_parameters: bool = True,
                now: float | None = None) -> None:
        """Client: queue an SNRM. ``parameters`` default to what this side offers;
        ``with_parameters=False`` sends a bare SNRM (the server then uses 128/1)."""
        self._advance(now)
        proposal = parameters if parameters is not None else self.offered
        if with_parameters:
            self._fire(HdlcTrigger.CONNECT, (proposal, encode_parameters(proposal)))
        else:
            self._fire(HdlcTrigger.CONNECT, (DEFAULT_PARAMETERS, b""))

    def disconnect(self, now: float | None = None) -> None:
        """Client: queue a DISC. Server: forget the link at once (the next frame
        from the client gets DM)."""
        self._advance(now)
        self._retries = 0
        self._fire(HdlcTrigger.DISCONNECT)

    # -- the machine ----------------------------------------------------------------------
    def _fire(self, trigger: HdlcTrigger, arg=None) -> None:
        action, next_state = self._table[(self.state, trigger)]
        action(self, trigger, arg)  # may raise (refuse): then the state stays as it was
        self.state = next_state

    def _advance(self, now: float | None) -> None:
        if now is None:
            return
        self._now = now
        if not self._is_client:
            if (
                self.state is _NRM
                and self.inactivity_timeout is not None
                and now - self._last_heard >= self.inactivity_timeout
            ):
                self._fire(HdlcTrigger.TIMEOUT)
        elif self._deadline is not None and now >= self._deadline:
            self._deadline = None
            if self._deadline_is_retry:
                self._retries += 1
            self._fire(HdlcTrigger.GIVE_UP if self._retries > self.max_retries else HdlcTrigger.TIMEOUT)

    def _on_frame(self, f: Frame) -> None:
        if self.role is Role.SERVER:
            # client addresses are one byte: a longer source is another server talking
            if f.source.size != 1 or not self.server_address.matches(f.destination):
                return
            sap = f.source.logical
            if f.kind is FrameType.SNRM:
                try:
                    self._snrm_proposal = decode_parameters(f.info)
                except FrameError as exc:
                    self._events.append(FrameDropped(f"SNRM: {exc}"))
                    self._fire(HdlcTrigger.BAD_SNRM, f)
                    return
            elif self.state is State.NRM and sap != self.peer_client:
                # another client on a link that is not its own: it is answered as if
                # disconnected, and it does not keep our client's link alive
                if f.kind in _POLLING_FRAMES:
                    self._fire(HdlcTrigger.STRANGER_POLL, f)
                elif f.kind is FrameType.UI:
                    self._fire(HdlcTrigger.UI, f)
                return
            if self.state is State.NRM:
                self._last_heard = self._now
        else:
            if f.destination != self.own_client or not self.server_address.matches(f.source):
                return
            if f.kind is FrameType.UA and self.state is State.AWAIT_UA:
                try:
                    self._ua_parameters = decode_parameters(f.info)
                except FrameError as exc:
                    self._events.append(FrameDropped(f"UA: {exc}"))
                    return
        self._fire(_FRAME_TRIGGERS[f.kind], f)

    # -- link state ---------------------------------------------------------------------
    def _reset_link(self) -> None:
        self._vs = 0
        self._vr = 0
        self._unacked: list[tuple[int, bytes, bool]] = []  # (N(S), info, segmented)
        self._pending: deque[tuple[bytes, bool]] = deque()
        self._rx_parts: list[bytes] = []
        self._rx_length = 0
        self._rx_discarding = False
        self._turn = self.role is Role.CLIENT  # the primary starts with the right to send
        self._peer_busy = False
        self._want_poll = False
        self._outstanding = 0  # client: APDUs sent that have no answer yet
        self._deadline = None
        self._rx_addresses = None  # no link, no fast path (set again by an accepted SNRM)

    def _queue(self, kind: FrameType, dest: HdlcAddress, src: HdlcAddress, info: bytes = b"", pf: bool = True) -> None:
        self._out.append(encode_frame(Frame(kind, dest, src, info, pf)))

    def _to_client(self, kind: FrameType, info: bytes = b"", pf: bool = True) -> None:
        assert self.peer_client is not None
        self._queue(kind, client_address(self.peer_client), self._reply_source, info, pf)

    def _to_server(self, kind: FrameType, info: bytes = b"") -> None:
        self._queue(kind, self.server_address, self.own_client, info, True)
        self._deadline = self._now + self.response_timeout
        self._deadline_is_retry = True

    # -- actions (referenced by the tables) -----------------------------------------------
    def _do_ignore(self, _trigger: HdlcTrigger, _arg) -> None:
        pass

    def _do_refuse(self, trigger: HdlcTrigger, _arg) -> None:
        raise LocalProtocolError(f"{trigger.value} is not allowed in {self.state.name}")

    def _do_send_dm(self, _trigger: HdlcTrigger, f: Frame) -> None:
        if f.poll_final:  # a secondary may speak only when polled
            self._queue(FrameType.DM, f.source, f.destination)

    def _do_accept_snrm(self, _trigger: HdlcTrigger, f: Frame) -> None:
        proposal = self._snrm_proposal  # the client's viewpoint
        ours = HdlcParameters(
            max_info_tx=min(proposal.max_info_rx, self.offered.max_info_tx),  # offered <= MAX_INFO_FIELD
            max_info_rx=min(proposal.max_info_tx, self.offered.max_info_rx),
            window_tx=min(proposal.window_rx, self.offered.window_tx),
            window_rx=min(proposal.window_tx, self.offered.window_rx),
        )
        self.parameters = ours
        self.peer_client = f.source.logical
        self._reply_source = f.destination
        self._reset_link()
        self._rx_addresses = f.destination.encode() + f.source.encode()  # what the client's frames will carry
        self._encoder = FrameEncoder(f.source.encode() + f.destination.encode())
        self._last_heard = self._now
        self._to_client(FrameType.UA, encode_parameters(ours), f.poll_final)
        self._events.append(Connected(self.peer_client, ours))

    def _do_accept_disc(self, _trigger: HdlcTrigger, f: Frame) -> None:
        self._to_client(FrameType.UA, b"", f.poll_final)
        self._events.append(Disconnected(self.peer_client, "DISC"))
        self._reset_link()

    def _do_inactivity(self, _trigger: HdlcTrigger, _arg) -> None:
        self._events.append(Disconnected(self.peer_client, "inactivity timeout"))
        self._reset_link()

    def _do_drop_link(self, _trigger: HdlcTrigger, _arg) -> None:
        self._reset_link()

    def _do_deliver_ui(self, _trigger: HdlcTrigger, f: Frame) -> None:
        sap = f.source.logical if self.role is Role.SERVER else self.own_client.logical
        self._events.append(UiReceived(sap, f.info))

    def _do_send_snrm(self, _trigger: HdlcTrigger, arg: tuple[HdlcParameters, bytes] | None) -> None:
        if arg is not None:  # connect(); a time-out resends the same SNRM
            self._proposal, self._snrm_info = arg
            self._retries = 0
        self._to_server(FrameType.SNRM, self._snrm_info)

    def _do_accept_ua(self, _trigger: HdlcTrigger, f: Frame) -> None:
        ua = self._ua_parameters  # the server's viewpoint
        mine = self._proposal
        self.parameters = HdlcParameters(
            max_info_tx=min(ua.max_info_rx, mine.max_info_tx, MAX_INFO_FIELD),
            max_info_rx=ua.max_info_tx,
            window_tx=min(ua.window_rx, mine.window_tx),
            window_rx=ua.window_tx,
        )
        self._reset_link()
        self._retries = 0
        self._events.append(Connected(self.own_client.logical, self.parameters))

    def _do_rejected(self, _trigger: HdlcTrigger, f: Frame) -> None:
        self._deadline = None
        self._events.append(Rejected(f.kind.value))

    def _do_link_lost(self, _trigger: HdlcTrigger, arg) -> None:
        reason = arg.kind.value if isinstance(arg, Frame) else "no response"
        self._events.append(Disconnected(self.own_client.logical, reason))
        self._reset_link()

    def _do_send_disc(self, _trigger: HdlcTrigger, _arg) -> None:
        self._reset_link()
        self._to_server(FrameType.DISC)

    def _do_disc_done(self, _trigger: HdlcTrigger, _arg) -> None:
        self._events.append(Disconnected(self.own_client.logical, "DISC"))
        self._reset_link()

    def _do_poll_again(self, _trigger: HdlcTrigger, _arg) -> None:
        # no F in time (or the server had nothing yet): take the turn back and
        # resend what is unacknowledged, or poll with RR
        self._turn = True
        self._want_poll = True

    def _do_queue_apdu(self, _trigger: HdlcTrigger, apdu: bytes) -> None:
        client = self._is_client
        data = (LLC_REQUEST if client else LLC_RESPONSE) + apdu
        size = self.parameters.max_info_tx
        if len(data) <= size:  # the common case: one frame
            self._pending.append((data, False))
        else:
            for start in range(0, len(data), size):
                self._pending.append((data[start : start + size], start + size < len(data)))
        if client:
            self._outstanding += 1

    # -- the data path ----------------------------------------------------------------------
    def _acknowledge(self, nr: int) -> bool:
        """Drop our frames that N(R) acknowledges; False if N(R) is impossible."""
        oldest = (self._vs - len(self._unacked)) % 8
        k = (nr - oldest) % 8
        if k > len(self._unacked):
            return False
        del self._unacked[:k]
        return True

    def _got_turn(self) -> None:
        self._turn = True
        if self.role is Role.CLIENT:
            self._deadline = None
            self._retries = 0

    def _do_receive_i(self, _trigger: HdlcTrigger, f: Frame) -> None:
        if not self._acknowledge(f.receive_sequence):
            self._events.append(FrameDropped(f"N(R)={f.receive_sequence} acknowledges frames never sent"))
        elif f.send_sequence == self._vr:
            self._vr = (self._vr + 1) % 8
            self._take_segment(f.info, f.segmented)
        else:
            self._want_poll = True  # a duplicate, or a frame after a gap: re-acknowledge
        if f.poll_final:
            self._got_turn()

    def _do_receive_rr(self, _trigger: HdlcTrigger, f: Frame) -> None:
        if self._acknowledge(f.receive_sequence):
            self._peer_busy = False
        else:
            self._events.append(FrameDropped(f"N(R)={f.receive_sequence} acknowledges frames never sent"))
        if f.poll_final:
            self._got_turn()

    def _do_receive_rnr(self, _trigger: HdlcTrigger, f: Frame) -> None:
        if self._acknowledge(f.receive_sequence):
            self._peer_busy = True
        if f.poll_final:
            self._got_turn()

    def _take_segment(self, info: bytes, segmented: bool) -> None:
        if not segmented and not self._rx_parts and not self._rx_discarding:
            # the common case, a whole APDU in one frame: nothing to join
            if len(info) > self.max_apdu_length + len(LLC_REQUEST):
                self._events.append(FrameDropped(f"APDU longer than {self.max_apdu_length} bytes"))
                return
            self._deliver(info)
            return
        if not self._rx_discarding:
            self._rx_parts.append(info)
            self._rx_length += len(info)
            if self._rx_length > self.max_apdu_length + len(LLC_REQUEST):
                self._events.append(FrameDropped(f"APDU longer than {self.max_apdu_length} bytes"))
                self._rx_discarding = True
        if segmented:
            return
        data = b"".join(self._rx_parts)
        discarding = self._rx_discarding
        self._rx_parts.clear()
        self._rx_length = 0
        self._rx_discarding = False
        if discarding:
            return
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        """A whole reassembled information field: the APDU behind its LLC header."""
        if data[:3] not in (LLC_REQUEST, LLC_RESPONSE):
            self._events.append(FrameDropped(f"I frame without the LLC header: {data[:3].hex()}"))
            return
        sap = self.peer_client if self.role is Role.SERVER else self.own_client.logical
        if self.role is Role.CLIENT:
            self._outstanding = max(0, self._outstanding - 1)
        self._events.append(ApduReceived(sap, data[3:]))

    def _transmit_turn(self) -> None:
        """Use the turn, if we hold it: go back to the oldest unacknowledged frame,
        add new ones while the window allows, and hand the turn over with P/F."""
        if self.state is not _NRM or not self._turn:
            return
        client = self._is_client
        pending, unacked = self._pending, self._unacked
        if self._peer_busy:
            frames: list[tuple[int, bytes, bool]] = []
        else:
            frames = unacked[:]  # go back to the oldest unacknowledged, then new ones
            window = self.parameters.window_tx
            while pending and len(unacked) < window:
                info, seg = pending.popleft()
                entry = (self._vs, info, seg)
                self._vs = (self._vs + 1) % 8
                unacked.append(entry)
                frames.append(entry)
        if client and not frames:
            if not self._want_poll and (self._peer_busy or (self._outstanding and not self._rx_parts)):
                # the server is busy (RNR) or has nothing for us yet: ask again after
                # poll_interval, when poll_again sets _want_poll and an RR poll goes out
                if self._deadline is None:
                    self._deadline = self._now + self.poll_interval
                    self._deadline_is_retry = False
                return
            if not (self._want_poll or self._rx_parts):
                return  # nothing to say; keep the turn
        # the same bytes encode_frame(Frame(...)) gives, without a Frame per frame: the
        # control field is N(R) | P/F | N(S) << 1 for I, N(R) | P/F | 01 for RR (clause 6.4.3.4)
        encode = self._encoder.encode
        nr = self._vr << 5
        out = self._out
        if not frames:
            out.append(encode(nr | POLL_FINAL | 0x01, b""))
        elif len(frames) == 1:
            ns, info, seg = frames[0]
            out.append(encode(nr | POLL_FINAL | (ns << 1), info, seg))
        else:
            last = len(frames) - 1
            for n, (ns, info, seg) in enumerate(frames):
                out.append(encode(nr | (POLL_FINAL if n == last else 0) | (ns << 1), info, seg))
        self._turn = False
        self._want_poll = False
        if client:
            self._deadline = self._now + self.response_timeout
            self._deadline_is_retry = True


# --- the state machine as data ---------------------------------------------------------
_FRAME_TRIGGERS = {kind: HdlcTrigger[kind.name] for kind in FrameType}
#: frames a secondary must answer (DM) when they come from a client the link is not with
_POLLING_FRAMES = frozenset({FrameType.I, FrameType.RR, FrameType.RNR, FrameType.DISC})
_H = HdlcConnection
_RECEIVE_I = _H._do_receive_i  # the action _receive_whole_i stands in for
_new = object.__new__
_LOCAL_DEFAULTS = {
    HdlcTrigger.CONNECT: _H._do_refuse,
    HdlcTrigger.SEND_APDU: _H._do_refuse,
    HdlcTrigger.DISCONNECT: _H._do_ignore,
    HdlcTrigger.TIMEOUT: _H._do_ignore,
    HdlcTrigger.GIVE_UP: _H._do_ignore,
}
_SERVER_ONLY = (HdlcTrigger.BAD_SNRM, HdlcTrigger.STRANGER_POLL)
Action = Callable[[HdlcConnection, HdlcTrigger, Any], None]


def _complete(rules: dict, states: tuple[State, ...], triggers: tuple[HdlcTrigger, ...]) -> dict:
    """Every pair not written out: a received frame is ignored, a local call that
    makes no sense raises LocalProtocolError (refuse), time passing does nothing."""
    table = {}
    for state in states:
        for trigger in triggers:
            default = _LOCAL_DEFAULTS.get(trigger, _H._do_ignore)
            table[(state, trigger)] = rules.get((state, trigger), (default, state))
    return table


_S = State
_T = HdlcTrigger

#: (state, trigger) -> (action, next state) for the secondary station.
SERVER_TABLE: dict[tuple[State, HdlcTrigger], tuple[Action, State]] = _complete(
    {
        # NDM: only SNRM opens the link; anything polling us gets DM (clause 6.4.4.4.3.4)
        (_S.NDM, _T.SNRM): (_H._do_accept_snrm, _S.NRM),
        (_S.NDM, _T.BAD_SNRM): (_H._do_send_dm, _S.NDM),
        (_S.NDM, _T.DISC): (_H._do_send_dm, _S.NDM),
        (_S.NDM, _T.I): (_H._do_send_dm, _S.NDM),
        (_S.NDM, _T.RR): (_H._do_send_dm, _S.NDM),
        (_S.NDM, _T.RNR): (_H._do_send_dm, _S.NDM),
        (_S.NDM, _T.STRANGER_POLL): (_H._do_send_dm, _S.NDM),  # (never fired: no link, no stranger)
        (_S.NDM, _T.UI): (_H._do_deliver_ui, _S.NDM),
        # NRM
        (_S.NRM, _T.SNRM): (_H._do_accept_snrm, _S.NRM),  # a link reset: sequence numbers back to 0
        (_S.NRM, _T.BAD_SNRM): (_H._do_send_dm, _S.NRM),  # the link we have stays as it was
        (_S.NRM, _T.STRANGER_POLL): (_H._do_send_dm, _S.NRM),  # to the stranger we are disconnected
        (_S.NRM, _T.DISC): (_H._do_accept_disc, _S.NDM),
        (_S.NRM, _T.I): (_H._do_receive_i, _S.NRM),
        (_S.NRM, _T.RR): (_H._do_receive_rr, _S.NRM),
        (_S.NRM, _T.RNR): (_H._do_receive_rnr, _S.NRM),
        (_S.NRM, _T.UI): (_H._do_deliver_ui, _S.NRM),
        (_S.NRM, _T.SEND_APDU): (_H._do_queue_apdu, _S.NRM),
        (_S.NRM, _T.TIMEOUT): (_H._do_inactivity, _S.NDM),
        (_S.NRM, _T.DISCONNECT): (_H._do_drop_link, _S.NDM),
    },
    (_S.NDM, _S.NRM),
    tuple(t for t in HdlcTrigger if t is not HdlcTrigger.GIVE_UP),  # a secondary never retries
)

#: (state, trigger) -> (action, next state) for the primary station.
CLIENT_TABLE: dict[tuple[State, HdlcTrigger], tuple[Action, State]] = _complete(
    {
        (_S.NDM, _T.CONNECT): (_H._do_send_snrm, _S.AWAIT_UA),
        (_S.NDM, _T.UI): (_H._do_deliver_ui, _S.NDM),
        (_S.AWAIT_UA, _T.UA): (_H._do_accept_ua, _S.NRM),
        (_S.AWAIT_UA, _T.DM): (_H._do_rejected, _S.NDM),
        (_S.AWAIT_UA, _T.FRMR): (_H._do_rejected, _S.NDM),
        (_S.AWAIT_UA, _T.TIMEOUT): (_H._do_send_snrm, _S.AWAIT_UA),
        (_S.AWAIT_UA, _T.GIVE_UP): (_H._do_link_lost, _S.NDM),
        (_S.AWAIT_UA, _T.DISCONNECT): (_H._do_send_disc, _S.AWAIT_DISC_UA),
        (_S.NRM, _T.I): (_H._do_receive_i, _S.NRM),
        (_S.NRM, _T.RR): (_H._do_receive_rr, _S.NRM),
        (_S.NRM, _T.RNR): (_H._do_receive_rnr, _S.NRM),
        (_S.NRM, _T.UI): (_H._do_deliver_ui, _S.NRM),
        (_S.NRM, _T.DM): (_H._do_link_lost, _S.NDM),
        (_S.NRM, _T.FRMR): (_H._do_link_lost, _S.NDM),
        (_S.NRM, _T.SEND_APDU): (_H._do_queue_apdu, _S.NRM),
        (_S.NRM, _T.TIMEOUT): (_H._do_poll_again, _S.NRM),
        (_S.NRM, _T.GIVE_UP): (_H._do_link_lost, _S.NDM),
        (_S.NRM, _T.DISCONNECT): (_H._do_send_disc, _S.AWAIT_DISC_UA),
        (_S.AWAIT_DISC_UA, _T.UA): (_H._do_disc_done, _S.NDM),
        (_S.AWAIT_DISC_UA, _T.DM): (_H._do_disc_done, _S.NDM),
        (_S.AWAIT_DISC_UA, _T.TIMEOUT): (_H._do_send_disc, _S.AWAIT_DISC_UA),
        (_S.AWAIT_DISC_UA, _T.GIVE_UP): (_H._do_link_lost, _S.NDM),
        (_S.AWAIT_DISC_UA, _T.UI): (_H._do_deliver_ui, _S.AWAIT_DISC_UA),
    },
    tuple(State),
    tuple(t for t in HdlcTrigger if t not in _SERVER_ONLY),  # a primary polls; it is never polled
)
