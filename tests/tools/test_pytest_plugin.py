"""The pytest plugin's fixtures, as a user's CI meets them: a real meter on every port,
its console and clock, vending for it, a fleet, and nothing left behind."""

from __future__ import annotations

import os
import socket
from datetime import datetime

import pytest


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_meter_fixture_serves_dlms_console_and_vending(bijli_meter):
    m = bijli_meter
    assert m.endpoints.serial and os.path.exists(m.endpoints.serial)
    assert m.endpoints.optical and os.path.exists(m.endpoints.optical)
    with m.client(16) as public:
        assert public.read_clock().isoformat() == "2024-06-14T17:00:00"  # the clock stands still
    m.step("1h")
    assert m.now() == datetime(2024, 6, 14, 18, 0)
    token = m.vend("credit", "--amount", "100")
    assert "accepted" in m.console(f"token {token}")
    assert "used" in m.console(f"token {token}")  # credited exactly once
    with m.client(48) as utility:  # ciphered, counter resynchronised from 0.0.43.1.3.255
        balance = utility.get(1, "0.0.94.96.24.255", 2).to_python()
    assert balance >= 9000  # paisa, less whatever an hour at no load cost
    with m.client(32, hdlc=True) as reader:
        assert reader.get(1, "0.0.96.1.0.255", 2).to_python() == m.manifest["serial"]


