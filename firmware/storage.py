"""The meter's non-volatile memory: one sqlite3 database, every change one transaction.

A real meter keeps its registers in EEPROM/FRAM and writes a token's TID and the
credit it brings in one atomic step, so a power cut can neither lose the credit
nor let the token be entered twice. Here that step is one sqlite transaction in
WAL mode with ``synchronous=FULL``: when :meth:`Storage.transaction` returns, the
change is on disk and survives a SIGKILL or a power cut at any later instant;
a kill before it returns leaves the database as it was before.

Two kinds of record live here:

* **state blobs** (``kv`` table): one JSON document per part of the firmware
  (energy registers, prepaid account, STS decoder state, relay state, ...);
* **profile rows** (``rows`` table): the buffers of load profiles and event logs,
  each with a capacity; appending beyond it drops the oldest row (FIFO), as the
  profile generic class (IEC 62056-6-2, class 7) does with ``sort_method`` FIFO.

Values are JSON with three tagged extensions (Decimal, datetime, bytes) so money
is never turned into a float on its way to disk.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

from bijli.firmware.errors import StorageError

SCHEMA_VERSION = 1
DB_NAME = "meter.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    profile TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    time    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (profile, seq)
);
CREATE INDEX IF NOT EXISTS rows_by_time ON rows (profile, time);
"""


def _encode(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"$d": str(obj)}
    if isinstance(obj, datetime):
        return {"$t": obj.isoformat()}
    if isinstance(obj, date):
        return {"$date": obj.isoformat()}
    if isinstance(obj, (bytes, bytearray)):
        return {"$b": bytes(obj).hex()}
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot store {type(obj).__name__}")


def _decode(obj: dict) -> Any:
    if len(obj) == 1:
        ((k, v),) = obj.items()
        if k == "$d":
            return Decimal(v)
        if k == "$t":
            return datetime.fromisoformat(v)
        if k == "$date":
            return date.fromisoformat(v)
        if k == "$b":
            return bytes.fromhex(v)
    return obj


def dumps(value: Any) -> str:
    return json.dumps(value, default=_encode, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text, object_hook=_decode)


@dataclass(frozen=True)
class Row:
    """One entry of a profile buffer: its sequence number, capture time and values."""

    seq: int
    time: datetime
    values: list


class Transaction:
    """The writes of one atomic step. Obtained from :meth:`Storage.transaction`."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def put(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, dumps(value)))

    def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def append(self, profile: str, time: datetime, values: list, capacity: int) -> int:
        """Append a row to ``profile``; beyond ``capacity`` rows the oldest go (FIFO)."""
        if capacity < 1:
            raise StorageError(f"profile {profile!r}: capacity must be at least 1")
        (last,) = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM rows WHERE profile = ?", (profile,)
        ).fetchone()
        seq = last + 1
        self._db.execute(
            "INSERT INTO rows (profile, seq, time, value) VALUES (?, ?, ?, ?)",
            (profile, seq, time.isoformat(), dumps(values)),
        )
        self._db.execute("DELETE FROM rows WHERE profile = ? AND seq <= ?", (profile, seq - capacity))
        return seq

    def clear(self, profile: str) -> None:
        self._db.execute("DELETE FROM rows WHERE profile = ?", (profile,))


class Storage:
    """The meter's non-volatile memory, one sqlite file under the state directory."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self._db = db
        self.path = path
        self._in_tx = False

    @classmethod
    def open(cls, state_dir: str | Path) -> "Storage":
        state = Path(state_dir)
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"state directory {state}: {exc.strerror}") from exc
        path = state / DB_NAME
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves so one
            # firmware step is exactly one transaction, no implicit ones.
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StorageError(f"{path}: schema {row[0]} is newer than this firmware ({SCHEMA_VERSION})")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{path}: not a bijli state database ({exc})") from exc
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic step: everything written inside commits together or not at all."""
        if self._in_tx:
            raise StorageError("nested transaction: one firmware step is one transaction")
        self._in_tx = True
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: {exc}") from exc
        finally:
            self._in_tx = False

    def put(self, key: str, value: Any) -> None:
        """Store one record: in its own transaction, or as part of the one in progress."""
        if self._in_tx:
            Transaction(self._db).put(key, value)
            return
        with self.transaction() as tx:
            tx.put(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return loads(row[0])
        except (ValueError, TypeError) as exc:
            raise StorageError(f"{self.path}: record {key!r} is corrupt ({exc})") from exc

    def rows(
        self,
        profile: str,
        *,
        from_time: datetime | None = None,
        to_time: datetime | None = None,
        from_seq: int | None = None,
        to_seq: int | None = None,
    ) -> list[Row]:
        """Rows of ``profile`` oldest first, optionally limited by time (inclusive) or sequence."""
        sql = "SELECT seq, time, value FROM rows WHERE profile = ?"
        args: list[Any] = [profile]
        if from_time is not None:
            sql += " AND time >= ?"
            args.append(from_time.isoformat())
        if to_time is not None:
            sql += " AND time <= ?"
            args.append(to_time.isoformat())
        if from_seq is not None:
            sql += " AND seq >= ?"
            args.append(from_seq)
        if to_seq is not None:
            sql += " AND seq <= ?"
            args.append(to_seq)
        sql += " ORDER BY seq"
        return [Row(seq, datetime.fromisoformat(t), loads(v)) for seq, t, v in self._db.execute(sql, args)]

    def count(self, profile: str) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM rows WHERE profile = ?", (profile,)).fetchone()
        return n
