"""A fixed-seed slice of the soak campaign (issue 14, "What to build"), inside the suite.

The same code as ``bijli soak`` / ``make soak`` (bijli.tools.soak), every part against
real ``bijli meter`` processes on loopback, with small targets and a fixed seed, so each
run of the suite replays the same hostile inputs, kills and faults. Every failure count
of every part must be zero; a failure names the seed and the input that reproduce it
(``bijli soak --parts PART --seed 1 --scale ...``).
"""

from __future__ import annotations

import pytest

from bijli.tools.soak import campaign
from bijli.tools.soak.report import render

SEED = 1
# (part, scale against the full campaign's target, seconds): small, fast, still every path
SLICE = {
    "dlms-wrapper": (0.002, 30),       # 1,700 hostile inputs, every association, before and after
    "dlms-hdlc-tcp": (0.003, 20),      # 360
    "dlms-serial-pty": (0.003, 20),    # 90
    "sigkill-tokens": (0.003, 30),     # 3 kills: console, keypad, gateway
    "disk-full": (0.01, 30),           # one episode
    "damaged-db": (0.01, 30),          # 1 damaged state (tests/integration/test_state_damage.py has each kind)
    "flood-slow-peers": (0.02, 30),    # 120 peers
    "console-fuzz": (0.01, 30),        # 200 lines
    "malformed-configs": (0.1, 30),    # 100 configs, 2 of them through bijli meter
}
def _params() -> list:
    return [pytest.param(name, id=name) for name in campaign.NAMES]


def test_the_slice_covers_every_part():
    assert set(SLICE) == set(campaign.NAMES)


@pytest.mark.parametrize("part", _params())
def test_soak_slice(part, tmp_path):
    scale, seconds = SLICE[part]
    [row] = campaign.run(seconds / 60.0, seed=SEED, scale=scale, parts=(part,), work=tmp_path)
    assert row.inputs > 0
    assert row.failures == 0, render([row], SEED)


def test_bijli_soak_refuses_an_unknown_part_and_prints_the_table_with_a_status(tmp_path):
    import subprocess
    import sys

    bad = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "soak", "--parts", "no-such-part"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no-such-part" in bad.stderr and "Traceback" not in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "soak", "--parts", "malformed-configs", "--scale",
                         "0.02", "--minutes", "0.5", "--seed", "3", "--json", str(tmp_path / "rows.json")],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "malformed-configs" in ok.stdout and "every failure count is zero" in ok.stdout
    assert '"inputs": 20' in (tmp_path / "rows.json").read_text()
