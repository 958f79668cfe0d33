"""Pictures where people would rather look than read: load profiles, billing history,
and a recharge storm, as PNG or SVG.

Plotting is an optional extra (``pip install 'bijli[plot]'``, matplotlib): the
meter and every other command work without it, and asking for a plot without it
is a :class:`PlotUnavailable` that says what to install. matplotlib runs with its
non-interactive Agg backend, so a plot renders the same on a headless rig, in CI
and on a desktop. Each data series is drawn as one line whose SVG group id is
``series-<name>``, so a test (or a person) can find its points in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

FORMATS = (".png", ".svg")
SIZE_INCHES = (10.0, 4.5)
DPI = 100  # 1000 pixels wide; 450 high, or 220 per panel when there are more


class PlotError(Exception):
    """A plot cannot be made from what was given (no rows, an unknown file type)."""


class PlotUnavailable(PlotError):
    """matplotlib is not installed."""


@dataclass(frozen=True)
class Series:
    """One line: a name (its SVG id, and its legend unless ``label`` says otherwise), a unit
    for the axis, and y per x."""

    name: str
    unit: str
    values: Sequence[float | None]
    label: str | None = None


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("plots need matplotlib: pip install 'bijli[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _check_path(path: "str | Path") -> Path:
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise PlotError(f"{p}: a plot is written as .png or .svg, not {p.suffix or 'no suffix'!r}")
    return p


def check(path: "str | Path") -> Path:
    """Refuse early what would fail late: a file type we do not write, or no matplotlib
    (a command checks before it spends a meter association on reading what it would plot)."""
    p = _check_path(path)
    _pyplot()
    return p


def time_series(path: "str | Path", times: Sequence[datetime], series: Sequence[Series], *, title: str) -> Path:
    """A line per series against time, one panel per unit (stacked, sharing the time
    axis: volts, amperes and watt-hours do not share a scale), to ``path``."""
    p = _check_path(path)
    if not times or not series:
        raise PlotError(f"{title}: nothing to plot (no rows)")
    for s in series:
        if len(s.values) != len(times):
            raise PlotError(f"{title}: series {s.name} has {len(s.values)} values for {len(times)} times")
    units = list(dict.fromkeys(s.unit for s in series))
    plt = _pyplot()
    height = max(SIZE_INCHES[1], 2.2 * len(units))
    fig, panels = plt.subplots(len(units), 1, sharex=True, squeeze=False, figsize=(SIZE_INCHES[0], height), dpi=DPI)
    try:
        axes = {unit: panels[i][0] for i, unit in enumerate(units)}
        for i, s in enumerate(series):
            a = axes[s.unit]
            (line,) = a.plot(list(times), [float("nan") if v is None else float(v) for v in s.values],
                             label=s.label or s.name, color=f"C{i % 10}", linewidth=1.2)
            line.set_gid(f"series-{s.name}")
        for unit, a in axes.items():
            a.set_ylabel(unit or "value")
            a.grid(True, alpha=0.3)
            a.legend(loc="upper left", fontsize="small")
        panels[0][0].set_title(title)
        fig.autofmt_xdate()
        fig.tight_layout()
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=DPI)
    finally:
        plt.close(fig)
    return p


def histogram(path: "str | Path", values: Sequence[float], *, title: str, unit: str, bins: int = 40) -> Path:
    """The distribution of ``values`` (e.g. delivery latencies), to ``path``."""
    p = _check_path(path)
    if not values:
        raise PlotError(f"{title}: nothing to plot (no values)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE_INCHES, dpi=DPI)
    try:
        ax.hist(list(values), bins=bins, color="C0", gid="series-histogram")
        ax.set_xlabel(unit)
        ax.set_ylabel("count")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=DPI)
    finally:
        plt.close(fig)
    return p
