"""`bijli flash` into a temporary rig root: the files, idempotence, refusals, and the
unit, sysusers entry and wheel checked by the real tools that will consume them."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bijli.tools.commands import flash
from bijli.tools import rig
from bijli.tools.rig.wheel import build_wheel

MAIN = Path(__file__).resolve().parents[2]
EXPECTED = [
    "etc/bijli/meter.toml",
    "etc/systemd/system/bijli-meter.service",
    "etc/systemd/system/bijli-install.service",
    "etc/sysusers.d/bijli.conf",
    "etc/udev/rules.d/99-bijli-optical.rules",
    "opt/bijli/install.sh",
    "opt/bijli/README.rig.md",
    "opt/bijli/wheels/bijli-0.1.0-py3-none-any.whl",
]


def run_flash(*args):
    return subprocess.run([sys.executable, "-m", "bijli.tools.commands.flash", *map(str, args)],
                          cwd=MAIN, capture_output=True, text=True, timeout=60)


def snapshot(root):
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = ("file", p.read_bytes(), p.stat().st_mode & 0o7777)
    return out


def test_flash_writes_rig_tree_and_is_idempotent(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    first = run_flash("--target", root)
    assert first.returncode == 0, first.stderr
    for rel in EXPECTED:
        assert (root / rel).is_file(), rel
        assert f"created   {rel}" in first.stdout
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "bijli-meter.service") == "/etc/systemd/system/bijli-meter.service"
    assert os.readlink(wants / "bijli-install.service") == "/etc/systemd/system/bijli-install.service"
    assert (root / "opt/bijli/install.sh").stat().st_mode & 0o111

    unit = (root / "etc/systemd/system/bijli-meter.service").read_text()
    for line in ["Type=notify", "WatchdogSec=30", "Restart=always", "User=bijli",
                 "StateDirectory=bijli", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "ExecStart=/opt/bijli/venv/bin/bijli meter --config /etc/bijli/meter.toml"]:
        assert line in unit.splitlines(), line
    groups = re.search(r"^SupplementaryGroups=(.*)$", unit, re.M).group(1).split()
    assert {"dialout", "gpio", "spi"} <= set(groups)
    assert "PrivateDevices=yes" not in unit  # would hide the probe, GPIO and SPI devices
    rule = (root / "etc/udev/rules.d/99-bijli-optical.rules").read_text()
    assert 'ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001"' in rule
    assert 'SYMLINK+="bijli-optical"' in rule and 'GROUP="dialout"' in rule
    assert re.search(r"^u bijli - ", (root / "etc/sysusers.d/bijli.conf").read_text(), re.M)
    config = (root / "etc/bijli/meter.toml").read_text()
    assert '"/dev/bijli-optical"' in config and '"gpio:17"' in config and '"spi:0.0"' in config
    assert "--no-index --find-links" in (root / "opt/bijli/install.sh").read_text()
    assert "journalctl -u bijli-meter" in (root / "opt/bijli/README.rig.md").read_text()
    assert "@" not in "".join((root / rel).read_text() for rel in EXPECTED[1:5])  # all filled in

    before = snapshot(root)
    second = run_flash("--target", root)
    assert second.returncode == 0, second.stderr
    assert snapshot(root) == before
    assert "created" not in second.stdout and "updated" not in second.stdout
    assert "9 unchanged" in second.stdout


def test_changes_are_reported_and_user_config_kept(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    assert run_flash("--target", root, "-q").returncode == 0
    cfg = root / "etc/bijli/meter.toml"
    cfg.write_text('[meter]\nserial = "RIG-7"\n')  # edited on the card
    unit = root / "etc/systemd/system/bijli-meter.service"
    unit.write_text("tampered")
    stale = root / "opt/bijli/wheels/bijli-0.0.9-py3-none-any.whl"
    stale.write_bytes(b"old")
    dep = root / "opt/bijli/wheels/pyserial-3.5-py2.py3-none-any.whl"
    dep.write_bytes(b"dep")
    out = run_flash("--target", root, "--user", "meter", "--probe-vid", "067B", "--probe-pid", "2303")
    assert out.returncode == 0, out.stderr
    assert "updated   etc/systemd/system/bijli-meter.service" in out.stdout
    assert "updated   etc/udev/rules.d/99-bijli-optical.rules" in out.stdout
    assert "removed   opt/bijli/wheels/bijli-0.0.9-py3-none-any.whl" in out.stdout
    assert "kept      etc/bijli/meter.toml" in out.stdout
    assert cfg.read_text() == '[meter]\nserial = "RIG-7"\n'
    assert "User=meter" in unit.read_text()
    assert 'ATTRS{idVendor}=="067b"' in (root / "etc/udev/rules.d/99-bijli-optical.rules").read_text()
    assert not stale.exists() and dep.exists()  # dependency wheels are left alone

    given = tmp_path / "given.toml"
    given.write_text('[meter]\nserial = "RIG-8"\n')
    out = run_flash("--target", root, "--config", given)
    assert out.returncode == 0 and "updated   etc/bijli/meter.toml" in out.stdout
    assert cfg.read_text() == given.read_text()


def test_wheelhouse_is_shipped(tmp_path):
    root, house = tmp_path / "rootfs", tmp_path / "house"
    root.mkdir()
    house.mkdir()
    (house / "construct-2.10.70-py3-none-any.whl").write_bytes(b"w1")
    (house / "notes.txt").write_text("not a wheel")
    assert run_flash("--target", root, "--wheelhouse", house).returncode == 0
    assert sorted(p.name for p in (root / "opt/bijli/wheels").iterdir()) == [
        "bijli-0.1.0-py3-none-any.whl", "construct-2.10.70-py3-none-any.whl"]


@pytest.mark.parametrize("make_target, message", [
    (lambda tmp: tmp / "missing", "does not exist"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "not a directory"),
    (lambda tmp: Path("/"), "root of this machine"),
])
def test_bad_target_refused_with_status_2(tmp_path, make_target, message):
    target = make_target(tmp_path)
    out = run_flash("--target", target)
    assert out.returncode == 2
    assert message in out.stderr


def test_unwritable_target_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write a read-only directory")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        out = run_flash("--target", ro)
        assert out.returncode == 2 and "not writable" in out.stderr
    finally:
        ro.chmod(0o755)


def test_bad_inputs_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[meter\n")
    for args, message in [(["--config", bad], "not valid TOML"),
                          (["--config", tmp_path / "nope.toml"], "--config"),
                          (["--user", "Root Kit"], "--user"),
                          (["--probe-vid", "xyz"], "--probe-vid"),
                          (["--wheelhouse", tmp_path / "none"], "--wheelhouse")]:
        out = run_flash("--target", tmp_path, *args)
        assert out.returncode == 2, args
        assert message in out.stderr
    assert list(tmp_path.iterdir()) == [bad]  # nothing written on refusal


def test_in_process_main_matches_cli(tmp_path, capsys):
    assert flash.main(["flash", "--target", str(tmp_path), "-q"]) == 0
    assert "10 created" in capsys.readouterr().out


# ---- the artefacts, checked by their consumers ------------------------------
def verify_unit_problems(unit_path):
    proc = subprocess.run(["systemd-analyze", "verify", str(unit_path)],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if unit_path.name in line]
    return proc.returncode, problems


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_accepted_by_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart exists on this machine, so point it at a stand-in;
    # everything else in the unit is checked as written.
    fake = tmp_path / "bijli"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    text = rig.render(rig.SERVICE_UNIT, user="bijli", watchdog_sec=30)
    unit = tmp_path / "bijli-meter.service"
    unit.write_text(text.replace("/opt/bijli/venv/bin/bijli", str(fake)))
    assert verify_unit_problems(unit) == (0, [])
    install = tmp_path / "bijli-install.service"
    install.write_text(rig.INSTALL_UNIT)
    assert verify_unit_problems(install) == (0, [])
    # the check has teeth: a misspelt hardening key and a bad time are reported
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("ProtectSystem=", "ProtectSystm=")
                      .replace("WatchdogSec=30", "WatchdogSec=soon"))
    assert len(verify_unit_problems(broken)[1]) == 2


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers not installed")
def test_sysusers_entry_accepted(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\ndialout:x:20:\n")
    conf = tmp_path / "bijli.conf"
    conf.write_text(rig.render(rig.SYSUSERS, user="bijli"))
    proc = subprocess.run(["systemd-sysusers", "--dry-run", f"--root={tmp_path}", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Creating user 'bijli'" in proc.stdout + proc.stderr


def test_install_script_is_valid_shell(tmp_path):
    script = tmp_path / "install.sh"
    script.write_text(rig.INSTALL_SH)
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0


def test_wheel_is_reproducible_and_installable(tmp_path):
    name, blob = build_wheel(MAIN)
    assert build_wheel(MAIN) == (name, blob)
    whl = tmp_path / name
    whl.write_bytes(blob)
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        entry_points = zf.read("bijli-0.1.0.dist-info/entry_points.txt").decode()
        metadata = zf.read("bijli-0.1.0.dist-info/METADATA").decode()
    assert "bijli/tools/commands/flash.py" in names and "bijli/hal/serial.py" in names and "bijli/tools/rig/__init__.py" in names
    assert {n.split("/")[0] for n in names} == {"bijli", "bijli-0.1.0.dist-info"}
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    assert "bijli = bijli.tools.cli:main" in entry_points
    assert "Requires-Dist: pyserial>=3.5" in metadata
    # pip itself checks the RECORD hashes and the layout when installing
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--disable-pip-version-check", "--target", str(target), str(whl)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (target / "bijli/tools/rig/wheel.py").is_file()
    assert (target / "bin/bijli").is_file()


# ---- every file flash writes is what the meter and the CLI accept -------------
def _flashed(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    assert flash.main(["flash", "--target", str(root), "-q"]) == 0
    return root


def test_flashed_config_is_accepted_by_the_meter(tmp_path):
    """The config `flash` writes goes through the same validation as `bijli meter --config`,
    and carries the rig's optical port and UART console."""
    from bijli.tools.node import config as config_mod
    root = _flashed(tmp_path)
    cfg = config_mod.load(root / flash.CONFIG_PATH)
    assert cfg.hal.optical == "/dev/bijli-optical"
    assert cfg.hal.console == "/dev/ttyAMA0"
    assert cfg.hal.pin_factory == "lgpio" and cfg.hal.samples == "spi:0.0"
    assert cfg.hal.display == "hd44780:1:0x27"


