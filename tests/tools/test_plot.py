"""Plots are real images: PNG of the right size, SVG with one line per series and as
many points as rows, and a clear error when matplotlib is missing."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from bijli.tools import plot



def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _svg_points(path, name: str) -> int:
    """The vertices of series ``name``'s line in a matplotlib SVG."""
    text = path.read_text()
    group = re.search(rf'<g id="series-{re.escape(name)}">(.*?)</g>', text, re.S)
    assert group, f"no series {name}"
    d = re.search(r'<path d="([^"]+)"', group.group(1)).group(1)
    return len(re.findall(r"[ML]", d))


def _profile(rows: int):
    start = datetime(2024, 6, 14, 0, 0)
    times = [start + timedelta(minutes=30 * i) for i in range(rows)]
    series = [plot.Series("voltage", "V", [230 + (i % 5) for i in range(rows)]),
              plot.Series("import", "Wh", [100.0 * (i % 7) for i in range(rows)]),
              plot.Series("export", "Wh", [0.0] * rows)]
    return times, series


def test_png_is_a_real_image_of_the_right_size(tmp_path):
    times, series = _profile(48)
    out = plot.time_series(tmp_path / "lp.png", times, series, title="block load profile")
    width, height = _png_size(out)
    assert width == plot.SIZE_INCHES[0] * plot.DPI
    assert height == max(plot.SIZE_INCHES[1], 2.2 * 2) * plot.DPI  # two units: two panels


def test_svg_has_a_line_per_series_with_a_point_per_row(tmp_path):
    times, series = _profile(96)
    out = plot.time_series(tmp_path / "lp.svg", times, series, title="block load profile")
    for s in series:
        assert _svg_points(out, s.name) == 96


def test_histogram_renders(tmp_path):
    out = plot.histogram(tmp_path / "latency.png", [0.1 * i for i in range(200)], title="latency", unit="s")
    assert _png_size(out) == (1000, 450)


def test_bad_requests_are_plot_errors(tmp_path):
    times, series = _profile(3)
    with pytest.raises(plot.PlotError, match="png or .svg"):
        plot.time_series(tmp_path / "lp.jpg", times, series, title="x")
    with pytest.raises(plot.PlotError, match="no rows"):
        plot.time_series(tmp_path / "lp.png", [], series, title="x")
    with pytest.raises(plot.PlotError, match="2 values for 3 times"):
        plot.time_series(tmp_path / "lp.png", times, [plot.Series("a", "V", [1, 2])], title="x")


def test_without_matplotlib_the_error_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from bijli.tools import plot\n"
            "from datetime import datetime\n"
            "try:\n"
            f"    plot.time_series({str(tmp_path / 'x.png')!r}, [datetime(2024,1,1)], [plot.Series('a','V',[1])], title='t')\n"
            "except plot.PlotUnavailable as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'bijli[plot]'" in out
