"""Disconnect control (class 70, version 0), IEC 62056-6-2 clause 4.5.8.

The supply relay as a COSEM object: output_state (is the supply on),
control_state (0 disconnected, 1 connected, 2 ready_for_reconnection),
control_mode (0..6, which of the transitions a..h are allowed) and the remote
methods. The state machine itself is the firmware's (``firmware.relay``); this
object only reads it and passes the two remote triggers on.

A remote method the present mode or state does not allow is answered with a
non-success action-result: the handler returns False (the object answers
``refused_result``, temporary-failure by default: the same request may succeed
once the state changes, e.g. after a manual reconnect) or raises CosemError
with a result of its own choosing.
"""

from __future__ import annotations

from enum import IntEnum

from bijli.dlms import axdr
from bijli.dlms.apdu import ActionResult
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.bound import NO_PARAMETER, BoundObject
from bijli.dlms.cosem.values import BOOLEAN, integer


class ControlState(IntEnum):
    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


MAX_CONTROL_MODE = 6


class DisconnectControl(BoundObject):
    """Bindings: ``output_state``, ``control_state``, ``control_mode`` (getters),
    ``set_control_mode``, ``on_remote_disconnect`` / ``on_remote_reconnect``
    (no argument; return False to refuse)."""

    CLASS_ID = 70
    VERSION = 0
    ATTRIBUTES = ("logical_name", "output_state", "control_state", "control_mode")
    METHODS = ("remote_disconnect", "remote_reconnect")
    TYPES = {
        "output_state": BOOLEAN,
        "control_state": integer(axdr.Enum, 0, 2),
        "control_mode": integer(axdr.Enum, 0, MAX_CONTROL_MODE),
    }
    PARAMS = {"remote_disconnect": NO_PARAMETER, "remote_reconnect": NO_PARAMETER}

    def __init__(self, logical_name, *, refused_result: ActionResult = ActionResult.TEMPORARY_FAILURE, **bindings):
        super().__init__(logical_name, **bindings)
        self.refused_result = refused_result

    def call(self, name: str, params):
        if super().call(name, params) is False:
            raise CosemError(self.refused_result, f"{name} refused in the present control mode or state")
        return None


__all__ = ["ControlState", "DisconnectControl"]