def test_unit_command_line_parses_with_the_real_parser(tmp_path):
    from bijli.tools.cli import build_parser
    root = _flashed(tmp_path)
    unit = (root / "etc/systemd/system/bijli-meter.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    argv = exec_start.removeprefix("ExecStart=").split()
    assert argv[0] == "/opt/bijli/venv/bin/bijli"
    args = build_parser(argv[1:]).parse_args(argv[1:])
    assert args.command == "meter" and str(args.config) == "/etc/bijli/meter.toml"
    assert "Restart=always" in unit  # `quit` on the UART must not leave the rig without its meter


def test_rig_readme_commands_parse_with_the_real_parser(tmp_path):
    from bijli.tools.cli import build_parser
    root = _flashed(tmp_path)
    text = (root / "opt/bijli/README.rig.md").read_text()
    commands = re.findall(r"`bijli ((?:read|console|objects|profile)[^`]*)`", text)
    assert commands, "README.rig.md shows how to reach the meter"
    for command in commands:
        build_parser(command.split()).parse_args(command.split())  # SystemExit on an unknown flag


def test_a_config_the_meter_would_refuse_is_refused(tmp_path):
    bad = tmp_path / "rig.toml"
    bad.write_text("[hal.pins]\nfactory = 'lgpio'\n")
    out = run_flash("--target", tmp_path, "--config", bad)
    assert out.returncode == 2
    assert "hal.pins" in out.stderr
    assert list(tmp_path.iterdir()) == [bad]
