"""`bijli testbench`: the IEC 62053-21 class 1 points, their limits, and the verdicts."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bijli.firmware.metrology import PhaseCalibration
from bijli.tools.bench import metrology as bench_metrology
from bijli.tools.commands import testbench
from bijli.tools.commands.testbench import BenchOptions, load_points, run_all

ROOT = Path(__file__).resolve().parents[2]


def test_load_points_and_limits_follow_the_class_1_table():
    rows = [(p.name, p.pf_label, p.limit_pct) for p in load_points()]
    assert rows == [
        ("0.05 Ib", "1", 1.5), ("0.1 Ib", "1", 1.0), ("Ib", "1", 1.0), ("Imax", "1", 1.0),
        ("0.1 Ib", "0.5L", 1.5), ("0.2 Ib", "0.5L", 1.0), ("Ib", "0.5L", 1.0), ("Imax", "0.5L", 1.0),
        ("0.1 Ib", "0.8C", 1.5), ("0.2 Ib", "0.8C", 1.0), ("Ib", "0.8C", 1.0), ("Imax", "0.8C", 1.0),
    ]
    assert [p.current(10, 60) for p in load_points()][:4] == [0.5, 1.0, 10.0, 60.0]


def test_test_periods():
    opts = BenchOptions()
    # no-load: 600e6 / (k m Un Imax) minutes = 27.2 min for 1600 imp/kWh, 230 V, 60 A
    assert testbench.creep_period(opts) == pytest.approx(600e6 / (1600 * 230 * 60) * 60)
    # starting: 1.5 x the 245 s one pulse takes at 0.04 A and 230 V
    assert testbench.starting_period(opts) == pytest.approx(1.5 * 3600e3 / (1600 * 230 * 0.04))


@pytest.mark.parametrize("opts", [
    BenchOptions(seconds=1.0),
    BenchOptions(phases=3, seconds=1.0),
    BenchOptions(seconds=1.0, noise_v=0.5, noise_i=0.005, adc_bits=16, adc_range=(500.0, 150.0),
                 harmonics=testbench._harmonics("3:0.05:0.3,5:0.04:0.2:30")),
], ids=["1ph", "3ph", "distorted"])
def test_the_meter_passes_every_point(opts):
    results = run_all(opts)
    assert len(results) == 14
    assert [r.test for r in results] == ["accuracy"] * 12 + ["starting", "no-load"]
    failed = [r for r in results if not r.passed]
    assert not failed, failed


def test_a_miscalibrated_meter_fails_and_shows_its_error():
    opts = BenchOptions(seconds=0.5, calibration=PhaseCalibration(i_gain=1.02))
    results = run_all(opts, ("accuracy",))
    assert all(not r.passed for r in results)
    assert all(r.value == pytest.approx(2.0, abs=0.01) for r in results)


def test_a_phase_error_fails_the_low_power_factor_points_only():
    # 1 degree of uncorrected phase error: +-3 % at PF 0.5, +-1.3 % at 0.8, ~0 at PF 1
    results = run_all(BenchOptions(seconds=0.5, calibration=PhaseCalibration(phase_deg=1.0)), ("accuracy",))
    verdicts = {(r.load.split(" (")[0], r.pf): r.passed for r in results}
    assert verdicts[("Ib", "1")] and verdicts[("Imax", "1")]
    assert not verdicts[("Ib", "0.5L")] and not verdicts[("Ib", "0.8C")]


def test_starting_fails_when_the_adc_cannot_resolve_ist():
    # An 8-bit ADC over +-100 A has a 0.78 A step: 0.04 A never leaves code zero.
    coarse = run_all(BenchOptions(seconds=0.5, adc_bits=8), ("starting", "no-load"))
    assert [(r.test, r.passed, r.value) for r in coarse] == [("starting", False, 0), ("no-load", True, 0)]
    fine = run_all(BenchOptions(seconds=0.5, adc_bits=16), ("starting",))
    assert fine[0].passed and fine[0].value >= 1


def test_cli_in_process_table_and_json(capsys):
    parser = argparse.ArgumentParser()
    testbench.register(parser.add_subparsers())
    args = parser.parse_args(["testbench", "--seconds", "0.5", "--only", "accuracy"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "0.05 Ib (0.5 A)" in out and "12 passed, 0 failed" in out
    args = parser.parse_args(["testbench", "--seconds", "0.5", "--only", "no-load", "--json"])
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["results"][0]["test"] == "no-load"
    with pytest.raises(SystemExit):
        parser.parse_args(["testbench", "--harmonics", "5:x"])


def test_cli_subprocess_exit_status():
    ok = subprocess.run([sys.executable, "-m", "bijli.tools.commands.testbench", "--json", "--seconds", "0.5"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["passed"] and len(doc["results"]) == 14
    bad = subprocess.run([sys.executable, "-m", "bijli.tools.commands.testbench", "--seconds", "0.5", "--i-gain", "1.05",
                          "--only", "accuracy"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "FAIL" in bad.stdout and "0 passed, 12 failed" in bad.stdout
    err = subprocess.run([sys.executable, "-m", "bijli.tools.commands.testbench", "--phases", "3", "--ib", "100", "--imax", "50"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert err.returncode == 2 and "metrology.max_current" in err.stderr


@pytest.mark.skipif(not (ROOT / "tools" / "cli.py").exists(), reason="tools/cli.py not landed yet")
def test_bijli_cli_runs_testbench():
    res = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "testbench", "--seconds", "0.5", "--only", "starting"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "starting" in res.stdout


def test_bench_metrology_rows():
    rows = bench_metrology.bench()
    assert [(r.name, r.unit, r.target) for r in rows] == [
        ("metrology real-time factor, single phase", "x", 200),
        ("metrology real-time factor, three phase", "x", 70),
    ]
    assert all(r.value > 1 for r in rows)
