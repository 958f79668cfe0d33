"""A bad configuration stops the meter with an error that names the key."""

from __future__ import annotations

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


def test_the_optical_port_can_come_from_the_config(tmp_path, meter_process):
    """[hal] optical opens the optical port (mode E, then HDLC) without an --optical flag,
    which is how the flashed rig unit starts it."""
    cfg = tmp_path / "meter.toml"
    cfg.write_text('[hal]\noptical = "pty"\n')
    meter = meter_process(config=cfg)
    assert meter.find(r"DLMS optical on (\S+) \(mode E opening at 300 baud\)")


def test_a_bad_optical_value_names_the_key():
    with pytest.raises(ConfigError) as err:
        config.parse({"hal": {"optical": 5}})
    assert err.value.key == "hal.optical"
