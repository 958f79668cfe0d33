"""A real `bijli meter` process whose storage fails (issue 14 item 3).

The disk fills for real, as far as the meter can tell: the test lowers the meter
process's file-size limit (RLIMIT_FSIZE, through prlimit(2) on its pid) to 0, so the
kernel refuses every write the process makes to a file (EFBIG) — the database, its
write-ahead log, the seal — while its console (a pty) and its sockets work on, and what it writes on stdout and
stderr (pipes the plugin copies into files) still arrives.
Raising the limit again is space coming back. While storage fails the meter keeps
measuring, its clock and energy advance as read over DLMS, the relay decision goes
on; a token it cannot commit is refused with a clear word and changes nothing; and it
recovers by itself once it can write again.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.dlms import axdr
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.cosem.token_gateway import TokenStatusCode
from bijli.tools.node.client_transports import open_client_transport
from tests.integration.test_token_sources import GATEWAY, START, deliver, token, utility, verdict

PORTS = dict(hdlc=False, serial=False, optical=False)  # the wrapper and the console are enough here

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prlimit(2) is Linux's")


def disk_full(meter, full: bool = True) -> None:
    _, hard = resource.prlimit(meter.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(meter.proc.pid, resource.RLIMIT_FSIZE, (0 if full else hard, hard))


def status(meter) -> dict:
    return json.loads(meter.console("status --json"))


def public_read(port: int) -> tuple[datetime, int]:
    """The clock and the active import energy (Wh), as a head-end reads them."""
    client = Client(open_client_transport(f"tcp://127.0.0.1:{port}", 16), ClientSettings.for_association(16))
    try:
        client.associate()
        clock = client.read_clock()
        energy = client.get(3, "1.0.1.8.0.255", 2).to_python()
        client.release()
    finally:
        client.close()
    return clock, energy


def test_a_console_token_that_cannot_be_committed_is_refused_and_changes_nothing(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    meter = bijli_meter_factory(state=state, start=START.isoformat(), **PORTS)
    assert meter.console(f"token {token(0)}").startswith("accepted")
    meter.console("load 10")
    before = status(meter)
    _, energy_before = public_read(meter.endpoints.wrapper_port)
    disk_full(meter)
    for _ in range(3):  # again and again: never "used", never a lockout
        reply = meter.console(f"token {token(1)}")
        assert reply.startswith("storage_error: not credited, try again (") and "Traceback" not in reply
    now = status(meter)
    assert (now["credit"], now["total_recharged"]) == (before["credit"], before["total_recharged"])
    assert now["storage"].startswith("failing: ") and now["token_lockouts"] == []
    # time goes on: 2.3 kW measured and charged in memory until the 10 INR run out: a cut
    assert meter.console("step 2h") == "2024-06-03T14:00:00"
    clock, energy = public_read(meter.endpoints.wrapper_port)
    assert clock == datetime(2024, 6, 3, 14, 0) and energy > energy_before + 1000
    cut = status(meter)
    assert cut["relay"] != "connected" and cut["supply_reason"] == "out_of_credit"
    disk_full(meter, False)
    assert meter.console(f"token {token(1)}").startswith("accepted")
    assert status(meter)["storage"] == "ok"
    assert meter.console(f"token {token(1)}") == "used"
    assert meter.stop() == 0
    again = bijli_meter_factory(state=state, **PORTS)
    after = status(again)
    assert Decimal(after["total_recharged"]) == 20 and after["energy_import_kwh"] * 1000 >= energy - 1


def test_a_gateway_token_that_cannot_be_committed_is_an_execution_failure_on_a_live_connection(
        bijli_meter_factory, tmp_path):
    meter = bijli_meter_factory(state=tmp_path / "state", start=START.isoformat(), **PORTS)
    client = utility(meter.endpoints.wrapper_port)  # associated before the disk fills (its counters are reserved)
    try:
        deliver(client, token(0))
        assert verdict(client)[2] == "accepted"
        disk_full(meter)
        deliver(client, token(1))
        shown, code, word = verdict(client)
        assert (shown, code, word) == (token(1).encode(), TokenStatusCode.EXECUTION_FAILURE, "storage_error")
        words = [w.value.decode() for w in client.get(115, GATEWAY, 4).value]
        assert words[1].startswith("not credited, try again")
        # the same connection goes on; the head-end sends the token again once storage works,
        # and it is credited then: never "used" for a token whose credit was not acknowledged
        deliver(client, token(1))
        assert verdict(client)[2] == "storage_error"
        disk_full(meter, False)
        deliver(client, token(1))
        assert verdict(client)[1:] == (TokenStatusCode.EXECUTION_OK, "accepted")
        deliver(client, token(1))
        assert verdict(client)[2] == "used"
    finally:
        client.close()
    assert Decimal(status(meter)["total_recharged"]) == 20


def test_the_metering_loop_keeps_measuring_while_storage_fails_and_recovers_by_itself(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    # a simulated clock running 10 minutes a second: the metering loop ticks it on its own
    meter = bijli_meter_factory(state=state, start=START.isoformat(), rate=600, **PORTS)
    assert meter.console(f"token {token(0)}").startswith("accepted")
    meter.console("load 10")
    disk_full(meter)
    first = public_read(meter.endpoints.wrapper_port)
    time.sleep(1.5)
    second = public_read(meter.endpoints.wrapper_port)
    assert second[0] - first[0] >= timedelta(minutes=10), "the clock goes on"
    assert second[1] > first[1], "so does the energy"
    assert status(meter)["storage"].startswith("failing")
    disk_full(meter, False)
    deadline = time.monotonic() + 10
    while status(meter)["storage"] != "ok":  # no command needed: the loop commits by itself
        assert time.monotonic() < deadline, "the meter did not recover by itself"
        time.sleep(0.2)
    third = public_read(meter.endpoints.wrapper_port)
    assert third[0] > second[0] and third[1] >= second[1]
    meter.kill()  # a power cut: only what was committed is there at the restart
    again = bijli_meter_factory(state=state, **PORTS)
    assert status(again)["energy_import_kwh"] * 1000 >= second[1] - 1


def test_a_stop_while_storage_fails_says_so_and_restarts_at_the_last_commit(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    meter = bijli_meter_factory(state=state, start=START.isoformat(), **PORTS)
    assert meter.console(f"token {token(0)}").startswith("accepted")
    disk_full(meter)
    assert meter.console(f"token {token(1)}").startswith("storage_error")
    assert meter.console("step 1h") == "2024-06-03T13:00:00"
    assert meter.stop() == 0
    assert "could not save at stop, the state is as at its last commit" in meter.stderr()
    again = bijli_meter_factory(state=state, **PORTS)
    assert Decimal(status(again)["total_recharged"]) == 10
    assert again.console(f"token {token(1)}").startswith("accepted")


def test_with_the_disk_full_a_known_head_end_associates_and_a_new_one_is_told_to_come_back(
        bijli_meter_factory, tmp_path):
    """Invocation counters must be kept before they are used. A start reserves a step
    ahead of each counter the meter knows, so a head-end it has met associates again
    while the disk is full (and is told storage_error for a token); a client it never met
    needs a write, so its AARQ is refused rejected-transient (come back later) on a
    connection that stays up, never dropped; once space is back it associates."""
    from bijli.dlms.acse import AssociationResult
    from bijli.dlms.errors import AssociationError

    state = tmp_path / "state"
    meter = bijli_meter_factory(state=state, start=START.isoformat(), **PORTS)
    utility(meter.endpoints.wrapper_port).close()  # the head-end meets the meter once
    meter.stop()
    meter = bijli_meter_factory(state=state, **PORTS)  # a clean stop and a start: no headroom but the start's
    disk_full(meter)
    client = utility(meter.endpoints.wrapper_port)
    try:
        deliver(client, token(0))
        assert verdict(client)[2] == "storage_error"
    finally:
        client.close()
    stranger = ClientSettings.for_association(48, system_title=b"STRANGER", invocation_counter=0)
    transport = open_client_transport(meter.endpoints.wrapper, 48)
    newcomer = Client(transport, stranger)
    try:
        with pytest.raises(AssociationError) as refused:
            newcomer.associate()
        assert AssociationResult.REJECTED_TRANSIENT.name in str(refused.value)
        disk_full(meter, False)
        newcomer.associate()  # the same connection: it was kept
        deliver(newcomer, token(0))
        assert verdict(newcomer)[2] == "accepted"
    finally:
        newcomer.close()


def test_with_the_disk_full_any_dlms_write_is_a_temporary_failure_on_a_live_association(
        bijli_meter_factory, tmp_path):
    """Not only the token gateway: a clock write (and any SET or ACTION the meter cannot
    commit) is answered temporary-failure and the association goes on, never dropped."""
    from bijli.dlms.apdu import DataAccessResult
    from bijli.dlms.errors import ServiceError

    meter = bijli_meter_factory(state=tmp_path / "state", start=START.isoformat(), **PORTS)
    client = utility(meter.endpoints.wrapper_port)
    try:
        disk_full(meter)
        with pytest.raises(ServiceError) as refused:
            client.write_clock(START + timedelta(hours=1))
        assert DataAccessResult.TEMPORARY_FAILURE.name in str(refused.value)
        assert client.read_clock() < START + timedelta(minutes=30)  # nothing changed, still associated
        disk_full(meter, False)
        client.write_clock(START + timedelta(hours=1))
        assert client.read_clock() >= START + timedelta(hours=1)
    finally:
        client.close()
