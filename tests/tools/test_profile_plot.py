"""`bijli profile ... --plot`: a real meter's load profile and billing history drawn as real
images, PNG of the right size and SVG with a point per profile entry in every line; a
wrong file type or a missing matplotlib is refused before any association."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

import pytest

from bijli.dlms import axdr
from bijli.tools import plot

BLOCK_LOAD = "1.0.99.1.0.255"
BILLING = "1.0.98.1.0.255"
BILLING_SCRIPTS = "0.0.10.0.1.255"  # script table, end of billing: script 1 is the billing (MD) reset


def bijli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", *args], capture_output=True, text=True,
                          timeout=120)


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _lines(svg: str) -> dict[str, int]:
    """Each series' id and the vertices of its line in a matplotlib SVG."""
    out = {}
    for gid, body in re.findall(r'<g id="series-([^"]+)">(.*?)</g>', svg, re.S):
        d = re.search(r'<path d="([^"]+)"', body).group(1)
        out[gid] = len(re.findall(r"[ML]", d))
    return out


@pytest.fixture(scope="module")
def meter(tmp_path_factory):
    """A meter with six hours of 10 A behind it and three billing resets an hour apart."""
    from bijli.tools.testing import RunningMeter

    m = RunningMeter.start(tmp_path_factory.mktemp("plotted"), serial=False, optical=False, hdlc=False)
    try:
        m.load(10)
        m.step("3h")
        for _ in range(3):
            m.step("1h")
            with m.client(48) as utility:
                utility.action(9, BILLING_SCRIPTS, 1, axdr.LongUnsigned(1))
        yield m
    finally:
        m.stop()


def _target(meter) -> tuple[str, ...]:
    return ("--target", meter.endpoints.wrapper, "--client", "32", "--password", meter.keys["reader_password"])


def _entries(meter, obis: str) -> int:
    with meter.client(32) as reader:
        return reader.get(7, obis, 7).to_python()


def test_the_block_load_profile_as_svg_has_a_point_per_entry_in_every_line(meter, tmp_path):
    out = tmp_path / "load.svg"
    r = bijli("profile", BLOCK_LOAD, *_target(meter), "--plot", str(out))
    assert r.returncode == 0, r.stderr
    rows = _entries(meter, BLOCK_LOAD)
    assert rows >= 24  # 15-minute blocks over six hours
    header = bijli("profile", BLOCK_LOAD, *_target(meter), "--csv").stdout.splitlines()[0].split(",")
    assert header[0] == "8/0.0.1.0.0.255:2"  # the clock is the time axis; every register is a line
    lines = _lines(out.read_text())
    assert sorted(lines) == sorted(column.split("/", 1)[1] for column in header[1:])
    assert set(lines.values()) == {rows}
    assert re.match(rf"{rows} rows, {len(lines)} series plotted to ", r.stdout)


def test_the_billing_history_as_png_is_an_image_of_the_right_size(meter, tmp_path):
    out = tmp_path / "billing.png"
    r = bijli("profile", BILLING, *_target(meter), "--plot", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["rows"]) == _entries(meter, BILLING) == 3  # the data still goes to stdout
    series = int(re.search(r"(\d+) series", r.stderr).group(1))
    width, height = _png_size(out)
    assert width == plot.SIZE_INCHES[0] * plot.DPI and height >= plot.SIZE_INCHES[1] * plot.DPI
    svg = tmp_path / "billing.svg"
    assert bijli("profile", BILLING, *_target(meter), "--plot", str(svg)).returncode == 0
    assert list(_lines(svg.read_text()).values()) == [3] * series


def test_a_wrong_file_type_costs_no_association(tmp_path):
    # nothing listens on port 9: had it tried to associate, it would be status 3, not 2
    r = bijli("profile", BLOCK_LOAD, "--target", "tcp://127.0.0.1:9", "--plot", str(tmp_path / "lp.jpg"))
    assert r.returncode == 2 and ".png or .svg" in r.stderr
    assert not (tmp_path / "lp.jpg").exists()


def test_without_matplotlib_it_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from bijli.tools.cli import main\n"
            f"sys.exit(main(['profile', '{BLOCK_LOAD}', '--target', 'tcp://127.0.0.1:9', "
            f"'--plot', {str(tmp_path / 'lp.png')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "pip install 'bijli[plot]'" in r.stderr
