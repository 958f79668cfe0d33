"""A client and a server HdlcConnection over a line that loses, corrupts and
splits bytes: every APDU (1..5000 bytes, max info field 128, windows 1..7,
segmented both ways) arrives exactly once and in order, in both directions."""

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.dlms.link.hdlc import NEED_DATA, ApduReceived, Connected, HdlcAddress, HdlcConnection, Role

ADDRESS = HdlcAddress(1, 16)


class Line:
    """Carries bytes in pieces; each piece may be dropped or have a bit flipped."""

    def __init__(self, rng: random.Random, loss: float, corrupt: float):
        self.rng, self.loss, self.corrupt = rng, loss, corrupt
        self.damaged = 0

    def carry(self, data: bytes) -> bytes:
        out = bytearray()
        i = 0
        while i < len(data):
            n = self.rng.randint(1, 160)
            piece = bytearray(data[i : i + n])
            i += n
            r = self.rng.random()
            if r < self.loss:
                self.damaged += 1
                continue
            if r < self.loss + self.corrupt:
                self.damaged += 1
                piece[self.rng.randrange(len(piece))] ^= 1 << self.rng.randrange(8)
            out += piece
        return bytes(out)


def run_session(seed: int, window: int, sizes: list[int], loss: float, corrupt: float, pipelined: bool):
    rng = random.Random(seed)
    server = HdlcConnection(Role.SERVER, server_address=ADDRESS, max_info_length=128, window=window,
                            inactivity_timeout=1000.0)
    client = HdlcConnection(Role.CLIENT, server_address=ADDRESS, client_address=16, max_info_length=128,
                            window=window, response_timeout=1.0, max_retries=10_000, poll_interval=0.2)
    up, down = Line(rng, loss, corrupt), Line(rng, loss, corrupt)
    requests = [rng.randbytes(n) for n in sizes]
    responses: list[bytes] = []
    server_got: list[bytes] = []
    client_got: list[bytes] = []
    connected = False
    sent = 0
    t = 0.0
    client.connect(now=t)
    for _ in range(60_000):
        t += 0.05
        client.poll(t)
        server.poll(t)
        data = client.data_to_send()
        if data:
            server.receive_data(up.carry(data), now=t)
        while (ev := server.next_event()) is not NEED_DATA:
            if isinstance(ev, ApduReceived):
                server_got.append(ev.apdu)
                # an answer of another size, so both directions segment differently
                answer = (ev.apdu[::-1] * 3)[: rng.randint(1, 5000)]
                responses.append(answer)
                server.send_apdu(answer)
        data = server.data_to_send()
        if data:
            client.receive_data(down.carry(data), now=t)
        while (ev := client.next_event()) is not NEED_DATA:
            if isinstance(ev, Connected):
                connected = True
            elif isinstance(ev, ApduReceived):
                client_got.append(ev.apdu)
        if connected and sent < len(requests) and (pipelined or len(client_got) == sent):
            client.send_apdu(requests[sent], now=t)
            sent += 1
        if len(client_got) == len(requests):
            break
    assert server_got == requests
    assert client_got == responses
    return up.damaged + down.damaged


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    window=st.integers(1, 7),
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=6),
    loss=st.sampled_from([0.0, 0.03, 0.08]),
    corrupt=st.sampled_from([0.0, 0.03, 0.08]),
    pipelined=st.booleans(),
)
def test_exactly_once_in_order_over_a_bad_line(seed, window, sizes, loss, corrupt, pipelined):
    run_session(seed, window, sizes, loss, corrupt, pipelined)


def test_a_fixed_very_bad_line_with_every_window():
    damaged = 0
    for window in range(1, 8):
        damaged += run_session(window, window, [1, 128, 129, 5000], 0.1, 0.1, pipelined=window % 2 == 0)
    assert damaged > 50  # the line really was bad


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("BIJLI_SOAK"), reason="soak run: set BIJLI_SOAK=1")
def test_soak_many_sessions():
    rng = random.Random(int(os.environ.get("BIJLI_SOAK_SEED", "1")))
    for seed in range(3000):
        sizes = [rng.randint(1, 5000) for _ in range(rng.randint(1, 6))]
        run_session(seed, rng.randint(1, 7), sizes, rng.choice([0, 0.05, 0.1, 0.2]),
                    rng.choice([0, 0.05, 0.1, 0.2]), rng.random() < 0.5)
