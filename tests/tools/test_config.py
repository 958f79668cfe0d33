"""A bad configuration stops the meter with an error that names the key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bijli.firmware.errors import ConfigError
from tests.conftest import ROOT
from bijli.tools.node import config


@pytest.mark.parametrize("toml, key", [
    ("[hal]\nclock = 'quartz'\n", "hal.clock"),
    ("[hal]\nrelay = 'gpio:99'\n", "hal.relay"),
    ("[hal]\nrelay = 'gpio:17'\nbutton = 'gpio:17'\n", "hal.button"),
    ("[hal]\nsamples = 'microphone'\n", "hal.samples"),
    ("[hal]\ndisplay = 'oled'\n", "hal.display"),
    ("[hal]\nspeed = 3\n", "hal.speed"),
    ("[meter]\nmanufacturer = 'bijli'\n", "meter.manufacturer"),
    ("[dlms]\nencryption_key = '0011'\n", "dlms.encryption_key"),
    ("[dlms]\nmax_pdu = 10\n", "dlms.max_pdu"),
    ("[relay]\ncontrol_mode = 9\n", "relay.control_mode"),
    ("[profiles]\nblock_load_period = 600\n", "profiles.block_load_period"),
    ("[storage]\nsave_interval_s = 'often'\n", "storage.save_interval_s"),
    ("[surprise]\nx = 1\n", "config.surprise"),
    ("[upgrade]\nactivation = 'soon'\n", "upgrade.activation"),
    ("[sts]\nea = '08'\n", "sts.ea"),
    ("[tariff]\nbilling_day = 31\n", "tariff.billing_day"),
    ("[prepaid]\nfriendly_start = '25:00'\n", "prepaid.friendly_start"),
])
def test_bad_values_name_their_key(tmp_path, toml, key):
    path = tmp_path / "meter.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert err.value.key == key
    assert str(err.value).startswith(key)


def test_defaults_are_a_demo_meter():
    cfg = config.load(None)
    assert cfg.hal.pin_factory == "mock" and cfg.hal.pins["relay"] == 17
    assert cfg.meter.identity.serial == "BJL0000001"


def test_meter_refuses_to_start_on_a_corrupt_config_and_names_the_key(tmp_path):
    path = tmp_path / "meter.toml"
    path.write_text("[prepaid]\nunit = 'dollars'\n")
    proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "meter", "--config", str(path), "--state",
                           str(tmp_path / "state"), "--console", "none"], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "prepaid.unit" in proc.stderr
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_not_toml_is_refused(tmp_path):
    path = tmp_path / "meter.toml"
    path.write_text("[hal\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path)


def test_the_optical_port_can_come_from_the_config(tmp_path, bijli_meter_factory):
    """[hal] optical opens the optical port (mode E, then HDLC) without an --optical flag,
    which is how the flashed rig unit starts it."""
    cfg = tmp_path / "meter.toml"
    cfg.write_text('[hal]\noptical = "pty"\n')
    meter = bijli_meter_factory(config=cfg, optical=False)  # no --optical flag: the config opens it
    assert any(re.search(r"DLMS optical on (\S+) \(mode E opening at 300 baud\)", line) for line in meter.banner)
    assert meter.endpoints.optical and os.path.exists(meter.endpoints.optical)


def test_a_bad_optical_value_names_the_key():
    with pytest.raises(ConfigError) as err:
        config.parse({"hal": {"optical": 5}})
    assert err.value.key == "hal.optical"


# --- malformed configs (issue 14 item 10): a ConfigError naming the key, never another error -------

import copy  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _readme_config() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return tomllib.loads(re.search(r"```toml\n(.*?)```", text, re.S).group(1))


BASE = _readme_config()
# the documented keys with a number for a value, and those the README leaves commented out
NUMBER_KEYS = sorted({f"{s}.{k}" for s, t in BASE.items() for k, v in t.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)} | {"relay.load_limit_w"})


def _refused(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        config.parse(data)
    assert err.value.key and str(err.value).startswith(err.value.key + ":")
    return err.value


@pytest.mark.parametrize("key", NUMBER_KEYS)
@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_a_number_that_is_not_finite_is_refused_naming_its_key(tmp_path, key, text):
    section, name = key.split(".")
    path = tmp_path / "meter.toml"
    path.write_text(f"[{section}]\n{name} = {text}\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert err.value.key == key


@pytest.mark.parametrize("toml, key", [
    ("[sts]\nbase = {}\n", "sts.base"),
    ("[sts]\nbase = [2014]\n", "sts.base"),
    ("[sts]\nea = {}\n", "sts.ea"),
    ("[prepaid]\nunit = ['INR']\n", "prepaid.unit"),
    ("[sts]\nbase = " + "[" * 40 + "]" * 40 + "\n", "sts.base"),
    ("[tariff]\nslabs = " + "[" * 40 + "]" * 40 + "\n", "tariff.slabs"),
    ("[prepaid]\nholidays = " + "[{a = " * 30 + "1" + "}]" * 30 + "\n", "prepaid.holidays"),
])
def test_structurally_malformed_values_name_their_key(tmp_path, toml, key):
    path = tmp_path / "meter.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert err.value.key == key


def test_arrays_nested_beyond_what_toml_can_parse_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "meter.toml"
    path.write_text("[sts]\nbase = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested more than"):
        config.load(path)


def test_bijli_meter_refuses_arrays_nested_beyond_what_toml_can_parse_in_one_line(tmp_path):
    # found by `bijli soak` (configs part): the launcher reads the [upgrade] table before the
    # config is loaded, and its own TOML read let tomllib's RecursionError out as a traceback
    path = tmp_path / "meter.toml"
    path.write_text("[hal]\ndisplay = " + "[" * 50000 + "1" + "]" * 50000 + "\n")
    proc = subprocess.run([sys.executable, "-m", "bijli.tools.cli", "meter", "--config", str(path), "--state",
                           str(tmp_path / "state"), "--console", "none"], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr


def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


_FIXED = st.sampled_from([math.nan, math.inf, -math.inf, {}, [], "", "nan", True, False, 0, -1, 2**63, -(2**63),
                          1e308, -1e-308, "x" * 5000, [{}], [1, "a"], {"a": {"b": {}}}, "gpio:99", "00", "11", "INR",
                          "kWh"])
_HOSTILE = st.one_of(
    _FIXED, _FIXED, _FIXED, _FIXED,  # the known-nasty values, most of the time
    st.integers(), st.floats(), st.text(max_size=20), st.booleans(),
    st.integers(min_value=0, max_value=60).map(_nested),
    st.recursive(st.one_of(st.integers(), st.floats(), st.text(max_size=5)),
                 lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3)),
                 max_leaves=10),
)
_PATHS = st.sampled_from(sorted({(s, k) for s, t in BASE.items() for k in t}
                                | {("relay", "load_limit_w"), ("prepaid", "max_debt"), ("prepaid", "holidays"),
                                   ("metrology", "calibration"), ("tariff", "flat_rate"), ("tariff", "tod"),
                                   ("tariff", "passive"), ("sts", "decoder_key"), ("sts", "ken")}))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(_PATHS, _HOSTILE), min_size=1, max_size=3),
       whole_section=st.sampled_from([None, *sorted(BASE)]), section_value=_HOSTILE)
def test_malformed_configs_give_a_config_error_naming_a_key_and_nothing_else(changes, whole_section, section_value):
    data = copy.deepcopy(BASE)
    for (section, key), value in changes:
        data[section][key] = value
    if whole_section is not None and not isinstance(section_value, dict):
        data[whole_section] = section_value  # a whole table replaced by something that is not one
    started = time.monotonic()
    try:
        parsed = config.parse(data)
    except ConfigError as err:
        assert err.key and str(err).startswith(err.key + ":")
        assert err.key.split(".")[0] in {*BASE, "config"}
    else:
        assert not _non_finite(parsed), _non_finite(parsed)  # an accepted config holds no NaN or infinity
    assert time.monotonic() - started < 2.0  # no hang


def _non_finite(value, path: str = "config") -> list[str]:
    """Paths of the NaN and infinite floats anywhere in a parsed configuration."""
    import dataclasses
    from decimal import Decimal

    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, Decimal):
        return [] if value.is_finite() else [path]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [p for f in dataclasses.fields(value) for p in _non_finite(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{path}.{k}")] if path != "config.raw" else []
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{path}[{i}]")]
    return []
