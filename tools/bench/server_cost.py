"""The meter's server CPU per DLMS GET over loopback TCP, the way issue 16 states the goal.

Method (the project's own harness): a ``bijli meter`` process, a raw client (this
module) and a C stub that answers with canned bytes (``nullsrv.c`` beside this file,
built with ``cc``) all run pinned to one CPU. The client associates with the meter
through our own :class:`dlms.client.Client`, then sends pre-encoded GET requests
of the clock (0.0.1.0.0.255, attribute 2) one at a time as fast as answers come.
The stub gets the very same request bytes and answers each with the meter's own
recorded answer, doing no protocol work: it measures what the client and the
kernel cost. Everything on one CPU makes the rates add up, so

    server CPU per GET = 1/rate(meter) - 1/rate(stub)

Rounds alternate meter and stub and the medians are used, because the machine is
shared. Rows: the IEC 62056-47 wrapper and HDLC over TCP (IEC 62056-46), each plain
(public client 16) and HLS-GMAC ciphered (client 48, security suite 0, every request
under a fresh invocation counter, pre-encoded before the timed loop so the client's
ciphering is not in the figure), and many peers at once: ``peers`` wrapper
connections, each associated, each with one GET in flight; the figure is the
per-GET cost the same way, plus the fewest and most GETs any peer got (no peer may
be starved). Without ``cc`` the figures are skipped with a note.
"""

from __future__ import annotations

import os
import math
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bijli.dlms import apdu
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.link.hdlc import LLC_REQUEST, Frame, FrameType, HdlcAddress, client_address, decode_frame, encode_frame
from bijli.dlms.obis import Obis
from bijli.dlms.link import MANAGEMENT_SAP
from bijli.hal.tcp_line import SocketLine
from bijli.tools.node.client_transports import WrapperTransport
from bijli.tools.node.hdlc_transport import HdlcTransport

STUB_SOURCE = Path(__file__).with_name("nullsrv.c")
CLOCK = apdu.AttributeDescriptor(8, Obis(0, 0, 1, 0, 0, 255), 2)
PHYSICAL_ADDRESS = 16
_CIPHERED_REQUESTS = 15_000  # pre-encoded per ciphered association, at least: more than 5 rounds of 0.3 s use
_CIPHERED_RATE_BOUND = 25_000  # ciphered GETs per second the meter and client do at most on one pinned core
_STUB_RATE_BOUND = 60_000  # the stub's round reads on from where the meter's stopped (it may end early: a rate still)


@dataclass(frozen=True)
class Cost:
    """One row: server CPU per GET (µs) and the two rates it comes from."""

    name: str
    us_per_get: float
    meter_rate: float
    stub_rate: float
    fewest: int | None = None  # many peers: the fewest and most GETs one peer got
    most: int | None = None


