"""Benchmarks of the DLMS server: GETs per second in-process (plain and ciphered)
and over loopback TCP through the real asyncio wrapper listener with our client
(plain, and HLS-GMAC with every request ciphered under a fresh invocation counter).

In-process rows time :meth:`dlms.server.Server.handle` on request bytes, exactly
what a link layer hands it. The TCP rows run ``hal.tcp.serve`` + the wrapper
session on an event loop in a thread; our blocking Client associates and keeps
``depth`` requests in flight, as a head-end reading many
registers does.
"""

from __future__ import annotations

import asyncio
import threading
import time

from bijli.dlms import apdu, axdr
from bijli.dlms.acse import Conformance, Mechanism
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.cosem.association import AssociationLN, AssociationPolicy, full_access, read_only
from bijli.dlms.cosem.data import Register
from bijli.dlms.obis import Obis
from bijli.dlms.security import SecuritySettings
from bijli.dlms.server import Server
from bijli.tools.commands.bench import BenchResult, rate

REGISTER = Obis(1, 0, 1, 8, 0, 255)
_CONF = (Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
         | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.GENERAL_PROTECTION)


def _server() -> Server:
    objects = [Register(REGISTER, lambda: axdr.DoubleLongUnsigned(123456), 0, 30)]
    objects.append(AssociationLN("0.0.40.0.0.255", None, lambda: objects))
    policies = [AssociationPolicy(16, "public", rights=read_only),
                AssociationPolicy(48, "utility", Mechanism.HLS_GMAC, None, full_access, _CONF, ciphered=True)]
    return Server(objects, policies, security=SecuritySettings(system_title=b"BJL\x00\x00\x00\x00\x01",
                                                               reserve_step=100_000))


class _Direct:
    def __init__(self, server: Server, sap: int):
        self.server, self.session = server, server.new_session(sap)

    def request(self, data: bytes) -> bytes:
        (answer,) = self.server.handle(self.session, data)
        return answer

    def close(self) -> None:
        pass


def _plain_rate() -> float:
    server = _server()
    c = Client(_Direct(server, 16), ClientSettings.for_association(16))
    c.associate()
    session = c.transport.session
    req = apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(3, REGISTER, 2)).encode()
    return rate(lambda: server.handle(session, req), batch=1000)


def _ciphered_rate() -> float:
    server = _server()
    c = Client(_Direct(server, 48), ClientSettings.for_association(48))
    c.associate()
    session = c.transport.session
    plain = apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(3, REGISTER, 2)).encode()

    def one() -> None:
        # a fresh IC per request, as a real client sends them; the client's ciphering is part of the
        # cost a meter never pays, so it is done outside the timed server call where possible
        server.handle(session, c.session.protect(plain))

    return rate(one, batch=200)


def _tcp_rate(sap: int = 16, depth: int = 16, seconds: float = 1.0) -> float:
    """GETs per second over a real loopback socket: our Client associates (for SAP 48 with
    HLS-GMAC), then ``depth`` requests are kept in flight, each ciphered with a fresh
    invocation counter when the association is ciphered."""
    from bijli.hal import tcp
    from bijli.hal.tcp_line import SocketLine
    from bijli.tools.node.client_transports import WrapperTransport
    from bijli.tools.node.links import wrapper_session

    server = _server()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict = {}

    async def main() -> None:
        listener = await tcp.serve("127.0.0.1", 0, lambda s: wrapper_session(s, server))
        box["listener"] = listener
        box["port"] = listener.sockets[0].getsockname()[1]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        transport = WrapperTransport(SocketLine("127.0.0.1", box["port"]), sap)
        client = Client(transport, ClientSettings.for_association(sap))
        client.associate()
        plain = apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(3, REGISTER, 2)).encode()
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(depth):
                transport.send_only(client.session.protect(plain))
            for _ in range(depth):
                if not client.session.unprotect(transport.receive()).startswith(b"\xc4\x01"):
                    raise RuntimeError("the bench GET was refused")
            done += depth
        elapsed = time.perf_counter() - start
        transport.close()
        time.sleep(0.1)  # let the server see the close before its loop stops
        return done / elapsed
    finally:
        loop.call_soon_threadsafe(box["listener"].close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def bench() -> list[BenchResult]:
    return [
        BenchResult("dlms server: GET register in-process, plain", _plain_rate(), "GET/s", 25_000),
        BenchResult("dlms server: GET register in-process, HLS-GMAC ciphered", _ciphered_rate(), "GET/s"),
        BenchResult("dlms server: GET register over loopback TCP with our client, plain", _tcp_rate(16), "GET/s",
                    8_000),
        BenchResult("dlms server: GET register over loopback TCP with our client, HLS-GMAC ciphered",
                    _tcp_rate(48), "GET/s"),
    ]


if __name__ == "__main__":  # pragma: no cover
    from bijli.tools.commands.bench import format_rows

    print(format_rows(bench()))
