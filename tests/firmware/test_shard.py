"""Shard memory: many meters in one sqlite file, each with the meaning of its own Storage."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.firmware.errors import StorageError
from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.shard import ShardStore
from bijli.firmware.storage import Storage
from bijli.firmware.sts.vend import vend_credit
from tests.conftest import ROOT

AT = datetime(2024, 6, 14, 17, 0)


def other_connection(path) -> sqlite3.Connection:
    """A second reader, as after a crash: it sees only what was committed."""
    return sqlite3.connect(path)


def test_each_meter_sees_only_its_own_records_and_rows(tmp_path):
    shard = ShardStore.open(tmp_path / "s.db")
    a, b = shard.memory(0), shard.memory(1)
    a.put("account", {"balance": Decimal("12.50")})
    with b.transaction() as tx:
        tx.put("account", {"balance": Decimal("1")})
        for i in range(5):
            tx.append("block_load", AT + timedelta(minutes=30 * i), [i], capacity=3)
    with a.transaction() as tx:
        tx.append("block_load", AT, ["a"], capacity=3)
    assert a.get("account") == {"balance": Decimal("12.50")} and b.get("account") == {"balance": Decimal("1")}
    assert [r.values for r in b.rows("block_load")] == [[2], [3], [4]]  # FIFO per meter
    assert [r.seq for r in b.rows("block_load")] == [3, 4, 5]
    assert [r.values for r in a.rows("block_load")] == [["a"]] and a.count("block_load") == 1
    assert [r.values for r in b.rows("block_load", from_time=AT + timedelta(hours=1))] == [[2], [3], [4]]
    assert [r.values for r in b.rows("block_load", from_seq=4, to_seq=4)] == [[3]]
    with a.transaction() as tx:
        tx.clear("block_load")
        tx.delete("account")
    assert a.count("block_load") == 0 and a.get("account") is None and b.count("block_load") == 3
    assert shard.meters() == [1]
    shard.close()


def test_a_blank_meter_is_read_without_a_query_until_anything_is_written_for_it(tmp_path):
    """A never-started meter's first start reads every record it could have, and finds none:
    once the shard has found the meter blank, those reads are answered without sqlite."""
    store = ShardStore.open(tmp_path / "s.db")
    with store.memory(1).transaction() as tx:
        tx.put("account", {"balance": "5"})
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    assert not store.blank(1) and store.blank(2)
    a, b = store.memory(2), store.memory(2)
    statements.clear()
    assert a.get("account") is None and a.get("relay", "none") == "none" and statements == []
    with b.transaction() as tx:  # another view of the same meter writes: every view reads it
        tx.put("account", {"balance": "7"})
    assert not store.blank(2) and a.get("account") == {"balance": "7"}
    store._db.set_trace_callback(None)
    store.close()
    again = ShardStore.open(tmp_path / "s.db")  # a new process finds what is on disk
    assert not again.blank(2) and again.blank(3) and again.memory(2).get("account") == {"balance": "7"}
    again.close()


def test_a_step_is_on_disk_when_it_returns_and_a_failed_step_leaves_nothing(tmp_path):
    shard = ShardStore.open(tmp_path / "s.db")
    m = shard.memory(3)
    with m.transaction() as tx:
        tx.put("sts", {"tid": 1})
    assert other_connection(tmp_path / "s.db").execute("SELECT COUNT(*) FROM kv").fetchone() == (1,)
    with pytest.raises(ZeroDivisionError):
        with m.transaction() as tx:
            tx.put("sts", {"tid": 2})
            1 / 0
    assert m.get("sts") == {"tid": 1}
    with pytest.raises(StorageError, match="nested"):
        with m.transaction():
            with shard.memory(4).transaction():
                pass
    shard.close()


def test_a_commit_group_is_one_transaction_and_a_failed_step_in_it_only_undoes_itself(tmp_path):
    shard = ShardStore.open(tmp_path / "s.db")
    with shard.group():
        for i in range(3):
            with shard.memory(i).transaction() as tx:
                tx.put("energy", i)
        with pytest.raises(ValueError):
            with shard.memory(1).transaction() as tx:
                tx.put("energy", 99)
                raise ValueError("a step that fails")
        # not yet on disk for anyone else
        assert other_connection(tmp_path / "s.db").execute("SELECT COUNT(*) FROM kv").fetchone() == (0,)
    assert [shard.memory(i).get("energy") for i in range(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError):
        with shard.group():
            shard.memory(0).put("energy", 7)
            raise RuntimeError("the group fails")
    assert shard.memory(0).get("energy") == 0
    with pytest.raises(StorageError, match="nested commit group"):
        with shard.group():
            with shard.group():
                pass
    shard.close()


def test_a_batch_stays_open_across_calls_until_its_opener_commits_it_or_a_group_needs_the_store(tmp_path):
    """A batch (the fleet engine's round of DLMS requests) is a commit group left open:
    its steps are savepoints, on disk only at commit_batch. Anything that needs the store
    outside a batch (a group, a close) has the opener end it first."""
    shard = ShardStore.open(tmp_path / "s.db")
    ended = []

    def end():
        ended.append(shard.commit)
        shard.commit_batch()

    shard.begin_batch(end)
    assert shard.in_batch and shard.in_group
    for i in range(3):
        with shard.memory(i).transaction() as tx:
            tx.put("energy", i)
    with pytest.raises(StorageError, match="batch opens only"):
        shard.begin_batch(end)
    assert other_connection(tmp_path / "s.db").execute("SELECT COUNT(*) FROM kv").fetchone() == (0,)
    before = shard.commit
    shard.commit_batch()  # one commit for the three steps
    assert shard.commit == before + 1 and not shard.in_batch and not shard.in_group
    assert other_connection(tmp_path / "s.db").execute("SELECT COUNT(*) FROM kv").fetchone() == (3,)
    with pytest.raises(StorageError, match="no batch"):
        shard.commit_batch()
    shard.begin_batch(end)
    assert shard.memory(0).get("energy") == 0  # reads only: the batch commits nothing
    shard.commit_batch()
    assert shard.commit == before + 1
    shard.begin_batch(end)
    shard.memory(5).put("energy", 5)
    with shard.group():  # the batch is ended (committed) first, then the group opens
        assert ended == [before + 1] and not shard.in_batch
        shard.memory(6).put("energy", 6)
    assert other_connection(tmp_path / "s.db").execute("SELECT COUNT(*) FROM kv").fetchone() == (5,)
    shard.begin_batch(end)
    with shard.memory(7).transaction() as tx:
        tx.put("energy", 7)
        with pytest.raises(StorageError, match="inside one"):
            shard.commit_batch()  # never in the middle of a step
    shard.close()  # a close ends it too
    assert len(ended) == 2
    reopened = ShardStore.open(tmp_path / "s.db")
    assert [reopened.memory(i).get("energy") for i in (0, 1, 2, 5, 6, 7)] == [0, 1, 2, 5, 6, 7]
    reopened.close()


def test_a_batch_that_cannot_commit_leaves_none_of_its_steps(tmp_path):
    shard = ShardStore.open(tmp_path / "s.db")
    shard.memory(0).put("energy", 1)
    shard.begin_batch(shard.commit_batch)
    shard.memory(0).put("energy", 2)
    shard.memory(1).put("energy", 2)
    # a real refusal at COMMIT time (sqlite raises it, as it would a full disk), made inside
    # the batch's own transaction so that the rollback removes it again
    shard._db.execute("CREATE TEMP TRIGGER refuse BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'refused'); END")
    rollbacks = shard.rollbacks
    with pytest.raises(StorageError, match="refused"):
        shard.commit_batch()
    assert shard.rollbacks == rollbacks + 1 and not shard.in_batch and not shard.in_group
    assert shard.memory(0).get("energy") == 1 and shard.memory(1).get("energy") is None
    shard.memory(1).put("energy", 3)  # the store goes on
    shard.close()
    reopened = ShardStore.open(tmp_path / "s.db")
    assert reopened.memory(0).get("energy") == 1 and reopened.memory(1).get("energy") == 3
    reopened.close()


def test_bad_keys_and_foreign_files_are_refused(tmp_path):
    shard = ShardStore.open(tmp_path / "s.db")
    for bad in (-1, "7", 1.0, True):
        with pytest.raises(StorageError):
            shard.memory(bad)
    shard.close()
    (tmp_path / "junk.db").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StorageError, match="not a bijli shard"):
        ShardStore.open(tmp_path / "junk.db")


def test_a_meter_on_shard_memory_keeps_what_it_keeps_on_its_own_file(tmp_path):
    """The same steps on Storage and on MeterMemory leave the same records and rows."""
    cfg = MeterConfig.from_dict({})
    own = Storage.open(tmp_path / "own")
    shard = ShardStore.open(tmp_path / "shard.db")
    shard.memory(0).put("noise", 1)  # a neighbour's records do not leak in
    meters = [Meter(cfg, own, AT), Meter(cfg, shard.memory(5), AT)]
    token = vend_credit(cfg.sts.vend_key(), Decimal("100"), subclass=4, time=AT - timedelta(hours=1)).digits
    for m in meters:
        assert m.enter_token(token).accepted
        m.advance_to(AT + timedelta(days=2, hours=7, minutes=3))  # block load: four pages and a tail
        m.close_billing_now()
    assert shard._db.execute("SELECT COUNT(*) FROM pages WHERE profile = 'block_load'").fetchone() == (4,)
    keys = ["energy", "tariff", "account", "sts", "relay", "limiter", "progress", "year_of_manufacture"]
    assert [own.get(k) for k in keys] == [shard.memory(5).get(k) for k in keys]
    profiles = {p for (p,) in own._db.execute("SELECT DISTINCT profile FROM rows")}
    assert profiles
    for p in profiles:
        assert own.rows(p) == shard.memory(5).rows(p), p
    assert meters[0].status() == meters[1].status()
    own.close()
    shard.close()


def test_every_acknowledged_step_survives_a_sigkill(tmp_path):
    """A child commits steps and acknowledges each on stdout; SIGKILL it mid-way: every
    acknowledged step is in the shard afterwards (what a token's acknowledgement relies on)."""
    db = tmp_path / "s.db"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from bijli.firmware.shard import ShardStore
        shard = ShardStore.open({str(db)!r})
        i = 0
        while True:
            with shard.memory(i % 50).transaction() as tx:
                tx.put("tid", i)
            print(i, flush=True)
            i += 1
        """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    acked = -1
    while acked < 40:
        acked = int(child.stdout.readline())
    child.kill()
    child.wait()
    shard = ShardStore.open(db)
    for i in range(acked + 1):
        assert shard.memory(i % 50).get("tid") >= i
    shard.close()


def test_a_resumed_meter_goes_on_as_if_it_had_never_been_put_away(tmp_path):
    """Meter.volatile + Meter.resume (a fleet's dormant meter): not a restart, so no power
    failure, and the uncommitted part of its RAM is not lost."""
    import pickle

    cfg = MeterConfig.from_dict({})
    first = Storage.open(tmp_path / "a")
    meter = Meter(cfg, first, AT)
    token = vend_credit(cfg.sts.vend_key(), Decimal("40"), subclass=4, time=AT - timedelta(hours=1)).digits
    meter.enter_token(token)
    meter.advance_to(AT + timedelta(minutes=37, seconds=5))  # between two commits
    ram = pickle.dumps(meter.volatile())
    copy = Storage.open(tmp_path / "b")
    first._db.backup(copy._db)
    resumed = Meter.resume(cfg, copy, pickle.loads(ram))
    for m in (meter, resumed):
        m.advance_to(AT + timedelta(hours=9, minutes=1))
    assert meter.status() == resumed.status()
    assert meter.recent_events(50) == resumed.recent_events(50)
    assert not [e for e in resumed.recent_events(50) if e.code.name.startswith("POWER")]
    restarted = Meter(cfg, Storage.open(tmp_path / "a"), meter.now)  # a restart is a power cut: logged
    assert [e.code.name for e in restarted.recent_events(2)] == ["POWER_FAIL", "POWER_RESTORED"]


def test_a_damaged_shard_is_refused_like_a_damaged_meter_db(tmp_path):
    """CRCs on every record (bound to its meter), the commit counter and the seal: a shard
    rolled back behind its seal, unsealed, missing or with a damaged record is refused."""
    import shutil

    from bijli.firmware.errors import StateDamaged
    from bijli.firmware.shard import SLOT_SPACING, seal_name

    path = tmp_path / "s.db"
    shard = ShardStore.open(path)
    shard.memory(3).put("account", {"balance": "10"})
    shard.close()
    for name in ("s.db", "s.db-wal"):  # a copy of the shard after one commit, put back later
        if (tmp_path / name).exists():
            shutil.copy(tmp_path / name, tmp_path / f"old-{name}")
    shard = ShardStore.open(path)
    with shard.group():
        for i in range(4):
            shard.memory(i).put("account", {"balance": str(100 + i)})  # a token's credit: one commit
    assert shard.commit == 2
    shard.close()
    seal = tmp_path / seal_name(path)
    assert seal.exists()
    # the old copy put back: it would forget credit and take tokens again
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
        if (tmp_path / f"old-{name}").exists():
            shutil.copy(tmp_path / f"old-{name}", tmp_path / name)
    with pytest.raises(StateDamaged, match="rolled back"):
        ShardStore.open(path)
    saved = seal.read_bytes()
    seal.unlink()  # no seal beside a database with commits
    with pytest.raises(StateDamaged, match="seal .* is missing"):
        ShardStore.open(path)
    tampered = bytearray(saved)
    for slot in (0, SLOT_SPACING):  # both slots' counters (2 and 1) set back, their digests left
        tampered[slot + 16:slot + 24] = (0).to_bytes(8, "big")
    seal.write_bytes(bytes(tampered))  # tampered with
    with pytest.raises(StateDamaged, match="the seal is damaged"):
        ShardStore.open(path)
    seal.write_bytes(saved)
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with pytest.raises(StateDamaged, match="missing but its seal"):
        ShardStore.open(path)
    assert not path.exists()  # refusing creates nothing
    # a record changed behind the firmware's back, or moved to another meter: its CRC fails
    fresh = tmp_path / "f" / "s.db"
    shard = ShardStore.open(fresh)
    shard.memory(1).put("account", {"balance": "5"})
    shard.memory(2).put("account", {"balance": "6"})
    shard.close()
    db = sqlite3.connect(fresh)
    db.execute("UPDATE kv SET value = '{\"balance\":\"5000\"}' WHERE meter = 1")
    db.execute("UPDATE kv SET meter = 9 WHERE meter = 2")
    db.commit()
    db.close()
    shard = ShardStore.open(fresh)  # sound as a database and as to its seal ...
    for meter in (1, 9):
        with pytest.raises(StateDamaged, match="fails its checksum"):  # ... but no meter starts on a bad record
            shard.memory(meter).get("account")
    assert len(shard.verify()) == 2
    shard.close()


def test_the_seal_vouches_for_every_commit_in_its_two_slots_and_a_torn_slot_costs_one(tmp_path):
    """The seal is rewritten in place after every commit (one slot, alternately): read at
    any moment it holds the last commit. A slot torn by a power cut leaves the other,
    one commit older, which the database is then ahead of (accepted); a database one
    commit behind a sound seal is still refused, and so is a seal with no sound slot."""
    import shutil

    from bijli.firmware.shard import SLOT_SPACING, read_shard_seal, seal_name

    path = tmp_path / "s.db"
    seal = tmp_path / seal_name(path)
    shard = ShardStore.open(path)
    for n in range(1, 6):
        shard.memory(n).put("account", {"balance": str(n)})
        assert read_shard_seal(seal) == (shard.commit, True) == (n, True)  # no close needed: a SIGKILL keeps it
    shutil.copy(path, tmp_path / "old.db")
    shard.close()
    torn = bytearray(seal.read_bytes())
    newest = (5 % 2) * SLOT_SPACING
    torn[newest + 30] ^= 0xFF
    seal.write_bytes(bytes(torn))
    assert read_shard_seal(seal) == (4, True)
    shard = ShardStore.open(path)  # ahead of its seal by one: a crash between commit and seal
    assert shard.commit == 5 and read_shard_seal(seal) == (5, True)  # sealed again at the open
    assert shard.memory(5).get("account") == {"balance": "5"}
    shard.close()
    torn[SLOT_SPACING - newest + 30] ^= 0xFF  # the other slot too: nothing vouches
    seal.write_bytes(bytes(torn))
    with pytest.raises(StateDamaged, match="the seal is damaged"):
        ShardStore.open(path)


def test_a_shard_sealed_in_the_earlier_format_opens_and_is_sealed_in_slots(tmp_path):
    from bijli.firmware.shard import read_shard_seal, seal_name
    from bijli.firmware.storage import write_seal

    path = tmp_path / "s.db"
    shard = ShardStore.open(path)
    shard.memory(1).put("account", {"balance": "1"})
    shard.memory(1).put("account", {"balance": "2"})
    shard.close()
    write_seal(tmp_path, 2, {}, seal_name(path))  # the JSON seal an earlier bijli wrote
    assert read_shard_seal(tmp_path / seal_name(path)) == (2, False)
    shard = ShardStore.open(path)
    assert read_shard_seal(tmp_path / seal_name(path)) == (2, True)
    shard.close()
    write_seal(tmp_path, 3, {}, seal_name(path))  # one ahead of the database: rolled back
    with pytest.raises(StateDamaged, match="rolled back"):
        ShardStore.open(path)


def test_a_shard_of_schema_1_is_migrated_with_its_records_checked_from_then_on(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE kv (meter INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                         PRIMARY KEY (meter, key)) WITHOUT ROWID;
        CREATE TABLE rows (meter INTEGER NOT NULL, profile TEXT NOT NULL, seq INTEGER NOT NULL,
                           time TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (meter, profile, seq)) WITHOUT ROWID;
        INSERT INTO meta VALUES ('shard_schema', '1');
        INSERT INTO kv VALUES (4, 'energy', '12');
        INSERT INTO rows VALUES (4, 'block', 1, '2024-06-14T17:30:00', '[1,2]');
    """)
    db.commit()
    db.close()
    shard = ShardStore.open(path)
    m = shard.memory(4)
    assert m.get("energy") == 12 and [r.values for r in m.rows("block")] == [[1, 2]]
    assert shard.verify() == [] and shard.commit == 1
    m.put("energy", 13)
    shard.close()
    assert ShardStore.open(path).commit == 2


def test_a_resumed_meter_keeps_the_tariff_programmed_over_dlms(tmp_path):
    """A fleet hands Meter.resume the shared, configured tariff: a tariff the head-end
    programmed into this meter (kept in its memory) must still price its energy."""
    import pickle
    from dataclasses import replace

    cfg = MeterConfig.from_dict({})
    storage = Storage.open(tmp_path / "a")
    meter = Meter(cfg, storage, AT)
    profile = replace(cfg.tariff.active, flat_rate=Decimal("9.99"))
    meter.program_tariff(profile, AT)
    assert meter.config.tariff.active.flat_rate == Decimal("9.99")
    resumed = Meter.resume(cfg, storage, pickle.loads(pickle.dumps(meter.volatile())))
    assert resumed.config.tariff == meter.config.tariff


# --- profile pages: the same rows as one row per entry, in a fraction of the disk ----------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bijli.firmware.errors import StateDamaged  # noqa: E402
from bijli.firmware.shard import page_entries  # noqa: E402
from bijli.firmware.storage import Row, dumps, loads  # noqa: E402

PROFILES = ("block", "daily", "events")
#: capacities whose pages hold 1, 2, 4 and 6 entries, so a few dozen appends cross page edges
CAPACITIES = (1, 5, 33, 70, 100)


def _values(draw, profile, t):
    if profile == "block":
        return [t, round(230 + draw(st.integers(-500, 500)) / 100, 2), draw(st.integers(0, 4000)), 0]
    if profile == "daily":
        return [t, draw(st.integers(0, 10**7)), draw(st.floats(allow_nan=False))]
    return [t, draw(st.integers(100, 300)), draw(st.text(max_size=6)), draw(st.none() | st.floats(0, 1))]


@st.composite
def programs(draw):
    """A schedule of appends (clock mostly forward, now and then set back), clears,
    capacity changes and reads by time and by entry, on a few meters and profiles."""
    t = datetime(2024, 6, 14, 17, 0)
    caps = {p: draw(st.sampled_from(CAPACITIES)) for p in PROFILES}
    ops = []
    for _ in range(draw(st.integers(1, 160))):
        kind = draw(st.integers(0, 40))
        meter, profile = draw(st.integers(0, 1)), draw(st.sampled_from(PROFILES))
        if kind == 0:
            ops.append(("clear", meter, profile))
        elif kind == 1:
            caps[profile] = draw(st.sampled_from(CAPACITIES))
        elif kind <= 4:
            lo = t - timedelta(minutes=30 * draw(st.integers(-2, 60)))
            ops.append(("read", meter, profile, dict(
                from_time=draw(st.none() | st.just(lo)), to_time=draw(st.none() | st.just(lo + timedelta(hours=5))),
                from_seq=draw(st.none() | st.integers(0, 200)), to_seq=draw(st.none() | st.integers(0, 200)))))
        else:
            t += timedelta(minutes=draw(st.sampled_from([30, 30, 30, 15, 0, -90])))
            ops.append(("append", meter, profile, t, _values(draw, profile, t), caps[profile]))
    return ops


class PerRow:
    """The plain semantics, one row per entry, as a meter's own Storage keeps them
    (firmware.storage.Transaction: the next seq after the newest, FIFO drop of seq <=
    seq - capacity, times compared as ISO text): the reference the pages must match."""

    def __init__(self):
        self.rows: dict[str, list] = {}

    def append(self, profile, time, values, capacity):
        rows = self.rows.setdefault(profile, [])
        seq = rows[-1].seq + 1 if rows else 1
        rows.append(Row(seq, datetime.fromisoformat(time.isoformat()), loads(dumps(values))))
        self.rows[profile] = [r for r in rows if r.seq > seq - capacity]

    def read(self, profile, from_time=None, to_time=None, from_seq=None, to_seq=None):
        return [r for r in self.rows.get(profile, [])
                if (from_time is None or r.time.isoformat() >= from_time.isoformat())
                and (to_time is None or r.time.isoformat() <= to_time.isoformat())
                and (from_seq is None or r.seq >= from_seq) and (to_seq is None or r.seq <= to_seq)]


@given(programs())
@settings(max_examples=40, deadline=None)
def test_pages_read_back_exactly_the_rows_of_one_row_per_entry(tmp_path_factory, program):
    """The shard with pages and the shard without, against the plain per-row semantics:
    every read (by range, by entry, all), count and FIFO drop agrees, across page edges,
    capacity changes, clears and a clock set back."""
    d = tmp_path_factory.mktemp("p")
    paged, plain = ShardStore.open(d / "paged.db"), ShardStore.open(d / "plain.db", packing=False)
    model = [PerRow(), PerRow()]
    with paged.group(), plain.group():  # one commit each: the rows are what is compared
        for kind, meter, profile, *args in program:
            shards = [s.memory(3 + meter) for s in (paged, plain)]
            if kind == "read":
                expected = model[meter].read(profile, **args[0])
                assert [m.rows(profile, **args[0]) for m in shards] == [expected, expected]
                continue
            for m in shards:
                with m.transaction() as tx:
                    tx.clear(profile) if kind == "clear" else tx.append(profile, *args)
            if kind == "clear":
                model[meter].rows.pop(profile, None)
            else:
                model[meter].append(profile, *args)
            assert [m.count(profile) for m in shards] == [len(model[meter].read(profile))] * 2
    for meter in (0, 1):
        for profile in PROFILES:
            expected = model[meter].read(profile)
            assert [s.memory(3 + meter).rows(profile) for s in (paged, plain)] == [expected, expected]
    assert paged.verify() == [] and not plain._db.execute("SELECT 1 FROM pages").fetchone()
    paged.close()
    plain.close()


def test_a_month_of_block_load_is_pages_and_an_append_writes_one_row(tmp_path):
    shard = ShardStore.open(tmp_path / "s.db")
    m = shard.memory(0)
    cap, size = 1440, page_entries(1440)
    assert size == 48
    with shard.group():  # 1,493 steps, one commit: the rows are what is checked
        for i in range(31 * 48 + 5):
            with m.transaction() as tx:
                tx.append("block_load", AT + timedelta(minutes=30 * (i + 1)), [i, 230.0, 1000 + i], cap)
            tail = shard._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
            assert tail == (i + 1) % size  # the open tail only
    assert m.count("block_load") == cap
    rows = m.rows("block_load")
    assert [r.seq for r in rows] == list(range(31 * 48 + 5 - cap + 1, 31 * 48 + 6))
    assert rows[0].values == [rows[0].seq - 1, 230.0, 1000 + rows[0].seq - 1]
    pages_left = shard._db.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
    assert pages_left == 30  # 1..48 went; 49..96, which the FIFO passed in part, stays until it is all gone
    size_on_disk = shard._db.execute("SELECT SUM(LENGTH(data)) FROM pages").fetchone()[0]
    assert size_on_disk / pages_left < 100
    shard.close()


def test_a_damaged_or_moved_page_or_head_is_refused(tmp_path):
    import zlib

    path = tmp_path / "s.db"
    shard = ShardStore.open(path)
    for meter, n in ((1, 40), (2, 40), (3, 20)):
        with shard.memory(meter).transaction() as tx:
            for i in range(n):
                tx.append("block_load", AT + timedelta(minutes=30 * i), [i, 1.5], 64)  # pages of 4
    assert shard.verify() == []
    shard.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE pages SET data = ? WHERE meter = 1 AND first = 5", (zlib.compress(b"\x01\x00\x04\x02"),))
    db.execute("UPDATE pages SET meter = 3 WHERE meter = 2 AND first = 21")  # moved to another meter
    db.execute("UPDATE pages SET first = 101, last = 104 WHERE meter = 2 AND first = 13")  # moved in the buffer
    db.execute("UPDATE heads SET floor = 2 WHERE meter = 2")
    db.commit()
    db.close()
    shard = ShardStore.open(path)
    with pytest.raises(StateDamaged, match="page 5..8 of 'block_load' fails its checksum"):
        shard.memory(1).rows("block_load")
    assert shard.memory(1).rows("block_load", from_seq=30)[0].seq == 30  # the pages around it still read
    with pytest.raises(StateDamaged, match="page 21..24 of 'block_load' fails its checksum"):
        shard.memory(3).rows("block_load")
    for call in (lambda: shard.memory(2).rows("block_load"), lambda: shard.memory(2).count("block_load")):
        with pytest.raises(StateDamaged, match="head of 'block_load' fails its checksum"):
            call()
    with pytest.raises(StateDamaged):
        with shard.memory(2).transaction() as tx:
            tx.append("block_load", AT, [0, 0.0], 64)
    assert len(shard.verify()) == 4
    shard.close()


def test_a_shard_of_schema_2_opens_and_its_rows_page_as_it_goes(tmp_path):
    """One row per entry (schema 2) reads as it did, then packs into pages with its next
    appends, the FIFO dropping the oldest across the old rows and the new pages."""
    from bijli.firmware.shard import _row_crc

    path = tmp_path / "v2.db"
    plain = ShardStore.open(path, packing=False)
    with plain.memory(5).transaction() as tx:
        for i in range(150):
            tx.append("block_load", AT + timedelta(minutes=30 * i), [i, 229.99], 100)
    own = Storage.open(tmp_path / "own")
    with own.transaction() as tx:
        for i in range(150):
            tx.append("block_load", AT + timedelta(minutes=30 * i), [i, 229.99], 100)
    plain.close()
    db = sqlite3.connect(path)  # back to what schema 2 left on disk: no pages, no heads
    db.executescript("DROP TABLE pages; DROP TABLE heads; UPDATE meta SET value = '2' WHERE key = 'shard_schema';")
    db.execute("INSERT INTO rows VALUES (6, 'daily', 1, '2024-06-15T00:00:00', '[1]', ?)",
               (_row_crc(6, "daily", 1, "2024-06-15T00:00:00", "[1]"),))
    db.commit()
    db.close()
    shard = ShardStore.open(path)
    assert shard._db.execute("SELECT value FROM meta WHERE key = 'shard_schema'").fetchone() == ("3",)
    m = shard.memory(5)
    assert m.rows("block_load") == own.rows("block_load") and m.count("block_load") == 100
    assert shard.memory(6).rows("daily")[0].values == [1]
    for i in range(150, 230):
        for s in (m, own):
            with s.transaction() as tx:
                tx.append("block_load", AT + timedelta(minutes=30 * i), [i, 229.99], 100)
    assert m.rows("block_load") == own.rows("block_load")
    assert m.rows("block_load", from_seq=140, to_seq=170) == own.rows("block_load", from_seq=140, to_seq=170)
    assert shard._db.execute("SELECT COUNT(*) FROM pages").fetchone()[0] > 10 and shard.verify() == []
    shard.close()
    own.close()
    assert ShardStore.open(path).memory(5).count("block_load") == 100
