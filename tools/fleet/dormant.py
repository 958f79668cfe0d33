"""The dormant record: a powered fleet meter's RAM as a few compressed bytes.

A fleet engine meter that nobody observes is kept as one record of its RAM
(:meth:`firmware.meter.Meter.volatile`, its sample source, its load, its clock setting,
its invocation counters; see :mod:`tools.fleet.engine`), ``pickle`` d and compressed.
Two things in that RAM are not the meter's own and made up most of it:

* its **configuration**: the prepaid account, the limiter and metrology hold the very
  configuration objects the meter was built with. Those are the fleet's shared
  configuration (identical for every meter of the fleet but its identity), so they are
  written as references (a pickler's dispatch table, Python library reference
  ``pickle`` "Dispatch Tables"): the object's path in the meter's configuration,
  resolved against the configuration the meter is hydrated with, which
  :func:`tools.node.fleet.member_config` derives again from the meter's index alone.
  An object the meter changed (a tariff programmed over DLMS) is not in that tree and
  is written whole, as before.
* its synthetic source's **random generator** (2.5 KB of Mersenne Twister state): it
  only ever draws noise, so while the source has drawn none it is still exactly
  ``Random(seed)`` and is written as a reference to the seed.

The record therefore holds only what differs between meters; what it reads back is
the same RAM, object for object equal (the differential test compares every read).
"""

from __future__ import annotations

import contextvars
import copyreg
import dataclasses
import io
import pickle
import random
import zlib
from typing import Any

ZLIB_LEVEL = 1  # a dormant record is written at every eviction: fast beats small here


def shared_paths(config: Any) -> dict[int, tuple]:
    """id -> path of every dataclass object reachable from ``config`` (fields and items
    of tuples), the persistent ids a record may refer to. The root's own path is ()."""
    out: dict[int, tuple] = {}

    def walk(obj: Any, path: tuple) -> None:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            if id(obj) in out:
                return
            out[id(obj)] = path
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name), path + (f.name,))
        elif isinstance(obj, tuple):
            for i, item in enumerate(obj):
                walk(item, path + (i,))

    walk(config, ())
    return out


def _resolve(config: Any, path: tuple) -> Any:
    obj = config
    for step in path:
        obj = obj[step] if isinstance(step, int) else getattr(obj, step)
    return obj


# What a record's references resolve against while it is read (set by :func:`unpack`).
_reading: contextvars.ContextVar[tuple[Any, int]] = contextvars.ContextVar("dormant_record")


def _shared(path: tuple) -> Any:
    """Unpickling a reference: the object at ``path`` of the configuration being hydrated."""
    return _resolve(_reading.get()[0], path)


def _fresh_rng() -> random.Random:
    """Unpickling an unused generator: Random(seed) again, exactly."""
    return random.Random(_reading.get()[1])


