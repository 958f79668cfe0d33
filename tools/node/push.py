"""The I/O shell of push: delivers the meter's DataNotifications to the head-end.

The firmware side (:class:`firmware.push.PushOutbox`) queues a reason when the
Push setup object's ``push`` method is invoked or a chosen event happens; this
loop wakes, builds each notification at sending time and sends it over TCP in
the IEC 62056-47 wrapper (source wPort 1, the management logical device;
destination wPort the push client's SAP). A DataNotification is unconfirmed, so
delivery means the connection took the frame; a refused or failed connection is
retried ``number_of_retries`` times ``repetition_delay`` seconds apart, after a
random wait of up to ``randomisation_start_interval`` (IEC 62056-6-2 class 40),
so a thousand meters told to push at once do not arrive at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime
from typing import Awaitable, Callable

from bijli.dlms.errors import DlmsError
from bijli.dlms.link import MANAGEMENT_SAP, wrapper
from bijli.firmware.errors import FirmwareError
from bijli.firmware.cosem.push import attach_push, push_outbox
from bijli.firmware.push import PushConfig, PushOutbox
from bijli.hal import tcp
from bijli.hal.errors import LineError

log = logging.getLogger("bijli.push")

CONNECT_TIMEOUT = 10.0


async def deliver(apdu: bytes, config: PushConfig, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                  randomise: Callable[[float, float], float] = random.uniform) -> bool:
    """Send one notification to ``config``'s destination with its retries; True once sent."""
    endpoint = config.endpoint
    if endpoint is None:
        return False
    host, port = endpoint
    frame = wrapper.encode_frame(MANAGEMENT_SAP, config.client_sap, apdu)
    if config.randomisation_start_interval_s:
        await sleep(randomise(0, config.randomisation_start_interval_s))
    for attempt in range(config.retries + 1):
        if attempt:
            await sleep(config.repetition_delay_s)
        try:
            await tcp.send_once(host, port, frame, timeout=CONNECT_TIMEOUT)
            return True
        except LineError as exc:
            log.info("push to %s:%s, attempt %d: %s", host, port, attempt + 1, exc)
    log.warning("push to %s:%s failed after %d attempts", host, port, config.retries + 1)
    return False


async def run(outbox: PushOutbox, now: Callable[[], datetime], stopping: asyncio.Event) -> None:
    """Deliver every push the outbox is asked for until ``stopping``; each delivery runs on
    its own, so a head-end that is down does not hold back the next push."""
    wake = asyncio.Event()
    outbox.on_request = wake.set
    sending: set[asyncio.Task] = set()
    try:
        while not stopping.is_set():
            waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stopping.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            wake.clear()
            for request in outbox.take():
                try:
                    apdu = outbox.build(request, now())
                except (FirmwareError, DlmsError) as exc:
                    log.warning("push (%s) not built: %s", request.reason, exc)
                    continue
                task = asyncio.create_task(deliver(apdu, outbox.config))
                sending.add(task)
                task.add_done_callback(sending.discard)
    finally:
        outbox.on_request = lambda: None
        for task in sending:
            task.cancel()


async def serve(node, stopping: asyncio.Event) -> None:
    """Push for a running meter (a :class:`tools.node.meter_node.MeterNode`: its meter, object list
    and DLMS server) until ``stopping``."""
    outbox = push_outbox(node.objects)
    attach_push(node.meter, outbox, node.server)
    await run(outbox, lambda: node.meter.now, stopping)
