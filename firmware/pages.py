"""Profile pages: a run of consecutive profile entries packed into one compact blob.

A fleet shard (:mod:`firmware.shard`) keeps the load profiles and event logs of
hundreds of thousands of meters; one sqlite row per entry (JSON values, key, CRC) is
about 5 KB per meter-day, eight times issue 12's disk budget (5 GB for 250,000 meters
over a month: ~660 bytes per meter-day). A *page* holds the entries of one profile of
one meter column by column (a Profile generic buffer is a table, IEC 62056-6-2 class 7:
one capture object per column), each column in the most compact form its values fit
exactly, packed with :mod:`struct` and compressed with zlib:

* whole numbers (Wh, varh and VAh energies, event codes, minutes) as a base and
  fixed-width deltas (none at all for a constant column);
* decimal fractions captured at a register's resolution (V and A to 0.01, PF to
  0.001) as whole numbers of that resolution, the same way;
* naive date-times as microseconds, as deltas; a column that is the capture time
  itself costs nothing (it is the entry's time);
* anything else (a string, money as Decimal, an aware date-time, a float that is no
  short decimal, a number beyond 64 bits, a bool) as the very JSON a per-entry row
  holds (:func:`firmware.storage.dumps`), so no value ever loses precision.

:func:`unpack` gives back exactly what a per-entry row gives back after its JSON round
trip (:func:`firmware.storage.loads`): a value kept packed is chosen only when it
decodes to an equal value of the same type, bit for bit for floats. Sans-IO: bytes in,
entries out; the shard stores, checks (CRC) and queries the pages.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from datetime import datetime, timedelta
from typing import Any, Sequence

from bijli.firmware.errors import StorageError
from bijli.firmware.storage import dumps, loads

FORMAT = 1  # the page format (first byte of the uncompressed body)
_ROWS_AS_JSON = 2  # the whole page as JSON: entries whose values are not one table

# column encodings (one byte before each column)
_JSON, _INT, _DECIMAL, _FLOAT, _NONE, _CAPTURE_TIME, _TIME = range(7)

#: decimal places tried for a float column: V, A to 0.01 and PF to 0.001 fit; at most
#: micro-units, beyond which a double is no short decimal anyway
_MAX_DECIMALS = 6
_EPOCH = datetime.min
_US = timedelta(microseconds=1)
_I64 = 2**63
_WIDTHS = ((1, "b"), (2, "h"), (4, "i"), (8, "q"))


class PageError(StorageError):
    """A page's bytes do not decode (its CRC passed: a bug, or a page of a newer format)."""


Entry = tuple[int, datetime, list]  # seq, time, values: what a Row holds


def _ints(xs: Sequence[int]) -> bytes | None:
    """A base and deltas of the smallest fixed width that holds them; None beyond 64 bits."""
    if not all(-_I64 <= x < _I64 for x in xs):
        return None
    deltas = [b - a for a, b in zip(xs, xs[1:])]
    if not any(deltas):
        return struct.pack(">qB", xs[0], 0)
    for width, code in _WIDTHS:
        lim = 1 << (8 * width - 1)
        if all(-lim <= d < lim for d in deltas):
            return struct.pack(f">qB{len(deltas)}{code}", xs[0], width, *deltas)
    return None


def _read_ints(buf: memoryview, pos: int, n: int) -> tuple[list[int], int]:
    base, width = struct.unpack_from(">qB", buf, pos)
    pos += 9
    if width == 0:
        return [base] * n, pos
    code = dict(_WIDTHS)[width]
    deltas = struct.unpack_from(f">{n - 1}{code}", buf, pos)
    pos += width * (n - 1)
    out = [base]
    for d in deltas:
        out.append(out[-1] + d)
    return out, pos


def _same_float(a: float, b: float) -> bool:
    return struct.pack(">d", a) == struct.pack(">d", b)


def _decimals(xs: Sequence[float]) -> tuple[int, list[int]] | None:
    """The fewest decimal places k at which every float is the double nearest n / 10**k
    (what ``round(x, k)`` gives): then n is stored and n / 10**k (correctly rounded) is x."""
    if not all(math.isfinite(x) for x in xs):
        return None
    for k in range(_MAX_DECIMALS + 1):
        scale = 10**k
        try:
            ns = [round(x * scale) for x in xs]
        except OverflowError:  # x * scale beyond a double: no short decimal
            return None
        if all(_same_float(n / scale, x) for n, x in zip(ns, xs)):
            return k, ns
    return None


def _json(values: list) -> bytes:
    text = dumps(values).encode("utf-8")
    return struct.pack(">BI", _JSON, len(text)) + text


