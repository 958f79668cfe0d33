"""HDLC link-layer benchmark (IEC 62056-46 frame codec): how many I frames of a
full 128-byte information field this machine encodes and decodes per second, and
how fast two sans-IO connections move a segmented APDU between them."""

from __future__ import annotations

from bijli.dlms.link.hdlc import (
    NEED_DATA,
    ApduReceived,
    Frame,
    FrameType,
    HdlcAddress,
    HdlcConnection,
    Role,
    decode_frame,
    encode_frame,
)
from bijli.tools.commands.bench import BenchResult, rate

_SERVER = HdlcAddress(1, 16)
_CLIENT = HdlcAddress(16)


def _frame_round_trip():
    frame = Frame(FrameType.I, _SERVER, _CLIENT, bytes(range(128)), True, 3, 5, True)

    def once() -> None:
        decode_frame(encode_frame(frame))

    return once


def _apdu_exchange():
    server = HdlcConnection(Role.SERVER, server_address=_SERVER, max_info_length=128, window=7)
    client = HdlcConnection(Role.CLIENT, server_address=_SERVER, client_address=16, max_info_length=128, window=7)
    client.connect(now=0.0)
    server.receive_data(client.data_to_send(), now=0.0)
    while server.next_event() is not NEED_DATA:
        pass
    client.receive_data(server.data_to_send(), now=0.0)
    while client.next_event() is not NEED_DATA:
        pass
    apdu = bytes(4096)

    def once() -> None:
        client.send_apdu(apdu)
        while True:
            server.receive_data(client.data_to_send(), now=0.0)
            got = False
            while (ev := server.next_event()) is not NEED_DATA:
                got = isinstance(ev, ApduReceived)
            client.receive_data(server.data_to_send(), now=0.0)
            while client.next_event() is not NEED_DATA:
                pass
            if got:
                return

    return once


def bench() -> list[BenchResult]:
    return [
        BenchResult("HDLC frame encode+decode (frames/s)", rate(_frame_round_trip(), batch=500), "frames/s"),
        BenchResult("HDLC 4 KiB APDU client->server, info 128, window 7 (APDUs/s)",
                    rate(_apdu_exchange(), batch=20), "APDUs/s"),
    ]


if __name__ == "__main__":
    from bijli.tools.commands.bench import format_rows

    print(format_rows(bench()))
