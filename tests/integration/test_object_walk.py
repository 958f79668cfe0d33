"""The whole object list, walked by gurux and by our client, in every association.

"What it must show" of issue 11: gurux-dlms, a client we did not write, reads every
attribute of every object in each of the three associations (public 16, meter reader
32, utility 48) with no error, from a meter built as ``bijli meter`` builds it and
served over the IEC 62056-47 wrapper on a real TCP socket. Each access selector a
profile's buffer supports (1 by range, 2 by entry) works in every association that
sees it, and a client converting the clock with attribute 3 lands on the meter's
instant (item 9, with gurux).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gurux_dlms import GXDateTime
from gurux_dlms.enums import ObjectType
from gurux_dlms.objects import GXDLMSClock, GXDLMSProfileGeneric

from bijli.dlms import axdr
from bijli.dlms.apdu import AccessSelection
from bijli.dlms.cosem.profile import SELECTOR_ENTRY, SELECTOR_RANGE, ProfileGeneric
from bijli.dlms.obis import Obis
from bijli.firmware.cosem import catalogue
from tests.integration.test_interop_gurux import _ic
from tests.integration.whole_meter import START, client, whole_meter
from tests.peers.gurux_client import GuruxPeer, TcpTransport
from tests.peers.loop_thread import ServedMeter
from gurux_dlms.enums import Authentication

IST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    node = whole_meter(tmp_path_factory.mktemp("walk"))
    node.meter.advance_to(START + timedelta(hours=2))  # some profile rows to read
    s = ServedMeter(node)
    yield s
    s.stop()


def _peer(served, sap: int) -> GuruxPeer:
    kw = {}
    if sap == 32:
        kw = {"authentication": Authentication.LOW, "password": b"12345678"}
    elif sap == 48:
        kw = {"authentication": Authentication.HIGH_GMAC, "invocation_counter": _ic["next"]}
        _ic["next"] += 1000
    return GuruxPeer(TcpTransport("127.0.0.1", served.port), client_sap=sap, **kw)


@pytest.mark.parametrize("sap", (16, 32, 48))
def test_gurux_reads_every_attribute_of_every_object_in_every_association(served, sap):
    peer = _peer(served, sap)
    peer.connect()
    try:
        objects = peer.client.parseObjects(peer.exchange(peer.client.getObjectsRequest()).data, False)
        assert len(objects) > (5 if sap == 16 else 90)
        failures, reads = [], 0
        for obj in objects:
            order = list(range(1, obj.getAttributeCount() + 1))
            if obj.objectType == ObjectType.PROFILE_GENERIC:
                order.remove(3)
                order.insert(1, 3)  # a client reads the capture objects before the buffer they describe
            for index in order:
                if not int(obj.getAccess(index)) & 1:  # not readable in this association
                    continue
                try:
                    reply = peer.exchange(peer.client.read(obj, index))
                    if reply.error:
                        raise RuntimeError(f"error {reply.error}")
                    peer.client.updateValue(obj, index, reply.value)
                    reads += 1
                except Exception as exc:  # noqa: BLE001 - each failure is reported with its object
                    failures.append(f"{obj.objectType} {obj.logicalName} attribute {index}: {exc!r}")
        assert not failures, "\n".join(failures)
        assert reads > (10 if sap == 16 else 400)
    finally:
        peer.close()


@pytest.mark.parametrize("sap", (16, 32, 48))
def test_gurux_reads_association_ln_user_list_and_current_user(served, sap):
    """Association LN is version 2: attributes 10 and 11 are there and readable (issue 11 item 7)."""
    peer = _peer(served, sap)
    peer.connect()
    try:
        objects = peer.client.parseObjects(peer.exchange(peer.client.getObjectsRequest()).data, False)
        for obj in objects:
            if obj.objectType == ObjectType.ASSOCIATION_LOGICAL_NAME:
                for index in (10, 11):
                    reply = peer.exchange(peer.client.read(obj, index))
                    assert not reply.error, (obj.logicalName, index, reply.error)
    finally:
        peer.close()


def test_gurux_converting_the_clock_with_attribute_3_lands_on_the_meters_instant(served):
    peer = _peer(served, 32)
    peer.connect()
    try:
        clock = GXDLMSClock("0.0.1.0.0.255")
        peer.read(clock, 3)
        peer.read(clock, 2)
        assert clock.timeZone == -330
        local = clock.time.value.replace(tzinfo=None)
        utc = (local + timedelta(minutes=clock.timeZone)).replace(tzinfo=timezone.utc)
        assert utc == served.node.meter.now.replace(tzinfo=IST).astimezone(timezone.utc)
    finally:
        peer.close()


@pytest.mark.parametrize("sap", (32, 48))
def test_gurux_reads_every_profile_by_range_and_by_entry(served, sap):
    node = served.node
    profiles = [o for o in node.objects if isinstance(o, ProfileGeneric)]
    peer = _peer(served, sap)
    peer.connect()
    try:
        checked = 0
        for p in profiles:
            assert p.SELECTORS[2] == (SELECTOR_RANGE, SELECTOR_ENTRY)
            pg = GXDLMSProfileGeneric(str(p.logical_name))
            peer.read(pg, 3)  # gurux needs the capture objects to read rows
            total = p.source.entries_in_use()
            by_entry = peer.exchange(peer.client.readRowsByEntry(pg, 1, 0)).value
            assert len(by_entry or []) == total, p.logical_name
            columns = p.source.capture_objects()
            if columns and columns[0].is_clock_time:
                start = GXDateTime(datetime(2000, 1, 1))
                end = GXDateTime(datetime(2100, 1, 1))
                by_range = peer.exchange(peer.client.readRowsByRange(pg, start, end)).value
                assert len(by_range or []) == total, p.logical_name
            checked += 1
        assert checked == len(profiles)
    finally:
        peer.close()


def _raw_object_list(c) -> list[tuple[int, Obis, list]]:
    """(class_id, logical name, per-attribute access_selectors) from attribute 2 as sent."""
    out = []
    for entry in c.get(15, catalogue.CURRENT_ASSOCIATION, 2).value:
        class_id, _version, ln, rights = entry.value
        attrs = rights.value[0].value
        out.append((class_id.value, Obis(*ln.value),
                    [(a.value[0].value, a.value[2]) for a in attrs]))
    return out


def _selection(c, obj: ProfileGeneric, selector: int) -> AccessSelection:
    """A selection that takes every row: entries 1..last, or a range on the first column
    from below to above anything it holds (bounds of the type that column's object holds)."""
    if selector == SELECTOR_ENTRY:
        return AccessSelection(SELECTOR_ENTRY, axdr.Structure((axdr.DoubleLongUnsigned(1), axdr.DoubleLongUnsigned(0),
                                                               axdr.LongUnsigned(1), axdr.LongUnsigned(0))))
    first = obj.source.capture_objects()[0]
    sample = c.get(first.class_id, first.logical_name, first.attribute_index)
    if first.is_clock_time or (type(sample) is axdr.OctetString and len(sample.value) == 12):
        lo, hi = (axdr.OctetString(axdr.CosemDateTime.from_datetime(t).encode())
                  for t in (datetime(2000, 1, 1), datetime(2100, 1, 1)))
    elif type(sample) in (axdr.OctetString, axdr.VisibleString):
        above = b"\xff" * 8 if type(sample.value) is bytes else "~" * 8
        lo, hi = type(sample)(sample.value[:0]), type(sample)(sample.value + above)
    else:
        lo, hi = axdr.DoubleLong(-2**31), axdr.DoubleLongUnsigned(0xFFFFFFFF)
    return AccessSelection(SELECTOR_RANGE, axdr.Structure((first.to_data(), lo, hi, axdr.Array(()))))


@pytest.mark.parametrize("sap", (16, 32, 48))
def test_every_access_selector_an_attribute_supports_or_advertises_works(served, sap):
    c = client(served.node, sap)
    index = {o.logical_name: o for o in served.node.objects}
    worked = 0
    for class_id, ln, attrs in _raw_object_list(c):
        obj = index[ln]
        for attr, advertised in attrs:
            sent = [] if isinstance(advertised, axdr.NullData) else [s.value for s in advertised.value]
            for selector in sorted(set(sent) | set(obj.SELECTORS.get(attr, ()))):
                rows = c.get(class_id, ln, attr, _selection(c, obj, selector))
                assert len(rows.value) == obj.source.entries_in_use(), (ln, selector)
                worked += 1
    assert worked >= (0 if sap == 16 else 2 * 10)


def test_the_object_list_advertises_the_selectors_each_attribute_supports(served):
    c = client(served.node, 48)
    index = {o.logical_name: o for o in served.node.objects}
    for _class_id, ln, attrs in _raw_object_list(c):
        for attr, advertised in attrs:
            sent = () if isinstance(advertised, axdr.NullData) else tuple(s.value for s in advertised.value)
            assert sent == index[ln].access_selectors(attr), (ln, attr)


def test_the_hls_association_names_its_security_setup(served):
    """Attribute 9 of the utility association (and of the current-association alias while it
    is current) names 0.0.43.0.3.255, the security setup it is ciphered with; the others
    use none (issue 11 item 7)."""
    for sap, ln, expected in ((48, "0.0.40.0.3.255", bytes((0, 0, 43, 0, 3, 255))),
                              (48, "0.0.40.0.0.255", bytes((0, 0, 43, 0, 3, 255))),
                              (32, "0.0.40.0.0.255", b"")):
        c = client(served.node, sap)
        try:
            assert c.get(15, ln, 9) == axdr.OctetString(expected), (sap, ln)
            assert c.get(15, ln, 10) == axdr.Array(())
            assert c.get(15, ln, 11) == axdr.Structure((axdr.Unsigned(0), axdr.VisibleString("")))
        finally:
            c.close()
