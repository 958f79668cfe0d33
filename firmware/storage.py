"""The meter's non-volatile memory: one sqlite3 database, every change one transaction.

A real meter keeps its registers in EEPROM/FRAM and writes a token's TID and the
credit it brings in one atomic step, so a power cut can neither lose the credit
nor let the token be entered twice. Here that step is one sqlite transaction in
WAL mode with ``synchronous=FULL``: when :meth:`Storage.transaction` returns, the
change is on disk and survives a SIGKILL or a power cut at any later instant;
a kill before it returns leaves the database as it was before. A commit group
(:meth:`Storage.group`) makes the steps inside it savepoints of one transaction,
on disk together: a jump of simulated time is one, never a token.

Two kinds of record live here:

* **state blobs** (``kv`` table): one JSON document per part of the firmware
  (energy registers, prepaid account, STS decoder state, relay state, ...);
* **profile rows** (``rows`` table): the buffers of load profiles and event logs,
  each with a capacity; appending beyond it drops the oldest row (FIFO), as the
  profile generic class (IEC 62056-6-2, class 7) does with ``sort_method`` FIFO.

Values are JSON with three tagged extensions (Decimal, datetime, bytes) so money
is never turned into a float on its way to disk.

**A damaged memory never forgets money.** A meter that started as new on a lost
database would credit every token it had credited already; one that started on a
rolled-back database (a write-ahead log deleted after a crash) would forget the
last tokens and take them again. Three things kept beside the database catch it:

* a **commit counter** in the database, one more with every transaction;
* the **seal** (``meter.seal``), written atomically after every commit and kept
  apart from the database: the counter, a copy of every state blob (the prepaid
  account, the STS decoder state with its used TIDs, ...) and a SHA-256 over both;
* a **verified backup** (``meter.bak``), a copy by sqlite's online backup API taken
  every :data:`BACKUP_INTERVAL_S` and at every :meth:`Storage.close`, checked before it
  replaces the previous one. (``bijli fleet`` ends without closing its meters' files:
  their backups stay as the schedule took them, which costs no money at a recovery,
  since the seal holds every state blob of the last commit; only profile and event rows
  newer than the backup are lost then, as after a crash.)

Every state blob and profile row also carries a CRC-32 over its key and value. On
open the database must pass sqlite's ``quick_check``, every record its CRC, and its
counter must be at least the seal's (one more is a crash between the commit and the
seal) with the same records when equal. Otherwise :class:`~firmware.errors.StateDamaged`
refuses to start and names the recovery command (:data:`RECOVER_HINT`). :func:`verify`
reports, :func:`recover` rebuilds the database from the backup with the state blobs
of the seal on top (so credit and used TIDs are those of the last commit), keeping
the damaged files aside. It never starts a meter silently as new or older than it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from bijli.firmware.errors import StateDamaged, StorageError

SCHEMA_VERSION = 2  # 2: a CRC-32 on every record, the commit counter in meta
DB_NAME = "meter.db"
SEAL_NAME = "meter.seal"
BACKUP_NAME = "meter.bak"
SEAL_FORMAT = 1
BACKUP_INTERVAL_S = 300.0  # seconds of real time between backups while the meter runs
RECOVER_HINT = "bijli state verify --state {state} shows what is wrong; bijli state recover --state {state} rebuilds it"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, crc INTEGER NOT NULL DEFAULT -1);
CREATE TABLE IF NOT EXISTS rows (
    profile TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    time    TEXT NOT NULL,
    value   TEXT NOT NULL,
    crc     INTEGER NOT NULL DEFAULT -1,
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


class Encoded(str):
    """A record already encoded by :func:`dumps`, to be stored as this very text (a
    transaction's ``put`` of it writes it without encoding it again)."""

    __slots__ = ()


def dumps(value: Any) -> str:
    if type(value) is Encoded:
        return value
    return json.dumps(value, default=_encode, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text, object_hook=_decode)


@dataclass(frozen=True)
class Row:
    """One entry of a profile buffer: its sequence number, capture time and values."""

    seq: int
    time: datetime
    values: list


def row_range(from_time: datetime | None = None, to_time: datetime | None = None,
              from_seq: int | None = None, to_seq: int | None = None) -> tuple[str, list[Any]]:
    """The SQL that limits profile rows by time (inclusive) or sequence, and its arguments
    (one place for every store that keeps profile rows: a meter's own, a fleet shard's)."""
    sql, args = "", []
    for column, op, value in (("time", ">=", from_time), ("time", "<=", to_time),
                              ("seq", ">=", from_seq), ("seq", "<=", to_seq)):
        if value is not None:
            sql += f" AND {column} {op} ?"
            args.append(value.isoformat() if isinstance(value, datetime) else value)
    return sql, args


def kv_crc(key: str, text: str) -> int:
    return zlib.crc32(f"{key}\x00{text}".encode("utf-8"))


def row_crc(profile: str, seq: int, time_text: str, text: str) -> int:
    return zlib.crc32(f"{profile}\x00{seq}\x00{time_text}\x00{text}".encode("utf-8"))


def read_rows(db: sqlite3.Connection, sql: str, args: list, path: Any, profile: str,
              crc_of: Callable[[int, str, str], int], damaged: type[StorageError] = StorageError) -> list[Row]:
    """The rows ``sql`` selects (seq, time, value, crc), each checked against ``crc_of(seq,
    time, value)`` (``damaged`` when one fails) and decoded; a read error or an undecodable
    row is a StorageError naming ``path``. One reader for a meter's file and a shard."""
    out = []
    try:
        for seq, t, v, crc in db.execute(sql, args):
            if crc != crc_of(seq, t, v):
                raise damaged(f"{path}: row {seq} of {profile!r} fails its checksum")
            out.append(Row(seq, datetime.fromisoformat(t), loads(v)))
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path}: cannot read {profile!r} ({exc})") from exc
    except (ValueError, TypeError) as exc:
        raise StorageError(f"{path}: a row of {profile!r} is corrupt ({exc})") from exc
    return out


