"""An asyncio event loop on a daemon thread, for tests that serve a meter in-process.

Several integration tests run our I/O shells on a real loop while the test itself
talks to them with blocking clients; this is the one place that starts such a loop,
waits for its listeners, runs calls on it, and stops it cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable


class LoopThread:
    """``setup`` (a coroutine function) runs first on the new loop; the constructor returns
    once it has finished (its exception, if any, is raised here), and the loop then runs
    until :meth:`stop`."""

    def __init__(self, setup: Callable[[], Awaitable[Any]], timeout: float = 10.0):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(setup())
            except BaseException as exc:  # noqa: BLE001 - handed to the constructor's caller
                failed.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(timeout), "the served meter did not start"
        if failed:
            raise failed[0]

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn()`` on the loop's thread and return its result."""
        async def go():
            return fn()
        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout)

    def stop(self, teardown: Callable[[], Awaitable[Any]] | None = None, timeout: float = 5.0) -> None:
        """Run ``teardown`` on the loop, end the tasks still open (a peer that did not
        release), then stop the loop and its thread."""
        async def _stop():
            if teardown is not None:
                await teardown()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


class ServedMeter:
    """A whole meter's (a MeterNode's) server on the TCP wrapper, on a loop in a thread:
    ``port`` to connect to, :meth:`call` to run something on the meter's thread,
    :meth:`stop` (once is enough; again does nothing)."""

    def __init__(self, node):
        from bijli.hal import tcp
        from bijli.tools.node import links

        self.node = node

        async def main():
            self.listener = await tcp.serve("127.0.0.1", 0, lambda s: links.wrapper_session(s, node.server))
            self.port = self.listener.sockets[0].getsockname()[1]

        self.loop_thread = LoopThread(main)
        self.stopped = False

    def call(self, fn: Callable[[], Any]) -> Any:
        return self.loop_thread.call(fn)

    def stop(self) -> None:
        async def close():
            self.listener.close()

        if not self.stopped:
            self.stopped = True
            self.loop_thread.stop(close)
