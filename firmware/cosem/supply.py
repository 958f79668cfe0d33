"""The supply: the relay and the load limiter as COSEM Disconnect control and Limiter.

Disconnect control (IC 70, 0.0.96.3.10.255) shows :class:`bijli.firmware.relay.RelayControl`
and sends the head-end's remote_disconnect / remote_reconnect to
:meth:`Meter.remote_relay`, so a DLMS command passes the same transition table as a
button press; Limiter (IC 71, 0.0.17.0.0.255) shows
:class:`bijli.firmware.relay.LoadLimiter`, monitors active power (1.0.1.7.0.255) and
names the disconnect script table's scripts as its actions (Blue Book 4.5.9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bijli.dlms import axdr
from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.cosem.base import CosemError
from bijli.dlms.cosem.disconnect import ControlState, DisconnectControl
from bijli.dlms.cosem.limiter import Limiter, LimiterActions
from bijli.dlms.cosem.values import ScriptReference, ValueDefinition
from bijli.firmware.cosem.catalogue import ACTIVE_POWER, DISCONNECT_CONTROL, DISCONNECT_SCRIPT_TABLE, LIMITER
from bijli.firmware.cosem.results import cosem_result
from bijli.firmware.relay import RelayState, Trigger

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter

#: the relay's state as class 70's control_state (the same three states, Blue Book 4.5.8)
CONTROL_STATES = {
    RelayState.DISCONNECTED: ControlState.DISCONNECTED,
    RelayState.CONNECTED: ControlState.CONNECTED,
    RelayState.READY_FOR_RECONNECTION: ControlState.READY_FOR_RECONNECTION,
}


def _remote(meter: "Meter", trigger: Trigger) -> bool:
    with cosem_result():  # storage failing: temporary-failure, the relay as it was
        return meter.remote_relay(trigger) is None


def disconnect_control(meter: "Meter") -> DisconnectControl:
    def set_mode(mode: int) -> None:
        with cosem_result():
            meter.set_control_mode(mode)

    return DisconnectControl(
        DISCONNECT_CONTROL,
        output_state=lambda: meter.relay.output_state,
        control_state=lambda: int(CONTROL_STATES[meter.relay.control_state]),
        control_mode=lambda: meter.relay.control_mode,
        set_control_mode=set_mode,
        on_remote_disconnect=lambda: _remote(meter, Trigger.REMOTE_DISCONNECT),
        on_remote_reconnect=lambda: _remote(meter, Trigger.REMOTE_RECONNECT),
    )


def limiter(meter: "Meter") -> Limiter:
    def watts(value) -> axdr.Data:
        return axdr.NullData() if value is None else axdr.DoubleLongUnsigned(int(value))

    def set_normal(value: axdr.Data) -> None:
        if isinstance(value, axdr.NullData):
            watts_or_none = None
        elif isinstance(value, axdr.INTEGER_TYPES) and value.value >= 0:
            watts_or_none = value.value
        else:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "a load limit is whole watts")
        with cosem_result():
            meter.set_load_limit(watts_or_none)

    return Limiter(
        LIMITER,
        monitored_value=ValueDefinition(3, ACTIVE_POWER, 2),
        threshold_active=lambda: watts(meter.limiter.threshold_active),
        threshold_normal=lambda: watts(meter.limiter.threshold_normal),
        set_threshold_normal=set_normal,
        threshold_emergency=lambda: watts(meter.limiter.threshold_emergency),
        min_over_threshold_duration=lambda: meter.limiter.min_over_threshold_duration,
        min_under_threshold_duration=lambda: meter.limiter.min_under_threshold_duration,
        emergency_profile_active=lambda: meter.limiter.emergency_profile_active,
        actions=LimiterActions(ScriptReference(DISCONNECT_SCRIPT_TABLE, 1), ScriptReference(DISCONNECT_SCRIPT_TABLE, 2)),
    )
