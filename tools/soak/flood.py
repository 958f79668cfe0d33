"""A connection flood and slow peers on the wrapper and HDLC-over-TCP ports (issue 14 item 7).

The flood: far more idle connections than the meter's cap (``dlms.max_connections``),
opened as fast as the kernel takes them on both TCP endpoints and held open. A head-end
reading the clock must still get through within ``READ_WITHIN`` seconds (the meter
answers the cap cleanly and closes peers that never associate after
``dlms.association_timeout_s``), and the meter must log the condition, not every event
(*wrong*: more than ``LOG_LINES`` lines on stderr per round). Slow peers: connections
that trickle a valid AARQ a byte at a time, or say nothing at all, on both endpoints;
each must be closed by the meter within the set-up timeout and a margin (*wrong*: still
open). Inputs count the peers.
"""

from __future__ import annotations

import random
import select
import socket
import time
from pathlib import Path

from bijli.tools.soak.hostile import aarq
from bijli.tools.soak.report import SoakRow
from bijli.tools.soak.subject import SoakMeter

SETUP_S = 2.0
CONFIG = f"[dlms]\nassociation_timeout_s = {SETUP_S}\nmax_connections = 64\nlockout_minutes = 0\n"
READ_WITHIN = 15.0
LOG_LINES = 6
FLOOD = 600  # idle peers per round, over both endpoints
SLOW = 20  # trickling and silent peers per round


def _port(target: str) -> int:
    return int(target.rsplit(":", 1)[1])


def _connect(port: int) -> socket.socket | None:
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect_ex(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        ready, _, _ = select.select([s], [], [], 0)
        if not ready:
            return False
        return s.recv(4096, socket.MSG_PEEK) == b""
    except (ConnectionError, OSError):
        return True


def flood_round(row: SoakRow, meter: SoakMeter, rng: random.Random, where: str, size: int) -> None:
    ep = meter.meter.endpoints
    ports = (_port(ep.wrapper), _port(ep.hdlc))
    meter.new_stderr()
    held = []
    try:
        for i in range(size):
            s = _connect(ports[i % 2])
            if s is not None:
                held.append(s)
            row.inputs += 1
        started = time.monotonic()
        while True:
            why = meter.probe(timeout=3.0)
            if why is None:
                break
            if time.monotonic() - started > READ_WITHIN:
                row.fail("hangs", f"{where}: no clock read through a flood of {size} peers in {READ_WITHIN:g} s ({why})")
                break
            time.sleep(0.2)
    finally:
        for s in held:
            s.close()
    err = meter.new_stderr()
    if "Traceback" in err:
        row.fail("tracebacks", f"{where}: {err.strip().splitlines()[-1][:160]}")
    elif len(err.strip().splitlines()) > LOG_LINES:
        row.fail("wrong", f"{where}: {len(err.splitlines())} lines on stderr for one flood")


def slow_round(row: SoakRow, meter: SoakMeter, rng: random.Random, where: str, size: int) -> None:
    ep = meter.meter.endpoints
    ports = (_port(ep.wrapper), _port(ep.hdlc))
    frame = aarq(rng, 16, meter.meter.keys, right=True)
    wrapped = bytes((0, 1, 0, 16, 0, 1)) + len(frame).to_bytes(2, "big") + frame
    peers = []
    for i in range(size):
        s = _connect(ports[i % 2])
        if s is not None:
            peers.append((s, i % 4 != 0))  # three in four trickle, one in four stays silent
        row.inputs += 1
    deadline = time.monotonic() + SETUP_S + 8.0
    sent = 0
    try:
        while peers and time.monotonic() < deadline:
            for s, trickles in list(peers):
                if _closed_by_peer(s):
                    peers.remove((s, trickles))
                    s.close()
                elif trickles and sent < len(wrapped):
                    try:
                        s.send(wrapped[sent:sent + 1])
                    except OSError:
                        pass
            sent += 1
            time.sleep(0.25)
        for s, trickles in peers:
            row.fail("wrong", f"{where}: a {'trickling' if trickles else 'silent'} peer still open "
                              f"{SETUP_S + 8:g} s after it connected")
    finally:
        for s, _ in peers:
            s.close()
    meter.check(row, where)


def run(row: SoakRow, seed: int, work: Path, deadline: float) -> SoakRow:
    rng = random.Random(f"flood-{seed}")
    meter = SoakMeter(work / "flood", CONFIG, hdlc=True, serial=False, optical=False, console=False)
    try:
        rounds = 0
        while row.inputs < row.target and time.monotonic() < deadline:
            size = min(FLOOD, max(2, row.target - row.inputs - SLOW))
            flood_round(row, meter, rng, f"seed {seed} flood round {rounds}", size)
            slow_round(row, meter, rng, f"seed {seed} slow-peer round {rounds}", min(SLOW, max(2, size // 4)))
            rounds += 1
    finally:
        meter.stop()
    return row
