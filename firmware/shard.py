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

Values are encoded exactly as :mod:`firmware.storage` encodes them (its ``dumps`` and
``loads``), so money stays Decimal text on its way to disk.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from bijli.firmware.errors import StorageError
from bijli.firmware.storage import Row, dumps, loads, row_range

SHARD_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    meter INTEGER NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (meter, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rows (
    meter   INTEGER NOT NULL,
    profile TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    time    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (meter, profile, seq)
) WITHOUT ROWID;
"""


class MeterTransaction:
    """The writes of one meter's atomic step, inside :meth:`MeterMemory.transaction`."""

    def __init__(self, db: sqlite3.Connection, meter: int):
        self._db = db
        self._meter = meter

    def put(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv (meter, key, value) VALUES (?, ?, ?)",
                         (self._meter, key, dumps(value)))

    def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM kv WHERE meter = ? AND key = ?", (self._meter, key))

    def append(self, profile: str, time: datetime, values: list, capacity: int) -> int:
        """Append a row to this meter's ``profile``; beyond ``capacity`` the oldest go (FIFO)."""
        if capacity < 1:
            raise StorageError(f"profile {profile!r}: capacity must be at least 1")
        (last,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM rows WHERE meter = ? AND profile = ?",
                                   (self._meter, profile)).fetchone()
        seq = last + 1
        self._db.execute("INSERT INTO rows (meter, profile, seq, time, value) VALUES (?, ?, ?, ?, ?)",
                         (self._meter, profile, seq, time.isoformat(), dumps(values)))
        self._db.execute("DELETE FROM rows WHERE meter = ? AND profile = ? AND seq <= ?",
                         (self._meter, profile, seq - capacity))
        return seq

    def clear(self, profile: str) -> None:
        self._db.execute("DELETE FROM rows WHERE meter = ? AND profile = ?", (self._meter, profile))


class ShardStore:
    """One sqlite database holding the memory of every meter of a shard."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self._db = db
        self.path = path
        self._in_tx = False  # a meter step is open
        self._in_group = False  # a commit group is open

    @classmethod
    def open(cls, path: str | Path) -> "ShardStore":
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"shard directory {path.parent}: {exc.strerror}") from exc
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key = 'shard_schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('shard_schema', ?)", (str(SHARD_SCHEMA_VERSION),))
            elif int(row[0]) > SHARD_SCHEMA_VERSION:
                raise StorageError(f"{path}: shard schema {row[0]} is newer than this firmware "
                                   f"({SHARD_SCHEMA_VERSION})")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{path}: not a bijli shard database ({exc})") from exc
        return cls(db, path)

    def close(self) -> None:
        if self._in_group or self._in_tx:
            raise StorageError(f"{self.path}: closed with a step or commit group open")
        self._db.close()

    def memory(self, meter: int) -> "MeterMemory":
        if type(meter) is not int or meter < 0:
            raise StorageError(f"a meter's key in a shard is its index, a whole number >= 0, not {meter!r}")
        return MeterMemory(self, meter)

    def meters(self) -> list[int]:
        """The meters that have any memory in this shard."""
        return [m for (m,) in self._db.execute("SELECT DISTINCT meter FROM kv ORDER BY meter")]

    @contextmanager
    def group(self) -> Iterator[None]:
        """One commit group: every meter step inside is a savepoint of one transaction,
        on disk together when the block ends (none of them when it raises)."""
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
            self._db.execute("ROLLBACK")
            raise
        self._in_group = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    @contextmanager
    def _step(self, meter: int) -> Iterator[MeterTransaction]:
        if self._in_tx:
            raise StorageError("nested transaction: one firmware step is one transaction")
        self._in_tx = True
        try:
            if self._in_group:
                self._db.execute("SAVEPOINT step")
                try:
                    yield MeterTransaction(self._db, meter)
                except BaseException:
                    self._db.execute("ROLLBACK TO step")
                    self._db.execute("RELEASE step")
                    raise
                self._db.execute("RELEASE step")
            else:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield MeterTransaction(self._db, meter)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} meter {meter}: {exc}") from exc
        finally:
            self._in_tx = False

    @property
    def in_step(self) -> bool:
        return self._in_tx


class MeterMemory:
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

    def put(self, key: str, value: Any) -> None:
        if self.shard.in_step:
            MeterTransaction(self._db, self.meter).put(key, value)
            return
        with self.transaction() as tx:
            tx.put(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE meter = ? AND key = ?", (self.meter, key)).fetchone()
        if row is None:
            return default
        try:
            return loads(row[0])
        except (ValueError, TypeError) as exc:
            raise StorageError(f"{self.path}: record {key!r} is corrupt ({exc})") from exc

    def rows(self, profile: str, *, from_time: datetime | None = None, to_time: datetime | None = None,
             from_seq: int | None = None, to_seq: int | None = None) -> list[Row]:
        """Rows of ``profile`` oldest first, optionally limited by time (inclusive) or sequence."""
        where, args = row_range(from_time, to_time, from_seq, to_seq)
        sql = f"SELECT seq, time, value FROM rows WHERE meter = ? AND profile = ?{where} ORDER BY seq"
        args = [self.meter, profile, *args]
        return [Row(seq, datetime.fromisoformat(t), loads(v)) for seq, t, v in self._db.execute(sql, args)]

    def count(self, profile: str) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM rows WHERE meter = ? AND profile = ?",
                                (self.meter, profile)).fetchone()
        return n
