"""`bijli token`: every token vector through the CLI in both directions, --json keys,
--count, --config, key-change, and errors naming the flag."""

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
