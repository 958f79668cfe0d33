"""What the server and the Clock keep between requests stays true to what they would compute afresh.

The GET path keeps a few things instead of rebuilding them per request (issue 16):
each object's access rights for the life of one association, the Clock's last
encoded time for as long as the meter's time, status and zone stay what they were,
and the server the A-XDR of the last octet-string value it sent, for as long as an
object hands back that very value.
These tests drive the real server with our client and check that every change
that should show (a new association, a replaced policy, the time moving on, the
status or the zone changing) does show, at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bijli.dlms import axdr
from bijli.dlms.acse import Mechanism
from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.cosem.association import AssociationLN, AssociationPolicy, ObjectRights, read_only
from bijli.dlms.cosem.base import AttributeAccess
from bijli.dlms.cosem.clock import Clock
from bijli.dlms.cosem.data import Data
from bijli.dlms.errors import ServiceError
from bijli.dlms.obis import Obis
from bijli.dlms.server import Server
from tests.peers.direct import Direct

CLOCK = Obis(0, 0, 1, 0, 0, 255)
SECRET = Obis(0, 0, 96, 1, 0, 255)


class Meter:
    """What the Clock is bound to: a time that moves when told, and a status byte."""

    def __init__(self) -> None:
        self.now = datetime(2024, 6, 10, 10, 0, 0)
        self.status = 0


def _server(meter: Meter, rule, *, asked: list | None = None):
    clock = Clock(CLOCK, now=lambda: meter.now, status=lambda: meter.status)
    secret = Data(SECRET, lambda: axdr.OctetString(b"hidden"))
    objects = [clock, secret]
    objects.append(AssociationLN("0.0.40.0.0.255", None, lambda: objects))

    def counted(obj):
        if asked is not None:
            asked.append(obj.logical_name)
        return rule(obj)

    policy = AssociationPolicy(16, "public", Mechanism.LOWEST, None, counted)
    return Server(objects, [policy]), clock


def _client(server: Server) -> Client:
    c = Client(Direct(server, 16), ClientSettings.for_association(16))
    c.associate()
    return c


def _hide_secret(obj):
    return None if obj.logical_name == SECRET else read_only(obj)


def test_rights_are_asked_once_per_object_per_association():
    asked: list = []
    server, _ = _server(Meter(), read_only, asked=asked)
    c = _client(server)
    for _ in range(5):
        c.get(8, CLOCK, 2)
    assert asked.count(CLOCK) == 1
    c.release()
    c.associate()  # a new association asks again
    c.get(8, CLOCK, 2)
    assert asked.count(CLOCK) == 2


def test_a_replaced_policy_rules_the_next_association_not_the_open_one():
    server, _ = _server(Meter(), read_only)
    c = _client(server)
    assert c.get(1, SECRET, 2) == axdr.OctetString(b"hidden")
    server.replace_policy(AssociationPolicy(16, "public", Mechanism.LOWEST, None, _hide_secret))
    # the open association keeps the policy (and so the rights) it was opened with
    assert c.get(1, SECRET, 2) == axdr.OctetString(b"hidden")
    c.release()
    c.associate()
    with pytest.raises(ServiceError) as refused:
        c.get(1, SECRET, 2)
    assert refused.value.result == DataAccessResult.OBJECT_UNDEFINED
    assert isinstance(c.get(8, CLOCK, 2), axdr.OctetString)


def test_rights_kept_from_one_session_do_not_leak_into_another():
    server, _ = _server(Meter(), read_only)
    full = ObjectRights((AttributeAccess.READ_ONLY,) * 2, ())
    none = ObjectRights((AttributeAccess.NO_ACCESS,) * 2, ())
    server.replace_policy(AssociationPolicy(16, "public", Mechanism.LOWEST, None,
                                            lambda o: none if o.logical_name == SECRET else read_only(o)))
    hidden = _client(server)
    server.replace_policy(AssociationPolicy(16, "public", Mechanism.LOWEST, None,
                                            lambda o: full if o.logical_name == SECRET else read_only(o)))
    shown = _client(server)
    assert shown.get(1, SECRET, 2) == axdr.OctetString(b"hidden")
    with pytest.raises(ServiceError) as refused:
        hidden.get(1, SECRET, 2)
    assert refused.value.result == DataAccessResult.READ_WRITE_DENIED


def _time(c: Client) -> axdr.CosemDateTime:
    value = c.get(8, CLOCK, 2)
    return axdr.CosemDateTime.decode(value.value)


def test_the_clock_sends_the_time_as_it_is_now_every_time():
    meter = Meter()
    server, clock = _server(meter, read_only)
    c = _client(server)
    first = _time(c)
    assert first.to_datetime() == meter.now and first.clock_status == 0 and first.deviation is None
    assert _time(c) == first  # unchanged meter time: the same answer
    meter.now += timedelta(seconds=1)
    assert _time(c).to_datetime() == meter.now
    meter.status = 0x01  # doubtful
    assert _time(c).clock_status == 0x01
    clock.send_deviation = True
    assert _time(c).deviation == -330
    clock.time_zone = -60
    assert _time(c).deviation == -60
    clock.send_deviation = False
    assert _time(c).deviation is None


def test_the_clock_reads_two_aware_times_of_one_instant_by_their_own_wall_time():
    meter = Meter()
    server, _ = _server(meter, read_only)
    c = _client(server)
    utc = datetime(2024, 6, 10, 4, 30, tzinfo=timezone.utc)
    meter.now = utc
    assert _time(c).to_datetime() == datetime(2024, 6, 10, 4, 30)
    meter.now = utc.astimezone(timezone(timedelta(minutes=330)))  # equal, but 10:00 on the wall
    assert _time(c).to_datetime() == datetime(2024, 6, 10, 10, 0)


def test_the_server_encodes_afresh_every_value_that_is_not_the_one_it_kept():
    # the server keeps the A-XDR of the last octet string by identity: objects whose value
    # changes, or is equal but another object, or is not an octet string, must still be
    # answered with their own encoding, in any order
    meter = Meter()
    values = [axdr.OctetString(b"one"), axdr.OctetString(b"two"), axdr.OctetString(bytearray(b"three")),
              axdr.VisibleString("four"), axdr.OctetString(b"one"), axdr.Unsigned(5)]
    state = {"i": 0}
    changing = Data(Obis(0, 0, 96, 1, 1, 255), lambda: values[state["i"]])
    server, _ = _server(meter, read_only)
    server.add(changing)
    c = _client(server)
    for order in (range(len(values)), reversed(range(len(values))), [0, 0, 1, 1, 0, 4, 0]):
        for i in order:
            state["i"] = i
            assert c.get(1, changing.logical_name, 2) == values[i]
    # and the kept value is the Clock's own while the time stands still
    first = c.get(8, CLOCK, 2)
    assert c.get(8, CLOCK, 2) == first
    meter.now += timedelta(seconds=1)
    assert c.get(8, CLOCK, 2) != first
