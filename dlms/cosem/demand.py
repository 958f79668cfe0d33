"""Demand register (class 5, version 0) and Register table (class 61, version 0),
IEC 62056-6-2 clauses 4.3.4 and 4.3.9.

A demand register averages a quantity over a sliding window of
number_of_periods periods of ``period`` seconds: current_average_value is the
running average of the window in progress, last_average_value that of the
window just closed (the maximum demand registers of a billing row capture it).
A register table shows the same attribute of a group of registers that differ
only in OBIS group E (e.g. the harmonics of a voltage) as one array.

Values are a CHOICE of numeric types, so the binding supplies them as Data.
"""

from __future__ import annotations

from dataclasses import dataclass

from bijli.dlms import axdr
from bijli.dlms.cosem.bound import NO_PARAMETER, BoundObject
from bijli.dlms.cosem.values import (
    DATE_TIME, DOUBLE_LONG_UNSIGNED, LONG_UNSIGNED, SCALER_UNIT, SIMPLE_DATA, ScalerUnit, array_of, parse_array,
    parse_int, parse_obis, parse_struct, struct_of,
)
from bijli.dlms.obis import Obis


class DemandRegister(BoundObject):
    """Bindings: current_average_value, last_average_value, status (Data), scaler_unit
    (ScalerUnit), capture_time, start_time_current (datetime | None), period (s),
    number_of_periods; ``set_period`` / ``set_number_of_periods``; ``on_reset()``,
    ``on_next_period()``."""

    CLASS_ID = 5
    VERSION = 0
    ATTRIBUTES = ("logical_name", "current_average_value", "last_average_value", "scaler_unit", "status",
                  "capture_time", "start_time_current", "period", "number_of_periods")
    METHODS = ("reset", "next_period")
    TYPES = {
        "current_average_value": SIMPLE_DATA,
        "last_average_value": SIMPLE_DATA,
        "scaler_unit": SCALER_UNIT,
        "status": SIMPLE_DATA,
        "capture_time": DATE_TIME,
        "start_time_current": DATE_TIME,
        "period": DOUBLE_LONG_UNSIGNED,
        "number_of_periods": LONG_UNSIGNED,
    }
    PARAMS = {"reset": NO_PARAMETER, "next_period": NO_PARAMETER}
    DEFAULTS = {"status": axdr.NullData(), "scaler_unit": ScalerUnit(), "number_of_periods": 1}


@dataclass(frozen=True, slots=True)
class TableCellDefinition:
    """structure {class_id long-unsigned, logical_name octet-string, group_E_values array
    unsigned, attribute_index integer}: the registers (logical_name with each E) shown."""

    class_id: int
    logical_name: Obis
    group_e_values: tuple[int, ...]
    attribute_index: int

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.LongUnsigned(self.class_id), axdr.OctetString(bytes(self.logical_name)),
                               axdr.Array(tuple(axdr.Unsigned(e) for e in self.group_e_values)),
                               axdr.Integer(self.attribute_index)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "TableCellDefinition":
        c, ln, es, a = parse_struct(value, 4)
        return cls(parse_int(c, axdr.LongUnsigned), parse_obis(ln),
                   tuple(parse_int(e, axdr.Unsigned) for e in parse_array(es)), parse_int(a, axdr.Integer))


class RegisterTable(BoundObject):
    """Bindings: table_cell_values (Data sequence), table_cell_definition
    (TableCellDefinition), scaler_unit; ``on_reset()``, ``on_capture()``."""

    CLASS_ID = 61
    VERSION = 0
    ATTRIBUTES = ("logical_name", "table_cell_values", "table_cell_definition", "scaler_unit")
    METHODS = ("reset", "capture")
    TYPES = {
        "table_cell_values": array_of(SIMPLE_DATA),
        "table_cell_definition": struct_of(TableCellDefinition),
        "scaler_unit": SCALER_UNIT,
    }
    PARAMS = {"reset": NO_PARAMETER, "capture": NO_PARAMETER}
    DEFAULTS = {"scaler_unit": ScalerUnit()}
