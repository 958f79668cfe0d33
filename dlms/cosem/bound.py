"""Interface classes declared as tables: attribute types, bindings, method handlers
(IEC 62056-6-2 clause 4: each class is its list of typed attributes and methods).

Most COSEM classes are nothing but typed values the firmware owns. A
:class:`BoundObject` subclass states its ``ATTRIBUTES`` and ``METHODS`` in the
standard's order and the A-XDR type of each (``TYPES``, ``PARAMS``, as
:class:`~dlms.cosem.values.Codec`); the firmware binding passes, by keyword:

* ``<attribute>=getter`` (a callable returning the Python value) or a constant;
* ``set_<attribute>=setter`` to make the attribute writable (it receives the
  strictly parsed Python value and may raise CosemError to refuse it);
* ``on_<method>=handler`` to implement a method (it receives the parsed
  parameter, or nothing for ``integer (0)`` methods, and returns None or Data).

Only what is bound exists: an attribute without a setter has no ``set_`` hook, so
the access rights the association reports (``hasattr``) match what the object
accepts. Classes may still define explicit ``get_`` / ``set_`` / ``do_`` hooks,
which take precedence.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from bijli.dlms.cosem.base import CosemError, CosemObject
from bijli.dlms.apdu import ActionResult
from bijli.dlms.cosem.values import Codec, getter, mismatch, no_parameter

NO_PARAMETER = None  # PARAMS entry for ``data ::= integer (0)``


_WITHOUT_HOOK: dict[type, tuple[str, ...]] = {}


def _without_hook(cls: type) -> tuple[str, ...]:
    """The typed attributes of ``cls`` that have no explicit ``get_`` hook in the class:
    a class's table, found once (a fleet builds a meter's objects at every association)."""
    names = _WITHOUT_HOOK.get(cls)
    if names is None:
        names = _WITHOUT_HOOK[cls] = tuple(n for n in cls.TYPES if getattr(cls, f"get_{n}", None) is None)
    return names


class BoundObject(CosemObject):
    #: attribute name -> type of its value (attribute 1 is handled by CosemObject)
    TYPES: ClassVar[dict[str, Codec]] = {}
    #: method name -> type of its parameter (NO_PARAMETER for integer (0))
    PARAMS: ClassVar[dict[str, "Codec | None"]] = {}
    #: attribute name -> value used when the binding gives none
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, logical_name, **bindings: Any):
        super().__init__(logical_name)
        self._getters: dict[str, Callable[[], Any]] = {}
        self._setters: dict[str, Callable[[Any], None]] = {}
        self._handlers: dict[str, Callable[..., Any]] = {}
        for key, value in bindings.items():
            if key.startswith("set_") and key[4:] in self.TYPES:
                if value is not None:
                    self._setters[key[4:]] = value
            elif key.startswith("on_") and key[3:] in self.PARAMS:
                if value is not None:
                    self._handlers[key[3:]] = value
            elif key in self.TYPES:
                self._getters[key] = getter(value)
            else:
                raise TypeError(f"{type(self).__name__} has no attribute or method binding {key!r}")
        for name in _without_hook(type(self)):
            if name not in self._getters:
                if name not in self.DEFAULTS:
                    raise TypeError(f"{type(self).__name__} needs a binding for {name!r}")
                self._getters[name] = getter(self.DEFAULTS[name])

    def __getattr__(self, hook: str):
        # only called when normal lookup fails: explicit hooks in the class win
        kind, _, name = hook.partition("_")
        if kind == "get" and name in self.__dict__.get("_getters", ()):
            codec, read = self.TYPES[name], self._getters[name]
            return lambda ctx: codec.encode(read())
        if kind == "set" and name in self.__dict__.get("_setters", ()):
            codec, write = self.TYPES[name], self._setters[name]
            return lambda value, ctx: write(codec.parse(value))
        if kind == "do" and name in self.__dict__.get("_handlers", ()):
            return lambda params, ctx: self.call(name, params)
        raise AttributeError(hook)

    def value(self, name: str) -> Any:
        """The Python value of a bound attribute (for classes' own hooks and tests)."""
        return self._getters[name]()

    def call(self, name: str, params) -> Any:
        """Run method ``name``'s handler with its parsed parameter."""
        handler = self._handlers.get(name)
        if handler is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"method {name} is not bound")
        codec = self.PARAMS[name]
        if codec is NO_PARAMETER:
            no_parameter(params)
            return handler()
        if params is None:
            raise mismatch(f"method {name} needs a {codec.name} parameter")
        return handler(codec.parse(params))
