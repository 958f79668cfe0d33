"""Push: what the meter sends unsolicited, where to, and when (the firmware side of
the Push setup object, IEC 62056-6-2 class 40, clause 4.4.8).

The ``[push]`` table names the head-end's listener (``destination = "HOST:PORT"``,
the IEC 62056-47 TCP wrapper, A-XDR encoded), the client SAP the notification is
addressed to (the destination wPort), the retry settings of the Push setup
object, and whether meter events trigger a push. :class:`PushOutbox` is sans-IO:
the DLMS ``push`` method and the events chosen in :data:`PUSH_EVENTS` only queue a
*reason*; the I/O shell (``tools/node/push.py``) takes the queue, asks the attached
builder for the DataNotification at sending time (so it carries the values after
the step that caused it has been committed) and delivers it with retries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from bijli.firmware.config import Table
from bijli.firmware.errors import ConfigError, FirmwareError
from bijli.firmware.events import Event, EventCode

#: the wrapper's wPort of the push client when the configuration names none: 102
#: (0x66), the SAP companion specifications (IDIS) give the push client association
DEFAULT_CLIENT_SAP = 102

#: events that push when ``[push] on_events = true``: supply cut or restored, a
#: recharge, credit running out, tampering -- what a head-end wants at once
PUSH_EVENTS = frozenset({
    EventCode.LOAD_SWITCH_DISCONNECTED, EventCode.LOAD_SWITCH_CONNECTED, EventCode.TOKEN_ACCEPTED,
    EventCode.OUT_OF_CREDIT, EventCode.LOW_CREDIT_1, EventCode.COVER_OPEN, EventCode.MAGNET,
})

MAX_PENDING = 32  # a head-end that is down for long does not fill the meter's memory


class PushError(FirmwareError):
    """A push that cannot be made (no destination configured)."""


@dataclass(frozen=True)
class PushConfig:
    destination: str = ""  # "HOST:PORT"; empty: the meter does not push
    client_sap: int = DEFAULT_CLIENT_SAP
    ciphered: bool = True  # general-glo-ciphering with the utility association's keys
    on_events: bool = False
    randomisation_start_interval_s: int = 0
    retries: int = 3
    repetition_delay_s: int = 10

    @property
    def endpoint(self) -> tuple[str, int] | None:
        if not self.destination:
            return None
        host, _, port = self.destination.rpartition(":")
        return host.strip("[]"), int(port)

    @classmethod
    def from_table(cls, table: dict, prefix: str = "push") -> "PushConfig":
        t = Table(table, prefix, {"destination", "client_sap", "ciphered", "on_events",
                                  "randomisation_start_interval_s", "retries", "repetition_delay_s"})
        destination = t.str("destination", "").strip()
        if destination.lower() == "none":
            destination = ""
        if destination:
            host, sep, port = destination.rpartition(":")
            if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ConfigError(t.key("destination"), f"must be HOST:PORT or empty, not {destination!r}")
        return cls(
            destination=destination,
            client_sap=t.int("client_sap", DEFAULT_CLIENT_SAP, 1, 0xFFFF),
            ciphered=t.bool("ciphered", True),
            on_events=t.bool("on_events", False),
            randomisation_start_interval_s=t.int("randomisation_start_interval_s", 0, 0, 0xFFFF),
            retries=t.int("retries", 3, 0, 255),
            repetition_delay_s=t.int("repetition_delay_s", 10, 0, 0xFFFF),
        )


@dataclass(frozen=True)
class PushRequest:
    """One push to make: why, and when it was asked for (meter time)."""

    reason: str
    time: datetime


#: builds the notification APDU at sending time: (long_invoke_id, time) -> bytes
Builder = Callable[[int, datetime], bytes]


class PushOutbox:
    """Pushes waiting for the I/O shell, and the builder that turns one into an APDU."""

    def __init__(self, config: PushConfig):
        self.config = config
        self._pending: deque[PushRequest] = deque(maxlen=MAX_PENDING)
        self._builder: Builder | None = None
        self._invoke_id = 0
        self.on_request: Callable[[], None] = lambda: None  # the shell's wake-up

    def attach(self, builder: Builder) -> None:
        self._builder = builder

    def request(self, reason: str, now: datetime) -> PushRequest:
        """Queue a push (the DLMS ``push`` method, or an event)."""
        if self.config.endpoint is None:
            raise PushError("no push destination configured ([push] destination)")
        req = PushRequest(reason, now)
        self._pending.append(req)
        self.on_request()
        return req

    def on_event(self, event: Event) -> None:
        """A meter event listener: events of :data:`PUSH_EVENTS` push when configured."""
        if self.config.on_events and self.config.endpoint is not None and event.code in PUSH_EVENTS:
            self.request(f"event {int(event.code)} {event.code.name.lower()}", event.time)

    def take(self) -> list[PushRequest]:
        out = list(self._pending)
        self._pending.clear()
        return out

    def build(self, request: PushRequest, now: datetime) -> bytes:
        """The DataNotification for ``request``, with the values as they are ``now``."""
        if self._builder is None:
            raise PushError("push is not attached to a DLMS server")
        self._invoke_id = (self._invoke_id + 1) & 0x7FFFFFFF
        return self._builder(self._invoke_id, now)
