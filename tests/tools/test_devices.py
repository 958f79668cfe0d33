"""The firmware's relay decision reaches the (mock) relay pin; a feedback contact
that disagrees is logged; tamper switches and the button reach the firmware."""

from __future__ import annotations

from datetime import datetime, timedelta

from bijli.firmware.events import EventCode, LogKind
from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.storage import Storage
from bijli.tools.node.config import HalConfig
from bijli.tools.node.devices import Devices

NOON = datetime(2024, 6, 3, 12, 0)  # a Monday, outside friendly hours


def _rig(tmp_path, table=None):
    storage = Storage.open(tmp_path)
    holder = {}
    meter = Meter(MeterConfig.from_dict(table or {}), storage, NOON,
                  on_relay=lambda closed: holder["devices"].relay_changed(closed) if "devices" in holder else None)
    devices = holder["devices"] = Devices(meter, HalConfig.from_table({}))
    devices.relay_changed(meter.relay.output_state)
    return meter, devices


def _codes(meter, kind):
    return [e.code for e in meter.events.events(meter.storage, kind)]


def test_relay_decision_reaches_the_coil_pin(tmp_path):
    meter, devices = _rig(tmp_path)
    assert devices.pins.relay_commanded() is True
    meter.advance_to(NOON + timedelta(minutes=1))  # no credit, not friendly: the meter cuts
    assert meter.relay.output_state is False
    assert devices.pins.relay_commanded() is False
    assert devices.pins.relay_feedback() is False  # the simulated contact follows the coil
    assert devices.check_feedback()


def test_feedback_contact_disagreeing_is_an_event(tmp_path):
    meter, devices = _rig(tmp_path)
    devices.pins.simulate_relay_weld(True)  # contacts welded shut
    meter.advance_to(NOON + timedelta(minutes=1))  # the meter opens the relay...
    assert meter.relay.output_state is False
    assert not devices.check_feedback()  # ...but the feedback says closed
    assert EventCode.RELAY_FEEDBACK_MISMATCH in _codes(meter, LogKind.OTHER)
    # logged once per episode, not on every tick
    devices.tick()
    devices.tick()
    assert _codes(meter, LogKind.OTHER).count(EventCode.RELAY_FEEDBACK_MISMATCH) == 1


def test_cover_magnet_and_button_reach_the_firmware(tmp_path):
    meter, devices = _rig(tmp_path, {"relay": {"control_mode": 4}})
    queue = []
    devices.pins.on_cover(lambda opened: queue.append(("cover", opened)))
    devices.pins.simulate_cover(True)
    devices.pins.simulate_magnet(True)
    from bijli.hal.pins import PinEvent, PinEventKind
    devices.handle_pin(PinEvent(PinEventKind.COVER, True))
    devices.handle_pin(PinEvent(PinEventKind.MAGNET, True))
    assert queue == [("cover", True)]
    assert EventCode.COVER_OPEN in _codes(meter, LogKind.NON_ROLLOVER)
    assert EventCode.MAGNET in _codes(meter, LogKind.OTHER)
    assert meter.progress.tamper
    # mode 4: a cut for credit waits in ready_for_reconnection; the button alone cannot
    # reconnect without credit, and the alarm LED is lit while the supply is off
    meter.advance_to(NOON + timedelta(minutes=1))
    devices.handle_pin(PinEvent(PinEventKind.BUTTON, True))
    assert meter.status()["relay"] == "ready"
    devices.tick()
    assert devices.pins.relay_commanded() is False


def test_a_gpio_matrix_keypad_types_a_token_into_the_meter(tmp_path):
    """On mock pins, holding each key of a 4x4 membrane keypad in turn enters a token."""
    from decimal import Decimal

    from bijli.firmware.sts.vend import vend_credit

    meter = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), NOON)
    devices = Devices(meter, HalConfig.from_table({"keypad": "matrix:5,6,13,19/12,16,20,21", "magnet": "none"}))
    factory = devices.pins.factory
    token = vend_credit(meter.config.sts.vend_key(), Decimal(100), subclass=4, time=NOON).digits
    layout = ["123A", "456B", "789C", "*0#D"]
    rows, cols = (5, 6, 13, 19), (12, 16, 20, 21)
    where = {ch: (rows[r], cols[c]) for r, line in enumerate(layout) for c, ch in enumerate(line)}
    replies = []
    for ch in token + "#":
        row, col = where[ch]
        factory.pin(row).input_pin = factory.pin(col)  # the key connects its row to its column
        replies.append(devices.scan_keypad())
        factory.pin(row).input_pin = None
        factory.pin(col).drive_high()  # released: the pull-up takes the column back
        devices.scan_keypad()
    assert replies[-1].startswith("accepted")
    assert meter.status()["credit"] == "100.00"
    assert meter.last_token.source == "keypad"
    devices.close()


def test_a_keypad_on_a_pin_another_role_uses_is_refused():
    import pytest

    from bijli.firmware.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        HalConfig.from_table({"keypad": "matrix:17,6,13,19/12,16,20,21"})  # 17 is the relay
    assert err.value.key == "hal.keypad"


# --- the LCD as a consumer meets it (issue 15 item 16) ---------------------------------

def _token(i: int, amount, subclass: int = 4) -> str:
    from decimal import Decimal

    from bijli.firmware.sts.vend import vend_credit
    key = MeterConfig.from_dict({}).sts.vend_key()
    return vend_credit(key, Decimal(amount), subclass=subclass, time=NOON - timedelta(hours=1, minutes=i)).digits


def test_the_lcd_shows_the_digits_as_they_are_typed(tmp_path):
    meter, devices = _rig(tmp_path)
    assert devices.keys("1234") == "1234"
    assert devices.lcd() == "TOKEN 4/20 | 1234"
    devices.keys("56789012345678")
    assert devices.lcd() == "TOKEN 18/20 | 9012 3456 78"  # 16 characters: the last whole groups


def test_an_entry_error_replaces_the_accepted_message(tmp_path):
    meter, devices = _rig(tmp_path)
    assert devices.keys(_token(0, 41) + "#").startswith("accepted")
    assert devices.lcd().startswith("ACCEPTED")
    assert devices.keys("12#").startswith("entry error: too short")
    assert devices.lcd() == "ENTRY ERROR | too short"


def test_credit_has_one_format_and_the_meters_currency(tmp_path):
    meter, devices = _rig(tmp_path)
    devices.display.index = 0
    assert devices.lcd().endswith(" 0.00")  # not "0" beside a later "41.00"
    assert devices.keys(_token(1, 41) + "#").startswith("accepted")
    devices.display.next(0.0)  # dismiss the message
    devices.display.index = 0
    assert devices.lcd().endswith(" 41.00")
    kwh = devices.keys(_token(2, 5, subclass=0) + "#")  # a kWh token on a rupee meter
    assert "this meter takes INR credit" in kwh and "currency credit" not in kwh
