"""Shared helpers for the COSEM class tests: type shapes and a fully bound instance of every class.

``shape(data)`` reduces an A-XDR value to its nested type tags, so a test can state
the standard's type of an attribute ("structure of long-unsigned, octet-string,
integer") and compare. ``bound_objects()`` builds one instance of each class with
every attribute, setter and method bound to a plain in-memory store (what the
firmware binding would do), recording the calls it receives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bijli.dlms import axdr
from bijli.dlms.axdr import CosemDate, CosemDateTime, CosemTime
from bijli.dlms.cosem import (
    Account, AccountModeAndStatus, ActionSet, ActionSpecification, ActivityCalendar, CaptureObjectDefinition, Charge,
    ChargeTableElement, Credit, CreditChargeConfiguration, Currency, DayProfile, DayProfileAction, DemandRegister,
    DisconnectControl, EmergencyProfile, ExecutionTime, IecHdlcSetup, IecLocalPortSetup, Limiter, LimiterActions,
    PushSetup, RegisterMonitor, RegisterTable, SapAssignment, SapAssignmentObject, ScalerUnit, Script, ScriptReference,
    ScriptTable, SeasonProfile, SendDestinationAndMethod, SingleActionSchedule, SpecialDay, SpecialDaysTable,
    TableCellDefinition, TcpUdpSetup, TokenGateway, TokenGatewayConfiguration, TokenGatewayResult, TokenStatusCode,
    UnitCharge, ValueDefinition, WeekProfile, WindowElement,
)
from bijli.dlms.cosem.bound import BoundObject
from bijli.dlms.obis import Obis

T = axdr.DataType
U8, U16, U32, I8, I16, I32 = T.UNSIGNED, T.LONG_UNSIGNED, T.DOUBLE_LONG_UNSIGNED, T.INTEGER, T.LONG, T.DOUBLE_LONG
ENUM, BOOL, OCT, BITS, UTF8, NULL = T.ENUM, T.BOOLEAN, T.OCTET_STRING, T.BIT_STRING, T.UTF8_STRING, T.NULL_DATA


def shape(d: axdr.Data) -> Any:
    """Nested type tags: a simple value is its DataType; a structure a tuple of shapes;
    an array a list of its elements' shapes."""
    if isinstance(d, axdr.Structure):
        return tuple(shape(x) for x in d.value)
    if isinstance(d, axdr.Array):
        return [shape(x) for x in d.value]
    return d.tag


def roundtrip(d: axdr.Data) -> axdr.Data:
    """Encode, decode: what a client would get back. Asserts the decode is exact."""
    raw = axdr.encode(d)
    back = axdr.decode(raw)
    assert back == d
    return back


LN = Obis(0, 0, 96, 3, 10, 255)
SCRIPT = ScriptReference(Obis(0, 0, 10, 0, 106, 255), 1)
NOW = datetime(2024, 3, 15, 10, 30, 0)


class Store:
    """The firmware side of a binding: values in a dict, every setter and handler call logged."""

    def __init__(self, **values: Any):
        self.values = dict(values)
        self.calls: list[tuple] = []

    def bind(self, writable: tuple[str, ...] = (), methods: tuple[str, ...] = ()) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        for name in self.values:
            kw[name] = (lambda n=name: self.values[n])
        for name in writable:
            kw[f"set_{name}"] = (lambda v, n=name: self._set(n, v))
        for m in methods:
            kw[f"on_{m}"] = (lambda *a, m=m: self.calls.append((m, *a)))
        return kw

    def _set(self, name: str, value: Any) -> None:
        self.calls.append(("set", name, value))
        self.values[name] = value


