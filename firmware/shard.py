"""Shard memory: the non-volatile memory of many meters in one sqlite database, keyed by meter.

A fleet process (``bijli fleet``) runs thousands of meters; one sqlite file per meter
(:class:`firmware.storage.Storage`) costs ~110 KB of disk and three file descriptors
each, and one fsync per meter at every profile capture. A :class:`ShardStore` is one
database for a whole shard of meters, in the same mode as a single meter's memory
(WAL, ``synchronous=FULL``), with the meter's index as the first column of every key.
:meth:`ShardStore.memory` hands out a :class:`MeterMemory`: one meter's view, with
the same methods and the same meaning as :class:`~firmware.storage.Storage`
(``transaction``/``put``/``get``/``rows``/``count``, ``Transaction``-like ``put``,
``delete``, ``append``, ``clear``), so the firmware :class:`~firmware.meter.Meter`
runs on it unchanged: one firmware step is still one atomic unit, and a token's TID
and credit still commit together.

Commit groups: inside :meth:`ShardStore.group` every meter's step is a SAVEPOINT of
one outer transaction, committed (one fsync) when the group ends; a step that fails
rolls back to its savepoint and leaves the other meters' steps in the group intact.
A fleet-wide boundary (the 30-minute block-load capture of 250,000 meters) is one
group, not 250,000 fsyncs. Nothing that must be acknowledged (a credited token) may
be inside a group: outside a group every step is its own ``BEGIN IMMEDIATE ...
COMMIT``, on disk when :meth:`MeterMemory.transaction` returns, as with a single meter.
The one exception is a *batch* (:meth:`ShardStore.begin_batch`), a group left open across
the callbacks of one event-loop round whose opener holds back every acknowledgement of
its steps until it has committed (the fleet engine's DLMS connections: a token's reply
leaves only once its credit is on disk, with the other requests of that round in one
fsync); anything else that needs the store first ends the batch.

Values are encoded exactly as :mod:`firmware.storage` encodes them (its ``dumps`` and
``loads``), so money stays Decimal text on its way to disk.

**Profile pages** (schema 3). One row per profile entry is about 5 KB per meter-day,
eight times issue 12's disk budget, so a profile's entries are kept as *pages*: one
``pages`` row per (meter, profile, first entry) holding a run of consecutive entries
packed by :mod:`firmware.pages` (columns of fixed-width integer deltas, zlib), with
the range of their times for range reads. A new entry is one row of the profile's
open *tail* (the ``rows`` table, as before); once the tail holds a page's worth
(:func:`page_entries`: at most 48, a day of 30-minute block load, and at most 1/16 of
the capacity) it is packed into a page, so an append never rewrites a page. Each
profile's *head* (``heads``) holds its newest entry, the FIFO's floor (entries below
it are gone, also from a page the floor has passed only in part) and the newest entry
packed. :meth:`MeterMemory.rows` and ``count`` give back exactly the rows one row per
entry gives (the same :class:`~firmware.storage.Row`), so selective access, FIFO and
every profile object work unchanged. A shard of schema 2 opens: its rows become the
tails, packed by the profiles' next appends.

**A damaged shard is refused as a damaged meter.db is** (see :mod:`firmware.storage`):
every state blob, profile row, page and head carries a CRC-32 over its meter, key and value,
checked on every read (a record copied under another meter's key fails it too); the
shard keeps a commit counter, one more with every transaction; and its seal
(``<shard>.seal`` beside the database) holds that counter under a SHA-256.

*The seal's cost.* Rewritten by a temporary file, fsync and rename after every commit,
the seal cost more than the commit (444 us of CPU, 2.8 ms of wall time). It is now two
slots in different disk sectors, and a commit rewrites the slot of its parity in place
(one ``pwrite``), forced to disk (``fdatasync``) at most every :data:`SEAL_SYNC_S` and at
a clean close. What it vouches for: after a process crash (SIGKILL) the newest slot is
there (the page cache holds it once ``pwrite`` returns), so a database behind it is
refused exactly as before; a slot torn by a power cut leaves the other, one commit older,
and a database one ahead of its seal is accepted (a crash between commit and seal). A
power cut may cost the seal the slots of its last second; the renamed seal could lose its
last renames too (its directory was never synced), and the database's commits are
durable either way (WAL, ``synchronous=FULL``), so a rollback is still caught unless it
comes together with a power cut within that second. On open, a database behind its seal (a lost write-ahead
log, an old copy put back: tokens it credited would be taken again), a seal without its
database, a database with commits but no seal, a damaged seal or a failing
``quick_check`` raise :class:`~firmware.errors.StateDamaged`, and no meter of the shard
starts on it. Unlike a meter's seal, a shard's does not copy the state blobs (that
would be every meter's, at every commit), so a damaged shard is refused, not rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from bijli.firmware import pages
from bijli.firmware.errors import StateDamaged, StorageError
from bijli.firmware.storage import (NonVolatileMemory, Row, dumps, kv_crc, loads, read_rows, read_seal, read_seal_bytes,
                                    row_crc, row_range)

SHARD_SCHEMA_VERSION = 3  # 2: a CRC-32 on every record, the commit counter, the seal; 3: profile pages

#: a page holds at most this many entries: a day of 30-minute block load
PAGE_ENTRIES_MAX = 48
#: and at most this share of the profile's capacity, so that the open tail page and the
#: entries of a page the FIFO has half dropped cost at most 1/16 of the buffer each
PAGE_FRACTION = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    meter INTEGER NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    crc   INTEGER NOT NULL DEFAULT -1,
    PRIMARY KEY (meter, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rows (
    meter   INTEGER NOT NULL,
    profile TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    time    TEXT NOT NULL,
    value   TEXT NOT NULL,
    crc     INTEGER NOT NULL DEFAULT -1,
    PRIMARY KEY (meter, profile, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pages (
    meter   INTEGER NOT NULL,
    profile TEXT NOT NULL,
    first   INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    tmin    TEXT NOT NULL,
    tmax    TEXT NOT NULL,
    data    BLOB NOT NULL,
    crc     INTEGER NOT NULL,
    PRIMARY KEY (meter, profile, first)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    meter   INTEGER NOT NULL,
    profile TEXT NOT NULL,
    last    INTEGER NOT NULL,
    floor   INTEGER NOT NULL,
    packed  INTEGER NOT NULL,
    crc     INTEGER NOT NULL,
    PRIMARY KEY (meter, profile)
) WITHOUT ROWID;
"""


