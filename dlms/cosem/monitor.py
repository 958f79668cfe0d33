"""Register monitor (class 21, version 0), IEC 62056-6-2 clause 4.5.6.

Watches one attribute (monitored_value) against a list of thresholds; crossing
threshold n upwards runs actions[n].action_up, downwards actions[n].action_down.
The firmware does the watching; this object shows and changes the definition.
Thresholds are a CHOICE with the monitored value's type, so they cross as Data.
"""

from __future__ import annotations

from dataclasses import dataclass

from bijli.dlms import axdr
from bijli.dlms.cosem.bound import BoundObject
from bijli.dlms.cosem.values import (
    ACTION_ITEM, SIMPLE_DATA, VALUE_DEFINITION, ScriptReference, array_of, parse_struct, struct_of,
)


@dataclass(frozen=True, slots=True)
class ActionSet:
    """action_set ::= structure {action_up action_item, action_down action_item}."""

    action_up: ScriptReference
    action_down: ScriptReference

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((self.action_up.to_data(), self.action_down.to_data()))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ActionSet":
        up, down = parse_struct(value, 2)
        return cls(ACTION_ITEM.parse(up), ACTION_ITEM.parse(down))


class RegisterMonitor(BoundObject):
    """Bindings: thresholds (Data sequence), monitored_value (ValueDefinition), actions
    (ActionSet sequence, one per threshold), with ``set_`` to make them writable."""

    CLASS_ID = 21
    VERSION = 0
    ATTRIBUTES = ("logical_name", "thresholds", "monitored_value", "actions")
    TYPES = {
        "thresholds": array_of(SIMPLE_DATA),
        "monitored_value": VALUE_DEFINITION,
        "actions": array_of(struct_of(ActionSet)),
    }