class Transaction:
    """The writes of one atomic step. Obtained from :meth:`Storage.transaction`."""

    def __init__(self, db: sqlite3.Connection, changes: dict[str, str | None] | None = None):
        self._db = db
        self._changes = changes if changes is not None else {}  # key -> new text (None: deleted)

    def put(self, key: str, value: Any) -> None:
        text = dumps(value)
        self._db.execute("INSERT OR REPLACE INTO kv (key, value, crc) VALUES (?, ?, ?)", (key, text, kv_crc(key, text)))
        self._changes[key] = text

    def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        self._changes[key] = None

    def append(self, profile: str, time: datetime, values: list, capacity: int) -> int:
        """Append a row to ``profile``; beyond ``capacity`` rows the oldest go (FIFO)."""
        if capacity < 1:
            raise StorageError(f"profile {profile!r}: capacity must be at least 1")
        (last,) = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM rows WHERE profile = ?", (profile,)
        ).fetchone()
        seq = last + 1
        t, text = time.isoformat(), dumps(values)
        self._db.execute(
            "INSERT INTO rows (profile, seq, time, value, crc) VALUES (?, ?, ?, ?, ?)",
            (profile, seq, t, text, row_crc(profile, seq, t, text)),
        )
        self._db.execute("DELETE FROM rows WHERE profile = ? AND seq <= ?", (profile, seq - capacity))
        return seq

    def clear(self, profile: str) -> None:
        self._db.execute("DELETE FROM rows WHERE profile = ?", (profile,))


# --- the seal: the commit counter and the state blobs, apart from the database ------------

