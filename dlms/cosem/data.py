"""Data (class 1), Register (class 3) and Extended register (class 4), IEC 62056-6-2 4.3.1-4.3.3.

A Data object holds one value; a Register adds scaler_unit so that
value x 10^scaler is the physical quantity (energy in Wh with scaler 0, voltage
in V with scaler -2, ...). Values are produced on demand by a getter bound by
the firmware, so every read sees the live register.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from bijli.dlms import axdr
from bijli.dlms.axdr import Data as AxdrData
from bijli.dlms.cosem.base import CosemObject, Getter, Setter, expect, refuse
from bijli.dlms.cosem.units import Unit
from bijli.dlms.cosem.values import date_time_octets


class _ValueAttribute:
    """Attribute 2 ``value``: read from a getter at GET time, written through an optional
    setter (the Blue Book gives Register's value the same meaning as Data's)."""

    def _bind_value(self, value: "AxdrData | Getter", setter: Setter | None) -> None:
        self._get = value if callable(value) else (lambda v=value: v)
        self._set = setter

    def get_value(self, ctx) -> AxdrData:
        return self._get()

    def set_value(self, value: AxdrData, ctx) -> None:
        if self._set is None:
            raise refuse(message="value is read-only")
        self._set(value)


class Data(_ValueAttribute, CosemObject):
    CLASS_ID = 1
    VERSION = 0
    ATTRIBUTES = ("logical_name", "value")

    def __init__(self, logical_name, value: "AxdrData | Getter", setter: Setter | None = None):
        super().__init__(logical_name)
        self._bind_value(value, setter)


_SCALER_UNITS: dict[tuple[int, Unit], axdr.Structure] = {}  # (scaler, unit) -> scaler_unit, see Register


class Register(_ValueAttribute, CosemObject):
    CLASS_ID = 3
    VERSION = 0
    ATTRIBUTES = ("logical_name", "value", "scaler_unit")
    METHODS = ("reset",)

    def __init__(self, logical_name, value: "AxdrData | Getter", scaler: int = 0, unit: Unit = Unit.COUNT,
                 setter: Setter | None = None, reset: Callable[[], None] | None = None):
        super().__init__(logical_name)
        self._bind_value(value, setter)
        self._reset = reset
        self.scaler = scaler
        self.unit = unit if type(unit) is Unit else Unit(unit)
        # constant for the object's life, and the same for every register of that scaler and
        # unit (A-XDR values are frozen): encoded once per process, not per register, since
        # a fleet builds a meter's few dozen registers at every association
        key = (scaler, self.unit)
        scaler_unit = _SCALER_UNITS.get(key)
        if scaler_unit is None:
            scaler_unit = _SCALER_UNITS[key] = axdr.Structure((axdr.Integer(scaler), axdr.Enum(int(self.unit))))
        self._scaler_unit = scaler_unit

    def get_scaler_unit(self, ctx) -> AxdrData:
        return self._scaler_unit

    def do_reset(self, parameters, ctx):
        if self._reset is None:
            raise refuse(message="reset not supported")
        expect(parameters, axdr.Integer) if parameters is not None else None
        self._reset()
        return None


class ExtendedRegister(Register):
    CLASS_ID = 4
    ATTRIBUTES = ("logical_name", "value", "scaler_unit", "status", "capture_time")

    def __init__(self, logical_name, value, scaler=0, unit=Unit.COUNT, status: "AxdrData | Getter" = axdr.NullData(),
                 capture_time: Callable[[], datetime | None] = lambda: None, **kw):
        super().__init__(logical_name, value, scaler, unit, **kw)
        self._status = status if callable(status) else (lambda v=status: v)
        self._capture_time = capture_time

    def get_status(self, ctx) -> AxdrData:
        return self._status()

    def get_capture_time(self, ctx) -> AxdrData:
        return date_time_octets(self._capture_time())  # None: "not specified", not twelve zeros
