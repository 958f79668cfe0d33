"""`bijli profile ... --plot FILE`: a profile generic buffer's rows as a picture.

A profile (IEC 62056-6-2 clause 4.3.6, interface class 7) is a table whose
capture objects name its columns; an IS 15959 load profile has the clock (class
8, attribute 2) as one column and registers as the others, its billing history the
billing date (0.0.0.1.2.255, a date-time) instead of the clock. This module turns
the rows a :class:`bijli.dlms.client.Client` read into one line per numeric
register column against that time column, each value with its
register's scaler_unit applied (attribute 3, so a voltage is 230.1 V, not 23010),
one panel per unit (:func:`bijli.tools.plot.time_series`). Columns that are not
numbers (status words, octet strings) are left out; a profile with no clock
column or no numeric column is a :class:`~bijli.tools.plot.PlotError`. A
date-time column that is not the time axis (the time of a maximum demand) is not
a number and is left out too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

CLOCK_CLASS, CLOCK_TIME = 8, 2


def _when(value) -> datetime | None:
    from bijli.dlms import axdr
    from bijli.dlms.errors import DlmsError

    raw = getattr(value, "value", None)
    if isinstance(raw, axdr.CosemDateTime):
        when = raw
    elif isinstance(raw, bytes) and len(raw) == 12:
        try:
            when = axdr.CosemDateTime.decode(raw)
        except DlmsError:
            return None
    else:
        return None
    try:
        return when.to_datetime().replace(tzinfo=None)  # meter time, as the meter shows it
    except (DlmsError, ValueError, TypeError):
        return None  # a wildcard date-time has no place on a time axis


def _number(value) -> float | None:
    raw = getattr(value, "value", None)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw)


def _time_column(columns, rows) -> int | None:
    """The clock column, or else the first column that holds a date-time in every row."""
    for i, (class_id, _, attribute, _) in enumerate(columns):
        if class_id == CLOCK_CLASS and attribute == CLOCK_TIME:
            return i
    for i in range(len(columns)):
        if rows and all(_when(row[i]) is not None for row in rows):
            return i
    return None


def plot_profile(path: "str | Path", obis, columns, rows, scalers, *, title: str) -> tuple[Path, int, int]:
    """Plot ``rows`` (lists of COSEM values, one per capture object in ``columns``:
    (class, OBIS, attribute, data index)) to ``path``; ``scalers`` holds each column's
    (scaler, unit) or None. Returns (the file, rows plotted, series drawn)."""
    from bijli.dlms.cosem.units import Unit
    from bijli.tools import plot
    from bijli.tools.commands.obis_names import obis_name

    clock = _time_column(columns, rows)
    if clock is None:
        raise plot.PlotError(f"profile {obis} has no clock or date-time column to plot against")
    kept = [(row, _when(row[clock])) for row in rows]
    kept = [(row, when) for row, when in kept if when is not None]
    if not kept:
        raise plot.PlotError(f"profile {obis}: nothing to plot (no rows with a time)")
    times = [when for _, when in kept]
    series = []
    for i, (class_id, ln, attribute, _) in enumerate(columns):
        if i == clock:
            continue
        values = [_number(row[i]) for row, _ in kept]
        if all(v is None for v in values):
            continue
        unit = ""
        if scalers[i] is not None:
            scaler, unit_code = scalers[i]
            values = [None if v is None else v * 10 ** scaler for v in values]
            try:
                unit = Unit(unit_code).symbol
            except ValueError:
                unit = f"unit {unit_code}"
        name = f"{ln}:{attribute}"
        series.append(plot.Series(name, unit, values, label=f"{obis_name(ln) or ln}"))
    if not series:
        raise plot.PlotError(f"profile {obis}: no numeric column to plot")
    return plot.time_series(path, times, series, title=title), len(times), len(series)
