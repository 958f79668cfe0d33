"""A fleet meter's profiles, kept in the shard's pages, read by gurux over real TCP."""

from __future__ import annotations

from datetime import timedelta, timezone

from bijli.firmware.profiles import EntryRange
from tests.tools.test_fleet_serve import ServedShard

IST = timezone(timedelta(hours=5, minutes=30))


def test_gurux_reads_a_fleet_meters_block_load_across_its_pages_by_range_and_by_entry(tmp_path):
    from gurux_dlms.enums import Authentication
    from gurux_dlms.objects import GXDLMSProfileGeneric

    from tests.peers.gurux_client import GuruxPeer, TcpTransport

    shard = ServedShard(tmp_path, [7, 8], cache_size=1)
    meter = shard.indices[0]
    try:
        async def two_days():
            for _ in range(4):
                shard.engine.step(12 * 3600)
            with shard.engine.observe(meter) as node:  # the first walks the two days; the second stays dormant
                profile = node.meter.profiles.block_load
                return profile.rows(node.meter.storage), profile.rows(node.meter.storage, EntryRange(50, 150))
        everything, by_entry = shard.call(two_days())
        assert len(everything) == 2 * 96
        (pages,) = shard.engine.store._db.execute(
            "SELECT COUNT(*) FROM pages WHERE meter = ? AND profile = 'block_load'", (meter,)).fetchone()
        assert pages == 4  # 48 entries each: what gurux reads below comes out of pages
        row = next(m for m in shard.manifest()["meters"] if m["index"] == meter)
        peer = GuruxPeer(TcpTransport(row["host"], row["port"]), client_sap=48, authentication=Authentication.HIGH_GMAC,
                         block_cipher_key=bytes.fromhex(row["dlms"]["encryption_key"]),
                         authentication_key=bytes.fromhex(row["dlms"]["authentication_key"]), invocation_counter=1)
        try:
            peer.connect()
            pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
            peer.read(pg, 3)
            peer.read(pg, 7)
            assert pg.entriesInUse == len(everything)
            reply = peer.exchange(peer.client.readRowsByEntry(pg, 50, 101))  # gurux: from entry 50, 101 of them
            got = peer.client.updateValue(pg, 2, reply.value)
            assert [r[0].value.replace(tzinfo=None) for r in got] == [r[0] for r in by_entry]  # over page edges
            assert [list(r[3:]) for r in got] == [r[3:] for r in by_entry]
            lo, hi = everything[40][0], everything[100][0]
            reply = peer.exchange(peer.client.readRowsByRange(pg, lo.replace(tzinfo=IST), hi.replace(tzinfo=IST)))
            got = peer.client.updateValue(pg, 2, reply.value)
            assert [r[0].value.replace(tzinfo=None) for r in got] == [r[0] for r in everything[40:101]]
        finally:
            peer.close()
    finally:
        shard.close()
