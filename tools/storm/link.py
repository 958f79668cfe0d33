"""The asyncio I/O shell of the storm's head-end: one TCP connection to one meter's
IEC 62056-47 wrapper endpoint, one APDU out and the next APDU back.

Thin by design: framing is :class:`~bijli.tools.storm.adapter.Framer`'s, the
protocol is :mod:`~bijli.tools.storm.delivery`'s. Every wait is bounded by the
caller's timeout; a refused or reset connection, a timeout or an end of stream is a
retryable :class:`~bijli.tools.storm.DeliveryError`, because none of them says
anything about what the meter did with a request already sent.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from bijli.tools.storm import DeliveryError
from bijli.tools.storm.adapter import Framer


def parse_target(target: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (a manifest's ``target``) -> (host, port)."""
    parts = urlsplit(target)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise DeliveryError(f"not a TCP wrapper target: {target!r} (expected tcp://HOST:PORT)", retry=False)
    return parts.hostname, parts.port


class WrapperLink:
    """``async with WrapperLink(host, port, timeout) as link: await link.request(sap, apdu)``."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = Framer()

    async def __aenter__(self) -> "WrapperLink":
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise DeliveryError(f"connect to {self.host}:{self.port}: timed out") from None
        except OSError as exc:
            raise DeliveryError(f"connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        return self

    async def __aexit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                async with asyncio.timeout(self.timeout):
                    await self._writer.wait_closed()
            except OSError:  # TimeoutError among them: the connection is ours to drop either way
                pass

    async def request(self, sap: int, data: bytes) -> bytes:
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(Framer.frame(sap, data))
            async with asyncio.timeout(self.timeout):  # no task per request, unlike wait_for
                return await self._answer()
        except TimeoutError:
            raise DeliveryError(f"{self.host}:{self.port}: no answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise DeliveryError(f"{self.host}:{self.port}: {exc.strerror or exc}") from None

    async def _answer(self) -> bytes:
        assert self._reader is not None
        while True:
            got = self._framer.next_apdu()
            if got is not None:
                return got[1]
            data = await self._reader.read(65536)
            if not data:
                raise DeliveryError(f"{self.host}:{self.port}: the meter closed the connection")
            self._framer.feed(data)
