"""`bijli token`: every token vector through the CLI in both directions, --json keys,
--count, --config, key-change, and errors naming the flag; a sample of the public 531-1 vectors, every
CTSA11 test token, money never rounded silently, and the per-meter TID journal across real processes."""

import argparse
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bijli.firmware.sts.config import StsConfig
from bijli.firmware.sts.decoder import decode
from bijli.firmware.sts.results import TokenResultCode
from bijli.tools.commands import token as token_cmd

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "tests" / "firmware" / "sts" / "data" / "vectors.json").read_text())
CREDIT = [v for v in VECTORS["tokens"] if v["class"] == 0]
TEST = [v for v in VECTORS["tokens"] if v["class"] == 1]
JSON_KEYS = {"class", "subclass", "rnd", "tid", "time", "amount_field", "amount", "unit", "crc_ok"}


@pytest.fixture(autouse=True)
def own_journal(tmp_path, monkeypatch):
    """Each test vends against its own TID journal (subprocesses inherit the variable)."""
    path = tmp_path / "journal" / "vend-journal.json"
    monkeypatch.setenv("BIJLI_VEND_JOURNAL", str(path))
    return path


def run(*argv, capsys):
    parser = argparse.ArgumentParser(prog="bijli")
    token_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["token", *argv])
    status = args.func(args)
    out, err = capsys.readouterr()
    return status, out, err


def key_flags(v):
    return ["--vk", v["vk"], "--pan", v["pan"], "--sgc", v["sgc"], "--ti", v["ti"], "--krn", str(v["krn"]),
            "--kt", str(v["kt"]), "--ea", v["ea"], "--dkga", v["dkga"], "--base", str(v["base"])]


@pytest.mark.parametrize("v", CREDIT, ids=[v["what"] for v in CREDIT])
def test_vend_vector(v, capsys):
    status, out, _ = run("vend", *key_flags(v), "credit", "--kwh", "0.1", "--time", v["time"],
                         "--rnd", str(v["rnd"]), "--json", capsys=capsys)
    assert status == 0
    d = json.loads(out)
    assert d["token"] == v["token"] and d["tid"] == v["tid"] and d["amount_field"] == v["amount_field"]


@pytest.mark.parametrize("v", CREDIT, ids=[v["what"] for v in CREDIT])
def test_decode_vector(v, capsys):
    status, out, _ = run("decode", *key_flags(v), "--json", v["token"], capsys=capsys)
    d = json.loads(out)
    assert status == 0 and JSON_KEYS <= set(d)
    assert (d["class"], d["subclass"], d["rnd"], d["tid"], d["amount_field"], d["crc_ok"]) == (
        v["class"], v["subclass"], v["rnd"], v["tid"], v["amount_field"], True)
    assert d["time"] == v["time"] and d["amount"] == 0.1 and d["unit"] == "kWh"
    status, out, _ = run("decode", *key_flags(v), v["token"], capsys=capsys)
    assert f"tid {v['tid']}" in out and "0.1 kWh" in out and "crc ok" in out


@pytest.mark.parametrize("v", TEST, ids=[v["what"] for v in TEST])
def test_class1_vector_both_directions(v, capsys):
    status, out, _ = run("vend", "test", "--control", v["control"], "--mfr", str(int(v["mfr"], 16)), "--json",
                         capsys=capsys)
    assert status == 0 and json.loads(out)["token"] == v["token"]
    status, out, _ = run("decode", "--json", v["token"], capsys=capsys)
    d = json.loads(out)
    assert (d["class"], d["subclass"], d["crc_ok"], d["control"]) == (1, v["subclass"], True, v["control"])


def test_wrong_key_reports_crc_error(capsys):
    v = CREDIT[0]
    flags = key_flags(v)
    flags[flags.index("--sgc") + 1] = "999999"
    status, out, _ = run("decode", *flags, "--json", v["token"], "12", capsys=capsys)
    rows = json.loads(out)
    assert status == 1 and rows[0]["crc_ok"] is False and "error" in rows[1]


