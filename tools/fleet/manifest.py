"""A fleet's manifest file: every meter's row, written one meter per line, merged by index.

A manifest is one JSON document, ``{"count": N, "clock": ..., "meters": [row, ...]}``
with the rows of :func:`tools.node.meter_node.manifest_row` plus each meter's index:
what a head-end needs to reach each meter (its IEC 62056-47 wrapper endpoint, DLMS
security suite 0 keys) and a vending system to vend for it (IEC 62055-41 key parameters).
A shard writes its own; ``bijli fleet --processes`` merges its shards' (rows by meter
index, as shards on many machines merge). At 250,000 meters a manifest is about
240 MB: it is written row by row with the C JSON encoder, one meter per line (what a
``grep`` of a serial finds), not indented (Python's indenting encoder is pure Python,
about ten times slower: 12 s for 125,000 rows here), and atomically (a reader never
sees half of one). Because every row is one line that begins with its index, and a
shard writes its rows in index order, the supervisor merges its shards' files line by
line (:func:`merge_files`: a heap merge on the index, no JSON parsed or encoded again);
parsing and re-encoding 250,000 rows took 10-20 s of its start-up here.

The supervisor's merged manifest also says where its meters are served: ``shards`` (N:
meter ``i`` is served by shard ``i % N``) and ``host_cores`` (the cores of the one host
its N shard processes share). A head-end may use them to keep its concurrent
associations on a few shard processes at a time (``bijli storm``: spread over 14
processes on two cores, a meter cost a shard almost twice the CPU); a manifest merged
from shards on many hosts has no ``host_cores``.
"""

from __future__ import annotations

import heapq
import json
from pathlib import Path
from typing import Iterator

from bijli.tools.errors import UsageError


_ROWS_OPEN = '"meters": ['
_ROW_START = '{"index": '


def write_manifest(path: Path, manifest: dict) -> None:
    """Write ``manifest`` to ``path`` through a temporary file beside it, replaced at once:
    its other fields on the first line, then one row per line (``index`` first)."""
    head = {k: v for k, v in manifest.items() if k != "meters"}
    _write(path, head, (json.dumps(row) for row in manifest["meters"]))


def _write(path: Path, head: dict, rows: Iterator[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(head)[:-1] + (", " if head else "") + _ROWS_OPEN + "\n")
        first = True
        for row in rows:
            f.write(row if first else ",\n" + row)
            first = False
        f.write("\n]}\n")
    tmp.replace(path)


def merge_files(parts: list[Path], path: Path, head: dict | None = None) -> int:
    """Merge the shards' manifest files ``parts`` (as :func:`write_manifest` writes them,
    each in index order) into ``path``, as :func:`merge_manifests` would, with the fields
    of ``head`` added to its own; returns the number of meters. A file in another form
    (hand-edited, indented) is parsed whole."""
    streams = []
    try:
        heads = []
        for part in parts:
            f = open(part, encoding="utf-8")
            streams.append(f)
            line = f.readline().rstrip()
            if not line.endswith(_ROWS_OPEN):
                return _merge_parsed(parts, path, head)
            heads.append(json.loads(line + "]}"))
        expected = sum(h.get("count", 0) for h in heads)

        def checked(merged):
            count, last = 0, None
            for index, row in merged:
                if index == last:
                    raise UsageError("the shards' manifests overlap: two shards hold the same meter")
                last = index
                count += 1
                yield row
            if count != expected:  # a part's count is not its rows: parse them instead
                raise _NotLines(parts)
        try:
            merged = heapq.merge(*(_rows(f, part) for f, part in zip(streams, parts)))
            _write(path, {"count": expected, "clock": heads[0]["clock"] if heads else "sim", **(head or {})},
                   checked(merged))
        except _NotLines:
            return _merge_parsed(parts, path, head)
        return expected
    finally:
        for f in streams:
            f.close()


class _NotLines(Exception):
    """A part is not one row per line in index order: parse it whole instead."""


def _rows(f, part: Path) -> Iterator[tuple[int, str]]:
    previous = -1
    for line in f:
        line = line.rstrip("\n")
        if line == "]}":
            return
        if line.endswith(","):
            line = line[:-1]
        if not line.startswith(_ROW_START):
            raise _NotLines(part)
        try:
            index = int(line[len(_ROW_START):line.index(",", len(_ROW_START))])
        except ValueError:
            raise _NotLines(part) from None
        if index <= previous:
            raise _NotLines(part)
        previous = index
        yield index, line
    raise _NotLines(part)  # no closing line: a file cut short


def _merge_parsed(parts: list[Path], path: Path, head: dict | None) -> int:
    merged = merge_manifests([json.loads(part.read_text(encoding="utf-8")) for part in parts])
    write_manifest(path, {**merged, **(head or {})})
    return merged["count"]


def merge_manifests(parts: list[dict]) -> dict:
    """One manifest of the shards' ``parts``: rows in index order; two shards with the same
    meter are a UsageError (they were started with different shard counts)."""
    rows = sorted((row for part in parts for row in part["meters"]), key=lambda r: r["index"])
    indices = [r["index"] for r in rows]
    if len(set(indices)) != len(indices):
        raise UsageError("the shards' manifests overlap: two shards hold the same meter")
    return {"count": len(rows), "clock": parts[0]["clock"] if parts else "sim", "meters": rows}
