"""General block transfer (GBT, IEC 62056-5-3 clause 9.3.10 "general block transfer
mechanism"): an APDU too long for the peer cut into numbered general-block-transfer
APDUs, sent a window at a time and put back together on the other side. Sans-IO.

The rules this follows: blocks are numbered from 1; every GBT carries the number
of the last block its sender received from the peer (block-number-ack; an
acknowledgement is a block too, numbered on from the request's blocks)
and the window its sender can receive (block-control bits 0..5). Within a window
the sender sets the streaming bit on every block but the window's last, which
asks for an acknowledgement; the last block of the APDU sets last-block. A
receiver acknowledges the highest block it holds in sequence, so a lost block
makes the sender go back to the one after it (go-back-N), and duplicates are
dropped.
"""

from __future__ import annotations

from bijli.dlms.apdu import GeneralBlockTransfer
from bijli.dlms.errors import LocalProtocolError, RemoteProtocolError

MAX_WINDOW = 63
MAX_BLOCK_NUMBER = 0xFFFF


def split(data: bytes, block_size: int) -> list[bytes]:
    """``data`` in slices of at most ``block_size`` bytes (one empty slice for no data)."""
    if block_size < 1:
        raise LocalProtocolError("GBT block size must be at least 1")
    chunks = [data[i : i + block_size] for i in range(0, len(data), block_size)] or [b""]
    if len(chunks) > MAX_BLOCK_NUMBER:
        raise LocalProtocolError(f"{len(chunks)} blocks do not fit a 16-bit block number")
    return chunks


def _window(w: int) -> int:
    if not 1 <= w <= MAX_WINDOW:
        raise LocalProtocolError(f"GBT window {w} not in 1..{MAX_WINDOW}")
    return w


class GbtSender:
    """Sends one APDU as GBT blocks. ``peer_window`` is how many blocks the peer takes
    before it acknowledges; ``own_window`` is advertised in every block we send."""

    def __init__(self, data: bytes, block_size: int, *, peer_window: int = 1, own_window: int = 1,
                 block_number_ack: int = 0):
        self.chunks = split(data, block_size)
        self.peer_window = _window(peer_window)
        self.own_window = _window(own_window)
        self.block_number_ack = block_number_ack  # the last block we received from the peer
        self.acked = 0  # the highest of our blocks the peer confirmed

    @property
    def last_number(self) -> int:
        return len(self.chunks)

    @property
    def done(self) -> bool:
        return self.acked >= self.last_number

    def block(self, number: int, *, streaming: bool) -> GeneralBlockTransfer:
        last = number == self.last_number
        return GeneralBlockTransfer(last, streaming and not last, self.own_window, number, self.block_number_ack,
                                    self.chunks[number - 1])

    def next_window(self) -> list[GeneralBlockTransfer]:
        """The blocks to send now: from the first unacknowledged one, at most one window."""
        first = self.acked + 1
        stop = min(self.acked + self.peer_window, self.last_number)
        return [self.block(n, streaming=n < stop) for n in range(first, stop + 1)]

    def receive_ack(self, gbt: GeneralBlockTransfer) -> None:
        """Take the peer's acknowledgement (its block-number-ack and its window)."""
        if not 0 <= gbt.block_number_ack <= self.last_number:
            raise RemoteProtocolError(f"GBT ack of block {gbt.block_number_ack}, only {self.last_number} exist")
        self.acked = max(self.acked, gbt.block_number_ack)
        # the acknowledgement is itself a block from the peer: ours name it from now on
        self.block_number_ack = gbt.block_number
        if gbt.window:
            self.peer_window = gbt.window


class GbtReceiver:
    """Reassembles one APDU from GBT blocks. ``window`` is what we advertise;
    ``block_number`` is the number our own acknowledgement blocks carry."""

    def __init__(self, *, window: int = 1, block_number: int = 1, max_size: int = 0xFFFFFF, first_block: int = 1):
        """``first_block``: the number the transfer starts at (1, unless the peer numbers
        its blocks on across APDUs)."""
        self.window = _window(window)
        self.block_number = block_number
        self.max_size = max_size
        if not 1 <= first_block <= MAX_BLOCK_NUMBER:
            raise RemoteProtocolError(f"GBT block number {first_block} out of range")
        self.received = first_block - 1  # the highest block held in sequence
        self.complete = False
        self._parts: list[bytes] = []
        self._size = 0

    def receive(self, gbt: GeneralBlockTransfer) -> bool:
        """Take one block; True when the sender now waits for our acknowledgement."""
        if self.complete:
            return False  # a late duplicate
        if gbt.block_number == self.received + 1:
            self._size += len(gbt.block_data)
            if self._size > self.max_size:
                raise RemoteProtocolError(f"GBT data exceeds {self.max_size} bytes")
            self._parts.append(gbt.block_data)
            self.received += 1
            self.complete = gbt.last_block
        # a gap or duplicate is dropped; the ack below names the last good block
        return self.complete or not gbt.streaming

    def ack(self) -> GeneralBlockTransfer:
        """Our acknowledgement: a block of its own, numbered on from ``block_number``."""
        ack = GeneralBlockTransfer(False, False, self.window, self.block_number, self.received, b"")
        self.block_number = min(self.block_number + 1, MAX_BLOCK_NUMBER)
        return ack

    @property
    def data(self) -> bytes:
        if not self.complete:
            raise LocalProtocolError("GBT transfer not complete")
        return b"".join(self._parts)
