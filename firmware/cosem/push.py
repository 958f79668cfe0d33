"""The Push setup object (IC 40, 0.0.25.9.0.255) over the firmware's push outbox.

The object's push method queues a reason to :class:`bijli.firmware.push.PushOutbox`;
its push_object_list (what a DataNotification carries, IEC 62056-6-2 4.4.8.2) is
writable by the head-end and kept in the meter's memory. :func:`attach_push` gives
the outbox its builder: a DataNotification (IEC 62056-5-3 9.3.6) made by the DLMS
server at sending time, ciphered with the utility association's keys when
``[push] ciphered``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from bijli.dlms import axdr
from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.cosem.base import CosemError, CosemObject
from bijli.dlms.cosem.profile import CaptureObjectDefinition
from bijli.dlms.cosem.push import MessageType, PushSetup, SendDestinationAndMethod, TransportService
from bijli.dlms.obis import Obis
from bijli.firmware.cosem.catalogue import ACTIVE_IMPORT, CLOCK, CURRENT_BALANCE, DISCONNECT_CONTROL, PUSH_SETUP
from bijli.firmware.cosem.clock import deviation
from bijli.firmware.cosem.results import cosem_result
from bijli.firmware.push import PushError, PushOutbox

if TYPE_CHECKING:  # pragma: no cover
    from bijli.dlms.server import Server
    from bijli.firmware.meter import Meter


PUSH_OBJECTS_KEY = "push_objects"  # the list the head-end wrote

#: what a push carries unless the head-end writes another list: time, energy, balance, supply
DEFAULT_PUSH_OBJECTS = (
    CaptureObjectDefinition(8, CLOCK, 2),
    CaptureObjectDefinition(3, ACTIVE_IMPORT, 2),
    CaptureObjectDefinition(1, CURRENT_BALANCE, 2),
    CaptureObjectDefinition(70, DISCONNECT_CONTROL, 2),
)


def push_object_list(meter: "Meter") -> tuple[CaptureObjectDefinition, ...]:
    """What a push carries: the list the head-end wrote, or the default."""
    stored = meter.storage.get(PUSH_OBJECTS_KEY)
    if not stored:
        return DEFAULT_PUSH_OBJECTS
    return tuple(CaptureObjectDefinition(int(c), Obis.parse(ln), int(a), int(d)) for c, ln, a, d in stored)


class MeterPushSetup(PushSetup):
    """The Push setup object with the outbox its ``push`` method queues to."""

    def __init__(self, outbox: PushOutbox, logical_name, **bindings):
        super().__init__(logical_name, **bindings)
        self.outbox = outbox


def push_outbox(objects) -> PushOutbox:
    """The outbox of the Push setup object in ``objects`` (for the push I/O shell)."""
    for obj in objects:
        if isinstance(obj, MeterPushSetup):
            return obj.outbox
    raise PushError("no Push setup object in this object list")


def push_setup(meter: "Meter", outbox: PushOutbox, lookup: Callable[[Obis], CosemObject]) -> PushSetup:
    cfg = outbox.config

    def set_list(items: tuple[CaptureObjectDefinition, ...]) -> None:
        for c in items:
            try:
                obj = lookup(c.logical_name)
            except KeyError:
                raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"no object {c.logical_name}") from None
            if obj.CLASS_ID != c.class_id or not 1 <= c.attribute_index <= len(obj.ATTRIBUTES) or c.data_index:
                raise CosemError(DataAccessResult.OBJECT_UNDEFINED,
                                 f"{c.class_id}/{c.logical_name}/{c.attribute_index} is not an attribute here")
        meter.keep_setting(PUSH_OBJECTS_KEY, [[c.class_id, str(c.logical_name), c.attribute_index, 0] for c in items])

    def do_push() -> None:
        with cosem_result():  # no destination configured: temporary-failure
            outbox.request("dlms push", meter.now)

    return MeterPushSetup(
        outbox,
        PUSH_SETUP,
        push_object_list=lambda: push_object_list(meter),
        set_push_object_list=set_list,
        send_destination_and_method=SendDestinationAndMethod(
            TransportService.TCP, cfg.destination.encode("ascii"), MessageType.A_XDR_APDU),
        communication_window=(),  # always
        randomisation_start_interval=cfg.randomisation_start_interval_s,
        number_of_retries=cfg.retries,
        repetition_delay=cfg.repetition_delay_s,
        on_push=do_push,
    )


def attach_push(meter: "Meter", outbox: PushOutbox, server: "Server") -> None:
    """Let ``outbox`` build its DataNotifications with ``server`` (ciphered for the utility
    association's keys when ``[push] ciphered`` and the server has security settings), and
    push on meter events when ``[push] on_events``."""

    def build(invoke_id: int, now: datetime) -> bytes:
        items = [(c.class_id, c.logical_name, c.attribute_index) for c in push_object_list(meter)]
        stamp = axdr.CosemDateTime.from_datetime(now, deviation=deviation(meter))
        return server.data_notification(items, long_invoke_id=invoke_id, date_time=stamp,
                                        ciphered=outbox.config.ciphered and server.security is not None)

    outbox.attach(build)
    if outbox.on_event not in meter.event_listeners:
        meter.event_listeners.append(outbox.on_event)