def build_stub(workdir: str) -> str | None:
    """The stub compiled into ``workdir``; None when there is no C compiler."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    out = os.path.join(workdir, "nullsrv")
    result = subprocess.run([cc, "-O2", "-o", out, str(STUB_SOURCE)], capture_output=True, text=True)
    return out if result.returncode == 0 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _pin(pid: int, cpu: int) -> None:
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(task), {cpu})
        except OSError:
            pass


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("the server closed the connection")
        out += chunk
    return out


def recv_reply(sock: socket.socket, hdlc: bool) -> bytes:
    """One whole reply frame: a wrapper frame by its length field, an HDLC frame by its format field."""
    if hdlc:
        head = _recv_exactly(sock, 3)
        return head + _recv_exactly(sock, ((head[1] & 0x07) << 8 | head[2]) - 1)
    head = _recv_exactly(sock, 8)
    return head + _recv_exactly(sock, int.from_bytes(head[6:8], "big"))


class _Peer:
    """One associated connection to the meter with its pre-encoded GET requests."""

    _next_ic = 1  # the meter refuses an invocation counter it has seen: each association starts above

    def __init__(self, port: int, *, hdlc: bool, sap: int, count: int) -> None:
        line = SocketLine("127.0.0.1", port)
        self.hdlc = hdlc
        if hdlc:
            server = HdlcAddress(MANAGEMENT_SAP, PHYSICAL_ADDRESS)
            transport = HdlcTransport(line, sap, server)
            transport.connect()
        else:
            transport = WrapperTransport(line, sap)
        client = Client(transport, ClientSettings.for_association(sap, invocation_counter=_Peer._next_ic))
        _Peer._next_ic += count + 100
        client.associate()
        self.sock = line.sock
        self.sock.settimeout(10.0)
        plain = apdu.GetRequestNormal(0xC1, CLOCK).encode()
        ciphered = client.session.settings.ciphered
        n = count if ciphered else 8  # plain: 8 frames cover the HDLC sequence numbers modulo 8
        apdus = [client.session.protect(plain) for _ in range(n)] if ciphered else [plain] * n
        if hdlc:
            vs, vr = transport.conn.send_sequence, transport.conn.receive_sequence
            self.requests = [encode_frame(Frame(FrameType.I, server, client_address(sap), LLC_REQUEST + a, True,
                                                (vs + i) % 8, (vr + i) % 8)) for i, a in enumerate(apdus)]
        else:
            self.requests = [transport.conn.send(a) for a in apdus]
        self.cycle = not ciphered
        # the first request checks the meter really answers the GET, and records the answer
        self.sock.sendall(self.requests[0])
        self.reply = recv_reply(self.sock, hdlc)
        answer = decode_frame(self.reply).info[3:] if hdlc else self.reply[8:]
        answer = client.session.unprotect(answer)
        if not (answer[:2] == b"\xc4\x01" and answer[3] == 0 and answer[4:6] == b"\x09\x0c"):
            raise RuntimeError(f"the clock GET failed: {answer.hex()}")
        self.next = 1

    def loop(self, seconds: float, sock: socket.socket | None = None) -> tuple[int, float]:
        """GETs done and the time they took, one in flight, against the meter or (``sock``) the stub."""
        s = sock or self.sock
        requests, n_requests, hdlc = self.requests, len(self.requests), self.hdlc
        i = self.next
        done = 0
        start = time.perf_counter()
        end = start + seconds
        while time.perf_counter() < end:
            for _ in range(20):
                if i >= n_requests:
                    if not self.cycle:
                        break
                    i = 0
                s.sendall(requests[i])
                recv_reply(s, hdlc)
                i += 1
                done += 1
            else:
                continue
            break
        elapsed = time.perf_counter() - start
        if sock is None:
            self.next = i
        return done, elapsed

    def close(self) -> None:
        self.sock.close()


class _Stub:
    def __init__(self, binary: str, cpu: int, hdlc: bool, reply: bytes) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen([binary, str(self.port), "hdlc" if hdlc else "wrapper", reply.hex()],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _pin(self.proc.pid, cpu)
        _wait_port(self.port)

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10.0)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))


def _one_peer(name: str, port: int, stub_bin: str, cpu: int, *, hdlc: bool, sap: int, seconds: float,
              rounds: int) -> Cost:
    # a ciphered request cannot be sent twice (the meter refuses a counter it has seen), so
    # there must be enough for every round: longer or more rounds need more of them
    count = max(_CIPHERED_REQUESTS, math.ceil(seconds * (rounds * _CIPHERED_RATE_BOUND + _STUB_RATE_BOUND)))
    peer = _Peer(port, hdlc=hdlc, sap=sap, count=count)
    stub = _Stub(stub_bin, cpu, hdlc, peer.reply)
    stub_sock = stub.connect()
    ours, floor = [], []
    try:
        for _ in range(rounds):
            n, dt = peer.loop(seconds)
            if n == 0:
                raise RuntimeError(f"{name}: the pre-encoded ciphered requests ran out ({count}); "
                                   f"raise _CIPHERED_RATE_BOUND and _STUB_RATE_BOUND")
            ours.append(n / dt)
            n, dt = peer.loop(seconds, stub_sock)
            if n == 0:
                raise RuntimeError(f"{name}: no pre-encoded ciphered request left for the stub ({count}); "
                                   f"raise _STUB_RATE_BOUND")
            floor.append(n / dt)
    finally:
        stub_sock.close()
        stub.close()
        peer.close()
    o, c = statistics.median(ours), statistics.median(floor)
    return Cost(name, 1e6 / o - 1e6 / c, o, c)


def _many_loop(socks: list[socket.socket], request: bytes, reply_len: int, seconds: float) -> tuple[list[int], float]:
    sel = selectors.DefaultSelector()
    counts = [0] * len(socks)
    pending = [0] * len(socks)  # bytes of the current reply received so far
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        s.send(request)
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        for key, _ in sel.select(1.0):
            i, s = key.data, key.fileobj
            data = s.recv(65536)
            if not data:
                raise EOFError(f"peer {i} was closed by the server")
            got = pending[i] + len(data)
            if got >= reply_len:  # one in flight: a whole reply, answer with the next GET
                counts[i] += 1
                s.send(request)
                got -= reply_len
            pending[i] = got
    elapsed = time.perf_counter() - start
    # let every peer take its last answer before the sockets change hands
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    for s in socks:
        s.setblocking(True)
        s.settimeout(10.0)
    for i, s in enumerate(socks):
        if pending[i] < reply_len:
            _recv_exactly(s, reply_len - pending[i])
    sel.close()
    return counts, elapsed


def _many_peers(port: int, stub_bin: str, cpu: int, peers: int, seconds: float) -> Cost:
    first = _Peer(port, hdlc=False, sap=16, count=0)
    aarq_frames: list[bytes] = []
    socks = [first.sock]
    request = first.requests[0]
    reply_len = len(first.reply)
    # the rest associate with the same AARQ bytes our Client sent (public client: no secrets)
    line = SocketLine("127.0.0.1", port)
    recorder = _Recorder(WrapperTransport(line, 16), aarq_frames)
    Client(recorder, ClientSettings.for_association(16)).associate()
    socks.append(line.sock)
    aarq = aarq_frames[0]
    for _ in range(peers - 2):
        s = socket.create_connection(("127.0.0.1", port), timeout=10.0)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(aarq)
        aare = recv_reply(s, False)
        if aare[8] != 0x61:
            raise RuntimeError(f"association {len(socks)} refused: {aare.hex()}")
        socks.append(s)
    stub = _Stub(stub_bin, cpu, False, first.reply)
    stub_socks = [stub.connect() for _ in socks]
    try:
        counts, dt = _many_loop(socks, request, reply_len, seconds)
        stub_counts, stub_dt = _many_loop(stub_socks, request, reply_len, seconds)
    finally:
        for s in socks + stub_socks:
            s.close()
        stub.close()
    o, c = sum(counts) / dt, sum(stub_counts) / stub_dt
    return Cost(f"{peers} peers at once over the wrapper, plain", 1e6 / o - 1e6 / c, o, c, min(counts), max(counts))


class _Recorder:
    """A transport that keeps the frames it sends (to replay one association's AARQ)."""

    def __init__(self, transport: WrapperTransport, sent: list[bytes]) -> None:
        self.transport, self.sent = transport, sent

    def request(self, data: bytes) -> bytes:
        self.sent.append(self.transport.conn.send(data))
        return self.transport.request(data)

    def close(self) -> None:
        self.transport.close()


def measure(*, seconds: float = 0.4, rounds: int = 3, peers: int = 1000, cpu: int | None = None,
            note=lambda text: print(text, file=sys.stderr)) -> list[Cost]:
    """Start a meter, measure every row; [] (with a note) when there is no C compiler."""
    workdir = tempfile.mkdtemp(prefix="bijli-bench-")
    try:
        stub_bin = build_stub(workdir)
        if stub_bin is None:
            note("bijli bench: no C compiler (cc) for the canned-reply stub: the pinned server cost per GET "
                 "is skipped")
            return []
        cpu = min(os.sched_getaffinity(0)) if cpu is None else cpu
        saved_affinity = os.sched_getaffinity(0)
        _raise_fd_limit(2 * peers + 256)
        wrapper_port, hdlc_port = _free_port(), _free_port()
        config = Path(workdir, "bench.toml")
        config.write_text(f"[dlms]\nmax_connections = {peers + 16}\n", encoding="utf-8")
        meter = subprocess.Popen(
            [sys.executable, "-m", "bijli", "meter", "--config", str(config), "--tcp", f"127.0.0.1:{wrapper_port}",
             "--hdlc-tcp", f"127.0.0.1:{hdlc_port}", "--state", os.path.join(workdir, "state"), "--console", "none"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            try:
                _wait_port(wrapper_port)
                _wait_port(hdlc_port)
            except RuntimeError:
                meter.kill()
                raise RuntimeError(f"the meter did not start: {meter.communicate()[1][-2000:]}") from None
            time.sleep(0.5)  # start-up work (first metering block) out of the way
            _pin(meter.pid, cpu)
            os.sched_setaffinity(0, {cpu})
            rows = [
                _one_peer("wrapper, plain", wrapper_port, stub_bin, cpu, hdlc=False, sap=16, seconds=seconds,
                          rounds=rounds),
                _one_peer("HDLC over TCP, plain", hdlc_port, stub_bin, cpu, hdlc=True, sap=16, seconds=seconds,
                          rounds=rounds),
                _one_peer("wrapper, HLS-GMAC ciphered", wrapper_port, stub_bin, cpu, hdlc=False, sap=48,
                          seconds=seconds, rounds=rounds),
                _one_peer("HDLC over TCP, HLS-GMAC ciphered", hdlc_port, stub_bin, cpu, hdlc=True, sap=48,
                          seconds=seconds, rounds=rounds),
            ]
            if peers > 1:
                rows.append(_many_peers(wrapper_port, stub_bin, cpu, peers, max(seconds, 1.0)))
            return rows
        finally:
            os.sched_setaffinity(0, saved_affinity)
            meter.kill()
            meter.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


GOAL_US = 15.0  # issue 16: server CPU per clock GET over the wrapper


def bench() -> list:
    """The rows of ``bijli bench dlms``: µs per GET, lower is better, each with the issue's bound."""
    from bijli.hal.loop import loop_name
    from bijli.tools.commands.bench import BenchResult

    rows = measure(seconds=0.5, rounds=9, peers=1000)  # medians of 9: on a shared machine 5 short rounds swung 2x
    if not rows:
        return []
    by = {r.name: r for r in rows}
    wrapper_us = by["wrapper, plain"].us_per_get
    hdlc_us = by["HDLC over TCP, plain"].us_per_get
    bound = {"wrapper, plain": GOAL_US, "HDLC over TCP, plain": 2 * wrapper_us,
             "wrapper, HLS-GMAC ciphered": 3 * wrapper_us, "HDLC over TCP, HLS-GMAC ciphered": 3 * hdlc_us}
    loop = loop_name()
    out = []
    for r in rows:
        target = bound.get(r.name, 2 * wrapper_us)
        out.append(BenchResult(f"pinned server CPU per clock GET: {r.name} [{loop}]", r.us_per_get, "us/GET",
                               target, higher_is_better=False))
        if r.fewest is not None:
            out.append(BenchResult(f"  {r.name}: fewest GETs one peer got (most {r.most})", r.fewest, "GETs", 1))
    return out


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", type=int, default=1000)
    a = ap.parse_args()
    for row in measure(seconds=a.seconds, rounds=a.rounds, peers=a.peers):
        extra = f", GETs per peer {row.fewest}..{row.most}" if row.fewest is not None else ""
        print(f"{row.name:<40} {row.us_per_get:7.1f} us per GET (meter {row.meter_rate:,.0f}/s, "
              f"stub {row.stub_rate:,.0f}/s{extra})")
