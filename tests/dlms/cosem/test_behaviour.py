"""Methods and writes reach the firmware's handlers with parsed values, refusals come
back as the proper results: disconnect control bound to the real relay state machine,
the token gateway's enter flow, payment methods, special days insert/delete, push."""

from __future__ import annotations

from datetime import datetime

import pytest

from bijli.dlms import axdr
from bijli.dlms.apdu import ActionResult
from bijli.dlms.axdr import CosemDate
from bijli.dlms.cosem import (
    Credit, DeliveryMethod, DisconnectControl, Limiter, SpecialDay, SpecialDaysTable, TokenGateway,
    TokenGatewayResult, TokenRecord, TokenStatusCode, UnitCharge,
)
from bijli.dlms.cosem.base import CosemError
from bijli.firmware import relay

from .helpers import LN, NOW, bound_objects


def by_class(class_id):
    for obj, store in bound_objects():
        if obj.CLASS_ID == class_id:
            return obj, store
    raise LookupError(class_id)


def refused(fn, *args) -> int:
    with pytest.raises(CosemError) as e:
        fn(*args)
    return e.value.result


# --- disconnect control, bound as firmware.cosem binds it ----------------------------


class Relay:
    """Holds a firmware.relay.RelayControl and exposes the class-70 bindings."""

    def __init__(self, mode: int):
        self.state = relay.RelayControl(control_mode=mode)

    def trigger(self, t: relay.Trigger) -> bool:
        self.state, transition = self.state.apply(t)
        return transition is not None

    def cosem(self) -> DisconnectControl:
        return DisconnectControl(
            "0.0.96.3.10.255",
            output_state=lambda: self.state.output_state,
            control_state=lambda: self.state.control_state,
            control_mode=lambda: self.state.control_mode,
            set_control_mode=lambda m: setattr(self, "state", self.state.with_mode(m)),
            on_remote_disconnect=lambda: self.trigger(relay.Trigger.REMOTE_DISCONNECT),
            on_remote_reconnect=lambda: self.trigger(relay.Trigger.REMOTE_RECONNECT),
        )


def test_disconnect_control_methods_drive_the_relay():
    r = Relay(mode=2)
    dc = r.cosem()
    assert dc.get(2) == axdr.Boolean(True) and dc.get(3) == axdr.Enum(1)
    assert dc.invoke(1, axdr.Integer(0)) is None  # b: connected -> disconnected
    assert (dc.get(2), dc.get(3)) == (axdr.Boolean(False), axdr.Enum(0))
    assert refused(dc.invoke, 1, axdr.Integer(0)) == ActionResult.TEMPORARY_FAILURE  # already disconnected
    dc.invoke(2, axdr.Integer(0))  # a: mode 2 reconnects straight to connected
    assert dc.get(3) == axdr.Enum(1)


def test_disconnect_control_mode_4_goes_through_ready():
    r = Relay(mode=1)
    dc = r.cosem()
    dc.invoke(1, None)
    dc.invoke(2, None)  # d: disconnected -> ready_for_reconnection
    assert (dc.get(2), dc.get(3)) == (axdr.Boolean(False), axdr.Enum(2))


def test_disconnect_control_mode_writes_and_refusals():
    r = Relay(mode=6)
    dc = r.cosem()
    dc.set(4, axdr.Enum(0))
    assert r.state.control_mode == 0 and dc.get(4) == axdr.Enum(0)
    assert refused(dc.invoke, 1, axdr.Integer(0)) == ActionResult.TEMPORARY_FAILURE  # mode 0: never disconnects
    assert refused(dc.set, 4, axdr.Enum(7)) == 12
    assert refused(dc.set, 4, axdr.Unsigned(3)) == 12
    assert refused(dc.invoke, 1, axdr.OctetString(b"\x00")) == 12
    unbound = DisconnectControl(LN, output_state=True, control_state=1, control_mode=0)
    assert refused(unbound.invoke, 1, axdr.Integer(0)) == ActionResult.OBJECT_UNAVAILABLE
    assert not hasattr(unbound, "set_control_mode")


