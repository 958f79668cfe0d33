"""The common frame of every COSEM interface class (IEC 62056-6-2 clause 4).

An interface class is a numbered set of attributes and methods; an object is an
instance with a logical name (attribute 1). Each class here lists its attribute
and method names in order, as the standard's class description does, and
implements ``get_<name>`` / ``set_<name>`` / ``<name>`` (method) hooks. The
server never touches an object's internals: it calls :meth:`CosemObject.get`,
:meth:`~CosemObject.set` and :meth:`~CosemObject.invoke`, which dispatch by
index and turn a missing hook into the proper data-access-result.

Objects hold no meter logic: values come from callables that ``firmware.cosem``
binds to live firmware state, so the same classes serve any meter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, ClassVar

from bijli.dlms import axdr
from bijli.dlms.apdu import AccessSelection, ActionResult, DataAccessResult
from bijli.dlms.axdr import Data
from bijli.dlms.errors import DlmsError
from bijli.dlms.obis import Obis


class CosemError(DlmsError):
    """An attribute or method access that the object refuses, with the result code to send."""

    def __init__(self, result: int, message: str = ""):
        super().__init__(message or f"refused with result {result}")
        self.result = result


def refuse(result: DataAccessResult = DataAccessResult.TYPE_UNMATCHED, message: str = "") -> CosemError:
    return CosemError(result, message)


class AttributeAccess(IntEnum):
    """attribute access_mode (Association LN version 2/3)."""

    NO_ACCESS = 0
    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_WRITE = 3
    AUTHENTICATED_READ_ONLY = 4
    AUTHENTICATED_WRITE_ONLY = 5
    AUTHENTICATED_READ_WRITE = 6

    # (the sets are looked up as module globals: reading four members as class attributes
    # costs about a microsecond on Python 3.11, and every GET asks)
    @property
    def readable(self) -> bool:
        return self in _READABLE

    @property
    def writable(self) -> bool:
        return self in _WRITABLE


_READABLE = frozenset({AttributeAccess.READ_ONLY, AttributeAccess.READ_WRITE, AttributeAccess.AUTHENTICATED_READ_ONLY,
                       AttributeAccess.AUTHENTICATED_READ_WRITE})
_WRITABLE = frozenset({AttributeAccess.WRITE_ONLY, AttributeAccess.READ_WRITE, AttributeAccess.AUTHENTICATED_WRITE_ONLY,
                       AttributeAccess.AUTHENTICATED_READ_WRITE})


class MethodAccess(IntEnum):
    NO_ACCESS = 0
    ACCESS = 1
    AUTHENTICATED_ACCESS = 2


@dataclass
class Context:
    """What an object may know about the request it serves: which association asks."""

    client_sap: int
    association: Any = None  # the server's per-connection association state


class CosemObject:
    CLASS_ID: ClassVar[int]
    VERSION: ClassVar[int] = 0
    ATTRIBUTES: ClassVar[tuple[str, ...]] = ("logical_name",)
    METHODS: ClassVar[tuple[str, ...]] = ()
    # attributes that accept selective access, with the selectors they know
    SELECTORS: ClassVar[dict[int, tuple[int, ...]]] = {}

    def __init__(self, logical_name: "Obis | str"):
        self.logical_name = Obis.parse(logical_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.logical_name})"

    def access_selectors(self, index: int) -> tuple[int, ...]:
        """The selective-access selectors attribute ``index`` supports, as the Association
        LN object list's attribute_access_item advertises them (empty: none, sent as null)."""
        return tuple(self.SELECTORS.get(index, ()))

    # --- dispatch -----------------------------------------------------------------
    def get(self, index: int, selection: AccessSelection | None = None, ctx: Context | None = None) -> Data:
        name = self._attribute_name(index)
        if selection is not None and selection.selector not in self.SELECTORS.get(index, ()):
            raise CosemError(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED, f"{name}: no selective access {selection.selector}")
        hook = getattr(self, f"get_{name}", None)
        if hook is None:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, f"{name} is not readable")
        if index in self.SELECTORS:
            return hook(selection, ctx)
        return hook(ctx)

    def set(self, index: int, value: Data, ctx: Context | None = None) -> None:
        name = self._attribute_name(index)
        hook = getattr(self, f"set_{name}", None)
        if hook is None:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, f"{name} is not writable")
        hook(value, ctx)

    def invoke(self, index: int, parameters: Data | None, ctx: Context | None = None) -> Data | None:
        if not 1 <= index <= len(self.METHODS):
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"{type(self).__name__} has no method {index}")
        hook = getattr(self, f"do_{self.METHODS[index - 1]}", None)
        if hook is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"method {self.METHODS[index - 1]} not implemented")
        return hook(parameters, ctx)

    def _attribute_name(self, index: int) -> str:
        if not 1 <= index <= len(self.ATTRIBUTES):
            raise CosemError(DataAccessResult.OBJECT_UNAVAILABLE, f"{type(self).__name__} has no attribute {index}")
        return self.ATTRIBUTES[index - 1]

    # --- attribute 1 --------------------------------------------------------------
    def get_logical_name(self, ctx) -> Data:
        return axdr.OctetString(bytes(self.logical_name))


# --- helpers for hooks -------------------------------------------------------------


def expect(value: Data, *types: type) -> Data:
    """The value if it is one of ``types``; otherwise the type-unmatched refusal."""
    if not isinstance(value, types):
        raise CosemError(DataAccessResult.TYPE_UNMATCHED,
                         f"expected {' or '.join(t.__name__ for t in types)}, got {type(value).__name__}")
    return value


Getter = Callable[[], Data]
Setter = Callable[[Data], None]
