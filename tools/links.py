"""I/O shells that carry DLMS between a hal stream and the sans-IO server.

Each function here is the thin loop around one link state machine: bytes from
the stream go into the link connection, APDUs it yields go to
:meth:`dlms.server.Server.handle`, answers go back out. One association
:class:`~dlms.server.Session` per client SAP per connection. Protocol errors
close this connection only; the meter keeps serving everyone else.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from dlms.errors import DlmsError
from dlms.link import wrapper
from dlms.server import Server, Session

log = logging.getLogger("bijli.links")

MANAGEMENT_SAP = 1


async def wrapper_session(stream, server: Server, *, on_activity: Callable[[], None] | None = None) -> None:
    """Serve one TCP connection speaking the IEC 62056-47 wrapper."""
    conn = wrapper.WrapperConnection(MANAGEMENT_SAP)
    sessions: dict[int, Session] = {}
    while True:
        data = await stream.read()
        if not data:
            return
        conn.receive_data(data)
        while True:
            try:
                event = conn.next_event()
            except DlmsError as exc:
                log.info("closing %s: %s", stream.peer, exc)
                return
            if event is wrapper.NEED_DATA:
                break
            if event.destination_wport != MANAGEMENT_SAP:
                continue  # no such logical device: the wrapper discards, as a router would
            session = sessions.get(event.source_wport)
            if session is None:
                session = sessions[event.source_wport] = server.new_session(event.source_wport)
            response = server.handle(session, event.apdu, time.monotonic())
            if on_activity:
                on_activity()
            if response is not None:
                await stream.write(conn.send(response, destination_wport=event.source_wport))
