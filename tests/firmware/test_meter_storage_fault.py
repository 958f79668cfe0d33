"""The meter while its storage fails (issue 14 item 3), in-process on a real sqlite file.

Storage fails for real here: sqlite's ``PRAGMA query_only`` on the meter's own
connection makes every write of the database fail inside sqlite ("attempt to write a
readonly database"), as a full disk makes them fail, and turning it off is space
coming back. (tests/integration/test_storage_fault.py does the same to a real
``bijli meter`` process with a file-size limit, so that the kernel refuses the writes.)
A step whose commit fails changes nothing in memory; time passing goes on in memory
and is committed, events, rows and all, by the first commit that succeeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from bijli.firmware.events import LogKind
from bijli.firmware.meter import Meter
from bijli.firmware.storage import Storage
from bijli.firmware.sts import TokenResultCode
from tests.firmware.test_meter import Rig, token

START = datetime(2024, 6, 3, 12, 0)  # a Monday noon: no friendly period, a cut for credit is a cut


def fail(storage: Storage, failing: bool = True) -> None:
    storage._db.execute(f"PRAGMA query_only = {'ON' if failing else 'OFF'}")


def test_a_token_that_cannot_be_committed_changes_nothing_in_memory_and_is_taken_later(tmp_path):
    rig = Rig(tmp_path, START)
    meter = rig.meter
    assert meter.enter_token(token("10", START - timedelta(hours=1))).accepted
    before = (meter.sts, meter.account, meter.limiter, meter.relay, meter.last_token, meter.storage.commit)
    t = token("20", START - timedelta(minutes=30))
    fail(rig.storage)
    for _ in range(3):  # the same token again and again: never "used", never counted as bad
        outcome = meter.enter_token(t, "console")
        assert outcome.code is TokenResultCode.STORAGE_ERROR and outcome.word == "storage_error"
        assert outcome.message.startswith("not credited, try again (") and outcome.credit_added == 0
        assert (meter.sts, meter.account, meter.limiter, meter.relay, meter.last_token,
                meter.storage.commit) == before
    assert Decimal(meter.status()["credit"]) == 10 and meter.status()["storage"].startswith("failing: ")
    fail(rig.storage, False)
    outcome = meter.enter_token(t, "console")
    assert outcome.accepted and Decimal(meter.status()["credit"]) == 30 and meter.status()["storage"] == "ok"
    assert meter.enter_token(t, "console").word == "used"
    reopened = Meter(meter.config, rig.storage, meter.now)  # a restart on the same memory
    assert reopened.account.total_recharged == Decimal(30)


def test_time_goes_on_in_memory_while_storage_fails_and_is_committed_when_it_works(tmp_path):
    rig = Rig(tmp_path, START)
    meter = rig.meter
    assert meter.enter_token(token("10", START - timedelta(hours=1))).accepted
    rig.load(10)
    heard = []
    meter.event_listeners.append(heard.append)
    fail(rig.storage)
    commits = rig.storage.commit
    status = rig.at(START + timedelta(hours=3))  # 3 h at 2.3 kW: 10 INR runs out, the relay opens
    assert rig.storage.commit == commits, "nothing was committed"
    assert status["time"] == "2024-06-03T15:00:00" and status["energy_import_kwh"] > 2.0
    assert status["relay"] != "connected" and status["supply_reason"] == "out_of_credit"
    assert Decimal(status["credit"]) <= 0 and status["storage"].startswith("failing")
    assert heard == [], "no event is told before it is committed"
    assert rig.storage.get("energy")["active_import_wh"] < 1000  # the disk still holds the start
    fail(rig.storage, False)
    status = rig.at(START + timedelta(hours=3, minutes=1))  # the walk retries by itself
    assert status["storage"] == "ok" and rig.storage.commit > commits
    assert rig.storage.get("energy")["active_import_wh"] > 2000
    # what happened while it failed is in the logs now: the block-load rows and the cut
    rows = rig.storage.rows("block_load")
    period = timedelta(seconds=meter.profiles.block_load.capture_period)
    assert [r.time for r in rows if r.time > START] == [START + period * i for i in range(1, 3 * 3600 // period.seconds + 1)]
    control = [e for e in meter.events.events(rig.storage, LogKind.CONTROL)]
    assert control and heard, "the relay's cut is logged and told once committed"
    # and a restart finds it all
    again = Meter(meter.config, rig.storage, meter.now)
    assert again.energy.active_import_wh >= meter.energy.active_import_wh - 1
    assert again.account.balance == meter.account.balance


def test_storage_failing_midway_through_a_jump_walks_it_again_step_by_step(tmp_path):
    """A jump is one commit group; here storage starts failing in the middle of it (when
    the relay opens for lack of credit, 2 h in). The group is undone whole: the meter's
    RAM goes back to the jump's start, energy included, and the jump is walked again step
    by step on failing storage, in memory; once storage works the next step commits it
    all. The meter then agrees with one whose storage never failed, to the watt-hour."""
    t = token("10", START - timedelta(hours=1))
    sound, failing = Rig(tmp_path / "sound", START), Rig(tmp_path / "failing", START)
    for rig in (sound, failing):
        assert rig.meter.enter_token(t).accepted
        rig.load(10)
    relay = failing.meter.on_relay
    told = []

    def on_relay(closed: bool) -> None:
        told.append(closed)
        if not closed:
            fail(failing.storage)  # the disk fills as the relay opens
        relay(closed)

    failing.meter.on_relay = on_relay
    heard = []
    failing.meter.event_listeners.append(heard.append)
    commits = failing.storage.commit
    status = failing.at(START + timedelta(hours=3))
    assert failing.storage.commit == commits, "nothing of the jump was committed"
    assert heard == [], "nothing is told that is not committed"
    assert told[:2] == [False, True] and told[-1] is False, "the relay hal is told its state again"
    assert status["storage"].startswith("failing") and status["relay"] != "connected"
    expected = sound.at(START + timedelta(hours=3))
    # the rig's relay hal feeds a block of samples each time it is told (0.2 s, about
    # 0.13 Wh at 2.3 kW), and it was told three times, not once: that much apart, no more
    # (the jump counted twice would be 6.9 kWh)
    assert abs(failing.meter.energy.active_import_wh - sound.meter.energy.active_import_wh) < 1.0
    for key in ("time", "relay", "supply_reason", "friendly_now", "debt", "total_recharged"):
        assert status[key] == expected[key], key
    assert abs(Decimal(status["credit"]) - Decimal(expected["credit"])) < Decimal("0.01")
    fail(failing.storage, False)
    assert failing.at(START + timedelta(hours=3, minutes=1))["storage"] == "ok" and heard
    sound.at(START + timedelta(hours=3, minutes=1))
    assert abs(failing.storage.get("energy")["active_import_wh"] - sound.storage.get("energy")["active_import_wh"]) < 1.0
    period = failing.meter.profiles.block_load.capture_period
    assert ([r.time for r in failing.storage.rows("block_load")] == [r.time for r in sound.storage.rows("block_load")]
            == [START + timedelta(seconds=period * i) for i in range(1, 3 * 3600 // period + 1)])


def test_a_failed_step_puts_the_relay_back(tmp_path):
    """A token whose credit would reconnect the supply but cannot be committed: the relay
    stays open (memory and relay hal agree with storage), and the token is taken later."""
    rig = Rig(tmp_path, START)
    meter = rig.meter
    assert meter.enter_token(token("10", START - timedelta(hours=1))).accepted
    rig.load(10)
    assert rig.at(START + timedelta(hours=3))["relay"] != "connected"
    relay_before = meter.relay
    told = []
    meter.on_relay = lambda closed: told.append(closed)
    fail(rig.storage)
    t = token("500", START - timedelta(minutes=10))
    assert meter.enter_token(t, "keypad").word == "storage_error"
    assert meter.relay == relay_before and (not told or told[-1] is relay_before.output_state)
    fail(rig.storage, False)
    assert meter.enter_token(t, "keypad").accepted and meter.relay.output_state and told[-1] is True


def test_dlms_writes_the_meter_cannot_commit_are_temporary_failures_on_a_live_association(tmp_path):
    """A head-end's SET of the load limit and ACTION remote_disconnect while storage fails:
    temporary-failure (try again later), nothing changed, and the association goes on."""
    from bijli.dlms import axdr
    from bijli.dlms.errors import DlmsError
    from bijli.firmware.cosem import catalogue
    from tests.firmware.cosem.test_object_list import Rig as DlmsRig

    rig = DlmsRig(tmp_path)
    client = rig.client(48)
    limit_before, relay_before = rig.meter.limiter, rig.meter.relay
    fail(rig.storage)
    for attempt in (lambda: client.set(71, catalogue.LIMITER, 4, axdr.DoubleLongUnsigned(3000)),
                    lambda: client.action(70, catalogue.DISCONNECT_CONTROL, 1, axdr.Integer(0))):
        try:
            attempt()
        except DlmsError as exc:
            assert str(exc).endswith("TEMPORARY_FAILURE"), exc
        else:
            raise AssertionError("a write that could not be committed was answered success")
    assert (rig.meter.limiter, rig.meter.relay) == (limit_before, relay_before)
    assert client.get(70, catalogue.DISCONNECT_CONTROL, 2) == axdr.Boolean(True)  # still associated
    fail(rig.storage, False)
    client.action(70, catalogue.DISCONNECT_CONTROL, 1, axdr.Integer(0))
    assert client.get(70, catalogue.DISCONNECT_CONTROL, 2) == axdr.Boolean(False)


def test_a_start_that_cannot_write_says_so_and_does_not_call_the_state_corrupt(tmp_path):
    import pytest

    from bijli.firmware.errors import StorageError

    rig = Rig(tmp_path, START)
    assert rig.meter.enter_token(token("10", START - timedelta(hours=1))).accepted
    fail(rig.storage)
    with pytest.raises(StorageError, match="cannot write the start-up step") as caught:
        Meter(rig.meter.config, rig.storage, START + timedelta(hours=1))
    assert "corrupt" not in str(caught.value)
    fail(rig.storage, False)
    assert Meter(rig.meter.config, rig.storage, START + timedelta(hours=1)).account.total_recharged == 10
