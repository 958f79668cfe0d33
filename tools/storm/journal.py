"""The storm journal: what was sold to which meter and what became of it, crash-safe.

One JSON object per line, appended and fsync'd, so a storm killed at any instant
resumes from what it wrote. Lines written together by concurrent deliveries share
one fsync (group commit), which is what keeps a thousand deliveries a second
affordable on a disk that fsyncs a few thousand times a second. Every write is
followed by its fsync before the next write starts, so a crash can tear only the
last line; that line is ignored on reading.

Only one record must be on disk before the storm acts on it: ``before`` (the credit
read before the token is first sent) is awaited to its fsync before the ACTION goes
out, because a resumed storm that lost it would read the credit again *after* a
delivery that may have landed, and judge against the wrong total. The records after
the ACTION (``delivered``, ``refused``) and the read-back (``verify``) are *deferred*
(``commit(record, durable=False)``): applied in memory at once, written and fsync'd
with the next group of ``before`` records or at the end of the phase
(:meth:`Journal.sync`, and :meth:`Journal.close`), so a delivery waits for no fsync
of its own after its token. Losing one to a crash is safe by construction: the meter
is then still ``in_doubt`` in the journal, a resumed storm sends the *same* token
again, the meter answers ``used`` (its own record of the TID, committed before it
acknowledged the first ACTION) and the credit-before journaled earlier still judges
it: never credited twice, never skipped. A lost ``verify`` record is only read back
again.

Per meter the delivery is a state machine, a table in the h2 style
``(state, record kind) -> (apply, next state)``:

* ``vended``: a token was sold (its digits, TID and value are in the record);
* ``before``: the meter's total recharged was read and recorded before the token was
  first sent: from here on the meter may have the token (``IN_DOUBT``), and a resumed
  storm sends the SAME token again (a meter that took it answers ``used``);
* ``result``: the meter's verdict: ``accepted`` or ``used`` deliver, another word refuses.

Verification records (``verify``) sit beside the table: they change no delivery state.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bijli.tools.storm import StormJournalError

JOURNAL_VERSION = 1


class MeterState(enum.Enum):
    NEW = "new"  # nothing sold yet
    VENDED = "vended"  # a token is sold; the meter has not seen it
    IN_DOUBT = "in_doubt"  # the token may have reached the meter
    DELIVERED = "delivered"  # the meter has it (accepted now, or used: it took it before)
    REFUSED = "refused"  # the meter refused it for good (crc_error, old, overflow, ...)


class Kind(enum.Enum):
    VENDED = "vended"
    BEFORE = "before"
    DELIVERED = "delivered"
    REFUSED = "refused"


@dataclass(slots=True)
class MeterRecord:
    """Everything the journal knows of one meter (one per meter of the manifest: slots)."""

    serial: str
    state: MeterState = MeterState.NEW
    token: str | None = None
    tid: int | None = None
    value_paisa: int | None = None
    before: int | None = None  # total recharged before the first send, paisa
    word: str | None = None  # the meter's last verdict
    attempts: int = 0
    verified: dict | None = None


def _vend(m: MeterRecord, rec: dict) -> None:
    m.token, m.tid, m.value_paisa = str(rec["token"]), int(rec["tid"]), int(rec["value_paisa"])


def _before(m: MeterRecord, rec: dict) -> None:
    m.before = int(rec["total"])


def _verdict(m: MeterRecord, rec: dict) -> None:
    m.word = str(rec["word"])
    m.attempts = int(rec.get("attempts", 0))


#: the delivery state machine; any pair not in it is a journal out of order
TRANSITIONS: dict[tuple[MeterState, Kind], tuple[Callable[[MeterRecord, dict], None], MeterState]] = {
    (MeterState.NEW, Kind.VENDED): (_vend, MeterState.VENDED),
    (MeterState.VENDED, Kind.BEFORE): (_before, MeterState.IN_DOUBT),
    (MeterState.IN_DOUBT, Kind.DELIVERED): (_verdict, MeterState.DELIVERED),
    (MeterState.IN_DOUBT, Kind.REFUSED): (_verdict, MeterState.REFUSED),
}


def apply(m: MeterRecord, kind: Kind, rec: dict) -> None:
    """Move ``m`` by one record, or raise :class:`StormJournalError` for a pair the table lacks."""
    entry = TRANSITIONS.get((m.state, kind))
    if entry is None:
        raise StormJournalError(f"meter {m.serial}: a {kind.value!r} record in state {m.state.value!r}")
    fn, nxt = entry
    try:
        fn(m, rec)
    except (KeyError, TypeError, ValueError) as exc:
        raise StormJournalError(f"meter {m.serial}: a damaged {kind.value!r} record: {exc!r}") from None
    m.state = nxt


@dataclass
class Journal:
    """An open journal: its header (what storm it is) and per-meter records."""

    path: Path
    header: dict
    meters: dict[str, MeterRecord] = field(default_factory=dict)
    _file: object = None
    _pending: list = field(default_factory=list)
    _flushing: bool = False
    _flusher: object = None  # the running flush task (held: the loop keeps only a weak reference)
    fsyncs: int = 0
    lines: int = 0

    # --- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, path: "str | Path", header: dict) -> "Journal":
        """Create the journal with ``header`` or resume it; a journal of another storm
        (another header) is refused rather than mixed."""
        path = Path(path)
        journal = cls(path, dict(header, kind="storm", version=JOURNAL_VERSION))
        if path.exists():
            journal._load()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            journal._file = open(path, "ab")
        except OSError as exc:
            raise StormJournalError(f"cannot open the storm journal {path}: {exc}") from None
        if journal.lines == 0:
            journal.append_now([journal.header])
        return journal

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise StormJournalError(f"cannot read the storm journal {self.path}: {exc}") from None
        lines = raw.split(b"\n")
        torn = lines.pop()  # after the last newline: b"" unless a crash tore the last line
        del torn  # never acted upon: its fsync never returned
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except ValueError:
                raise StormJournalError(f"{self.path} line {n} is damaged; the journal is not repaired on its own "
                                   "because a wrong guess could credit a meter twice") from None
            if n == 1:
                mine = {k: v for k, v in self.header.items()}
                if rec != mine:
                    raise StormJournalError(f"{self.path} is the journal of another storm ({_describe(rec)}), not of "
                                       f"this one ({_describe(mine)}); give another --journal")
                continue
            self._apply_record(rec)
        self.lines = len(lines)

    def _apply_record(self, rec: dict) -> None:
        serial = rec.get("meter")
        if not isinstance(serial, str):
            raise StormJournalError(f"{self.path}: a record without a meter: {rec!r}")
        m = self.meters.setdefault(serial, MeterRecord(serial))
        if rec.get("kind") == "verify":
            m.verified = rec
            return
        try:
            kind = Kind(rec.get("kind"))
        except ValueError:
            raise StormJournalError(f"{self.path}: unknown record kind {rec.get('kind')!r}") from None
        apply(m, kind, rec)

    def meter(self, serial: str) -> MeterRecord:
        return self.meters.setdefault(serial, MeterRecord(serial))

    # --- writing ------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise StormJournalError(f"cannot write the storm journal {self.path}: {exc}") from None
        self.fsyncs += 1

    def append_now(self, records: list[dict]) -> None:
        """Append and fsync (blocking), then apply: for the vend phase and the header."""
        if not records:
            return
        self._write(b"".join(_line(r) for r in records))
        for r in records:
            if r is not self.header:
                self._apply_record(r)
        self.lines += len(records)

    async def commit(self, record: dict, *, durable: bool = True) -> None:
        """Append ``record``; return once it is on disk (fsync'd), sharing the fsync with
        every record committed meanwhile. Applied to the in-memory state on return.

        ``durable=False``: a deferred record (see the module): applied now, written with
        the next durable group or by :meth:`sync`; nothing is awaited."""
        if not durable:
            self._apply_record(record)  # a pair the table lacks raises here, before anything is written
            self._pending.append((record, None))
            return
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((record, fut))
        if not self._flushing:
            self._flushing = True
            self._flusher = asyncio.ensure_future(self._flush())
        await fut

    async def sync(self) -> None:
        """Every record committed so far on disk (the deferred ones too)."""
        if self._pending or self._flushing:
            await self.commit(None)  # type: ignore[arg-type]  # an empty marker: rides the group, writes nothing

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                data = b"".join(_line(r) for r, _ in batch if r is not None)
                try:
                    if data:
                        await asyncio.to_thread(self._write, data)
                except StormJournalError as exc:
                    for _, fut in batch:
                        if fut is not None:
                            fut.set_exception(exc)
                    continue
                for r, fut in batch:
                    if r is None:  # sync()'s marker
                        fut.set_result(None)
                        continue
                    self.lines += 1
                    if fut is None:  # deferred: applied when it was committed
                        continue
                    try:
                        self._apply_record(r)
                    except StormJournalError as exc:
                        fut.set_exception(exc)
                        continue
                    fut.set_result(None)
        finally:
            self._flushing = False

    def close(self) -> None:
        """Write what is deferred (blocking, fsync'd), then close."""
        if self._file is not None:
            left = [r for r, fut in self._pending if fut is None and r is not None]
            self._pending = []
            try:
                if left:
                    self._write(b"".join(_line(r) for r in left))
                    self.lines += len(left)
            finally:
                self._file.close()
                self._file = None


def _line(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _describe(header: dict) -> str:
    return ", ".join(f"{k} {header.get(k)}" for k in ("manifest", "meters", "amount") if k in header)
