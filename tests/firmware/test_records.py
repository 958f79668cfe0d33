"""firmware.records: state kept by field type instead of hand-written to_dict/from_dict,
and a state database written by the code before it still loads (the records below are
the exact text the previous code stored for a meter on 2 July 2024, 09:37)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sqlite3
from decimal import Decimal as D

import pytest

from bijli.firmware.errors import StorageError
from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.profiles import BlockAverager
from bijli.firmware.records import NOT_STORED, from_record, to_record
from bijli.firmware.storage import DB_NAME, Storage
from bijli.firmware.tariff import Line

WRITTEN_BEFORE = {
    "energy": '{"active_import_wh":391571.4652315429,"active_export_wh":0.0,"reactive_q1_varh":293682.1119400411,'
              '"reactive_q2_varh":0.0,"reactive_q3_varh":0.0,"reactive_q4_varh":0.0,'
              '"apparent_import_vah":489462.67383210576,"apparent_export_vah":0.0}',
    "tariff": '{"period_start":"2024-07-01T00:00:00","kwh":"30.92766008756164134","lines":[{"kind":"energy",'
              '"label":"0-100 kWh","rate":"4.50","duty_percent":"6","quantity":"30.92766008756164134"},'
              '{"kind":"fixed","label":"fixed charge","rate":"1.50","duty_percent":"6","quantity":"1"}],'
              '"fixed_from":"2024-07-02","charged":"149.11"}',
    "account": '{"balance":"2572.12","balance_time":"2024-07-02T09:37:00","emergency_invoked":false,'
               '"last_recharge_amount":"5000.24","last_recharge_time":"2024-06-14T16:00:00",'
               '"total_recharged":"5000.24","total_charged":"2428.12","total_cleared":"0","low_credit_1":false,'
               '"low_credit_2":false,"out_of_credit":false,"max_debt_exceeded":false}',
    "progress": '{"charged_wh":391571.4652315429,"charged_until":{"$t":"2024-07-02T09:37:00"},'
                '"block_start":{"active_import":391464,"active_export":0,"reactive_lag":293602,"reactive_lead":0,'
                '"apparent_import":489329,"apparent_export":0},"averager":{"seconds":420.0,'
                '"volt_seconds":96599.96734727788,"amp_seconds":2100.0157845089466},"md_w":920.0,'
                '"md_time":{"$t":"2024-07-01T00:00:00"},"last_now":{"$t":"2024-07-02T09:37:00"},"tamper":false,'
                '"cut_for_credit":false}',
}
AT = dt.datetime(2024, 7, 2, 9, 37)


# the database as the previous storage code laid it out (schema 1: no record checksums);
# the current code migrates and seals it on its first start
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rows (profile TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, value TEXT NOT NULL,
                   PRIMARY KEY (profile, seq));
CREATE INDEX rows_by_time ON rows (profile, time);
INSERT INTO meta (key, value) VALUES ('schema', '1');
"""


def _old_database(state, records=None) -> None:
    state.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state / DB_NAME)
    db.execute("PRAGMA journal_mode=WAL")
    with db:
        db.executescript(SCHEMA_1)
        db.executemany("INSERT INTO kv (key, value) VALUES (?, ?)", (records or WRITTEN_BEFORE).items())
    db.close()


def test_a_state_database_written_by_the_previous_code_loads(tmp_path):
    _old_database(tmp_path)
    meter = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), AT)
    a = meter.account
    assert (a.balance, a.total_recharged, a.total_charged, a.total_cleared) == (
        D("2572.12"), D("5000.24"), D("2428.12"), D("0"))
    assert a.balance_time == AT and a.last_recharge_time == dt.datetime(2024, 6, 14, 16, 0)
    assert a.last_recharge_amount == D("5000.24") and not (a.low_credit_1 or a.out_of_credit)
    t = meter.tariff_state
    assert t.period_start == dt.datetime(2024, 7, 1) and t.fixed_from == dt.date(2024, 7, 2)
    assert t.kwh == D("30.92766008756164134") and t.charged == D("149.11")
    assert t.lines[1] == Line("fixed", "fixed charge", D("1.50"), D("6"), D("1"))
    p = meter.progress
    assert p.md_w == 920.0 and p.md_time == dt.datetime(2024, 7, 1) and p.block_start["apparent_import"] == 489329
    assert p.averager == BlockAverager(420.0, 96599.96734727788, 2100.0157845089466)
    assert meter.energy.apparent_import_vah == 489462.67383210576
    status = meter.status()
    assert status["credit"] == "2572.12" and status["energy_import_kwh"] == 391.571


def test_state_written_by_the_new_code_loads_to_the_same_meter(tmp_path):
    _old_database(tmp_path)
    first = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), AT)
    first.save()
    again = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), AT)
    assert again.account == first.account and again.tariff_state == first.tariff_state
    assert again.progress.averager == first.progress.averager and again.progress.md_time == first.progress.md_time
    assert json.loads(json.dumps(again.account.to_dict())) == again.account.to_dict()