def test_a_handler_may_choose_its_own_result():
    def busy():
        raise CosemError(ActionResult.HARDWARE_FAULT, "relay coil open")

    dc = DisconnectControl(LN, output_state=True, control_state=1, control_mode=1, on_remote_disconnect=busy,
                           refused_result=ActionResult.OTHER_REASON)
    assert refused(dc.invoke, 1, axdr.Integer(0)) == ActionResult.HARDWARE_FAULT


# --- limiter -------------------------------------------------------------------------------


def test_limiter_thresholds_keep_their_type():
    lim, store = by_class(71)
    assert isinstance(lim, Limiter)
    lim.set(4, axdr.DoubleLongUnsigned(3000))
    assert store.values["threshold_normal"] == axdr.DoubleLongUnsigned(3000)
    assert refused(lim.set, 4, axdr.Float32(3000.0)) == 12
    assert refused(lim.set, 3, axdr.DoubleLongUnsigned(1)) == 3  # threshold_active is read-only
    lim.set(8, axdr.Structure((axdr.LongUnsigned(7), axdr.OctetString(axdr.CosemDateTime.from_datetime(NOW).encode()),
                               axdr.DoubleLongUnsigned(60))))
    assert store.values["emergency_profile"].activation_time == NOW
    assert refused(lim.set, 9, axdr.Array((axdr.Unsigned(1),))) == 12


# --- token gateway -------------------------------------------------------------------------


class TokenEngine:
    """A stand-in token engine: accepts tokens that start with 1, rejects the rest."""

    def __init__(self):
        self.seen = []

    def enter(self, token: bytes, how: DeliveryMethod) -> TokenGatewayResult:
        self.seen.append((token, how))
        if token.startswith(b"1"):
            return TokenGatewayResult(TokenStatusCode.EXECUTION_OK, "0000", (b"credit +500.00",))
        return TokenGatewayResult(TokenStatusCode.AUTHENTICATION_FAILURE, "1000")


def test_token_gateway_enter_flow():
    engine = TokenEngine()
    clock = [NOW]
    gw = TokenGateway("0.0.19.40.0.255", enter=engine.enter, now=lambda: clock[0])
    assert gw.get(6) == axdr.Structure((axdr.Enum(8), axdr.BitString("")))
    assert gw.invoke(1, axdr.OctetString(b"11112222333344445555")) is None
    assert engine.seen == [(b"11112222333344445555", DeliveryMethod.REMOTE)]
    assert gw.get(2) == axdr.OctetString(b"11112222333344445555")
    assert gw.get(3) == axdr.OctetString(axdr.CosemDateTime.from_datetime(NOW).encode())
    assert gw.get(4) == axdr.Array((axdr.OctetString(b"credit +500.00"),))
    assert gw.get(5) == axdr.Enum(0)
    assert gw.get(6) == axdr.Structure((axdr.Enum(3), axdr.BitString("0000")))
    clock[0] = datetime(2024, 3, 16)
    gw.invoke(1, axdr.OctetString(b"99998888777766665555"))
    assert gw.get(6) == axdr.Structure((axdr.Enum(5), axdr.BitString("1000")))
    assert gw.get(4) == axdr.Array(())


def test_token_gateway_refuses_what_is_not_a_token():
    engine = TokenEngine()
    gw = TokenGateway(LN, enter=engine.enter, now=lambda: NOW)
    assert refused(gw.invoke, 1, axdr.VisibleString("11112222333344445555")) == 12
    assert refused(gw.invoke, 1, axdr.OctetString(b"")) == 12
    assert refused(gw.invoke, 1, axdr.OctetString(b"1" * 129)) == 12
    assert refused(gw.invoke, 1, None) == 12
    assert refused(gw.set, 2, axdr.OctetString(b"1")) == 3
    assert engine.seen == []


def test_token_gateway_shows_the_firmwares_last_token():
    last = TokenRecord(b"1234", NOW, DeliveryMethod.MANUAL, TokenGatewayResult(TokenStatusCode.EXECUTION_OK))
    gw = TokenGateway(LN, enter=TokenEngine().enter, now=lambda: NOW, last_token=lambda: last)
    assert gw.get(5) == axdr.Enum(2) and gw.get(2) == axdr.OctetString(b"1234")


# --- payment -------------------------------------------------------------------------------