def test_meters_stop_and_free_their_ports(bijli_meter_factory):
    meter = bijli_meter_factory(hdlc=False, serial=False, optical=False)
    port, pid = meter.endpoints.wrapper_port, meter.proc.pid
    assert not _port_is_free(port)
    assert meter.stop() == 0  # SIGTERM: state saved, exit 0
    assert _port_is_free(port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_restart_on_the_same_state_remembers(bijli_meter_factory, tmp_path):
    first = bijli_meter_factory(state=tmp_path / "m", hdlc=False, serial=False, optical=False)
    token = first.vend("credit", "--amount", "50")
    assert "accepted" in first.console(f"token {token}")
    first.kill()  # a power cut after the token was acknowledged
    second = bijli_meter_factory(state=tmp_path / "m", hdlc=False, serial=False, optical=False, start=None)
    assert "used" in second.console(f"token {token}")


def test_the_fleet_fixture_lists_every_meter(bijli_fleet):
    meters = bijli_fleet.meters
    assert len(meters) == 3 and len({m["port"] for m in meters}) == 3
    assert len({m["system_title"] for m in meters}) == 3
    from bijli.dlms.client import Client, ClientSettings
    from bijli.tools.node.client_transports import open_client_transport
    for row in meters:
        client = Client(open_client_transport(row["target"], 16), ClientSettings.for_association(16))
        client.associate()
        try:
            assert client.get(1, "0.0.96.1.0.255", 2).to_python() == row["serial"]
        finally:
            client.close()


SAMPLE_TEST = '''
"""A head-end developer's own test, in their own project, against a bijli meter."""
import json, pathlib, os

def test_my_head_end_reads_the_meter(bijli_meter):
    with bijli_meter.client(32) as reader:  # the meter reader association, LLS
        assert reader.get(3, "1.0.1.8.0.255", 2).to_python() >= 0
    token = bijli_meter.vend("credit", "--amount", "100")
    assert "accepted" in bijli_meter.console("token " + token)
    out = pathlib.Path(os.environ["SAMPLE_OUT"])
    with out.open("a") as f:
        f.write(json.dumps({"pid": bijli_meter.proc.pid, "port": bijli_meter.endpoints.wrapper_port}) + "\\n")
'''

SAMPLE_STRATEGY_TEST = '''
"""A vending-system developer's fuzz test: tokens drawn from bijli's public strategies."""
import json, pathlib, os
from hypothesis import HealthCheck, given, settings, strategies as st
from bijli.tools.testing import strategies as bst

@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_each_token_credits_once_and_near_misses_never(bijli_meter_factory, data):
    meter = bijli_meter_factory(hdlc=False, serial=False, optical=False)  # a new meter per example
    key = bst.meter_key(meter.manifest)
    seen = set()
    for digits in data.draw(bst.replayed_tokens(key)):
        reply = meter.console("token " + digits)
        assert (reply == "used") if digits in seen else reply.startswith("accepted"), reply
        seen.add(digits)
    near = data.draw(bst.wrong_crc_tokens(key) | bst.wrong_key_tokens(key))
    assert meter.console("token " + near) == "crc_error"
    out = pathlib.Path(os.environ["SAMPLE_OUT"])
    with out.open("a") as f:
        f.write(json.dumps({"pid": meter.proc.pid, "port": meter.endpoints.wrapper_port}) + "\\n")
'''

SAMPLE_HOSTILE_TEST = '''
"""A head-end developer's test against a hostile bijli meter: every failure must be clean."""
import json, os, pathlib, time

import pytest
from bijli.dlms.errors import DlmsError
from bijli.hal.errors import HalError, InactivityTimeout

@pytest.mark.parametrize("kind", ["truncated", "stall", "exception", "bad-gcm-tag"])
def test_my_head_end_fails_cleanly_on_a_hostile_meter(bijli_meter_factory, kind):
    meter = bijli_meter_factory(hdlc=False, serial=False, optical=False, console=False,
                                chaos=99, chaos_kinds=kind, chaos_rate=1.0)
    assert "seed 99" in meter.chaos_banner
    started = time.monotonic()
    with pytest.raises((DlmsError, HalError)):
        with meter.client(48, timeout=1) as utility:
            utility.get(3, "1.0.1.8.0.255", 2)
    assert time.monotonic() - started < 10
    with pathlib.Path(os.environ["SAMPLE_OUT"]).open("a") as f:
        f.write(json.dumps({"pid": meter.proc.pid, "port": meter.endpoints.wrapper_port}) + "\\n")
'''


# The sample project's test files and how many tests each runs (the hostile one is
# parametrized over four kinds); each test must record its meter's pid and port in
# SAMPLE_OUT, so the leftovers check below covers it.
SAMPLE_TESTS = {
    "test_meter.py": (SAMPLE_TEST, 1),
    "test_strategies.py": (SAMPLE_STRATEGY_TEST, 1),
    "test_hostile.py": (SAMPLE_HOSTILE_TEST, 4),
}


def test_a_project_outside_our_tree_uses_the_fixture_from_the_wheel(tmp_path):
    """A sample project with its own virtual environment, bijli installed from our wheel
    with its [testing] extra: its tests get meters from the plugin, draw from the public
    strategies and meet hostile meters (clean, typed failures), pass, and leave nothing
    running or bound, twice in a row."""
    import subprocess
    import sys
    import venv
    from pathlib import Path

    from bijli.tools.rig.wheel import build_wheel

    root = Path(__file__).resolve().parents[2]
    name, blob = build_wheel(root)
    wheel = tmp_path / name
    wheel.write_bytes(blob)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              f"{wheel}[testing]"], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    project = tmp_path / "headend"
    (project / "tests").mkdir(parents=True)
    for file_name, (source, _) in SAMPLE_TESTS.items():
        (project / "tests" / file_name).write_text(source)
    tests = sum(count for _, count in SAMPLE_TESTS.values())
    out = tmp_path / "seen.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["SAMPLE_OUT"] = str(out)
    for _ in range(2):
        run = subprocess.run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=project,
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"{tests} passed" in run.stdout
    import json
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({s["pid"] for s in seen}) == len(seen) >= 2 * tests  # a meter per test, and per example
    for s in seen:
        with pytest.raises(ProcessLookupError):
            os.kill(s["pid"], 0)
        assert _port_is_free(s["port"])


def test_the_readme_example_runs(bijli_meter):
    """README's "bijli in your CI" example, executed as written."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## bijli in your CI"):]
    code = section[section.index("```python\n") + 10:]
    code = code[:code.index("```")]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    namespace["test_my_head_end_credits_a_meter"](bijli_meter)


def test_the_readme_strategy_example_runs(bijli_meter):
    """README's "bijli in your CI" strategy example, executed as written (it draws near-miss
    tokens for the fixture's meter and enters them on its console)."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## bijli in your CI"):]
    section = section[:section.index("\n## ", 1)]
    blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
    code = next(b for b in blocks if "bijli.tools.testing import strategies" in b)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    namespace["test_near_miss_tokens_never_credit"](bijli_meter)
    status = bijli_meter.status()
    # ten refused tokens were really entered: the console locked out after five (and credited nothing)
    assert status["token_lockouts"] == ["console"] and status["credit"] == "0"
