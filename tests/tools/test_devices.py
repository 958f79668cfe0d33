"""The firmware's relay decision reaches the (mock) relay pin; a feedback contact
that disagrees is logged; tamper switches and the button reach the firmware."""

from __future__ import annotations

from datetime import datetime, timedelta

from firmware.events import EventCode, LogKind
from firmware.meter import Meter, MeterConfig
from firmware.storage import Storage
from tools.config import HalConfig
from tools.devices import Devices

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
    from hal.pins import PinEvent, PinEventKind
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