def _kv_crc(meter: int, key: str, text: str) -> int:
    return kv_crc(f"{meter}\x00{key}", text)


def _row_crc(meter: int, profile: str, seq: int, time_text: str, text: str) -> int:
    return row_crc(f"{meter}\x00{profile}", seq, time_text, text)


def _page_crc(meter: int, profile: str, first: int, last: int, tmin: str, tmax: str, data: bytes) -> int:
    """Over the page's meter, profile and key as well as its bytes: a page moved to another
    meter, profile or place in the buffer fails it."""
    return zlib.crc32(data, zlib.crc32(f"{meter}\x00{profile}\x00{first}\x00{last}\x00{tmin}\x00{tmax}\x00"
                                       .encode("utf-8")))


def _head_crc(meter: int, profile: str, last: int, floor: int, packed: int) -> int:
    return zlib.crc32(f"{meter}\x00{profile}\x00{last}\x00{floor}\x00{packed}".encode("utf-8"))


def page_entries(capacity: int) -> int:
    """How many entries one page of a profile of ``capacity`` entries holds."""
    return max(1, min(PAGE_ENTRIES_MAX, capacity // PAGE_FRACTION))


def seal_name(path: Path) -> str:
    """The seal's file name beside the shard database ``path``."""
    return path.name + ".seal"


# --- the shard's seal: two slots rewritten in place ----------------------------------------
#: a slot: this tag, the commit counter (big-endian), a SHA-256 over both
SEAL_TAG = b"bijli shard seal"
_SLOT = struct.Struct(">16sQ32s")
#: the slots lie in different 512-byte sectors, so a write torn by a power cut spoils one at most
SLOT_SPACING = 512
#: the seal is forced to disk (fdatasync) at the first commit this long after it last was
SEAL_SYNC_S = 1.0


def seal_slot(commit: int) -> bytes:
    """The slot that vouches for ``commit``."""
    body = SEAL_TAG + commit.to_bytes(8, "big")
    return _SLOT.pack(SEAL_TAG, commit, hashlib.sha256(body).digest())


def read_shard_seal(path: Path) -> tuple[int, bool] | None:
    """The commit the shard seal at ``path`` vouches for: the newest of its sound slots (a
    slot torn by a power cut leaves the other, one commit older), and whether it is in
    slots. None: no seal. A seal with no sound slot is :class:`StateDamaged`. A seal of
    the earlier format (a JSON document rewritten by rename,
    :func:`firmware.storage.write_seal`) is read as well, and replaced at the open."""
    raw = read_seal_bytes(path)
    if raw is None:
        return None
    if raw[:1] == b"{":
        return read_seal(path.parent, path.name)[0], False  # type: ignore[index]
    commits = []
    for offset in (0, SLOT_SPACING):
        chunk = raw[offset:offset + _SLOT.size]
        if len(chunk) == _SLOT.size:
            tag, commit, digest = _SLOT.unpack(chunk)
            if tag == SEAL_TAG and digest == hashlib.sha256(chunk[:24]).digest():
                commits.append(commit)
    if not commits:
        raise StateDamaged(f"{path}: the seal is damaged (its checksum does not match)")
    return max(commits), True


def _write_seal_file(path: Path, commit: int) -> None:
    """A new seal vouching for ``commit`` in both slots, put in place atomically and on
    disk (the file, then the directory entry) before it is used."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(seal_slot(commit).ljust(SLOT_SPACING, b"\0") + seal_slot(commit))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Head:
    """Where one meter's profile stands: its newest entry, its oldest kept (the FIFO's
    floor: entries below it are gone, even those still inside a page), and the newest
    entry packed into a page (the entries after it are the open tail, one row each)."""

    last: int = 0
    floor: int = 1
    packed: int = 0


def _head(db: sqlite3.Connection, path: Any, meter: int, profile: str) -> _Head | None:
    row = db.execute("SELECT last, floor, packed, crc FROM heads WHERE meter = ? AND profile = ?",
                     (meter, profile)).fetchone()
    if row is None:
        return None
    if row[3] != _head_crc(meter, profile, *row[:3]):
        raise StateDamaged(f"{path}: the head of {profile!r} fails its checksum")
    return _Head(*row[:3])


class MeterTransaction:
    """The writes of one meter's atomic step, inside :meth:`MeterMemory.transaction`."""

    def __init__(self, db: sqlite3.Connection, meter: int, packing: bool = True, path: Any = None):
        self._db = db
        self._meter = meter
        self._packing = packing  # False: one row per entry, never a page (schema 2's layout)
        self._path = path

    def put(self, key: str, value: Any) -> None:
        text = dumps(value)
        self._db.execute("INSERT OR REPLACE INTO kv (meter, key, value, crc) VALUES (?, ?, ?, ?)",
                         (self._meter, key, text, _kv_crc(self._meter, key, text)))

    def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM kv WHERE meter = ? AND key = ?", (self._meter, key))

    def append(self, profile: str, time: datetime, values: list, capacity: int) -> int:
        """Append a row to this meter's ``profile``; beyond ``capacity`` the oldest go (FIFO).

        The entry is one row of the open tail; once the tail holds a page's worth
        (:func:`page_entries`) they are packed into a page, so an append writes one small
        row and, every so many appends, one page, never a large page rewritten."""
        if capacity < 1:
            raise StorageError(f"profile {profile!r}: capacity must be at least 1")
        m = self._meter
        head = _head(self._db, self._path, m, profile) or _Head()
        seq = head.last + 1
        t, text = time.isoformat(), dumps(values)
        self._db.execute("INSERT INTO rows (meter, profile, seq, time, value, crc) VALUES (?, ?, ?, ?, ?, ?)",
                         (m, profile, seq, t, text, _row_crc(m, profile, seq, t, text)))
        floor = max(head.floor, seq - capacity + 1)
        if floor > head.floor:
            self._db.execute("DELETE FROM rows WHERE meter = ? AND profile = ? AND seq < ?", (m, profile, floor))
            # a page the floor has passed only in part stays whole: its entries below the
            # floor are skipped on reading and go with the page
            self._db.execute("DELETE FROM pages WHERE meter = ? AND profile = ? AND last < ?", (m, profile, floor))
        packed = head.packed
        size = page_entries(capacity) if self._packing else 0
        start = max(packed + 1, floor)  # the tail's first entry
        while size and seq - start + 1 >= size:
            self._pack(profile, start, start + size - 1)
            packed = start + size - 1
            start = packed + 1
        self._db.execute("INSERT OR REPLACE INTO heads (meter, profile, last, floor, packed, crc) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (m, profile, seq, floor, packed,
                                                       _head_crc(m, profile, seq, floor, packed)))
        return seq

    def _pack(self, profile: str, first: int, last: int) -> None:
        """Tail entries first..last (checked) into one page, in place of their rows."""
        m = self._meter
        found = read_rows(self._db, "SELECT seq, time, value, crc FROM rows WHERE meter = ? AND profile = ? "
                          "AND seq BETWEEN ? AND ? ORDER BY seq", [m, profile, first, last], self._path, profile,
                          lambda seq, t, v: _row_crc(m, profile, seq, t, v), StateDamaged)
        if [r.seq for r in found] != list(range(first, last + 1)):
            raise StateDamaged(f"{self._path}: entries of {profile!r} between {first} and {last} are missing")
        data = pages.pack([(r.seq, r.time, r.values) for r in found])
        texts = [r.time.isoformat() for r in found]
        tmin, tmax = min(texts), max(texts)
        self._db.execute("INSERT INTO pages (meter, profile, first, last, tmin, tmax, data, crc) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (m, profile, first, last, tmin, tmax, data,
                          _page_crc(m, profile, first, last, tmin, tmax, data)))
        self._db.execute("DELETE FROM rows WHERE meter = ? AND profile = ? AND seq BETWEEN ? AND ?",
                         (m, profile, first, last))

    def clear(self, profile: str) -> None:
        for table in ("rows", "pages", "heads"):
            self._db.execute(f"DELETE FROM {table} WHERE meter = ? AND profile = ?", (self._meter, profile))


