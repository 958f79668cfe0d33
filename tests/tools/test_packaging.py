"""Packaging: the layer folders install under one import package, ``bijli``.

A wheel that put ``dlms``, ``firmware``, ``hal`` and ``tools`` at the top of
site-packages would collide with any other distribution that did the same; the
mapping in pyproject.toml installs them as ``bijli.dlms`` ... instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("dlms", "firmware", "hal", "tools")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_listed_and_mapped():
    cfg = _setuptools()
    listed = set(cfg["packages"])
    on_disk = {"bijli"}
    for layer in LAYERS:
        for init in (ROOT / layer).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            on_disk.add("bijli." + ".".join(rel.parts))
    assert listed == on_disk, f"missing from pyproject: {sorted(on_disk - listed)}; stale: {sorted(listed - on_disk)}"
    assert cfg["package-dir"] == {"bijli": "bijli", **{f"bijli.{x}": x for x in LAYERS}}


def test_pip_install_adds_exactly_one_top_level_package(tmp_path):
    """`pip wheel .` (setuptools, the real build backend) gives a wheel whose only
    top-level names are ``bijli`` and its dist-info; installed into an empty folder it runs."""
    # build from a copy: setuptools leaves build/ and *.egg-info in the tree it builds
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("bijli", *LAYERS):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                           "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (whl,) = wheels.glob("bijli-*.whl")
    with zipfile.ZipFile(whl) as zf:
        top = {n.split("/")[0] for n in zf.namelist()}
    assert top == {"bijli", whl.name.split("-py3")[0] + ".dist-info"}, top
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
                           "--target", str(site), str(whl)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin") == ["bijli"]
    # run it from the installed copy alone (dependencies from this venv), away from the source tree
    env = dict(os.environ, PYTHONPATH=str(site))
    run = subprocess.run([sys.executable, "-P", "-c", "import bijli, sys; print(bijli.__file__); "
                          "from bijli.tools.cli import main; sys.exit(main(['token', 'vend', 'credit', '--amount', '5']))"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    first, token = run.stdout.splitlines()[:2]
    assert first.startswith(str(site))
    digits = token.split()[0]
    assert len(digits) == 20 and digits.isdigit(), token


def test_nothing_in_the_tree_reads_outside_it():
    """A user's clone has no sibling folders: no code or test may open ``../shared`` (the
    facts the project needs are copied into the tree, e.g. tests/firmware/sts/data)."""
    offenders = []
    word = "sha" + "red"  # spelled apart so this test does not find itself
    needles = (f'"..", "{word}"', f'".." / "{word}"', f"'../{word}", f'"../{word}')
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts or "build" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(n in text for n in needles):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
