"""One process per state directory: an OS advisory lock on ``DIR/lock``.

A meter's non-volatile memory belongs to one meter. Two processes on the same
state directory would both accept a token that the database records once (the
last write wins), so the second start must fail. The lock is ``flock(2)`` on a
file inside the directory: the kernel drops it when the holder exits, however it
exits (SIGKILL and power cut included), so a stale lock never needs cleaning. The
holder's PID is written into the file so that the refusal can say who holds it.
POSIX only, as the rest of ``hal`` (a Raspberry Pi or a Linux/macOS desk).
"""

from __future__ import annotations

import atexit
import fcntl
import os
from pathlib import Path

from bijli.hal.errors import HalError

LOCK_NAME = "lock"


class StateInUse(HalError):
    """Another process holds the state directory."""

    def __init__(self, state: Path, pid: int | None):
        who = f"PID {pid}" if pid else "another process"
        super().__init__(f"state directory {state} in use by {who}; stop it first, or use another --state")
        self.state = state
        self.pid = pid


class StateLock:
    """The held lock; :meth:`release` (or process exit) gives it up."""

    def __init__(self, state: Path, fd: int, created: bool = False):
        self.state = state
        self._fd: int | None = fd
        self._created = created  # this process made the directory: leave none behind if unused

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def tidy(self) -> None:
        """Release; a directory this process created and left holding only the lock
        (a start refused before any state was written, e.g. on a bad config) goes too."""
        fd, self._fd = self._fd, None
        try:
            if self._created and [p.name for p in self.state.iterdir()] == [LOCK_NAME]:
                (self.state / LOCK_NAME).unlink()  # while still held: nobody can have it meanwhile
                self.state.rmdir()
        except OSError:
            pass
        finally:
            if fd is not None:
                os.close(fd)

    def __enter__(self) -> "StateLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def acquire(state_dir: str | Path) -> StateLock:
    """Hold ``state_dir`` for this process, creating it if need be; :class:`StateInUse`
    names the PID of the process that holds it already."""
    state = Path(state_dir).resolve()
    created = not state.exists()
    try:
        state.mkdir(parents=True, exist_ok=True)
        # not O_TRUNC: truncating before we hold the lock would erase the holder's PID
        fd = os.open(state / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HalError(f"state directory {state}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateInUse(state, _holder(state / LOCK_NAME)) from None
    except OSError as exc:
        os.close(fd)
        raise HalError(f"state directory {state}: cannot lock: {exc.strerror}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    lock = StateLock(state, fd, created)
    atexit.register(lock.tidy)
    return lock