def _seal_digest(commit: int, records: dict[str, str]) -> str:
    body = json.dumps({"format": SEAL_FORMAT, "commit": commit, "records": records}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def write_seal(state: Path, commit: int, records: dict[str, str], name: str = SEAL_NAME) -> None:
    """Atomically replace the seal: a reader finds the old one or the new one, whole.
    (``name``: a fleet shard's seal sits beside its database under the shard's name.)"""
    doc = {"format": SEAL_FORMAT, "commit": commit, "records": records, "sha256": _seal_digest(commit, records)}
    tmp = state / (name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, sort_keys=True, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, state / name)


def read_seal_bytes(path: Path) -> bytes | None:
    """The bytes of the seal file at ``path`` (a meter's or a shard's); None when there is
    none; StateDamaged when it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateDamaged(f"{path}: cannot read the seal ({exc.strerror})") from None


def read_seal(state: Path, name: str = SEAL_NAME) -> tuple[int, dict[str, str]] | None:
    """(commit, records) of the seal; None when there is none; StateDamaged when it is damaged."""
    path = state / name
    raw = read_seal_bytes(path)
    if raw is None:
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
        commit, records, digest = doc["commit"], doc["records"], doc["sha256"]
        ok = (doc.get("format") == SEAL_FORMAT and isinstance(commit, int) and isinstance(records, dict)
              and all(isinstance(k, str) and isinstance(v, str) for k, v in records.items())
              and digest == _seal_digest(commit, records))
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise StateDamaged(f"{path}: the seal is damaged (its checksum does not match)")
    return commit, records


# --- examining a database -------------------------------------------------------------

@dataclass
class Examination:
    """What one database file holds and what is wrong with it."""

    path: Path
    commit: int | None = None
    records: dict[str, str] | None = None
    rows: int = 0
    problems: list[str] | None = None

    @property
    def sound(self) -> bool:
        return not self.problems


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves so one firmware step is
    # exactly one transaction, no implicit ones.
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def _examine_db(db: sqlite3.Connection, path: Path) -> Examination:
    """Check an open database: sqlite's own check, the schema, every record's CRC."""
    ex = Examination(path, problems=[])
    try:
        check = [r[0] for r in db.execute("PRAGMA quick_check")]
        if check != ["ok"]:
            ex.problems.append(f"sqlite finds it damaged: {'; '.join(check[:3])}")
            return ex
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"meta", "kv", "rows"} <= tables:
            ex.problems.append("it is not a bijli state database (tables missing)")
            return ex
        meta = dict(db.execute("SELECT key, value FROM meta"))
        schema = int(meta.get("schema", 0))
        if schema > SCHEMA_VERSION:
            raise StorageError(f"{path}: schema {schema} is newer than this firmware ({SCHEMA_VERSION})")
        ex.commit = int(meta["commit"]) if "commit" in meta else None
        ex.records = {}
        for key, text, crc in db.execute("SELECT key, value, crc FROM kv"):
            if crc != kv_crc(key, text):
                ex.problems.append(f"record {key!r} fails its checksum")
            ex.records[key] = text
        for profile, seq, t, text, crc in db.execute("SELECT profile, seq, time, value, crc FROM rows"):
            ex.rows += 1
            if crc != row_crc(profile, seq, t, text):
                ex.problems.append(f"row {seq} of {profile!r} fails its checksum")
                if len(ex.problems) > 10:
                    break
    except sqlite3.DatabaseError as exc:
        ex.problems.append(f"sqlite cannot read it: {exc}")
    except ValueError as exc:
        ex.problems.append(f"its meta table is damaged: {exc}")
    return ex


def examine_file(path: Path) -> Examination:
    """Examine a database file without changing it (a backup, or a copy of meter.db)."""
    if not path.is_file():
        return Examination(path, problems=["it does not exist"])
    if path.stat().st_size == 0:
        return Examination(path, problems=["it is empty (0 bytes)"])
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.DatabaseError as exc:
        return Examination(path, problems=[f"sqlite cannot open it: {exc}"])
    try:
        return _examine_db(db, path)
    finally:
        db.close()


def _compare_with_seal(ex: Examination, seal: tuple[int, dict[str, str]] | None) -> None:
    """A database older than its seal was rolled back; at the seal's commit it must hold
    the seal's records. (One or more commits ahead: the seal was not yet rewritten.)"""
    if seal is None or not ex.sound:
        return
    commit, records = seal
    if ex.commit is None:
        ex.problems.append(f"it has no commit counter but the seal says {commit} commits were made")
    elif ex.commit < commit:
        ex.problems.append(f"it was rolled back: it holds commit {ex.commit}, the seal says {commit} "
                           f"(a lost write-ahead log, or an old copy put back)")
    elif ex.commit == commit and ex.records != records:
        differ = sorted(k for k in {*records, *(ex.records or {})} if records.get(k) != (ex.records or {}).get(k))
        ex.problems.append(f"its records {', '.join(differ)} differ from the seal's at the same commit {commit}")


class NonVolatileMemory(Protocol):
    """What the firmware calls on a meter's non-volatile memory: :class:`Storage` (a meter's
    own file) and :class:`firmware.shard.MeterMemory` (its part of a fleet shard) both are
    one. A ``transaction`` is one atomic step, on disk when it returns (outside a shard's
    commit group); ``get`` and ``rows`` verify each record's CRC-32 and raise
    :class:`~firmware.errors.StorageError` on a damaged one."""

    path: Any
    #: commit groups that failed after steps inside them had been released: what a meter
    #: noted as written since may not be on disk (it then writes every record again)
    rollbacks: int

    def transaction(self) -> Any: ...

    def group(self) -> Any: ...

    @property
    def in_group(self) -> bool: ...

    def put(self, key: str, value: Any) -> None: ...

    def get(self, key: str, default: Any = None) -> Any: ...

    def rows(self, profile: str, *, from_time: datetime | None = None, to_time: datetime | None = None,
             from_seq: int | None = None, to_seq: int | None = None) -> list[Row]: ...

    def count(self, profile: str) -> int: ...

    def close(self) -> None: ...


class Storage(NonVolatileMemory):
    """The meter's non-volatile memory, one sqlite file under the state directory."""

    def __init__(self, db: sqlite3.Connection, path: Path, commit: int = 0, records: dict[str, str] | None = None,
                 backup_interval_s: float = BACKUP_INTERVAL_S):
        self._db = db
        self.path = path
        self.state = path.parent
        self._in_tx = False
        self._changes: dict[str, str | None] = {}
        self._group: dict[str, str | None] | None = None  # a commit group's changes while one is open
        self.rollbacks = 0  # commit groups that failed (NonVolatileMemory.rollbacks)
        self.commit = commit
        self._records = dict(records or {})  # the committed state blobs, for the seal
        self.seal_stale = False  # the last commit is on disk but the seal could not be rewritten
        self.backup_interval_s = backup_interval_s
        self._last_backup = time.monotonic()

    @classmethod
    def open(cls, state_dir: str | Path, *, backup_interval_s: float = BACKUP_INTERVAL_S) -> "Storage":
        """Open (or create) the state in ``state_dir``; :class:`StateDamaged` when it is
        missing, empty, rolled back or damaged, with the command that recovers it."""
        state = Path(state_dir)
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"state directory {state}: {exc.strerror}") from exc
        path = state / DB_NAME
        hint = RECOVER_HINT.format(state=state)
        try:
            seal = read_seal(state)
        except StateDamaged as exc:
            raise StateDamaged(f"{exc}; the meter does not start on state it cannot vouch for. {hint}") from None
        size = path.stat().st_size if path.is_file() else None
        if seal is not None and not size:
            what = "is missing" if size is None else "is empty (0 bytes)"
            raise StateDamaged(f"{path} {what}, but its seal says {seal[0]} commits were made: starting as a new "
                               f"meter would forget its credit and accept its tokens again. {hint}")
        if seal is None and size is None and (state / BACKUP_NAME).exists():
            raise StateDamaged(f"{path} and its seal are missing but a backup of them is here. {hint}")
        try:
            db = _connect(path)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            fresh = not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
            if fresh:
                if seal is not None:  # its tables were only ever in a write-ahead log, now lost
                    db.close()
                    raise StateDamaged(f"{path} holds no tables: it was rolled back to before it was made (a lost "
                                       f"write-ahead log?), but its seal says {seal[0]} commits were made. {hint}")
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?), ('commit', '0')",
                           (str(SCHEMA_VERSION),))
            else:
                _migrate(db)
            ex = _examine_db(db, path)
        except sqlite3.DatabaseError as exc:
            raise StateDamaged(f"{path}: not a readable bijli state database ({exc}). {hint}") from exc
        if seal is None and ex.sound and (ex.commit or 0) > 0 and not _is_legacy(db):
            ex.problems.append(f"its seal {SEAL_NAME} is missing, so it cannot be shown to be the newest state")
        _compare_with_seal(ex, seal)
        if not ex.sound:
            db.close()
            raise StateDamaged(f"{path}: {'; '.join(ex.problems)}. The meter does not start on damaged state, so "
                               f"that no credit is forgotten and no token accepted twice. {hint}")
        storage = cls(db, path, ex.commit or 0, ex.records, backup_interval_s)
        if seal is None or seal[0] != storage.commit:
            storage._seal()
            if storage.seal_stale:
                db.close()
                raise StorageError(f"{state / SEAL_NAME}: cannot be written")
        if not (state / BACKUP_NAME).exists():
            storage.backup()
        return storage

    def close(self) -> None:
        try:
            self.backup()
        except StorageError:
            pass  # the database itself is committed; a backup is taken at the next start
        self._db.close()

    # --- writing --------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic step: everything written inside commits together or not at all.
        A failed commit (a full disk) raises StorageError and leaves the database, the
        seal and this object as they were before the step. Inside :meth:`group` the step
        is a savepoint of the group's transaction: it is undone alone when it fails, and
        on disk with the group."""
        if self._in_tx:
            raise StorageError("nested transaction: one firmware step is one transaction")
        self._in_tx = True
        changes: dict[str, str | None] = {}
        self._changes = changes
        grouped = self._group is not None
        try:
            self._db.execute("SAVEPOINT step" if grouped else "BEGIN IMMEDIATE")
            try:
                yield Transaction(self._db, changes)
                if grouped:
                    self._db.execute("RELEASE step")
                else:
                    self._db.execute("UPDATE meta SET value = ? WHERE key = 'commit'", (str(self.commit + 1),))
                    self._db.execute("COMMIT")
            except BaseException:
                if grouped:
                    self._db.execute("ROLLBACK TO step")
                    self._db.execute("RELEASE step")
                else:
                    self._rollback()
                raise
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: {exc}") from exc
        finally:
            self._in_tx = False
        if grouped:
            self._group.update(changes)
        else:
            self._committed(changes)

    @contextmanager
    def group(self) -> Iterator[None]:
        """One commit group: every step inside is a savepoint of one transaction, on disk
        together (one fsync, one seal, one more commit) when the block ends, none of them
        when it raises or the commit fails (StorageError; the database, the seal and this
        object are then as before the group). For a jump of simulated time
        (:meth:`firmware.meter.Meter.advance_to`): a power cut during the jump leaves the
        meter where the jump began. Nothing that must be acknowledged (a credited token)
        belongs in a group."""
        if self._group is not None or self._in_tx:
            raise StorageError("nested commit group: a group holds steps, not groups")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: {exc}") from exc
        changes: dict[str, str | None] = {}
        self._group = changes
        try:
            yield
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'commit'", (str(self.commit + 1),))
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._rollback()
            self.rollbacks += 1
            raise StorageError(f"{self.path}: {exc}") from exc
        except BaseException:
            self._rollback()
            self.rollbacks += 1
            raise
        finally:
            self._group = None
        self._committed(changes)

    @property
    def in_group(self) -> bool:
        return self._group is not None

    def _committed(self, changes: dict[str, str | None]) -> None:
        """A transaction is on disk: count it, seal it, back it up when one is due."""
        self.commit += 1
        for key, text in changes.items():
            if text is None:
                self._records.pop(key, None)
            else:
                self._records[key] = text
        self._seal()
        if time.monotonic() - self._last_backup >= self.backup_interval_s:
            try:
                self.backup()
            except StorageError:
                pass  # tried again after the next commit; the seal already holds the money

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass  # sqlite rolled back by itself (a failed COMMIT on a full disk does)

    def _seal(self) -> None:
        """Rewrite the seal after a commit. If it cannot be written (a full disk) the
        commit still stands: a database ahead of its seal is accepted at the next start,
        and the next commit tries again."""
        try:
            write_seal(self.state, self.commit, self._records)
            self.seal_stale = False
        except OSError:
            self.seal_stale = True

    def backup(self) -> Path:
        """Copy the database to :data:`BACKUP_NAME` by sqlite's online backup, verify the
        copy, and only then let it replace the previous backup."""
        tmp = self.state / (BACKUP_NAME + ".tmp")
        try:
            tmp.unlink(missing_ok=True)
            dest = sqlite3.connect(tmp)
            try:
                self._db.backup(dest)
                dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                dest.close()
            ex = examine_file(tmp)
            if not ex.sound or ex.commit != self.commit:
                raise StorageError(f"{tmp}: the backup does not verify ({'; '.join(ex.problems or ['commit'])})")
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.state / BACKUP_NAME)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StorageError(f"{tmp}: backup failed ({exc})") from exc
        finally:
            self._last_backup = time.monotonic()
        return self.state / BACKUP_NAME

    def put(self, key: str, value: Any) -> None:
        """Store one record: in its own transaction, or as part of the one in progress."""
        if self._in_tx:
            Transaction(self._db, self._changes).put(key, value)
            return
        with self.transaction() as tx:
            tx.put(key, value)

    # --- reading --------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        try:
            row = self._db.execute("SELECT value, crc FROM kv WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot read record {key!r} ({exc})") from exc
        if row is None:
            return default
        if row[1] != kv_crc(key, row[0]):
            raise StorageError(f"{self.path}: record {key!r} fails its checksum")
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
        where, args = row_range(from_time, to_time, from_seq, to_seq)
        sql = f"SELECT seq, time, value, crc FROM rows WHERE profile = ?{where} ORDER BY seq"
        return read_rows(self._db, sql, [profile, *args], self.path, profile,
                         lambda seq, t, v: row_crc(profile, seq, t, v))

    def count(self, profile: str) -> int:
        try:
            (n,) = self._db.execute("SELECT COUNT(*) FROM rows WHERE profile = ?", (profile,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot read {profile!r} ({exc})") from exc
        return n


def _is_legacy(db: sqlite3.Connection) -> bool:
    """A database migrated from schema 1 in this very open: it never had a seal."""
    row = db.execute("SELECT value FROM meta WHERE key = 'migrated_from'").fetchone()
    return row is not None


def _migrate(db: sqlite3.Connection) -> None:
    """Schema 1 (no CRCs, no counter, no seal) -> 2, in one transaction."""
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None or int(row[0]) >= SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("ALTER TABLE kv ADD COLUMN crc INTEGER NOT NULL DEFAULT -1")
        db.execute("ALTER TABLE rows ADD COLUMN crc INTEGER NOT NULL DEFAULT -1")
        for key, text in db.execute("SELECT key, value FROM kv").fetchall():
            db.execute("UPDATE kv SET crc = ? WHERE key = ?", (kv_crc(key, text), key))
        for profile, seq, t, text in db.execute("SELECT profile, seq, time, value FROM rows").fetchall():
            db.execute("UPDATE rows SET crc = ? WHERE profile = ? AND seq = ?", (row_crc(profile, seq, t, text),
                                                                                 profile, seq))
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?), ('commit', '1'), "
                   "('migrated_from', ?)", (str(SCHEMA_VERSION), row[0]))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# --- verify and recover (the `bijli state` command) ------------------------------------

@dataclass
class Verdict:
    """What :func:`verify` found: the database, the seal and the backup."""

    state: Path
    database: Examination
    seal: tuple[int, dict[str, str]] | None
    seal_problem: str | None
    backup: Examination

    @property
    def sound(self) -> bool:
        return self.database.sound and self.seal_problem is None

    def lines(self) -> list[str]:
        db = self.database
        out = [f"database {db.path}: " + ("sound, commit " + str(db.commit) if db.sound else "; ".join(db.problems))]
        if self.seal_problem:
            out.append(f"seal: {self.seal_problem}")
        elif self.seal is None:
            out.append("seal: none")
        else:
            out.append(f"seal: sound, commit {self.seal[0]}, {len(self.seal[1])} records")
        b = self.backup
        out.append(f"backup {b.path}: " + (f"sound, commit {b.commit}, {b.rows} rows" if b.sound
                                           else "; ".join(b.problems)))
        return out


def verify(state_dir: str | Path) -> Verdict:
    """Examine a state directory without changing it (the meter must not be running)."""
    state = Path(state_dir)
    seal, seal_problem = None, None
    try:
        seal = read_seal(state)
    except StateDamaged as exc:
        seal_problem = str(exc)
    db = examine_file(state / DB_NAME)
    if seal is None and seal_problem is None and not (state / DB_NAME).exists():
        db.problems = [] if not (state / BACKUP_NAME).exists() else ["it is missing (a backup is here)"]
    _compare_with_seal(db, seal)
    return Verdict(state, db, seal, seal_problem, examine_file(state / BACKUP_NAME))


def recover(state_dir: str | Path, *, accept_older: bool = False) -> list[str]:
    """Rebuild a damaged state: the verified backup's database with the seal's state blobs
    and commit counter on top, so credit, debt and used TIDs are those of the last commit;
    profile and event rows newer than the backup are lost (and said so). The damaged files
    are moved to ``damaged-<time>/``, never deleted. Without a sound seal only the backup
    is left, which may be older than the meter was: that needs ``accept_older``."""
    state = Path(state_dir)
    verdict = verify(state)
    report = verdict.lines()
    if verdict.sound:
        return report + ["nothing to recover: the state is sound"]
    seal, backup = verdict.seal, verdict.backup
    if seal is None and not accept_older:
        raise StateDamaged("; ".join(report) + ". No sound seal is left, so the newest state the meter had is "
                           "unknown: recovering from the backup may start it older than it was (tokens credited "
                           "after the backup would be accepted again). Run again with --accept-older to do so.")
    if seal is None and not backup.sound:
        raise StateDamaged("; ".join(report) + ". Neither a sound seal nor a sound backup is left: nothing to "
                           "recover from.")
    aside = state / f"damaged-{datetime.now().strftime('%Y%m%dT%H%M%S')}"
    aside.mkdir(exist_ok=True)
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", SEAL_NAME):
        if (state / name).exists() and not (name == SEAL_NAME and seal is not None):
            shutil.move(str(state / name), str(aside / name))
    report.append(f"damaged files moved to {aside}")
    path = state / DB_NAME
    if backup.sound:
        shutil.copyfile(state / BACKUP_NAME, path)
    db = _connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if not backup.sound:
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?), ('commit', '0')", (str(SCHEMA_VERSION),))
        _migrate(db)
        commit = seal[0] if seal is not None else (backup.commit or 0)
        db.execute("BEGIN IMMEDIATE")
        if seal is not None:
            db.execute("DELETE FROM kv")
            for key, text in seal[1].items():
                db.execute("INSERT INTO kv (key, value, crc) VALUES (?, ?, ?)", (key, text, kv_crc(key, text)))
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('commit', ?)", (str(commit),))
        db.execute("COMMIT")
        records = dict(db.execute("SELECT key, value FROM kv"))
    finally:
        db.close()
    write_seal(state, commit, records)
    if backup.sound:
        report.append(f"rows restored from the backup (commit {backup.commit}); rows written after it are lost")
    else:
        report.append("no sound backup: profile and event rows start empty")
    if seal is not None:
        report.append(f"state records (credit, used tokens, energy) restored from the seal at commit {seal[0]}")
    else:
        report.append(f"state records from the backup at commit {backup.commit}: the meter may be older than it was")
    storage = Storage.open(state)  # proves the result opens, and takes a fresh backup
    storage.close()
    report.append("recovered: the meter starts on it")
    return report
