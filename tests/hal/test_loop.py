"""hal.loop: the one place the event loop is chosen, and its flood filter."""

import asyncio
import logging

import pytest

from bijli.hal import loop as hal_loop
from bijli.hal.errors import BackendError


async def _loop_class_name() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_can_be_forced():
    assert hal_loop.run(_loop_class_name(), choice="asyncio").startswith("asyncio")


def test_auto_takes_uvloop_when_installed(monkeypatch):
    monkeypatch.delenv("BIJLI_LOOP", raising=False)
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert hal_loop.loop_name("auto") == "asyncio"
        with pytest.raises(BackendError):
            hal_loop.loop_factory("uvloop")
    else:
        assert hal_loop.loop_name("auto") == "uvloop"
        assert hal_loop.run(_loop_class_name()).startswith("uvloop")


def test_unknown_choice_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("BIJLI_LOOP", "tokio")
    with pytest.raises(BackendError, match="BIJLI_LOOP"):
        hal_loop.loop_factory()


def test_accept_flood_is_logged_once_per_episode(caplog):
    async def main():
        loop = asyncio.get_running_loop()
        for _ in range(500):
            loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                         "exception": OSError(24, "Too many open files")})
        loop.call_exception_handler({"message": "something else"})

    with caplog.at_level(logging.WARNING):
        hal_loop.run(main(), choice="asyncio")
    flood = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(flood) == 1
    assert any("something else" in r.getMessage() for r in caplog.records)  # others pass through
