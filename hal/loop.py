"""The one place a bijli program's event loop is made: uvloop when it is installed.

``bijli meter`` and ``bijli fleet`` run everything (metering, consoles, every DLMS
connection) on one asyncio loop, and the loop's own cost per socket callback is
most of what a GET over TCP costs once the shells are thin. uvloop (libuv under
the asyncio API) roughly halves that floor, so it is used when present: install
it with the ``fast`` extra (``pip install bijli[fast]``). ``BIJLI_LOOP=asyncio``
forces the standard loop (to compare, or to rule uvloop out); ``BIJLI_LOOP=uvloop``
makes its absence an error instead of a silent fallback.

The loop also gets an exception handler that turns the floods asyncio can log for
one condition (``socket.accept() out of system resource`` once per refused accept
when the process is out of descriptors) into one warning when the condition starts,
and a count when it has passed; everything else goes to the default handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Awaitable, Callable, TypeVar

from bijli.hal.errors import BackendError

__all__ = ["loop_factory", "loop_name", "run"]

log = logging.getLogger("bijli.hal.loop")
T = TypeVar("T")

_QUIET_AFTER = 10.0  # seconds without a repeat before a flood counts as over


def loop_factory(choice: str | None = None) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    """``(name, factory)`` for the loop to use: ``choice`` or ``$BIJLI_LOOP`` ("uvloop",
    "asyncio", or unset/"auto" for uvloop when installed)."""
    choice = (choice or os.environ.get("BIJLI_LOOP") or "auto").lower()
    if choice not in ("auto", "uvloop", "asyncio"):
        raise BackendError(f"BIJLI_LOOP must be auto, uvloop or asyncio, not {choice!r}")
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise BackendError("BIJLI_LOOP=uvloop but uvloop is not installed (pip install bijli[fast])") from None
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


def loop_name(choice: str | None = None) -> str:
    return loop_factory(choice)[0]


class _FloodFilter:
    """An exception handler that logs a repeated condition once per episode."""

    # asyncio's message for an accept that failed for lack of descriptors or memory
    CONDITIONS = ("socket.accept() out of system resource",)

    def __init__(self) -> None:
        self._episodes: dict[str, list[float]] = {}  # message -> [last seen, repeats]

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = context.get("message", "")
        if message not in self.CONDITIONS:
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        episode = self._episodes.get(message)
        if episode is None or now - episode[0] > _QUIET_AFTER:
            if episode is not None and episode[1]:
                log.warning("%s: %d more times before it stopped", message, episode[1])
            exc = context.get("exception")
            log.warning("%s (%s): new peers wait; logged once until it has stopped for %.0f s",
                        message, exc, _QUIET_AFTER)
            self._episodes[message] = [now, 0]
        else:
            episode[0] = now
            episode[1] += 1


def run(main: Awaitable[T], *, choice: str | None = None) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    _, factory = loop_factory(choice)

    def make() -> asyncio.AbstractEventLoop:
        loop = factory()
        loop.set_exception_handler(_FloodFilter())
        return loop

    with asyncio.Runner(loop_factory=make) as runner:
        return runner.run(main)
