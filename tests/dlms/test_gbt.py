"""General block transfer: an APDU split into windows of GBT blocks arrives whole,
through the real APDU codec, even when blocks are lost or duplicated."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import apdu, gbt
from bijli.dlms.errors import LocalProtocolError, RemoteProtocolError


def _wire(block):
    return apdu.decode(block.encode())  # every block crosses the real codec


@settings(max_examples=200)
@given(st.binary(max_size=2000), st.integers(1, 200), st.integers(1, 63), st.integers(1, 63),
       st.lists(st.booleans(), max_size=200))
def test_transfer_survives_loss(data, block_size, peer_window, receiver_window, drops):
    sender = gbt.GbtSender(data, block_size, peer_window=peer_window)
    receiver = gbt.GbtReceiver(window=receiver_window)
    drops = iter(drops)
    for _ in range(10_000):
        if sender.done:
            break
        ack_due = False
        for block in sender.next_window():
            if next(drops, False):
                continue  # lost on the line
            ack_due = receiver.receive(_wire(block)) or ack_due
        # when the window's last block was lost the sender times out; the receiver acks either way
        sender.receive_ack(_wire(receiver.ack()))
        if receiver.complete:
            assert ack_due
    assert sender.done and receiver.complete
    assert receiver.data == data


def test_window_flags():
    sender = gbt.GbtSender(bytes(range(10)), 3, peer_window=2, own_window=5)
    first = sender.next_window()
    assert [(b.block_number, b.streaming, b.last_block, b.window, b.block_data) for b in first] == [
        (1, True, False, 5, b"\x00\x01\x02"), (2, False, False, 5, b"\x03\x04\x05")]
    sender.receive_ack(apdu.GeneralBlockTransfer(False, False, 4, 1, 2, b""))
    rest = sender.next_window()
    assert [(b.block_number, b.streaming, b.last_block) for b in rest] == [(3, True, False), (4, False, True)]
    # block-number-ack now names the peer's acknowledgement (its block 1): gurux and the
    # Green Book count the acknowledgement as a block received
    assert rest[-1].encode().hex() == "e0850004" "0001" "01" "09"


def test_receiver_drops_gaps_and_duplicates():
    r = gbt.GbtReceiver(window=3)
    mk = lambda n, last=False, streaming=True: apdu.GeneralBlockTransfer(last, streaming, 1, n, 0, bytes((n,)))  # noqa: E731
    assert not r.receive(mk(1))
    assert not r.receive(mk(3))  # gap: block 2 lost
    assert r.receive(mk(4, streaming=False))
    assert r.ack().block_number_ack == 1
    r.receive(mk(2))
    r.receive(mk(2))  # duplicate
    assert r.receive(mk(3, last=True))
    assert r.data == b"\x01\x02\x03"


def test_errors():
    with pytest.raises(LocalProtocolError):
        gbt.split(b"x", 0)
    with pytest.raises(LocalProtocolError):
        gbt.GbtSender(b"x", 1, peer_window=64)
    with pytest.raises(LocalProtocolError):
        gbt.split(bytes(70_000), 1)
    with pytest.raises(RemoteProtocolError):
        gbt.GbtSender(b"abc", 1).receive_ack(apdu.GeneralBlockTransfer(False, False, 1, 1, 9, b""))
    with pytest.raises(LocalProtocolError):
        gbt.GbtReceiver().data
    r = gbt.GbtReceiver(max_size=2)
    with pytest.raises(RemoteProtocolError):
        r.receive(apdu.GeneralBlockTransfer(True, False, 1, 1, 0, b"abc"))
