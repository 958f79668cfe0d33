"""`bijli flash`: write what a Raspberry Pi test rig needs into its root file system.

The target is the root of a Raspberry Pi OS tree: a mounted SD card, or a
staging folder to rsync. Into it go the project as a wheel (plus dependency
wheels when given), a boot-time installer that builds ``/opt/bijli/venv``
from them offline, the meter's config, a ``Type=notify`` systemd unit with a
watchdog, a sysusers.d entry for the unprivileged user, a udev rule naming the
optical probe ``/dev/bijli-optical``, and a README for the rig. Every file is
compared before it is written, so running it twice changes nothing and says so.
Enabling the units is done the way ``systemctl enable`` does it, as symlinks in
``multi-user.target.wants``, so it works on a card that is not running.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bijli.tools import rig
from bijli.tools.errors import UsageError
from bijli.tools.rig.wheel import WheelError, build_wheel, project_metadata

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # tools/commands/flash.py -> the source tree

UNIT_DIR = "etc/systemd/system"
WANTS_DIR = f"{UNIT_DIR}/multi-user.target.wants"
METER_UNIT = "bijli-meter.service"
INSTALL_UNIT = "bijli-install.service"
WHEEL_DIR = "opt/bijli/wheels"
CONFIG_PATH = "etc/bijli/meter.toml"


class FlashError(UsageError):
    """The target or an input cannot be used; exit status 2."""


@dataclass(frozen=True)
class Entry:
    """One thing the rig tree should contain: a file with content and mode, or a symlink."""
    path: str                     # relative to the target root
    data: bytes | None = None
    mode: int = 0o644
    link: str | None = None       # symlink destination (absolute on the rig)
    keep_existing: bool = False   # the user's edits win (a default config)


def check_target(target: Path, force: bool) -> Path:
    if not target.exists():
        raise FlashError(f"target {target} does not exist")
    if not target.is_dir():
        raise FlashError(f"target {target} is not a directory")
    resolved = target.resolve()
    if resolved == Path(resolved.anchor) and not force:
        raise FlashError(f"target {target} is the root of this machine; pass --force if you mean it")
    if not os.access(resolved, os.W_OK | os.X_OK):
        raise FlashError(f"target {target} is not writable")
    return resolved


def _ident(value: str, what: str, pattern: str) -> str:
    if not re.fullmatch(pattern, value):
        raise FlashError(f"{what} {value!r} is not valid")
    return value


def check_config(text: bytes, what: str) -> None:
    """Refuse a config the meter would refuse: the same validation as `bijli meter --config`."""
    from bijli.firmware.errors import ConfigError
    from bijli.tools.node import config as config_mod
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FlashError(f"{what} is not valid TOML: {exc}") from exc
    try:
        config_mod.parse(data)
    except ConfigError as exc:
        raise FlashError(f"{what}: {exc}") from exc


def plan(args: argparse.Namespace) -> list[Entry]:
    user = _ident(args.user, "--user", r"[a-z_][a-z0-9_-]{0,31}")
    values = {
        "user": user,
        "probe_vid": _ident(args.probe_vid.lower(), "--probe-vid", r"[0-9a-f]{4}"),
        "probe_pid": _ident(args.probe_pid.lower(), "--probe-pid", r"[0-9a-f]{4}"),
        "watchdog_sec": args.watchdog_sec,
    }
    if args.watchdog_sec < 1:
        raise FlashError("--watchdog-sec must be at least 1")

    if args.config is not None:
        try:
            text = Path(args.config).read_bytes()
        except OSError as exc:
            raise FlashError(f"--config {args.config}: {exc.strerror or exc}") from exc
        check_config(text, f"--config {args.config}")
        config = Entry(CONFIG_PATH, text, 0o640)
    else:
        config = Entry(CONFIG_PATH, rig.DEFAULT_CONFIG.encode(), 0o640, keep_existing=True)

    entries = [
        config,
        Entry(f"{UNIT_DIR}/{METER_UNIT}", rig.render(rig.SERVICE_UNIT, **values).encode()),
        Entry(f"{UNIT_DIR}/{INSTALL_UNIT}", rig.INSTALL_UNIT.encode()),
        Entry(f"{WANTS_DIR}/{METER_UNIT}", link=f"/{UNIT_DIR}/{METER_UNIT}"),
        Entry(f"{WANTS_DIR}/{INSTALL_UNIT}", link=f"/{UNIT_DIR}/{INSTALL_UNIT}"),
        Entry("etc/sysusers.d/bijli.conf", rig.render(rig.SYSUSERS, **values).encode()),
        Entry("etc/udev/rules.d/99-bijli-optical.rules", rig.render(rig.UDEV_RULE, **values).encode()),
        Entry("opt/bijli/install.sh", rig.INSTALL_SH.encode(), 0o755),
        Entry("opt/bijli/README.rig.md", rig.render(rig.README_RIG, **values).encode()),
    ]
    entries += _wheels(args)
    return entries


def _wheels(args: argparse.Namespace) -> list[Entry]:
    source = Path(args.source)
    try:
        if args.builder == "pip":
            name, blob = _pip_wheel(source)
        else:
            name, blob = build_wheel(source)
    except WheelError as exc:
        raise FlashError(str(exc)) from exc
    out = [Entry(f"{WHEEL_DIR}/{name}", blob)]
    deps: dict[str, bytes] = {}
    if args.wheelhouse is not None:
        house = Path(args.wheelhouse)
        if not house.is_dir():
            raise FlashError(f"--wheelhouse {house} is not a directory")
        for whl in sorted(house.glob("*.whl")):
            deps[whl.name] = whl.read_bytes()
    if args.download_deps:
        deps.update(_download_deps(source))
    for dep_name, dep_blob in sorted(deps.items()):
        if dep_name != name:
            out.append(Entry(f"{WHEEL_DIR}/{dep_name}", dep_blob))
    return out


def _pip_wheel(source: Path) -> tuple[str, bytes]:
    """The setuptools build, for machines whose venv has ``wheel`` and a current setuptools."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                               "-w", tmp, str(source)], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise WheelError("pip wheel failed: " + " / ".join(tail))
        return wheels[0].name, wheels[0].read_bytes()