class Layout:
    """Where the shared objects are in a fleet's meter configurations. Every meter's
    configuration is the fleet's base with another identity, so the paths are found once
    (walking the configuration's dataclasses is slow: half a millisecond) and each
    record's configuration is only looked up along them, each object checked to be of
    the type found there (a configuration of another shape is walked afresh).

    The paths are grouped by the configuration's field they start from. A member's
    configuration shares every section but its identity and STS settings with the others
    (:func:`tools.node.fleet.member_config`), so a group whose section is the very object
    the last table found there, a frozen dataclass with only frozen dataclasses below it
    (nothing in it can be replaced), holds the same objects again: its entries are reused
    rather than resolved path by path (42 lookups a record, a third of a dormant record's
    writing)."""

    def __init__(self) -> None:
        self._paths: list[tuple[tuple, type]] | None = None
        self._groups: list[tuple[str | None, list[tuple[tuple, type]]]] = []  # first field -> its paths
        self._reuse: dict[str, tuple[Any, list[tuple[int, tuple, Any]]]] = {}  # field -> (section, entries)

    def table(self, config: Any) -> dict[int, tuple[tuple, Any]]:
        """id -> (path, object) of the shared objects of ``config``."""
        if self._paths is not None:
            out: dict[int, tuple[tuple, Any]] = {}
            try:
                for field, paths in self._groups:
                    if field is not None:
                        section = getattr(config, field)
                        kept = self._reuse.get(field)
                        if kept is not None and kept[0] is section:
                            for i, path, obj in kept[1]:
                                out.setdefault(i, (path, obj))
                            continue
                    entries = []
                    for path, kind in paths:
                        obj = _resolve(config, path)
                        if type(obj) is not kind:
                            raise TypeError(path)
                        entries.append((id(obj), path, obj))
                        out.setdefault(id(obj), (path, obj))
                    if field is not None and _frozen_all(entries):
                        self._reuse[field] = (section, entries)
                return out
            except (AttributeError, IndexError, TypeError):
                pass
        paths = shared_paths(config)
        objects = _objects(config)
        self._paths = [(path, type(objects[i])) for i, path in paths.items()]
        self._groups = []
        for path, kind in self._paths:
            field = path[0] if path else None
            if self._groups and self._groups[-1][0] == field and field is not None:
                self._groups[-1][1].append((path, kind))
            else:
                self._groups.append((field, [(path, kind)]))
        self._reuse = {}
        return {i: (path, objects[i]) for i, path in paths.items()}


def _frozen_all(entries: list[tuple[int, tuple, Any]]) -> bool:
    return all(dataclasses.is_dataclass(obj) and type(obj).__dataclass_params__.frozen for _, _, obj in entries)


def _pickler(buf: io.BytesIO, config: Any, source: Any, layout: Layout) -> pickle.Pickler:
    """A pickler that writes the shared objects as references. A dispatch table (consulted
    only for objects of the shared objects' types, so the thousands of floats in a
    record cost nothing extra) rather than ``persistent_id``, which pickle calls for
    every object."""
    shared = layout.table(config)
    rng = unused_rng(source)
    protocol = pickle.HIGHEST_PROTOCOL

    def by_reference(obj: Any) -> Any:
        entry = shared.get(id(obj))
        if entry is not None and entry[1] is obj:
            return _shared, (entry[0],)
        return obj.__reduce_ex__(protocol)

    def generator(obj: Any) -> Any:
        return (_fresh_rng, ()) if obj is rng else obj.__reduce_ex__(protocol)

    table = dict(copyreg.dispatch_table)
    table.update({type(obj): by_reference for _, obj in shared.values()})
    table[random.Random] = generator
    p = pickle.Pickler(buf, protocol=protocol)
    p.dispatch_table = table
    return p


def _objects(config: Any) -> dict[int, Any]:
    found: dict[int, Any] = {}

    def walk(obj: Any) -> None:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            if id(obj) in found:
                return
            found[id(obj)] = obj
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name))
        elif isinstance(obj, tuple):
            for item in obj:
                walk(item)

    walk(config)
    return found


def unused_rng(source: Any) -> Any:
    """The synthetic source's generator while it is still exactly Random(seed): it has
    drawn no noise (the only thing it draws). None otherwise, or for another source."""
    rng = getattr(source, "_rng", None)
    if isinstance(rng, random.Random) and getattr(source, "_noise", True) is None:
        return rng
    return None


def pack(ram: dict, config: Any, source: Any, layout: Layout | None = None) -> bytes:
    """``ram`` as a record, ``config`` (the meter's MeterConfig) and an unused generator of
    ``source`` by reference (``layout``: the fleet's, found once)."""
    buf = io.BytesIO()
    _pickler(buf, config, source, layout or Layout()).dump(ram)
    return zlib.compress(buf.getvalue(), ZLIB_LEVEL)


def unpack(blob: bytes, config: Any, seed: int) -> dict:
    """The RAM :func:`pack` recorded, its references resolved against ``config`` (the
    same meter's configuration, built again) and ``seed`` (its source's seed)."""
    token = _reading.set((config, seed))
    try:
        return pickle.loads(zlib.decompress(blob))
    finally:
        _reading.reset(token)