class ShardStore:
    """One sqlite database holding the memory of every meter of a shard."""

    def __init__(self, db: sqlite3.Connection, path: Path, commit: int = 0, packing: bool = True):
        self._db = db
        self.path = path
        self.packing = packing  # profile entries packed into pages (False: one row each, as schema 2)
        self.commit = commit  # transactions committed, as the seal vouches
        self.seal_stale = False  # the last commit is on disk but the seal could not be rewritten
        self.rollbacks = 0  # commit groups that failed (firmware.storage.NonVolatileMemory.rollbacks)
        self._seal_fd: int | None = None  # the seal, open for its slots to be rewritten in place
        self._seal_synced = time.monotonic()  # when the seal was last forced to disk
        self._in_tx = False  # a meter step is open
        self._in_group = False  # a commit group is open
        self._batch_end: Callable[[], None] | None = None  # a batch is open: what ends it (begin_batch)
        self._batch_begun = False  # the open batch's transaction has begun (it has had a step)
        self._blank: set[int] = set()  # meters found to have no memory at all, and not written since (blank)

    @classmethod
    def open(cls, path: str | Path, *, packing: bool = True) -> "ShardStore":
        """Open (or create) the shard database ``path``; :class:`StateDamaged` when it is
        rolled back behind its seal, missing beside its seal, unsealed or damaged.
        ``packing=False`` keeps every new profile entry as a row of its own (the layout
        before pages, which ``bijli bench fleet`` compares with); both read the same."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"shard directory {path.parent}: {exc.strerror}") from exc
        refuse = ("No meter of the shard starts on it, so that no credit is forgotten and no token "
                  "accepted twice; put back the shard's own database (with its -wal file) or start "
                  "the shard on a new --state.")
        try:
            sealed = read_shard_seal(path.parent / seal_name(path))
        except StateDamaged as exc:
            raise StateDamaged(f"{exc}. {refuse}") from None
        seal = None if sealed is None else sealed[0]
        size = path.stat().st_size if path.exists() else None
        if seal is not None and not size:
            raise StateDamaged(f"{path} is {'missing' if size is None else 'empty'} but its seal says "
                               f"{seal} commits were made. {refuse}")
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            check = [r[0] for r in db.execute("PRAGMA quick_check")]
            if check != ["ok"]:
                db.close()
                raise StateDamaged(f"{path}: sqlite finds it damaged ({'; '.join(check[:3])}). {refuse}")
            fresh = not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
            if fresh and seal is not None:
                db.close()
                raise StateDamaged(f"{path} holds no tables: it was rolled back to before it was made (a lost "
                                   f"write-ahead log?), but its seal says {seal} commits were made. {refuse}")
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT key, value FROM meta"))
            schema = int(meta.get("shard_schema", SHARD_SCHEMA_VERSION if fresh else 1))
            if schema > SHARD_SCHEMA_VERSION:
                db.close()
                raise StorageError(f"{path}: shard schema {schema} is newer than this firmware "
                                   f"({SHARD_SCHEMA_VERSION})")
            if fresh:
                db.execute("INSERT INTO meta (key, value) VALUES ('shard_schema', ?), ('commit', '0')",
                           (str(SHARD_SCHEMA_VERSION),))
            elif schema < SHARD_SCHEMA_VERSION:
                _migrate(db, schema, path)
            meta = dict(db.execute("SELECT key, value FROM meta"))
            commit = int(meta["commit"])
        except sqlite3.DatabaseError as exc:
            raise StateDamaged(f"{path}: not a bijli shard database, or one sqlite cannot read ({exc}). {refuse}") from exc
        except (KeyError, ValueError) as exc:
            db.close()
            raise StateDamaged(f"{path}: its meta table is damaged ({exc}). {refuse}") from None
        if seal is None and commit > 0 and "migrated_from" not in meta:
            db.close()
            raise StateDamaged(f"{path}: its seal {seal_name(path)} is missing, so it cannot be shown to be "
                               f"the newest state of its meters. {refuse}")
        if seal is not None and commit < seal:
            db.close()
            raise StateDamaged(f"{path}: it was rolled back: it holds commit {commit}, its seal says {seal} "
                               f"(a lost write-ahead log, or an old copy put back). {refuse}")
        store = cls(db, path, commit, packing)
        try:
            if sealed is None or not sealed[1] or seal != commit:  # new, migrated, earlier format, or a crash
                # between a commit and its seal
                _write_seal_file(path.parent / seal_name(path), commit)
            store._seal_fd = os.open(path.parent / seal_name(path), os.O_RDWR)
        except OSError as exc:
            db.close()
            raise StorageError(f"{path.parent / seal_name(path)}: cannot be written ({exc.strerror})") from None
        return store

    def close(self) -> None:
        self._end_batch()
        if self._in_group or self._in_tx:
            raise StorageError(f"{self.path}: closed with a step or commit group open")
        self._db.close()
        if self._seal_fd is not None:
            try:
                os.fdatasync(self._seal_fd)  # the newest slot on disk at a clean stop
            except OSError:
                pass  # the database holds every commit; the seal is at most behind it
            os.close(self._seal_fd)
            self._seal_fd = None

    def _commit(self) -> None:
        """COMMIT the open transaction with the counter one more, then rewrite the seal."""
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'commit'", (str(self.commit + 1),))
        self._db.execute("COMMIT")
        self.commit += 1
        self._seal()

    def _seal(self) -> None:
        """The seal vouches for the commit just made: its slot (the commit's parity) is
        rewritten in place, one ``pwrite`` of 56 bytes, and forced to disk at most every
        :data:`SEAL_SYNC_S` (module docstring, *The seal's cost*). As for a single meter, a
        seal that cannot be written leaves the commit standing; a database ahead of its
        seal is accepted at the next open."""
        if self._seal_fd is None:
            return
        try:
            os.pwrite(self._seal_fd, seal_slot(self.commit), (self.commit % 2) * SLOT_SPACING)
            now = time.monotonic()
            if now - self._seal_synced >= SEAL_SYNC_S:
                os.fdatasync(self._seal_fd)
                self._seal_synced = now
            self.seal_stale = False
        except OSError:
            self.seal_stale = True

    def verify(self) -> list[str]:
        """Every record's CRC (the whole shard: slow for a large one); the problems found."""
        problems = []
        for meter, key, text, crc in self._db.execute("SELECT meter, key, value, crc FROM kv"):
            if crc != _kv_crc(meter, key, text):
                problems.append(f"meter {meter}: record {key!r} fails its checksum")
        for meter, profile, seq, t, text, crc in self._db.execute(
                "SELECT meter, profile, seq, time, value, crc FROM rows"):
            if crc != _row_crc(meter, profile, seq, t, text):
                problems.append(f"meter {meter}: row {seq} of {profile!r} fails its checksum")
        for meter, profile, first, last, tmin, tmax, data, crc in self._db.execute(
                "SELECT meter, profile, first, last, tmin, tmax, data, crc FROM pages"):
            if crc != _page_crc(meter, profile, first, last, tmin, tmax, data):
                problems.append(f"meter {meter}: page {first}..{last} of {profile!r} fails its checksum")
                continue
            try:
                if len(pages.unpack(data, first)) != last - first + 1:
                    problems.append(f"meter {meter}: page {first}..{last} of {profile!r} holds another count")
            except pages.PageError as exc:
                problems.append(f"meter {meter}: page {first}..{last} of {profile!r}: {exc}")
        for meter, profile, last, floor, packed, crc in self._db.execute(
                "SELECT meter, profile, last, floor, packed, crc FROM heads"):
            if crc != _head_crc(meter, profile, last, floor, packed):
                problems.append(f"meter {meter}: the head of {profile!r} fails its checksum")
        return problems

    def memory(self, meter: int) -> "MeterMemory":
        if type(meter) is not int or meter < 0:
            raise StorageError(f"a meter's key in a shard is its index, a whole number >= 0, not {meter!r}")
        return MeterMemory(self, meter)

    def blank(self, meter: int) -> bool:
        """Whether ``meter`` has no memory at all in this shard (no record, no profile): a
        meter never started. Remembered until anything is written for it, so a first start's
        reads of its every record (nineteen queries that all find nothing) cost nothing."""
        if meter in self._blank:
            return True
        try:
            found = self._db.execute("SELECT 1 FROM kv WHERE meter = ? UNION ALL SELECT 1 FROM heads WHERE meter = ? "
                                     "LIMIT 1", (meter, meter)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot read meter {meter} ({exc})") from exc
        if found is None:
            self._blank.add(meter)
        return found is None

    def meters(self) -> list[int]:
        """The meters that have any memory in this shard."""
        return [m for (m,) in self._db.execute("SELECT DISTINCT meter FROM kv ORDER BY meter")]

    # --- batches: a commit group left open across event-loop callbacks -----------------
    def begin_batch(self, end: Callable[[], None]) -> None:
        """Open a *batch*: a commit group that stays open after this call returns, so that
        the steps of several meters' requests (an event loop's round of connections) are
        savepoints of one transaction and one fsync. Whoever opens it holds back every
        acknowledgement of those steps until :meth:`commit_batch` has returned. ``end`` is
        the opener's way to commit it and release what it held: anything that needs the
        store outside a batch (:meth:`group`, :meth:`close`) calls it first, so a batch
        never nests and never swallows a step that must be on disk when it returns."""
        if self._in_group or self._in_tx:
            raise StorageError("a batch opens only outside a step or a commit group")
        self._in_group = True
        self._batch_end = end
        self._batch_begun = False  # its transaction begins with its first step: a round of reads commits nothing

    @property
    def in_batch(self) -> bool:
        return self._batch_end is not None

    def commit_batch(self) -> None:
        """Commit the open batch (one fsync, one seal; nothing when none of its calls made a
        step: a round of reads writes nothing, as outside a batch). When the commit fails it is rolled
        back, :attr:`rollbacks` counts it and :class:`StorageError` is raised: none of its
        steps is on disk, and the opener must treat its meters as powered off."""
        if self._batch_end is None:
            raise StorageError("no batch is open")
        if self._in_tx:
            raise StorageError("a batch commits between steps, not inside one")
        self._batch_end = None
        self._in_group = False
        if not self._batch_begun:
            return
        self._batch_begun = False
        self._commit_group()

    def _end_batch(self) -> None:
        end = self._batch_end
        if end is not None:
            end()
            if self._batch_end is not None:  # the opener did not commit it: never leave it open here
                self.commit_batch()

    @contextmanager
    def group(self) -> Iterator[None]:
        """One commit group: every meter step inside is a savepoint of one transaction,
        on disk together when the block ends (none of them when it raises). An open batch
        is ended first (:meth:`begin_batch`)."""
        self._end_batch()
        if self._in_group or self._in_tx:
            raise StorageError("nested commit group: a group holds steps, not groups")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: {exc}") from exc
        self._in_group = True
        try:
            yield
        except BaseException:
            self._in_group = False
            self.rollbacks += 1
            self._db.execute("ROLLBACK")
            raise
        self._in_group = False
        self._commit_group()

    def _commit_group(self) -> None:
        """Commit a group's or a batch's transaction; when that fails, roll it back and count
        it (:attr:`rollbacks`: its meters write every record again) before raising."""
        try:
            self._commit()
        except sqlite3.DatabaseError as exc:
            self._rollback()
            self.rollbacks += 1
            raise StorageError(f"{self.path}: {exc}") from exc

    @contextmanager
    def _step(self, meter: int) -> Iterator[MeterTransaction]:
        if self._in_tx:
            raise StorageError("nested transaction: one firmware step is one transaction")
        self._in_tx = True
        self._blank.discard(meter)
        try:
            if self._in_group:
                if self._batch_end is not None and not self._batch_begun:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._batch_begun = True
                self._db.execute("SAVEPOINT step")
                try:
                    yield MeterTransaction(self._db, meter, self.packing, f"{self.path}#meter{meter}")
                except BaseException:
                    self._db.execute("ROLLBACK TO step")
                    self._db.execute("RELEASE step")
                    raise
                self._db.execute("RELEASE step")
            else:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield MeterTransaction(self._db, meter, self.packing, f"{self.path}#meter{meter}")
                    self._commit()
                except BaseException:
                    self._rollback()
                    raise
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} meter {meter}: {exc}") from exc
        finally:
            self._in_tx = False

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass  # sqlite rolled back by itself (a failed COMMIT on a full disk does)

    @property
    def in_step(self) -> bool:
        return self._in_tx

    @property
    def in_group(self) -> bool:
        return self._in_group


def _migrate(db: sqlite3.Connection, schema: int, path: Path) -> None:
    """An older shard schema -> this one, in one transaction. 1 -> 2: CRCs, the commit
    counter. 2 -> 3: profile pages; the rows stay rows (each profile's open tail, packed
    into pages by its next appends), and each profile gets its head (the newest entry and
    the FIFO's floor), so the entries read back exactly as they did."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if schema < 2:
            db.execute("ALTER TABLE kv ADD COLUMN crc INTEGER NOT NULL DEFAULT -1")
            db.execute("ALTER TABLE rows ADD COLUMN crc INTEGER NOT NULL DEFAULT -1")
            for meter, key, text in db.execute("SELECT meter, key, value FROM kv").fetchall():
                db.execute("UPDATE kv SET crc = ? WHERE meter = ? AND key = ?",
                           (_kv_crc(meter, key, text), meter, key))
            for meter, profile, seq, t, text in db.execute(
                    "SELECT meter, profile, seq, time, value FROM rows").fetchall():
                db.execute("UPDATE rows SET crc = ? WHERE meter = ? AND profile = ? AND seq = ?",
                           (_row_crc(meter, profile, seq, t, text), meter, profile, seq))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('commit', '1'), ('migrated_from', '1')")
        for meter, profile, low, high, n in db.execute(
                "SELECT meter, profile, MIN(seq), MAX(seq), COUNT(*) FROM rows GROUP BY meter, profile").fetchall():
            if n != high - low + 1:  # a FIFO buffer drops only its oldest entries
                raise StateDamaged(f"{path}: meter {meter}'s {profile!r} misses entries between {low} and {high}")
            db.execute("INSERT INTO heads (meter, profile, last, floor, packed, crc) VALUES (?, ?, ?, ?, ?, ?)",
                       (meter, profile, high, low, low - 1, _head_crc(meter, profile, high, low, low - 1)))
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('shard_schema', ?)", (str(SHARD_SCHEMA_VERSION),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class MeterMemory(NonVolatileMemory):
    """One meter's non-volatile memory inside a shard: the API of firmware.storage.Storage."""

    def __init__(self, shard: ShardStore, meter: int):
        self.shard = shard
        self.meter = meter
        self.path = f"{shard.path}#meter{meter}"  # errors name the shard and the meter

    @property
    def _db(self) -> sqlite3.Connection:
        return self.shard._db

    def close(self) -> None:
        """A meter's view owns no connection: the shard closes it (ShardStore.close)."""

    @contextmanager
    def transaction(self) -> Iterator[MeterTransaction]:
        with self.shard._step(self.meter) as tx:
            yield tx

    def group(self):
        """A commit group of the whole shard (:meth:`ShardStore.group`): this meter's jump
        of simulated time in one transaction, when no fleet-wide group is open already."""
        return self.shard.group()

    @property
    def in_group(self) -> bool:
        return self.shard.in_group

    @property
    def rollbacks(self) -> int:
        return self.shard.rollbacks

    def put(self, key: str, value: Any) -> None:
        if self.shard.in_step:
            self.shard._blank.discard(self.meter)
            MeterTransaction(self._db, self.meter).put(key, value)
            return
        with self.transaction() as tx:
            tx.put(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        if self.meter in self.shard._blank:  # nothing written for it yet (ShardStore.blank)
            return default
        try:
            row = self._db.execute("SELECT value, crc FROM kv WHERE meter = ? AND key = ?",
                                   (self.meter, key)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot read record {key!r} ({exc})") from exc
        if row is None:
            return default
        if row[1] != _kv_crc(self.meter, key, row[0]):
            raise StateDamaged(f"{self.path}: record {key!r} fails its checksum; the meter does not start on "
                               f"damaged state")
        try:
            return loads(row[0])
        except (ValueError, TypeError) as exc:
            raise StorageError(f"{self.path}: record {key!r} is corrupt ({exc})") from exc

    def rows(self, profile: str, *, from_time: datetime | None = None, to_time: datetime | None = None,
             from_seq: int | None = None, to_seq: int | None = None) -> list[Row]:
        """Rows of ``profile`` oldest first, optionally limited by time (inclusive) or sequence:
        the entries of its pages (past the FIFO's floor), then those of its open tail."""
        try:
            head = _head(self._db, self.path, self.meter, profile)
            out = self._paged(profile, head, from_time, to_time, from_seq, to_seq) if head and head.packed else []
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot read {profile!r} ({exc})") from exc
        where, args = row_range(from_time, to_time, from_seq, to_seq)
        sql = f"SELECT seq, time, value, crc FROM rows WHERE meter = ? AND profile = ?{where} ORDER BY seq"
        return out + read_rows(self._db, sql, [self.meter, profile, *args], self.path, profile,
                               lambda seq, t, v: _row_crc(self.meter, profile, seq, t, v), StateDamaged)

    def _paged(self, profile: str, head: _Head, from_time: datetime | None, to_time: datetime | None,
               from_seq: int | None, to_seq: int | None) -> list[Row]:
        lo = head.floor if from_seq is None else max(head.floor, from_seq)
        t_lo = None if from_time is None else from_time.isoformat()
        t_hi = None if to_time is None else to_time.isoformat()
        sql = "SELECT first, last, tmin, tmax, data, crc FROM pages WHERE meter = ? AND profile = ? AND last >= ?"
        args: list[Any] = [self.meter, profile, lo]
        for clause, value in (("first <= ?", to_seq), ("tmax >= ?", t_lo), ("tmin <= ?", t_hi)):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        out = []
        for first, last, tmin, tmax, data, crc in self._db.execute(sql + " ORDER BY first", args).fetchall():
            if crc != _page_crc(self.meter, profile, first, last, tmin, tmax, data):
                raise StateDamaged(f"{self.path}: page {first}..{last} of {profile!r} fails its checksum")
            try:
                entries = pages.unpack(data, first)
            except pages.PageError as exc:
                raise StorageError(f"{self.path}: page {first}..{last} of {profile!r} is corrupt ({exc})") from exc
            if len(entries) != last - first + 1:
                raise StorageError(f"{self.path}: page {first}..{last} of {profile!r} holds {len(entries)} entries")
            for seq, t, values in entries:
                if seq < lo or (to_seq is not None and seq > to_seq):
                    continue
                if t_lo is not None or t_hi is not None:
                    text = t.isoformat()  # compared as the rows' time column is: as text
                    if (t_lo is not None and text < t_lo) or (t_hi is not None and text > t_hi):
                        continue
                out.append(Row(seq, t, values))
        return out

    def count(self, profile: str) -> int:
        try:
            head = _head(self._db, self.path, self.meter, profile)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot read {profile!r} ({exc})") from exc
        return 0 if head is None else head.last - head.floor + 1
