"""One time-zone sign convention, the Blue Book's (issue 11 item 9).

The Clock's time_zone (attribute 3) and every date-time deviation the meter reads or
writes are the same number: UTC minus local time in minutes, so IST is -330. A
client that converts the clock's local time with attribute 3 lands on the meter's
instant; range bounds sent in UTC select the rows the meter stamped in IST; a clock
write carrying a deviation sets the right instant; push stamps carry attribute 3.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bijli.dlms import apdu, axdr
from bijli.dlms.apdu import AccessSelection
from bijli.dlms.cosem.profile import CaptureObjectDefinition
from bijli.firmware.cosem import catalogue
from tests.firmware.cosem.test_object_list import START, Rig

IST = timezone(timedelta(hours=5, minutes=30))


def _utc_instant(local: datetime, time_zone: int) -> datetime:
    """What a client computes from the clock's local time and attribute 3 (Blue Book sign)."""
    return (local + timedelta(minutes=time_zone)).replace(tzinfo=timezone.utc)


def test_clock_time_zone_is_the_blue_book_deviation_and_converts_to_the_right_instant(tmp_path):
    rig = Rig(tmp_path, {"push": {"destination": "127.0.0.1:4060", "ciphered": False}})
    c = rig.client(32)
    zone = c.get(8, catalogue.CLOCK, 3)
    assert zone == axdr.Long(-330)
    local = c.read_clock()
    assert _utc_instant(local, zone.value) == START.replace(tzinfo=IST).astimezone(timezone.utc)
    # the push stamp carries the same deviation
    u = rig.client(48)
    u.action(40, catalogue.PUSH_SETUP, 1, axdr.Integer(0))
    (request,) = rig.outbox.take()
    note = apdu.decode(rig.outbox.build(request, START))
    assert note.date_time.deviation == zone.value


def test_a_clock_write_with_a_deviation_sets_the_instant_it_names(tmp_path):
    rig = Rig(tmp_path, clock_writable=True)
    c = rig.client(48)
    # 08:00 UTC is 13:30 IST; a deviation of 0 says "this is UTC"
    utc = datetime(2024, 6, 11, 8, 0, tzinfo=timezone.utc)
    c.set(8, catalogue.CLOCK, 2, axdr.OctetString(axdr.CosemDateTime.from_datetime(utc, clock_status=None).encode()))
    assert rig.meter.now == datetime(2024, 6, 11, 13, 30)
    # and one sent in IST with the standard's -330 is taken as it stands
    stamp = axdr.CosemDateTime.from_datetime(datetime(2024, 6, 11, 14, 0), deviation=-330, clock_status=None)
    c.set(8, catalogue.CLOCK, 2, axdr.OctetString(stamp.encode()))
    assert rig.meter.now == datetime(2024, 6, 11, 14, 0)


def test_range_bounds_in_utc_select_the_rows_stamped_in_ist_and_follow_a_written_time_zone(tmp_path):
    rig = Rig(tmp_path)
    rig.meter.advance_to(START + timedelta(hours=2))  # block rows at 10:15 .. 12:00 IST
    c = rig.client(48)
    clock_col = CaptureObjectDefinition(8, catalogue.CLOCK, 2).to_data()

    def rows_between(lo: datetime, hi: datetime) -> list[datetime]:
        params = axdr.Structure((clock_col, axdr.OctetString(axdr.CosemDateTime.from_datetime(lo).encode()),
                                 axdr.OctetString(axdr.CosemDateTime.from_datetime(hi).encode()), axdr.Array(())))
        buf = c.get(7, "1.0.99.1.0.255", 2, AccessSelection(1, params))
        return [axdr.CosemDateTime.decode(r.value[0].value).to_datetime() for r in buf.value]

    # 05:00..05:30 UTC is 10:30..11:00 IST
    lo, hi = datetime(2024, 6, 10, 5, 0, tzinfo=timezone.utc), datetime(2024, 6, 10, 5, 30, tzinfo=timezone.utc)
    assert rows_between(lo, hi) == [datetime(2024, 6, 10, 10, 30), datetime(2024, 6, 10, 10, 45),
                                    datetime(2024, 6, 10, 11, 0)]
    # the head-end moves the meter to UTC+05:45 (deviation -345): bounds follow attribute 3
    c.set(8, catalogue.CLOCK, 3, axdr.Long(-345))
    assert c.get(8, catalogue.CLOCK, 3) == axdr.Long(-345)
    assert rows_between(lo, hi) == [datetime(2024, 6, 10, 10, 45), datetime(2024, 6, 10, 11, 0),
                                    datetime(2024, 6, 10, 11, 15)]
    # a written zone is kept in the meter's memory: a restart keeps it
    again = Rig(tmp_path)
    assert again.client(32).get(8, catalogue.CLOCK, 3) == axdr.Long(-345)
