"""Records: firmware state as the JSON documents :mod:`firmware.storage` keeps, by type.

Every part of the firmware keeps its state as a frozen dataclass and commits it
whole with each step (``storage``'s one-transaction rule). Instead of a hand-written
``to_dict``/``from_dict`` pair per class, :func:`to_record` and :func:`from_record`
convert any such dataclass by its field types: Decimal as its exact text (money is
never a float on its way to disk), date-times and dates as ISO 8601 text, octets as
hex, enums as their value, nested dataclasses and tuples of them recursively. A field marked
``field(metadata=NOT_STORED)`` (configuration a state carries but does not own) is
left out and must be given back to :func:`from_record`. Reading is lenient where old
records differ only in form (a date-time the storage layer already decoded, a number
where text is expected) and strict where the meaning would change (a flag that is not
a boolean, a missing field, an amount given as a float): a record that does not fit raises
:class:`bijli.firmware.errors.StorageError` and nothing is built from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import types
import typing
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, TypeVar

from bijli.firmware.errors import StorageError

#: ``field(metadata=NOT_STORED)``: the field is not part of the stored record
NOT_STORED = {"stored": False}

T = TypeVar("T")


def stored_fields(cls: type) -> list[dataclasses.Field]:
    return list(_stored_fields(cls))


# A class's fields and type hints do not change while the program runs, and every
# committed step converts a dozen records: found once per class, not per record.
@functools.lru_cache(maxsize=None)
def _stored_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.metadata.get("stored", True))


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.lru_cache(maxsize=None)
def _stored_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in _stored_fields(cls))


def to_record(obj: Any) -> dict[str, Any]:
    """The JSON-ready record of dataclass ``obj`` (its stored fields, by name)."""
    return {name: _out(getattr(obj, name)) for name in _stored_names(type(obj))}


def _same(value: Any) -> Any:
    return value


#: what the values of exactly these types become, found by type first: every committed step
#: converts a dozen records of mostly numbers and text, and the chain of isinstance checks
#: below (an enum first, since an IntEnum is also an int) was most of it. A subclass (an
#: enum, a bool) is not in here by its own type and takes the chain, which decides as before.
_OUT_BY_TYPE: dict[type, Any] = {type(None): _same, bool: _same, int: _same, float: _same, str: _same,
                                 Decimal: lambda v: format(v, "f"), dt.datetime: dt.datetime.isoformat,
                                 dt.date: dt.date.isoformat}


def _out(value: Any) -> Any:
    convert = _OUT_BY_TYPE.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, enum.Enum):  # before int and str: an IntEnum is also an int
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value):
        return to_record(value)
    if isinstance(value, (tuple, list)):
        return [_out(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _out(v) for k, v in value.items()}
    raise TypeError(f"cannot keep a {type(value).__name__} in a record")


def from_record(cls: type[T], record: Mapping[str, Any], **given: Any) -> T:
    """Build ``cls`` from its record; ``given`` supplies the fields that are not stored.
    Raises StorageError (naming ``cls``) when the record does not fit the field types."""
    try:
        return _build(cls, record, given)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise StorageError(f"stored {cls.__name__} state is corrupt: {exc!r}") from None


def _build(cls: type[T], record: Any, given: Mapping[str, Any]) -> T:
    if not isinstance(record, Mapping):
        raise TypeError(f"{cls.__name__}: expected a mapping, got {record!r}")
    hints = _type_hints(cls)
    values = dict(given)
    for f in _stored_fields(cls):  # a record as written holds every stored field
        if f.name not in record:
            raise KeyError(f"{cls.__name__}.{f.name}")
        values[f.name] = _in(hints[f.name], record[f.name])
    return cls(**values)


def _in(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if set(inner) == {int, float}:  # a number that may be whole: kept as it was stored
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"expected a number, got {value!r}")
            return value
        (only,) = inner
        return _in(only, value)
    if tp is Any:
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r}")
        return tuple(_in(args[0], v) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    if tp is Decimal:
        if isinstance(value, (bool, float)):
            raise TypeError(f"an exact amount is text, not {value!r}")
        return Decimal(value) if isinstance(value, (Decimal, int)) else Decimal(str(value))
    if tp is bytes:
        return value if isinstance(value, bytes) else bytes.fromhex(value)
    if tp is dt.datetime:
        return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    if tp is dt.date:
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected a whole number, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, {})
    raise TypeError(f"no record conversion for {tp!r}")
