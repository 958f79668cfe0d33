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
        m.advance_to(AT + timedelta(hours=7, minutes=3))
        m.close_billing_now()
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
    from bijli.firmware.shard import seal_name

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
    seal.write_bytes(saved.replace(b'"commit":2', b'"commit":1'))  # tampered with
    with pytest.raises(StateDamaged, match="damaged"):
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
