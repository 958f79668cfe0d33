"""The storage layer under faults, on real sqlite files: typed errors for every sqlite
failure, a record holding {} is damage not credit 0, schema 1 state is migrated and
sealed, and a full disk fails a commit cleanly (issue 14 items 2 and 3, storage part)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime

import pytest

from bijli.firmware.errors import StateDamaged, StorageError
from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.storage import BACKUP_NAME, SEAL_NAME, Storage, read_seal, verify
from tests.conftest import ROOT

START = datetime(2024, 6, 3, 12, 0)


def test_every_commit_counts_and_seals_the_state_blobs(tmp_path):
    s = Storage.open(tmp_path)
    first = s.commit
    s.put("account", {"credit": "10"})
    with s.transaction() as tx:
        tx.put("sts", [1, 2])
        tx.delete("account")
    assert s.commit == first + 2
    commit, records = read_seal(tmp_path)
    assert commit == s.commit and records == {"sts": "[1,2]"}
    s.close()
    assert verify(tmp_path).sound and (tmp_path / BACKUP_NAME).is_file()


@pytest.mark.parametrize("key", ["account", "sts", "progress", "tariff", "relay", "limiter"])
def test_a_state_record_holding_an_empty_table_is_damage_not_a_new_meter(tmp_path, key):
    meter = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), START)
    meter.storage.put(key, {})  # a well-formed, checksummed record that says nothing
    meter.storage.close()
    with pytest.raises(StorageError, match="saved meter state is corrupt"):
        Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), START)


def test_sqlite_errors_behind_the_storage_are_storage_errors(tmp_path):
    s = Storage.open(tmp_path)
    s._db.execute("DROP TABLE rows")  # the file changed under the meter's feet
    s._db.execute("DROP TABLE kv")
    for read in (lambda: s.get("account"), lambda: s.rows("block_load"), lambda: s.count("block_load")):
        with pytest.raises(StorageError):
            read()
    with pytest.raises(StorageError):
        s.put("account", {"credit": "1"})
    s._db.close()


def test_a_damaged_seal_refuses_the_start(tmp_path):
    Storage.open(tmp_path).close()
    raw = (tmp_path / SEAL_NAME).read_text()
    (tmp_path / SEAL_NAME).write_text(raw.replace('"commit":', '"commit":1', 1))
    with pytest.raises(StateDamaged, match="seal is damaged"):
        Storage.open(tmp_path)


def test_a_deleted_seal_on_a_used_state_refuses_the_start(tmp_path):
    s = Storage.open(tmp_path)
    s.put("account", {"credit": "10"})
    s.close()
    (tmp_path / SEAL_NAME).unlink()
    with pytest.raises(StateDamaged, match="seal meter.seal is missing"):
        Storage.open(tmp_path)


def test_schema_1_state_is_migrated_and_sealed(tmp_path):
    db = sqlite3.connect(tmp_path / "meter.db")
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE rows (profile TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, value TEXT NOT NULL,
                           PRIMARY KEY (profile, seq));
        INSERT INTO meta VALUES ('schema', '1');
        INSERT INTO kv VALUES ('account', '{"credit":"41"}');
        INSERT INTO rows VALUES ('block_load', 1, '2024-06-03T12:15:00', '[1]');
    """)
    db.commit()
    db.close()
    s = Storage.open(tmp_path)
    assert s.get("account") == {"credit": "41"} and [r.values for r in s.rows("block_load")] == [[1]]
    s.close()
    assert read_seal(tmp_path)[1] == {"account": '{"credit":"41"}'}
    Storage.open(tmp_path).close()  # and it opens again as a sealed schema 2 state