def test_count_tokens_are_accepted_in_sequence_by_a_meter(capsys, tmp_path):
    toml = tmp_path / "meter.toml"
    toml.write_text('[sts]\nvending_key = "ABABABABABABABAB"\npan = "600727000000000009"\nsgc = "123456"\n'
                    'ea = "07"\ndkga = "02"\ntid_window = 3\n')
    status, out, _ = run("vend", "--config", str(toml), "--count", "5", "--time", "2026-11-01T10:00", "--json",
                         "credit", "--amount", "2.5", "--subclass", "1", capsys=capsys)
    rows = json.loads(out)
    assert status == 0 and len({r["tid"] for r in rows}) == 5
    state = StsConfig.from_table({"vending_key": "ABABABABABABABAB", "pan": "600727000000000009",
                                  "sgc": "123456", "ea": "07", "dkga": "02", "tid_window": 3}).initial_state()
    for r in rows:
        result, state = decode(state, r["token"], datetime(2026, 11, 1, 12))
        assert result.code is TokenResultCode.ACCEPT and result.effect.unit == "m3"


def test_key_change_then_credit(capsys):
    status, out, _ = run("vend", "--json", "key-change", "--to-krn", "2", "--to-ti", "07", capsys=capsys)
    sections = json.loads(out)
    assert status == 0 and len(sections) == 4  # demo meter: MISTY1, 128-bit
    status, out, _ = run("vend", "--krn", "2", "--ti", "07", "--json", "credit", "--kwh", "5",
                         "--time", "2026-11-01T10:00", capsys=capsys)
    credit = json.loads(out)["token"]
    state = StsConfig.from_table({}).initial_state()
    for s in reversed(sections):
        result, state = decode(state, s["token"], datetime(2026, 11, 1, 12))
        assert result.code is TokenResultCode.ACCEPT
    assert state.key.krn == 2 and state.key.ti == "07"
    result, state = decode(state, credit, datetime(2026, 11, 1, 12))
    assert result.code is TokenResultCode.ACCEPT and str(result.effect.value) == "5.0"


@pytest.mark.parametrize("argv,flag", [
    (["vend", "--pan", "600727000000000008", "clear-tamper"], "--pan"),
    (["vend", "--dkga", "02", "clear-tamper"], "--dkga"),
    (["decode", "--decoder-key", "1234", "12345678901234567890"], "--decoder-key"),
])
def test_errors_name_the_flag(argv, flag, capsys):
    status, _, err = run(*argv, capsys=capsys)
    assert status == 2 and flag in err


def test_vend_errors_exit_2(capsys):
    status, _, err = run("vend", "credit", "--kwh", "99999999", capsys=capsys)
    assert status == 2 and "more than one token" in err
    status, _, err = run("vend", "credit", "--kwh", "1", "--time", "1990-01-01T00:00", capsys=capsys)
    assert status == 2


def _subprocess(module, *argv):
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_subprocess_round_trip():
    v = CREDIT[1]
    p = _subprocess("bijli.tools.commands.token", "vend", *key_flags(v), "credit", "--kwh", "0.1", "--time", v["time"],
                    "--rnd", str(v["rnd"]))
    assert p.returncode == 0 and p.stdout.split()[0] == v["token"]
    p = _subprocess("bijli.tools.commands.token", "decode", *key_flags(v), "--json", v["token"])
    assert p.returncode == 0 and json.loads(p.stdout)["tid"] == v["tid"]


