"""tools/vend_journal: the last-TID journal on a real file: never reuses, never goes backwards, records
nothing when the vend inside the reservation fails, leaves no temporary file, and refuses a damaged file."""

import json

import pytest

from bijli.tools.vend_journal import TID_LIMIT, VendJournalError, VendJournal, next_free


def test_next_free():
    assert next_free(100, None) == 100 and next_free(100, 99) == 100
    assert next_free(100, 100) == 101 and next_free(50, 100) == 101


def test_reserve_records_only_what_was_vended(tmp_path):
    j = VendJournal(tmp_path / "j.json")
    with j.reserve("m@2014", 1000, 3) as r:
        assert (r.first, r.bumped, r.last_before) == (1000, False, None)
    assert j.last_tid("m@2014") == 1002
    with pytest.raises(RuntimeError):
        with j.reserve("m@2014", 1000, 1) as r:
            assert r.first == 1003 and r.bumped
            raise RuntimeError("the vend failed")
    assert j.last_tid("m@2014") == 1002  # nothing was handed out
    with j.reserve("other@2014", 10, 1) as r:
        assert r.first == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.json", "j.json.lock"]  # no temp file left
    assert json.loads((tmp_path / "j.json").read_text())["meters"] == {"m@2014": {"last_tid": 1002},
                                                                      "other@2014": {"last_tid": 10}}


def test_end_of_the_tid_range_and_bad_files(tmp_path):
    j = VendJournal(tmp_path / "j.json")
    with pytest.raises(VendJournalError, match="no TID left"):
        with j.reserve("m@1993", TID_LIMIT - 2, 3):
            pass
    for text in ("", "[]", '{"version": 2, "meters": {}}', '{"version": 1, "meters": {"m": {"last_tid": -1}}}',
                 '{"version": 1, "meters": {"m": {"last_tid": true}}}'):
        (tmp_path / "j.json").write_text(text)
        with pytest.raises(VendJournalError, match="damaged"):
            with j.reserve("m", 1, 1):
                pass
        assert (tmp_path / "j.json").read_text() == text


def test_a_batch_reservation_reads_and_writes_the_journal_once_for_every_meter(tmp_path):
    import time

    j = VendJournal(tmp_path / "j.json")
    with j.reserve("m1@2014", 500, 1):
        pass
    with j.reserve_many([("m1@2014", 400, 1), ("m2@2014", 400, 2), ("m1@2014", 400, 1)]) as got:
        assert [(r.first, r.bumped, r.last_before) for r in got] == [(501, True, 500), (400, False, None),
                                                                     (502, True, 501)]
        assert j.last_tid("m2@2014") is None  # nothing recorded until the block ends
    assert (j.last_tid("m1@2014"), j.last_tid("m2@2014")) == (502, 401)
    with pytest.raises(RuntimeError):
        with j.reserve_many([("m2@2014", 400, 1), ("m3@2014", 7, 1)]):
            raise RuntimeError("one vend of the batch failed")
    assert j.last_tid("m2@2014") == 401 and j.last_tid("m3@2014") is None  # none of the batch is good
    with pytest.raises(VendJournalError, match="no TID left"):
        with j.reserve_many([("m4@2014", 5, 1), ("m5@2014", TID_LIMIT - 1, 2)]):
            pass
    assert j.last_tid("m4@2014") is None
    with pytest.raises(VendJournalError, match="at least one"):
        with j.reserve_many([("m4@2014", 5, 0)]):
            pass
    # a fleet's worth at once costs about as much as a handful of single reservations did
    many = [(f"meter{i}@2014", 1000, 1) for i in range(20_000)]
    t0 = time.perf_counter()
    with j.reserve_many(many) as got:
        assert len(got) == 20_000 and all(r.first == 1000 for r in got)
    assert time.perf_counter() - t0 < 10
    assert j.last_tid("meter19999@2014") == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.json", "j.json.lock"]
