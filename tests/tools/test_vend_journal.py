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