def _column(values: list, times: list[datetime]) -> bytes:
    """One column in the most compact form that gives every value back exactly."""
    kinds = {type(v) for v in values}
    if kinds == {type(None)}:
        return bytes([_NONE])
    if kinds == {datetime}:
        if all(v.isoformat() == t.isoformat() for v, t in zip(values, times)):
            return bytes([_CAPTURE_TIME])
        if all(v.tzinfo is None for v in values):
            packed = _ints([(v - _EPOCH) // _US for v in values])
            if packed is not None:
                return bytes([_TIME]) + packed
    if kinds == {int}:
        packed = _ints(values)
        if packed is not None:
            return bytes([_INT]) + packed
    if kinds == {float}:
        dec = _decimals(values)
        if dec is not None:
            packed = _ints(dec[1])
            if packed is not None:
                return bytes([_DECIMAL, dec[0]]) + packed
        return bytes([_FLOAT]) + struct.pack(f">{len(values)}d", *values)
    return _json(values)


def _read_column(buf: memoryview, pos: int, n: int, times: list[datetime]) -> tuple[list, int]:
    tag = buf[pos]
    pos += 1
    if tag == _NONE:
        return [None] * n, pos
    if tag == _CAPTURE_TIME:
        return list(times), pos
    if tag == _TIME:
        us, pos = _read_ints(buf, pos, n)
        return [_EPOCH + u * _US for u in us], pos
    if tag == _INT:
        return _read_ints(buf, pos, n)
    if tag == _DECIMAL:
        scale = 10 ** buf[pos]
        ns, pos = _read_ints(buf, pos + 1, n)
        return [m / scale for m in ns], pos
    if tag == _FLOAT:
        return list(struct.unpack_from(f">{n}d", buf, pos)), pos + 8 * n
    if tag == _JSON:
        (length,) = struct.unpack_from(">I", buf, pos)
        pos += 4
        values = loads(bytes(buf[pos:pos + length]).decode("utf-8"))
        if not isinstance(values, list) or len(values) != n:
            raise PageError("a JSON column holds the wrong number of values")
        return values, pos + length
    raise PageError(f"unknown column encoding {tag}")


def pack(entries: Sequence[Entry]) -> bytes:
    """Consecutive entries (seq, time, values) of one profile as one compressed page.
    The page does not hold the first sequence number: its key in the shard does."""
    if not entries:
        raise PageError("a page holds at least one entry")
    seqs = [e[0] for e in entries]
    if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        raise PageError(f"a page holds consecutive entries, not {seqs[:3]}...")
    n = len(entries)
    # an entry's time is kept as its ISO text was (a per-entry row's ``time`` column)
    times = [datetime.fromisoformat(e[1].isoformat()) for e in entries]
    rows = [e[2] for e in entries]
    ncol = len(rows[0]) if isinstance(rows[0], (list, tuple)) else -1
    if n > 0xFFFF or not 0 <= ncol <= 255 or any(not isinstance(r, (list, tuple)) or len(r) != ncol for r in rows):
        body = bytes([_ROWS_AS_JSON]) + dumps([[t, r] for t, r in zip(times, rows)]).encode("utf-8")
        return zlib.compress(body, 9)
    parts = [struct.pack(">BHB", FORMAT, n, ncol), _column(times, times)]
    # the row times themselves: the capture-time shortcut cannot apply, so naive times
    # pack as deltas and aware ones as JSON (as a per-entry row keeps them)
    if parts[1][0] == _CAPTURE_TIME:
        packed = _ints([(t - _EPOCH) // _US for t in times]) if all(t.tzinfo is None for t in times) else None
        parts[1] = bytes([_TIME]) + packed if packed is not None else _json(times)
    parts += [_column([r[c] for r in rows], times) for c in range(ncol)]
    return zlib.compress(b"".join(parts), 9)


def unpack(data: bytes, first: int) -> list[Entry]:
    """The entries of a page whose first sequence number is ``first``; PageError when
    the bytes do not decode."""
    try:
        buf = memoryview(zlib.decompress(data))
        if buf[0] == _ROWS_AS_JSON:
            rows = loads(bytes(buf[1:]).decode("utf-8"))
            return [(first + i, t, r) for i, (t, r) in enumerate(rows)]
        if buf[0] != FORMAT:
            raise PageError(f"page format {buf[0]} is not {FORMAT}")
        _, n, ncol = struct.unpack_from(">BHB", buf, 0)
        times, pos = _read_column(buf, 4, n, [])
        columns = []
        for _ in range(ncol):
            col, pos = _read_column(buf, pos, n, times)
            columns.append(col)
        if pos != len(buf):
            raise PageError("bytes left over after the last column")
    except PageError:
        raise
    except (zlib.error, struct.error, IndexError, KeyError, ValueError, TypeError, UnicodeDecodeError,
            json.JSONDecodeError, OverflowError) as exc:
        raise PageError(f"a page does not decode ({exc})") from exc
    return [(first + i, times[i], [col[i] for col in columns]) for i in range(n)]