def test_credit_methods_get_parsed_amounts():
    credit, store = by_class(112)
    assert isinstance(credit, Credit)
    credit.invoke(1, axdr.DoubleLong(-250))
    credit.invoke(2, axdr.DoubleLong(5000))
    credit.invoke(3, axdr.Enum(2))
    credit.invoke(3, axdr.Unsigned(2))
    assert store.calls == [("update_amount", -250), ("set_amount_to_value", 5000), ("invoke_credit", 2),
                           ("invoke_credit", 2)]
    assert refused(credit.invoke, 1, axdr.DoubleLongUnsigned(5)) == 12
    assert refused(credit.invoke, 1, None) == 12
    assert refused(credit.set, 7, axdr.BitString("1")) == 12  # credit_configuration is 5 bits


def test_charge_update_unit_charge_passes_a_unit_charge():
    charge, store = by_class(113)
    charge.invoke(1, charge.get(5))
    (name, value), = store.calls
    assert name == "update_unit_charge" and isinstance(value, UnitCharge)
    assert value.charge_table[1].charge_per_unit == 800 and value.price_scale == -2
    charge.invoke(3, axdr.Integer(0))
    assert store.calls[-1] == ("collect",)


def test_account_methods_and_currency():
    account, store = by_class(111)
    for m in (1, 2, 3):
        account.invoke(m, axdr.Integer(0))
    assert [c[0] for c in store.calls] == ["activate_account", "close_account", "reset_account"]
    account.set(15, axdr.Structure((axdr.Utf8String("USD"), axdr.Integer(-2), axdr.Enum(2))))
    assert store.values["currency"].name == "USD"
    assert refused(account.set, 15, axdr.Structure((axdr.VisibleString("USD"), axdr.Integer(-2), axdr.Enum(2)))) == 12
    assert refused(account.set, 2, axdr.Structure((axdr.Enum(9), axdr.Enum(1)))) == 12


# --- schedules and push ---------------------------------------------------------------------


def test_special_days_insert_replaces_and_delete_removes():
    table, store = by_class(11)
    assert isinstance(table, SpecialDaysTable)
    table.invoke(1, SpecialDay(2, CosemDate(None, 10, 2), 4).to_data())
    table.invoke(1, SpecialDay(3, CosemDate(2024, 11, 1), 4).to_data())
    assert [(e.index, e.day_id) for e in store.values["entries"]] == [(1, 3), (2, 4), (3, 4)]
    table.invoke(2, axdr.LongUnsigned(1))
    table.invoke(2, axdr.LongUnsigned(99))  # missing: nothing to do
    assert [e.index for e in store.values["entries"]] == [2, 3]
    assert refused(table.invoke, 2, axdr.Unsigned(1)) == 12
    assert refused(table.invoke, 1, axdr.Structure((axdr.LongUnsigned(1), axdr.OctetString(b"\x07\xe8\x01"),
                                                    axdr.Unsigned(1)))) == 12
    frozen = SpecialDaysTable(LN, entries=())
    assert refused(frozen.invoke, 2, axdr.LongUnsigned(1)) == 3
    small = SpecialDaysTable(LN, entries=lambda: store.values["entries"], store=lambda e: None, max_entries=2)
    assert refused(small.invoke, 1, SpecialDay(9, CosemDate(2024, 1, 1), 1).to_data()) == 250


def test_push_and_script_execute_call_their_handlers():
    push, store = by_class(40)
    push.invoke(1, axdr.Integer(0))
    assert store.calls == [("push",)]
    scripts, store = by_class(9)
    scripts.invoke(1, axdr.LongUnsigned(2))
    assert store.calls == [("execute", 2)]
    assert refused(scripts.invoke, 1, axdr.Unsigned(2)) == 12
    assert refused(scripts.invoke, 2, axdr.LongUnsigned(2)) == ActionResult.OBJECT_UNAVAILABLE


def test_hdlc_setup_refuses_out_of_range_values():
    hdlc, store = by_class(23)
    hdlc.set(3, axdr.Unsigned(7))
    assert store.values["window_size_transmit"] == 7
    assert refused(hdlc.set, 3, axdr.Unsigned(8)) == 12
    assert refused(hdlc.set, 5, axdr.LongUnsigned(2031)) == 12
    assert refused(hdlc.set, 9, axdr.LongUnsigned(0x3FFE)) == 12
