"""The vending tool's TID journal: the last TID ``bijli token vend`` gave each meter.

IEC 62055-41: a token's TID is the minute it was issued (minutes since the base
date), and a meter takes each TID once (``used``) and refuses TIDs older than its
memory (``old``). Two vends for one meter in the same minute would carry the same
TID, and the meter would take only the first: the customer who bought twice loses
the second. So the vending side keeps, per meter and base date, the last TID it
issued, never issues it again or one below it, and moves a vend that would to the
next free minute (the caller says so).

The journal is one JSON file (default ``$XDG_STATE_HOME/bijli/vend-journal.json``,
i.e. ``~/.local/state/bijli/``). Two processes at once are serialised by an
exclusive ``flock`` on a sidecar ``.lock`` file held from read to write; the new
content goes to a temporary file that is fsynced and renamed over the old one (and
the directory fsynced), so a crash leaves the old journal or the new one, never a
torn one. A journal that cannot be read stops the vend: starting afresh could issue
a TID a meter has already taken.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

JOURNAL_VERSION = 1
TID_LIMIT = 1 << 24


class VendJournalError(Exception):
    """The journal cannot be read, written or has no TID left for the meter."""


def default_path() -> Path:
    """``$BIJLI_VEND_JOURNAL``, else ``$XDG_STATE_HOME/bijli/vend-journal.json``."""
    explicit = os.environ.get("BIJLI_VEND_JOURNAL")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "bijli" / "vend-journal.json"


def next_free(wanted: int, last: int | None) -> int:
    """The first TID to issue: ``wanted`` unless the journal already went there or past it."""
    return wanted if last is None or wanted > last else last + 1


@dataclass(frozen=True)
class Reservation:
    """TIDs ``first .. first + count - 1`` are this vend's; ``wanted`` is what it asked for."""

    meter: str
    wanted: int
    first: int
    count: int
    last_before: int | None

    @property
    def bumped(self) -> bool:
        return self.first != self.wanted


class VendJournal:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    @contextmanager
    def reserve(self, meter: str, wanted: int, count: int) -> Iterator[Reservation]:
        """Hold the journal, hand out ``count`` consecutive TIDs from the first free one
        at or after ``wanted``, and record them when the block ends without an error
        (tokens built inside it are only good once this returns)."""
        with self.reserve_many([(meter, wanted, count)]) as (reservation,):
            yield reservation

    @contextmanager
    def reserve_many(self, wanted: list[tuple[str, int, int]]) -> Iterator[list[Reservation]]:
        """:meth:`reserve` for many meters at once, ``wanted`` a list of (meter, wanted TID,
        count): one lock, one read and one write of the journal for all of them, where a
        reservation per meter rewrote the whole journal each time (a storm vending for
        250,000 meters was quadratic: 250,000 rewrites of a journal of 250,000 meters).
        A meter named twice gets consecutive TIDs. Nothing is recorded when the block
        raises: none of the batch's tokens is good then."""
        for meter, first_wanted, count in wanted:
            if count < 1:
                raise VendJournalError(f"meter {meter}: a reservation is at least one TID")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")
        except OSError as exc:
            raise VendJournalError(f"cannot open the vend journal {self.path}: {exc}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            data = self._read()
            meters = data["meters"]
            last: dict[str, int | None] = {}
            out = []
            for meter, first_wanted, count in wanted:
                before = last[meter] if meter in last else (meters[meter]["last_tid"] if meter in meters else None)
                first = next_free(first_wanted, before)
                if first + count > TID_LIMIT:
                    raise VendJournalError(f"meter {meter}: no TID left in its base date's range (last issued {before})")
                out.append(Reservation(meter, first_wanted, first, count, before))
                last[meter] = first + count - 1
            yield out
            for meter, tid in last.items():
                meters[meter] = {"last_tid": tid}
            self._write(data)

    def last_tid(self, meter: str) -> int | None:
        entry = self._read()["meters"].get(meter)
        return None if entry is None else entry["last_tid"]

    # --- the file ---------------------------------------------------------------

    def _read(self) -> dict:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {"version": JOURNAL_VERSION, "meters": {}}
        except OSError as exc:
            raise VendJournalError(f"cannot read the vend journal {self.path}: {exc}") from None
        try:
            data = json.loads(text)
            ok = (data.get("version") == JOURNAL_VERSION and isinstance(data.get("meters"), dict)
                  and all(isinstance(e, dict) and isinstance(e.get("last_tid"), int)
                          and not isinstance(e["last_tid"], bool) and 0 <= e["last_tid"] < TID_LIMIT
                          for e in data["meters"].values()))  # fmt: skip
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise VendJournalError(f"the vend journal {self.path} is damaged; it is not reset on its own because a "
                               "fresh journal could reissue TIDs. Repair it, or move it away knowingly "
                               "(vends then start from the clock again)")
        return data

    def _write(self, data: dict) -> None:
        directory = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise VendJournalError(f"cannot write the vend journal {self.path}: {exc}") from None