def test_a_full_disk_fails_the_commit_cleanly_and_the_next_one_succeeds(tmp_path):
    """A real full disk: the file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes the
    kernel refuse the write with EFBIG, which sqlite reports as a full disk."""
    script = textwrap.dedent("""
        import resource, signal, sys
        from bijli.firmware.errors import StorageError
        from bijli.firmware.storage import Storage, read_seal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        state = sys.argv[1]
        s = Storage.open(state)
        s.put("account", {"credit": "10"})
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
        before = (s.commit, s.get("account"), read_seal(s.state))
        try:
            with s.transaction() as tx:
                tx.put("account", {"credit": "20"})
                tx.put("junk", "x" * 1_000_000)
        except StorageError as exc:
            print("refused:", exc)
        else:
            sys.exit("the commit did not fail")
        assert (s.commit, s.get("account"), read_seal(s.state)) == before, "a failed commit changed something"
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is back
        s.put("account", {"credit": "20"})
        assert s.get("account") == {"credit": "20"} and s.commit == before[0] + 1
        s.close()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "refused:" in r.stdout and ("full" in r.stdout or "large" in r.stdout) and r.stdout.endswith("ok\n")
    assert Storage.open(tmp_path).get("account") == {"credit": "20"}


def test_a_commit_group_is_one_commit_and_a_failed_step_inside_is_undone_alone(tmp_path):
    s = Storage.open(tmp_path)
    first = s.commit
    with s.group():
        assert s.in_group
        s.put("account", {"credit": "10"})
        with s.transaction() as tx:
            tx.append("block_load", START, [1], capacity=10)
            tx.put("sts", [1])
        with pytest.raises(RuntimeError):
            with s.transaction() as tx:  # this step alone goes: a savepoint of the group
                tx.put("account", {"credit": "99"})
                tx.append("block_load", START, [2], capacity=10)
                raise RuntimeError("the step fails")
        with pytest.raises(StorageError, match="nested"):
            with s.group():
                pass
    assert not s.in_group and s.commit == first + 1
    commit, records = read_seal(tmp_path)
    assert commit == s.commit and records == {"account": '{"credit":"10"}', "sts": "[1]"}
    assert [r.values for r in s.rows("block_load")] == [[1]]
    s.close()
    again = Storage.open(tmp_path)
    assert again.get("account") == {"credit": "10"} and again.commit == first + 1
    again.close()


def test_a_commit_group_that_raises_leaves_everything_as_before(tmp_path):
    s = Storage.open(tmp_path)
    s.put("account", {"credit": "10"})
    before = (s.commit, read_seal(tmp_path), s.get("account"))
    with pytest.raises(RuntimeError):
        with s.group():
            s.put("account", {"credit": "20"})
            with s.transaction() as tx:
                tx.append("block_load", START, [1], capacity=10)
            raise RuntimeError("power cut")
    assert (s.commit, read_seal(tmp_path), s.get("account")) == before and s.rows("block_load") == []
    s.put("sts", [2])  # the next step commits normally
    assert s.commit == before[0] + 1
    s.close()


def test_a_commit_group_on_a_full_disk_fails_cleanly(tmp_path):
    """A real full disk (RLIMIT_FSIZE, as above) while a group is open: StorageError, and
    the database, the seal and the storage are as they were before the group."""
    script = textwrap.dedent("""
        import resource, signal, sys
        from datetime import datetime
        from bijli.firmware.errors import StorageError
        from bijli.firmware.storage import Storage, read_seal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        s = Storage.open(sys.argv[1])
        s.put("account", {"credit": "10"})
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
        before = (s.commit, s.get("account"), read_seal(s.state))
        try:
            with s.group():
                s.put("account", {"credit": "20"})
                for i in range(200):
                    with s.transaction() as tx:
                        tx.append("block_load", datetime(2024, 6, 1), ["x" * 10_000], 1000)
        except StorageError as exc:
            print("refused:", exc)
        else:
            sys.exit("the group did not fail")
        assert not s.in_group
        assert (s.commit, s.get("account"), read_seal(s.state)) == before, "a failed group changed something"
        assert s.rows("block_load") == []
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        with s.group():
            s.put("account", {"credit": "20"})
        assert s.get("account") == {"credit": "20"} and s.commit == before[0] + 1
        s.close()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "refused:" in r.stdout and r.stdout.endswith("ok\n")
    assert Storage.open(tmp_path).get("account") == {"credit": "20"}