@pytest.mark.skipif(not (REPO / "tools" / "cli.py").exists(), reason="tools/cli.py not landed yet")
def test_through_bijli_cli():
    v = CREDIT[0]
    p = _subprocess("bijli.tools.cli", "token", "decode", *key_flags(v), "--json", v["token"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["tid"] == v["tid"]


def test_the_currency_crc_setting_reaches_vend_and_decode(capsys, tmp_path):
    """[sts] currency_crc in the meter file: vend and decode use it; a meter with the other rule refuses."""
    toml = tmp_path / "meter.toml"
    toml.write_text('[sts]\ncurrency_crc = "append-01"\n')
    status, out, _ = run("vend", "--config", str(toml), "--json", "credit", "--amount", "10", "--time",
                         "2026-11-01T10:00", capsys=capsys)
    token = json.loads(out)["token"]
    status, out, _ = run("decode", "--config", str(toml), "--json", token, capsys=capsys)
    assert status == 0 and json.loads(out)["crc_ok"] is True
    status, out, _ = run("decode", "--json", token, capsys=capsys)  # the demo meter: the plain rule
    assert status == 1 and json.loads(out)["crc_ok"] is False
    appended = StsConfig.from_table({"currency_crc": "append-01"}).initial_state()
    assert decode(appended, token, datetime(2026, 11, 1, 12))[0].code is TokenResultCode.ACCEPT
    plain = StsConfig.from_table({}).initial_state()
    assert decode(plain, token, datetime(2026, 11, 1, 12))[0].code is TokenResultCode.CRC_ERROR
    toml.write_text('[sts]\ncurrency_crc = "crc-c"\n')
    status, _, err = run("vend", "--config", str(toml), "credit", "--amount", "10", capsys=capsys)
    assert status == 2 and "currency_crc" in err and "append-01" in err


# --- the public 531-1 vectors: a sample through the CLI (the library test runs all of them) -------------

PUBLIC = json.loads((REPO / "tests" / "firmware" / "sts" / "data" / "sts531-vectors.json").read_text())


def _public(vid, token=None, kind="transfers"):
    return next(t for t in PUBLIC[kind] if t["id"] == vid and (token is None or t["token"] == token))


def public_key_flags(k):
    return ["--vk", k["vk"], "--pan", k["pan"], "--sgc", k["sgc"], "--ti", k["ti"], "--krn", str(k["krn"]),
            "--kt", str(k["kt"]), "--ea", k["ea"], "--dkga", k["dkga"], "--base", str(k["base"])]


SAMPLE = [  # (vector id, token, kind flags)
    ("531-1 0.02 CTSA01 step1Test", "23716100501183194197", ["credit", "--kwh", "0.1"]),
    ("531-1 0.04 CTSA01 step2Test", "47186281207955155808", ["credit", "--amount", "0.1", "--subclass", "1"]),
    ("531-1 0.02 CTSA10 step2CTSA10Test", "02194538019157867319", ["credit", "--kwh", "1638.3"]),
    ("531-1 0.04 CTSA12 step1CTSA12Test", "58601433826945463485", ["power-limit", "--watts", "256"]),
    ("531-1 0.02 CTSA14 step3CTSA14Test", "17696673116286267663", ["clear-credit", "--register", "4"]),
    ("531-1 0.04 CTSA06 step1CTSA05TestGenerationClearTamperConditionToken", "02455019196514047304", ["clear-tamper"]),
    ("531-1 0.02 CTSA07 step1CTSA05TestGenerationClearTamperConditionToken", "30220533115430798647",
     ["phase-unbalance", "--watts", "10"]),
    ("531-1 0.02 CTSA25 step9CTSA20Test", "09239624803025986815", ["credit", "--kwh", "0.1"]),
]


@pytest.mark.parametrize("vid,token,kind", SAMPLE, ids=[s[0] for s in SAMPLE])
def test_public_vector_sample_both_ways(vid, token, kind, capsys):
    t = _public(vid, token)
    status, out, err = run("vend", *public_key_flags(t["key"]), "--no-journal", *kind, "--time", t["time"],
                           "--rnd", str(t["rnd"]), "--json", capsys=capsys)
    assert status == 0, err
    assert json.loads(out)["token"] == t["token"]
    status, out, _ = run("decode", *public_key_flags(t["key"]), "--json", t["token"], capsys=capsys)
    d = json.loads(out)
    assert status == 0 and (d["class"], d["subclass"], d["tid"], d["amount_field"], d["crc_ok"]) == (
        t["class"], t["subclass"], d["tid"], t["amount_field"], True)
    assert d["time"] == t["time"]


@pytest.mark.parametrize("vid,flags", [
    ("531-1 0.04 CTSA19 step4", ["--to-sgc", "123461"]),  # a new SGC travels in sections 3 and 4 as binary
    ("531-1 0.04 CTSA19 step3", ["--to-krn", "7", "--to-ken", "170"]),
    ("531-1 0.02 CTSA26 step1", ["--to-krn", "5", "--rollover"]),
], ids=lambda x: x if isinstance(x, str) else "")
def test_public_key_changes_through_the_cli(vid, flags, capsys):
    kc = next(k for k in PUBLIC["key_changes"] if k["id"] == vid)
    status, out, err = run("vend", *public_key_flags(kc["current"]), "--json", "key-change", *flags, capsys=capsys)
    assert status == 0, err
    assert {r["subclass"]: r["token"] for r in json.loads(out)} == {s["subclass"]: s["token"] for s in kc["sections"]}
    if "credit_after" in kc:  # and the public credit for the new key decodes under the new key's flags
        new = kc["new"]
        status, out, _ = run("decode", *public_key_flags(new), "--json", kc["credit_after"], capsys=capsys)
        assert status == 0 and json.loads(out)["crc_ok"] is True


TEST_VECTORS = PUBLIC["tests"]


@pytest.mark.parametrize("t", TEST_VECTORS, ids=[f"{t['id']} {t['token']}" for t in TEST_VECTORS])
def test_every_public_class1_token_vends_and_decodes(t, capsys):
    """CTSA02 and all 32 CTSA11 control values, in subclass 0 (2-digit mfr code) and 1 (4-digit)."""
    status, out, err = run("vend", "test", "--control", t["control"], "--mfr", str(t["mfr"]), "--subclass",
                           str(t["subclass"]), "--json", capsys=capsys)
    assert status == 0, err
    d = json.loads(out)
    assert (d["token"], d["class"], d["subclass"]) == (t["token"], 1, t["subclass"])
    status, out, _ = run("decode", "--json", t["token"], capsys=capsys)
    d = json.loads(out)
    assert (d["subclass"], d["control"], d["mfr"], d["crc_ok"]) == (t["subclass"], t["control"], t["mfr"], True)


def test_class1_subclass_and_field_limits(capsys):
    # a 4-digit manufacturer code needs subclass 1; the default picks it when the values need it
    status, out, _ = run("vend", "test", "--control", "1", "--mfr", "1234", "--json", capsys=capsys)
    assert status == 0 and json.loads(out)["subclass"] == 1
    status, _, err = run("vend", "test", "--control", "1", "--mfr", "1234", "--subclass", "0", capsys=capsys)
    assert status == 2 and "manufacturer code" in err
    status, _, err = run("vend", "test", "--control", "FFFFFFFFF", "--subclass", "1", capsys=capsys)
    assert status == 2 and "control" in err
    with pytest.raises(SystemExit):
        run("vend", "test", "--control", "xyz", capsys=capsys)


# --- money: never more or less than paid without saying so ---------------------------------------------


def test_money_that_no_token_carries_vends_the_amount_below_and_says_what_is_left(capsys):
    status, out, _ = run("vend", "--time", "2026-11-01T10:00", "credit", "--amount", "500", capsys=capsys)
    assert status == 0
    assert " 499.94 currency " in out and "asked 500" in out and "remainder 0.06 currency not vended" in out
    status, out, _ = run("vend", "--time", "2026-11-01T11:00", "--json", "credit", "--amount", "500", capsys=capsys)
    d = json.loads(out)
    assert (d["amount"], d["requested"], d["remainder"], d["amount_field"]) == (499.94, 500, 0.06, 19745)
    state = StsConfig.from_table({}).initial_state()
    result, _ = decode(state, d["token"], datetime(2026, 11, 1, 12))
    assert result.code is TokenResultCode.ACCEPT and str(result.effect.value) == "499.94"


def test_exact_refuses_and_names_the_nearest_amounts(capsys, own_journal):
    status, out, err = run("vend", "credit", "--amount", "500", "--exact", capsys=capsys)
    assert status == 2 and out == "" and "499.94" in err and "500.04" in err
    assert not own_journal.exists()  # nothing vended, nothing journaled
    status, out, _ = run("vend", "--json", "credit", "--amount", "500.04", "--exact", capsys=capsys)
    assert status == 0 and json.loads(out)["remainder"] == 0 and json.loads(out)["amount"] == 500.04


def test_kwh_are_held_to_the_same_rule(capsys):
    status, out, _ = run("vend", "--json", "credit", "--kwh", "0.15", capsys=capsys)
    d = json.loads(out)
    assert status == 0 and (d["amount"], d["remainder"], d["unit"]) == (0.1, 0.05, "kWh")
    status, out, _ = run("vend", "credit", "--kwh", "2", capsys=capsys)
    assert status == 0 and "remainder" not in out and " 2 kWh," in out


# --- the TID journal -----------------------------------------------------------------------------------


def test_a_second_vend_in_the_same_minute_moves_to_the_next_free_minute_and_says_so(capsys, own_journal):
    first = run("vend", "--time", "2026-11-01T10:00", "--json", "credit", "--amount", "50", capsys=capsys)[1]
    status, out, _ = run("vend", "--time", "2026-11-01T10:00", "credit", "--amount", "50", capsys=capsys)
    assert status == 0 and "2026-11-01 10:00 was already vended for this meter" in out and "(2026-11-01 10:01" in out
    a, b = json.loads(first), out.split()[0]
    assert a["tid_bumped"] is False
    state = StsConfig.from_table({}).initial_state()
    for digits in (a["token"], b):  # the meter takes both: the customer keeps both purchases
        result, state = decode(state, digits, datetime(2026, 11, 1, 12))
        assert result.code is TokenResultCode.ACCEPT
    # never backwards: a clock set back to 09:00 still gets a TID after the last one
    status, out, _ = run("vend", "--time", "2026-11-01T09:00", "--json", "clear-tamper", capsys=capsys)
    d = json.loads(out)
    assert d["tid_bumped"] is True and d["time"] == "2026-11-01T10:02" and d["requested_time"] == "2026-11-01T09:00"
    assert json.loads(own_journal.read_text())["meters"]["600727000000000009@2014"]["last_tid"] == d["tid"]
    # a later minute is taken as asked; another meter has its own TIDs
    status, out, _ = run("vend", "--time", "2026-11-01T11:00", "--json", "credit", "--kwh", "1", capsys=capsys)
    assert json.loads(out)["tid_bumped"] is False
    other = ["--vk", "ABABABABABABABAB", "--pan", "600727000000000009", "--ea", "07", "--dkga", "02",
             "--sgc", "123456", "--base", "1993"]
    status, out, _ = run("vend", *other, "--time", "2004-03-01T13:55", "--rnd", "5", "--json", "credit", "--kwh",
                         "0.1", capsys=capsys)
    assert json.loads(out)["token"] == "23716100501183194197"  # base 1993: a journal entry of its own


def test_count_reserves_a_run_of_minutes(capsys):
    rows = json.loads(run("vend", "--time", "2026-11-01T10:00", "--count", "3", "--json", "credit", "--kwh", "1",
                          capsys=capsys)[1])
    again = json.loads(run("vend", "--time", "2026-11-01T10:01", "--count", "2", "--json", "credit", "--kwh", "1",
                           capsys=capsys)[1])
    assert [r["time"][-5:] for r in rows + again] == ["10:00", "10:01", "10:02", "10:03", "10:04"]
    assert [r["tid_bumped"] for r in again] == [True, True]


def test_no_journal_reproduces_and_records_nothing(capsys, own_journal):
    for _ in range(2):
        status, out, _ = run("vend", "--no-journal", "--time", "2026-11-01T10:00", "--rnd", "1", "--json",
                             "clear-tamper", capsys=capsys)
        assert json.loads(out)["tid_bumped"] is False
    assert not own_journal.exists()


def test_a_damaged_journal_stops_the_vend_and_is_left_alone(capsys, own_journal):
    own_journal.parent.mkdir(parents=True)
    own_journal.write_text('{"version": 1, "meters": {"600727000000000009@2014": {"last_tid": "x"}}}')
    status, out, err = run("vend", "credit", "--amount", "5", capsys=capsys)
    assert status == 2 and out == "" and "damaged" in err and str(own_journal) in err
    assert "last_tid\": \"x\"" in own_journal.read_text()


def test_two_processes_vending_for_one_meter_in_one_minute_get_distinct_tids(own_journal):
    """Real processes at once, all asking for the same minute: the lock serialises them, every TID is new,
    and a meter accepts every token."""
    argv = [sys.executable, "-m", "bijli.tools.commands.token", "vend", "--time", "2026-11-01T10:00", "--count",
            "3", "--json", "credit", "--amount", "20"]
    procs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    rows = [r for out, _ in outs for r in json.loads(out)]
    tids = [r["tid"] for r in rows]
    assert len(set(tids)) == 12 and max(tids) - min(tids) == 11  # a run of 12 minutes, none twice
    assert sum(r["tid_bumped"] for r in rows) == 9  # only the first process got the minutes it asked for
    assert json.loads(own_journal.read_text())["meters"]["600727000000000009@2014"]["last_tid"] == max(tids)
    state = StsConfig.from_table({"tid_window": 20}).initial_state()
    for r in rows:
        result, state = decode(state, r["token"], datetime(2026, 11, 1, 12))
        assert result.code is TokenResultCode.ACCEPT


def test_the_module_loads_only_the_standard_library_and_firmware_sts():
    """The token command stays light: the STS engine, firmware errors and the record converter
    (stdlib only), nothing of the DLMS stack or the meter."""
    code = ("import sys, bijli.tools.commands.token; "
            "print(sorted(m for m in sys.modules if m.startswith('bijli.') and not m.startswith('bijli.firmware.sts')"
            " and m not in ('bijli.tools', 'bijli.tools.commands', 'bijli.tools.commands.token', 'bijli.firmware',"
            " 'bijli.firmware.errors', 'bijli.firmware.records')))")  # records: stdlib only
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stdout + p.stderr
    code = "import sys, bijli.tools.commands.token; print([m for m in ('serial', 'construct', 'cryptography') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


# What a `bijli token decode` run may not load (issue 16: scripts decode in loops, and the
# public vector run is 316 calls): the meter, the DLMS stack, the hal, the node wiring, the
# vending side and its journal, sqlite, asyncio, cryptography, pyserial, and the TOML parser
# when no --config is given. Checked after a real decode, so lazy imports the run takes count.
NOT_FOR_A_DECODE = ("bijli.dlms", "bijli.hal", "bijli.tools.node", "bijli.firmware.meter", "bijli.firmware.storage",
                    "bijli.firmware.sts.vend", "bijli.tools.vend_journal", "asyncio", "sqlite3", "cryptography",
                    "serial", "tomllib")


def loaded_by_decode(*argv: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    code = ("import json, sys\n"
            "from bijli.tools.cli import main\n"
            f"status = main({['token', 'decode', *argv]!r})\n"
            f"heavy = {NOT_FOR_A_DECODE!r}\n"
            "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))),"
            " file=sys.stderr)\n"
            "sys.exit(status)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    return r, json.loads(r.stderr.strip().splitlines()[-1])


def test_a_decode_run_loads_no_meter_no_dlms_and_no_vending_side():
    token = "58791654748813829602"  # the demo meter's 100 currency credit, TID 2026-11-01 10:00
    r, loaded = loaded_by_decode(token)
    assert r.returncode == 0 and "amount 100 currency  crc ok" in r.stdout, r.stdout + r.stderr
    assert loaded == []


def test_the_decode_guard_sees_a_config_file_load_the_toml_parser(tmp_path):
    cfg = tmp_path / "meter.toml"
    cfg.write_text("[sts]\n")
    r, loaded = loaded_by_decode("58791654748813829602", "--config", str(cfg))
    assert r.returncode == 0 and "crc ok" in r.stdout, r.stdout + r.stderr
    assert "tomllib" in loaded and [m for m in loaded if not m.startswith("tomllib")] == []


def test_the_currency_crc_flag_is_the_setting_given_on_the_command_line(capsys, tmp_path):
    toml = tmp_path / "meter.toml"
    toml.write_text('[sts]\ncurrency_crc = "append-01"\n')
    common = ("--json", "--rnd", "3", "credit", "--amount", "10", "--time", "2026-11-01T10:00", "--no-journal")
    _, from_file, _ = run("vend", "--config", str(toml), *common, capsys=capsys)
    _, from_flag, _ = run("vend", "--currency-crc", "append-01", *common, capsys=capsys)
    _, plain, _ = run("vend", *common, capsys=capsys)
    assert json.loads(from_flag)["token"] == json.loads(from_file)["token"] != json.loads(plain)["token"]
    _, back, _ = run("decode", "--currency-crc", "append-01", "--json", json.loads(from_flag)["token"], capsys=capsys)
    assert json.loads(back)["crc_ok"] is True
    with pytest.raises(SystemExit) as refused:  # argparse's own error: a rule the meter does not know
        run("vend", "--currency-crc", "crc-c", *common, capsys=capsys)
    assert refused.value.code == 2 and "append-01" in capsys.readouterr().err


def test_a_config_file_that_is_not_toml_is_a_clear_error_with_status_2(tmp_path):
    """The TOML parser loads only with --config; the error path that names a file that is not
    TOML must not need it loaded before (it once raised NameError: name 'tomllib')."""
    bad = tmp_path / "meter.toml"
    bad.write_text("[sts\nx=")
    for command in ("decode", "vend"):
        args = [command, "--config", str(bad)] + (["58791654748813829602"] if command == "decode" else
                                                  ["credit", "--amount", "10", "--no-journal"])
        r = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "token", *args], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith(f"bijli token: cannot read {bad}: Expected ']'"), r.stderr
