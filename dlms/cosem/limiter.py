"""Limiter (class 71, version 0), IEC 62056-6-2 clause 4.5.9.

The limiter watches one attribute (monitored_value, e.g. active power) against
threshold_active, which is threshold_normal or, while an emergency profile is
active, threshold_emergency. Once the value stays over the threshold for
min_over_threshold_duration seconds it runs action_over_threshold (a script,
usually one of the disconnect control script table); under it for
min_under_threshold_duration it runs action_under_threshold. The timers and the
decision live in ``firmware.relay``; this object shows and changes the settings.

The thresholds are a CHOICE with the type of the monitored value, so the
binding supplies them as A-XDR Data; a written threshold must keep the type the
limiter reports now (a client cannot turn a double-long-unsigned power limit
into a float).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bijli.dlms import axdr
from bijli.dlms.cosem.bound import BoundObject
from bijli.dlms.cosem.values import (
    ACTION_ITEM, BOOLEAN, DATE_TIME, DOUBLE_LONG_UNSIGNED, LONG_UNSIGNED, SIMPLE_DATA, VALUE_DEFINITION,
    ScriptReference, array_of, mismatch, parse_int, parse_struct, parse_date_time, struct_of,
)


@dataclass(frozen=True, slots=True)
class EmergencyProfile:
    """emergency_profile ::= structure {emergency_profile_id long-unsigned,
    emergency_activation_time octet-string (date-time), emergency_duration double-long-unsigned (s)}."""

    id: int = 0
    activation_time: datetime | None = None
    duration: int = 0

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.LongUnsigned(self.id), DATE_TIME.encode(self.activation_time),
                               axdr.DoubleLongUnsigned(self.duration)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "EmergencyProfile":
        i, t, d = parse_struct(value, 3)
        return cls(parse_int(i, axdr.LongUnsigned), parse_date_time(t), parse_int(d, axdr.DoubleLongUnsigned))


@dataclass(frozen=True, slots=True)
class LimiterActions:
    """actions ::= structure {action_over_threshold action_item, action_under_threshold action_item}."""

    action_over_threshold: ScriptReference
    action_under_threshold: ScriptReference

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((self.action_over_threshold.to_data(), self.action_under_threshold.to_data()))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "LimiterActions":
        over, under = parse_struct(value, 2)
        return cls(ACTION_ITEM.parse(over), ACTION_ITEM.parse(under))


class Limiter(BoundObject):
    """Bindings (getter, and ``set_`` for the writable ones): monitored_value
    (ValueDefinition), threshold_active / threshold_normal / threshold_emergency (Data),
    min_over_threshold_duration / min_under_threshold_duration (int s), emergency_profile
    (EmergencyProfile), emergency_profile_group_id_list (ints), emergency_profile_active
    (bool), actions (LimiterActions)."""

    CLASS_ID = 71
    VERSION = 0
    ATTRIBUTES = (
        "logical_name", "monitored_value", "threshold_active", "threshold_normal", "threshold_emergency",
        "min_over_threshold_duration", "min_under_threshold_duration", "emergency_profile",
        "emergency_profile_group_id_list", "emergency_profile_active", "actions",
    )
    TYPES = {
        "monitored_value": VALUE_DEFINITION,
        "threshold_active": SIMPLE_DATA,
        "threshold_normal": SIMPLE_DATA,
        "threshold_emergency": SIMPLE_DATA,
        "min_over_threshold_duration": DOUBLE_LONG_UNSIGNED,
        "min_under_threshold_duration": DOUBLE_LONG_UNSIGNED,
        "emergency_profile": struct_of(EmergencyProfile),
        "emergency_profile_group_id_list": array_of(LONG_UNSIGNED),
        "emergency_profile_active": BOOLEAN,
        "actions": struct_of(LimiterActions),
    }
    DEFAULTS = {
        "emergency_profile": EmergencyProfile(),
        "emergency_profile_group_id_list": (),
        "emergency_profile_active": False,
    }

    def set(self, index: int, value: axdr.Data, ctx=None) -> None:
        name = self._attribute_name(index)
        if name in ("threshold_normal", "threshold_emergency") and name in self._setters:
            current = self._getters[name]()
            if type(current) is not axdr.NullData and type(value) is not type(current):
                raise mismatch(f"{name} is a {type(current).__name__}, not a {type(value).__name__}")
        super().set(index, value, ctx)