def _download_deps(source: Path) -> dict[str, bytes]:
    """Dependency wheels for a 64-bit Raspberry Pi OS (aarch64, CPython 3.11); needs network."""
    deps = project_metadata(source)["project"].get("dependencies", [])
    if not deps:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--dest", tmp, "--only-binary=:all:",
               "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3",
               "--abi", "none"]
        for plat in ("manylinux_2_28_aarch64", "manylinux2014_aarch64", "linux_aarch64", "any"):
            cmd += ["--platform", plat]
        proc = subprocess.run(cmd + list(deps), capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise FlashError("--download-deps: pip download failed: " + " / ".join(tail))
        return {p.name: p.read_bytes() for p in Path(tmp).glob("*.whl")}


def apply(root: Path, entries: list[Entry]) -> list[tuple[str, str]]:
    """Make the tree match ``entries``; returns (what happened, path) per entry."""
    report = []
    for e in entries:
        dest = root / e.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if e.link is not None:
            if dest.is_symlink() and os.readlink(dest) == e.link:
                report.append(("unchanged", e.path))
                continue
            existed = dest.is_symlink() or dest.exists()
            if existed:
                dest.unlink()
            os.symlink(e.link, dest)
            report.append(("updated" if existed else "created", e.path))
            continue
        assert e.data is not None
        if dest.is_symlink():
            dest.unlink()  # never write through a link into the build machine
        if dest.is_file():
            if e.keep_existing:
                report.append(("kept", e.path))
                continue
            same = dest.read_bytes() == e.data
            if same and (dest.stat().st_mode & 0o7777) == e.mode:
                report.append(("unchanged", e.path))
                continue
            action = "updated"
        else:
            action = "created"
        tmp = dest.with_name(f".{dest.name}.bijli-tmp")
        tmp.write_bytes(e.data)
        os.chmod(tmp, e.mode)
        os.replace(tmp, dest)  # a card pulled mid-write keeps the old file, not half a new one
        report.append((action, e.path))
    # An older build of the project left in the wheel folder would be a second
    # candidate for pip; dependency wheels stay (they may come from an earlier --wheelhouse).
    ours = {e.path for e in entries if e.path.startswith(WHEEL_DIR + "/bijli-")}
    for stale in sorted((root / WHEEL_DIR).glob("bijli-*.whl")):
        rel = stale.relative_to(root).as_posix()
        if rel not in ours:
            stale.unlink()
            report.append(("removed", rel))
    return report


def register(subparsers) -> None:
    p = subparsers.add_parser("flash", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, type=Path,
                   help="root of the Pi's file system (mounted SD card rootfs or a staging folder)")
    p.add_argument("--config", type=Path, help="meter.toml to install (default: a commented rig config, "
                                               "which never replaces an existing one)")
    p.add_argument("--wheelhouse", type=Path, help="folder of dependency wheels to ship for an offline install")
    p.add_argument("--download-deps", action="store_true",
                   help="download dependency wheels for aarch64 CPython 3.11 with pip (needs network)")
    p.add_argument("--user", default="bijli", help="the unprivileged user the meter runs as (default bijli)")
    p.add_argument("--probe-vid", default="0403", help="USB vendor id of the optical probe (default 0403, FTDI)")
    p.add_argument("--probe-pid", default="6001", help="USB product id of the optical probe (default 6001)")
    p.add_argument("--watchdog-sec", type=int, default=30, help="systemd WatchdogSec= (default 30)")
    p.add_argument("--source", type=Path, default=SOURCE_ROOT, help="project source tree (default: this one)")
    p.add_argument("--builder", choices=("internal", "pip"), default="internal",
                   help="wheel builder: internal (stdlib, offline, reproducible) or pip (setuptools)")
    p.add_argument("--force", action="store_true", help="allow the target to be this machine's /")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    root = check_target(args.target, args.force)
    entries = plan(args)
    try:
        report = apply(root, entries)
    except OSError as exc:
        raise FlashError(f"cannot write {exc.filename or args.target}: {exc.strerror or exc}") from None
    counts: dict[str, int] = {}
    for action, path in report:
        counts[action] = counts.get(action, 0) + 1
        if not args.quiet and action != "unchanged":
            print(f"{action:9} {path}")
    summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    print(f"bijli flash: {root}: {summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m bijli.tools.commands.flash``: the same as ``bijli flash``."""
    from bijli.tools.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(["flash", *sys.argv[1:]] if sys.argv[1:2] != ["flash"] else sys.argv[1:]))