def test_a_corrupt_record_in_the_database_is_a_storage_error_naming_the_file(tmp_path):
    _old_database(tmp_path)
    db = sqlite3.connect(tmp_path / DB_NAME)
    with db:
        db.execute("UPDATE kv SET value = ? WHERE key = 'progress'",
                   (WRITTEN_BEFORE["progress"].replace('"tamper":false', '"tamper":"no"'),))
    db.close()
    with pytest.raises(StorageError, match=f"{DB_NAME}.*_Progress"):
        Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), AT)


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Sample:
    amount: D
    when: dt.datetime | None
    colour: Colour
    parts: tuple[BlockAverager, ...]
    flag: bool
    key: bytes = b""
    config: str = dataclasses.field(default="", metadata=NOT_STORED)


def test_records_convert_by_field_type_and_leave_out_what_is_not_stored():
    s = Sample(D("1.10"), dt.datetime(2024, 1, 2, 3, 4), Colour.RED, (BlockAverager(1.0, 2.0, 3.0),), True,
               b"\x0a\xff", "cfg")
    record = to_record(s)
    assert record == {"amount": "1.10", "when": "2024-01-02T03:04:00", "colour": "red", "flag": True, "key": "0aff",
                      "parts": [{"seconds": 1.0, "volt_seconds": 2.0, "amp_seconds": 3.0}]}
    assert from_record(Sample, json.loads(json.dumps(record)), config="cfg") == s


@pytest.mark.parametrize("change", [
    {"amount": 1.1},  # money is never a float
    {"amount": "lots"},
    {"flag": "yes"},
    {"colour": "blue"},
    {"when": "yesterday"},
    {"parts": [{"seconds": 1.0}]},
    {"key": "not hex"},
])
def test_a_record_that_does_not_fit_is_a_storage_error(change):
    good = {"amount": "1", "when": None, "colour": "red", "parts": [], "flag": False, "key": ""}
    assert from_record(Sample, good) == Sample(D("1"), None, Colour.RED, (), False)
    with pytest.raises(StorageError, match="Sample"):
        from_record(Sample, {**good, **change})
    with pytest.raises(StorageError):
        from_record(Sample, {k: v for k, v in good.items() if k != "flag"})


# the decoder and relay records exactly as their hand-written to_dict wrote them (before the
# converter), one of them from before the currency_crc setting existed
STS_BEFORE = ('{"version": 1, "key": {"key": "74a6cc454576084a978cbc8eb24fd889", "ea": "11", "kt": 2, "krn": 1, '
              '"ti": "01", "sgc": "123457", "base": 2014, "ken": 255}, "tids": [7000, 6900], "tid_window": 100, '
              '"pending": [{"subclass": 3, "data": 12345, "arrived": "2024-07-02T09:30:00"}], '
              '"key_change_window_minutes": 60, "bad_count": 2, "locked_until": null, "lockout_after": 5, '
              '"lockout_minutes": 30, "manufacturer_code": 0}')
RELAY_BEFORE = '{"control_mode": 6, "control_state": 2, "last_transition": "e"}'


def test_decoder_and_relay_records_written_before_load(tmp_path):
    _old_database(tmp_path, {"sts": STS_BEFORE, "relay": RELAY_BEFORE})
    meter = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), AT)
    sts = meter.sts
    # the one lockout of that time became each local source's, never the token gateway's
    assert sts.tids == (6900, 7000) and sts.key.sgc == "123457"
    assert [(x.source.value, x.bad_count) for x in sts.lockouts] == [("console", 2), ("keypad", 2), ("optical", 2)]
    assert sts.pending[0].arrived == dt.datetime(2024, 7, 2, 9, 30) and sts.pending[0].data == 12345
    assert sts.currency_crc.value == "crc16"  # the default for records older than the setting
    assert json.loads(json.dumps(sts.to_dict()))["tids"] == [6900, 7000]
    assert int(meter.relay.control_state) == 2 and meter.relay.last_transition.value == "e"


# the limiter's record as its hand-written to_dict wrote it (parts as lists)
LIMITER_BEFORE = ('{"threshold_normal": 5000, "threshold_emergency": 1500.5, "min_over_threshold_duration": 60, '
                  '"min_under_threshold_duration": 300, "emergency_profile": {"id": 3, "activation_time": '
                  '"2024-06-17T10:00:00", "duration": 3600}, "emergency_profile_group_id_list": [3, 4], '
                  '"emergency_profile_active": true, "monitored_value": [3, "1.0.1.7.0.255", 2], '
                  '"action_over_threshold": ["0.0.10.0.106.255", 1], "action_under_threshold": ["0.0.10.0.106.255", 2], '
                  '"over": true, "since": "2024-06-17T10:05:00"}')


def test_a_limiter_record_written_before_loads_and_keeps_its_numbers_whole_or_not():
    from bijli.firmware.relay import LoadLimiter
    old = LoadLimiter.from_dict(json.loads(LIMITER_BEFORE))
    assert old.threshold_normal == 5000 and type(old.threshold_normal) is int  # a whole number stays whole
    assert old.threshold_emergency == 1500.5
    assert old.monitored_value.logical_name == "1.0.1.7.0.255" and old.action_under_threshold.script_selector == 2
    assert old.emergency_profile.activation_time == dt.datetime(2024, 6, 17, 10, 0) and old.over
    again = LoadLimiter.from_dict(json.loads(json.dumps(old.to_dict())))
    assert again == old