def _fixtures() -> list[tuple[type, Store, tuple[str, ...], tuple[str, ...]]]:
    """(class, store, writable attributes, methods) for every BoundObject class."""
    unit_charge = UnitCharge(0, -2, 3, Obis(1, 0, 1, 8, 0, 255), 2, (ChargeTableElement(b"\x01", 650),
                                                                     ChargeTableElement(b"\x02", 800)))
    return [
        (DisconnectControl, Store(output_state=True, control_state=1, control_mode=6),
         ("control_mode",), ("remote_disconnect", "remote_reconnect")),
        (Limiter, Store(
            monitored_value=ValueDefinition(3, Obis(1, 0, 1, 7, 0, 255), 2),
            threshold_active=axdr.DoubleLongUnsigned(5000), threshold_normal=axdr.DoubleLongUnsigned(5000),
            threshold_emergency=axdr.DoubleLongUnsigned(2000), min_over_threshold_duration=60,
            min_under_threshold_duration=300, emergency_profile=EmergencyProfile(1, NOW, 3600),
            emergency_profile_group_id_list=(1, 2), emergency_profile_active=False,
            actions=LimiterActions(SCRIPT, ScriptReference(SCRIPT.script_logical_name, 2))),
         ("monitored_value", "threshold_normal", "threshold_emergency", "min_over_threshold_duration",
          "min_under_threshold_duration", "emergency_profile", "emergency_profile_group_id_list", "actions"), ()),
        (Account, Store(
            account_mode_and_status=AccountModeAndStatus(), current_credit_in_use=1, current_credit_status=0b10000000,
            available_credit=12345, amount_to_clear=0, clearance_threshold=0, aggregated_debt=0,
            credit_reference_list=(Obis(0, 0, 19, 10, 0, 255), Obis(0, 0, 19, 10, 1, 255)),
            charge_reference_list=(Obis(0, 0, 19, 20, 0, 255),),
            credit_charge_configuration=(CreditChargeConfiguration(Obis(0, 0, 19, 10, 0, 255),
                                                                   Obis(0, 0, 19, 20, 0, 255), 0b100),),
            token_gateway_configuration=(TokenGatewayConfiguration(Obis(0, 0, 19, 10, 0, 255), 100),),
            account_activation_time=NOW, account_closure_time=None, currency=Currency("INR", -2),
            low_credit_threshold=5000, next_credit_available_threshold=0, max_provision=0, max_provision_period=0),
         ("clearance_threshold", "low_credit_threshold", "currency", "credit_charge_configuration",
          "token_gateway_configuration", "max_provision", "max_provision_period", "account_mode_and_status"),
         ("activate_account", "close_account", "reset_account")),
        (Credit, Store(current_credit_amount=10000, type=0, priority=1, warning_threshold=1000, limit=0,
                       credit_configuration=0b00001, status=3, preset_credit_amount=0, credit_available_threshold=0,
                       period=None),
         ("warning_threshold", "limit", "credit_configuration", "preset_credit_amount", "credit_available_threshold",
          "period", "priority"), ("update_amount", "set_amount_to_value", "invoke_credit")),
        (Charge, Store(total_amount_paid=0, charge_type=0, priority=1, unit_charge_active=unit_charge,
                       unit_charge_passive=unit_charge, unit_charge_activation_time=NOW, period=0,
                       charge_configuration=0b01, last_collection_time=NOW, last_collection_amount=12,
                       total_amount_remaining=0, proportion=0),
         ("unit_charge_passive", "unit_charge_activation_time", "period", "charge_configuration", "proportion"),
         ("update_unit_charge", "activate_passive_unit_charge", "collect", "update_total_amount_remaining",
          "set_total_amount_remaining")),
        (ScriptTable, Store(scripts=(Script(1, (ActionSpecification(2, 70, LN, 1, axdr.Integer(0)),)),
                                     Script(2, (ActionSpecification(2, 70, LN, 2, axdr.Integer(0)),)))),
         ("scripts",), ("execute",)),
        (ActivityCalendar, Store(
            calendar_name_active=b"TOD1",
            season_profile_active=(SeasonProfile(b"S1", CosemDateTime(CosemDate(None, 1, 1), CosemTime(0, 0, 0, 0)),
                                                 b"W1"),),
            week_profile_table_active=(WeekProfile(b"W1", (1, 1, 1, 1, 1, 2, 2)),),
            day_profile_table_active=(DayProfile(1, (DayProfileAction(CosemTime(0, 0, 0, 0), Obis(0, 0, 10, 0, 100, 255), 1),
                                                     DayProfileAction(CosemTime(18, 0, 0, 0), Obis(0, 0, 10, 0, 100, 255), 2))),),
            calendar_name_passive=b"", season_profile_passive=(), week_profile_table_passive=(),
            day_profile_table_passive=(), activate_passive_calendar_time=None),
         ("calendar_name_passive", "season_profile_passive", "week_profile_table_passive",
          "day_profile_table_passive", "activate_passive_calendar_time"), ("activate_passive_calendar",)),
        (SingleActionSchedule, Store(executed_script=ScriptReference(Obis(0, 0, 10, 0, 1, 255), 1), type=1,
                                     execution_time=(ExecutionTime(CosemTime(0, 0, 0, 0), CosemDate(None, None, 1)),)),
         ("executed_script", "type", "execution_time"), ()),
        (RegisterMonitor, Store(thresholds=(axdr.LongUnsigned(26000), axdr.LongUnsigned(18000)),
                                monitored_value=ValueDefinition(3, Obis(1, 0, 32, 7, 0, 255), 2),
                                actions=(ActionSet(SCRIPT, SCRIPT), ActionSet(SCRIPT, SCRIPT))),
         ("thresholds", "monitored_value", "actions"), ()),
        (SapAssignmentObject, Store(sap_assignment_list=(SapAssignment(1, b"BIJ0000000000001"),)), (),
         ("connect_logical_device",)),
        (IecLocalPortSetup, Store(default_mode=1, default_baud=0, prop_baud=5, response_time=1, device_addr=b"",
                                  pass_p1=b"", pass_p2=b"", pass_w5=b""), ("prop_baud", "device_addr"), ()),
        (IecHdlcSetup, Store(comm_speed=5, window_size_transmit=1, window_size_receive=1,
                             max_info_field_length_transmit=128, max_info_field_length_receive=128,
                             inter_octet_time_out=25, inactivity_time_out=120, device_address=0x10),
         ("comm_speed", "window_size_transmit", "window_size_receive", "max_info_field_length_transmit",
          "max_info_field_length_receive", "inter_octet_time_out", "inactivity_time_out", "device_address"), ()),
        (TcpUdpSetup, Store(tcp_udp_port=4059, ip_reference=bytes((0, 0, 25, 1, 0, 255)), mss=576, nb_of_sim_conn=1,
                            inactivity_time_out=180), ("tcp_udp_port", "inactivity_time_out"), ()),
        (PushSetup, Store(push_object_list=(CaptureObjectDefinition(8, Obis(0, 0, 1, 0, 0, 255), 2, 0),),
                          send_destination_and_method=SendDestinationAndMethod(0, b"10.0.0.1:4059", 0),
                          communication_window=(WindowElement(
                              CosemDateTime(CosemDate(None, None, None), CosemTime(1, 0, 0, 0)),
                              CosemDateTime(CosemDate(None, None, None), CosemTime(5, 0, 0, 0))),),
                          randomisation_start_interval=30, number_of_retries=3, repetition_delay=60),
         ("push_object_list", "send_destination_and_method", "communication_window", "randomisation_start_interval",
          "number_of_retries", "repetition_delay"), ("push",)),
        (DemandRegister, Store(current_average_value=axdr.DoubleLongUnsigned(1200),
                               last_average_value=axdr.DoubleLongUnsigned(1100), scaler_unit=ScalerUnit(0, 27),
                               status=axdr.NullData(), capture_time=NOW, start_time_current=NOW, period=900,
                               number_of_periods=1), ("period", "number_of_periods"), ("reset", "next_period")),
        (RegisterTable, Store(table_cell_values=(axdr.LongUnsigned(1), axdr.LongUnsigned(2)),
                              table_cell_definition=TableCellDefinition(3, Obis(1, 0, 32, 7, 0, 255), (1, 2), 2),
                              scaler_unit=ScalerUnit(-2, 56)), (), ("reset", "capture")),
    ]


def bound_objects() -> list[tuple[BoundObject, Store]]:
    out = []
    for cls, store, writable, methods in _fixtures():
        out.append((cls(LN, **store.bind(writable, methods)), store))
    days = Store(entries=(SpecialDay(1, CosemDate(2024, 1, 26, None), 3), SpecialDay(2, CosemDate(None, 8, 15, None), 3)))
    out.append((SpecialDaysTable(LN, entries=lambda: days.values["entries"],
                                 store=lambda e: days._set("entries", e)), days))
    tokens = Store()
    gateway = TokenGateway(LN, enter=lambda tok, how: (tokens.calls.append(("enter", tok, how)) or
                                                       TokenGatewayResult(TokenStatusCode.EXECUTION_OK, "1", (b"ok",))),
                           now=lambda: NOW)
    gateway.invoke(1, axdr.OctetString(b"12345678901234567890"))
    tokens.calls.clear()
    out.append((gateway, tokens))
    return out
