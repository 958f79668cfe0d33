"""Fleet meters at their own loopback addresses, read over real TCP by a plain DLMS client."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sqlite3
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.errors import AssociationError
from bijli.firmware.shard import ShardStore
from bijli.hal.clock import SimClock
from bijli.tools.errors import UsageError
from bijli.tools.fleet import serve as fleet_serve
from bijli.tools.fleet.addressing import (WRAPPER_PORT, meter_address, meter_endpoint, parse_shard,
                                          shard_indices)
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node import config
from bijli.tools.node.client_transports import open_client_transport
from bijli.tools.node.fleet import member_config
from bijli.firmware.sts.vend import vend_credit
from bijli.tools.storm import DeliveryError
from bijli.tools.storm.delivery import MeterTarget, deliver, read_credit
from tests.peers.addresses import SEED_FLEET, clear_indices

START = datetime(2024, 6, 14, 17, 0)
SERIAL = "0.0.96.1.0.255"


def test_every_meter_has_its_own_loopback_address_on_the_wrapper_port():
    assert meter_address(0) == "127.0.0.1" and meter_address(249_999) == "127.3.208.144"
    seen = {meter_address(i) for i in range(0, 250_000, 7)} | {meter_address(255), meter_address(65_535)}
    assert all(ipaddress.ip_address(a).is_loopback for a in seen)
    assert len({meter_address(i) for i in range(70_000)}) == 70_000
    assert meter_endpoint(42) == ("127.0.0.43", WRAPPER_PORT)
    assert meter_endpoint(3, "10.0.0.5", 5000) == ("10.0.0.5", 5003)  # beyond loopback only when asked
    assert meter_endpoint(2_001, "10.0.0.5", 5000, shards=4) == ("10.0.0.5", 5500)  # its place in shard 1 of 4
    for bad in (-1, 2**24, "3"):
        with pytest.raises(UsageError):
            meter_address(bad)
    with pytest.raises(UsageError, match="65536"):
        meter_endpoint(70_000, "127.0.0.1", 5000)


def test_shards_partition_the_fleet_by_index_alone():
    count, n = 1003, 4
    parts = [set(shard_indices(count, k, n)) for k in range(n)]
    assert set().union(*parts) == set(range(count)) and sum(map(len, parts)) == count
    assert list(shard_indices(10, 2, 4)) == [2, 6]
    assert parse_shard("3/8") == (3, 8)
    for bad in ("8/8", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_a_tests_meters_are_clear_of_a_fleet_serving_on_this_machine():
    """A test's meters go above a seed-sized fleet, and past endpoints someone holds:
    a fleet already serving there does not fail the test with 'address in use'."""
    import socket

    from tests.peers.addresses import clear_offset, clear_shard, endpoints_free

    indices = clear_indices([0, 1, 5], modulus=4)
    assert all(i >= SEED_FLEET for i in indices) and [i - indices[0] for i in indices] == [0, 1, 5]
    assert indices[0] % 4 == 0 and endpoints_free(indices)
    held = []
    try:
        for i in indices:  # a fleet takes them
            s = socket.socket()
            held.append(s)
            s.bind(meter_endpoint(i))
            s.listen(1)
        assert not endpoints_free(indices)
        again = clear_indices([0, 1, 5], modulus=4)
        assert again != indices and endpoints_free(again) and again[0] % 4 == 0
        k = clear_shard(4_000_000, 3)
        assert SEED_FLEET <= k < 4_000_000 and endpoints_free(k + j * 4_000_000 for j in range(3))
        with pytest.raises(ValueError):
            clear_offset([2**24])  # does not fit on loopback
    finally:
        for s in held:
            s.close()


class ServedShard:
    """A shard of a fleet served on an event loop in a thread; the test thread is the head-end.
    Its meters are at their own loopback addresses: ``indices`` are moved above any fleet
    serving on this machine (:func:`tests.peers.addresses.clear_indices`; ``modulus``, a
    shard's N, keeps each in its shard), and :attr:`indices` says where they are."""

    def __init__(self, tmp_path, indices, cache_size=1, modulus=1):
        self.indices = clear_indices(indices, modulus)
        self.engine = FleetEngine(config.load(None), self.indices, ShardStore.open(tmp_path / "s.db"),
                                  SimClock(START, rate=0), cache_size=cache_size)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.endpoints = self.call(fleet_serve.serve(self.engine))

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def manifest(self):
        async def build():
            return fleet_serve.manifest(self.engine, self.endpoints)
        return self.call(build())

    def close(self):
        async def stop():
            for listener in self.engine.listeners:
                listener.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:  # the connections' sessions, at end of their streams
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            self.engine.shutdown()
        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def read(target: str, *items, sap=16, **kw):
    client = Client(open_client_transport(target, sap), ClientSettings.for_association(sap, **kw))
    with client:
        client.associate()
        return [client.get(*item).to_python() for item in items]


def test_a_stock_client_reads_each_meter_at_its_own_address_through_the_cache(tmp_path):
    # shard 1,234 of 1,500 of a fleet, moved past any fleet on this machine: not 127.0.0.1
    shard = ServedShard(tmp_path, shard_indices(5000, 1234, 1500), modulus=1500)
    try:
        man = shard.manifest()
        assert [m["index"] for m in man["meters"]] == shard.indices
        assert all(i % 1500 == 1234 and i >= SEED_FLEET for i in shard.indices)
        for m in man["meters"]:
            assert m["host"] == meter_address(m["index"]) and m["port"] == WRAPPER_PORT
            assert m["target"] == f"tcp://{meter_address(m['index'])}:4059"
        for visit, m in enumerate(man["meters"] + man["meters"][:1]):  # the cache holds one: each read hydrates
            (serial,) = read(m["target"], (1, SERIAL, 2))
            assert (serial.decode() if isinstance(serial, bytes) else serial) == m["serial"]
            dl = m["dlms"]
            keys = {"encryption_key": bytes.fromhex(dl["encryption_key"]),
                    "authentication_key": bytes.fromhex(dl["authentication_key"])}
            if visit == 3:  # back to the first meter: its replay protection survived its eviction
                with pytest.raises(AssociationError):
                    read(m["target"], (111, "0.0.19.0.0.255", 2), sap=48, **keys)
                keys["invocation_counter"] = 1000
            (mode,) = read(m["target"], (111, "0.0.19.0.0.255", 2), sap=48, **keys)
            assert mode
        assert shard.engine.hydrated == 1 and shard.engine.dehydrations >= 3
    finally:
        shard.close()


def test_gurux_reads_meters_picked_at_random_from_a_250000_meter_fleet(tmp_path):
    """gurux, a client we did not write, with nothing but the manifest row: a shard of a
    250,000-meter fleet whose five meters are spread over the whole index range (the
    fleet's indices moved past any fleet on this machine, a whole fleet's size at a time)."""
    import random

    from gurux_dlms.enums import Authentication
    from gurux_dlms.objects import GXDLMSData, GXDLMSRegister

    from tests.peers.gurux_client import GuruxPeer, TcpTransport

    k = random.Random(12).randrange(50_000)
    shard = ServedShard(tmp_path, shard_indices(250_000, k, 50_000), cache_size=2, modulus=250_000)
    offset = shard.indices[0] - k  # whole fleets: each meter keeps its place in its fleet
    try:
        rows = shard.manifest()["meters"]
        assert len(rows) == 5 and offset % 250_000 == 0 and rows[-1]["index"] - offset >= 200_000
        for row in rows:
            peer = GuruxPeer(TcpTransport(row["host"], row["port"]), client_sap=48,
                             authentication=Authentication.HIGH_GMAC,
                             block_cipher_key=bytes.fromhex(row["dlms"]["encryption_key"]),
                             authentication_key=bytes.fromhex(row["dlms"]["authentication_key"]),
                             invocation_counter=1)
            try:
                peer.connect()
                serial = GXDLMSData(SERIAL)
                peer.read(serial, 2)
                value = serial.value.decode() if isinstance(serial.value, (bytes, bytearray)) else str(serial.value)
                assert value == row["serial"]
                energy = GXDLMSRegister("1.0.1.8.0.255")
                peer.read(energy, 2)
                assert energy.value == 0
            finally:
                peer.close()
    finally:
        shard.close()


def test_an_evicted_meter_keeps_its_invocation_counters_in_ram_not_in_a_commit_per_association(tmp_path):
    """A dormant meter is powered: its counters stay in its RAM record. The shard holds
    their reservation (written once, at the first association), so a later association
    after an eviction writes nothing, and a replayed counter is still refused."""
    shard = ServedShard(tmp_path, [0, 1], cache_size=1)
    first = shard.indices[0]
    try:
        a, b = shard.manifest()["meters"]
        dl = a["dlms"]
        keys = {"encryption_key": bytes.fromhex(dl["encryption_key"]),
                "authentication_key": bytes.fromhex(dl["authentication_key"])}
        read(a["target"], (111, "0.0.19.0.0.255", 2), sap=48, invocation_counter=1, **keys)
        reserved = shard.engine.store.memory(first).get("dlms_counters")
        assert reserved and all(v >= 1000 for v in reserved.values())  # reservations, not exact values
        read(b["target"], (1, SERIAL, 2))  # the first meter evicted: dormant
        deadline = time.monotonic() + 10
        while first in shard.engine._hydrated and time.monotonic() < deadline:  # the server sees the close late
            time.sleep(0.01)
        assert first not in shard.engine._hydrated
        with pytest.raises(AssociationError):  # replay protection lives on in the dormant record
            read(a["target"], (111, "0.0.19.0.0.255", 2), sap=48, invocation_counter=1, **keys)
        read(a["target"], (111, "0.0.19.0.0.255", 2), sap=48, invocation_counter=20, **keys)
        assert shard.engine.store.memory(first).get("dlms_counters") == reserved  # no commit per association
    finally:
        shard.close()


def token_for(engine: FleetEngine, index: int, amount: str, minutes: int) -> str:
    cfg = member_config(engine.base, index)
    return vend_credit(cfg.meter.sts.vend_key(), Decimal(amount), subclass=4,
                       time=START - timedelta(hours=2) + timedelta(minutes=minutes)).digits


def recharged_on_disk(path, index: int) -> Decimal:
    """The meter's total recharged as a second reader of the shard file sees it: committed."""
    with sqlite3.connect(path) as db:
        (text,) = db.execute("SELECT value FROM kv WHERE meter = ? AND key = 'account'", (index,)).fetchone()
    return Decimal(json.loads(text)["total_recharged"])


def test_a_round_of_deliveries_shares_its_commits_and_each_credit_is_on_disk_before_its_answer(tmp_path):
    """Three meters delivered at once (connect, public association, utility association,
    token): their requests run in the engine's batches, one commit per round of the event
    loop for all three, not three commits per meter (first start, counter reservation,
    token); and when a meter's verdict arrives its credit is already on disk."""
    served = ServedShard(tmp_path, [0, 1, 2], cache_size=1)
    engine = served.engine
    shard = engine.store
    try:
        rows = served.manifest()["meters"]
        before = shard.commit

        async def one(n, row):
            i = row["index"]
            verdict = await deliver(MeterTarget.from_row(row, n), token_for(engine, i, "40", n), timeout=20,
                                    on_before=None)
            return verdict, recharged_on_disk(tmp_path / "s.db", i)  # read as soon as the verdict is in

        async def all_three():
            return await asyncio.gather(*(one(n, row) for n, row in enumerate(rows)))

        results = asyncio.run(all_three())
        assert [v.status for v, _ in results] == [3, 3, 3]  # execution OK
        assert [on_disk for _, on_disk in results] == [Decimal("40")] * 3
        assert shard.commit - before <= engine.batches and engine.batch_failures == 0
        readings = asyncio.run(read_credit(MeterTarget.from_row(rows[1], 1), timeout=20))
        assert readings.total_recharged == 4000
    finally:
        served.close()


def test_the_steps_of_one_round_are_one_commit_made_at_the_rounds_end(tmp_path):
    """Two meters' steps in one event-loop round: nothing on disk while the round runs,
    one commit for both once the loop has turned; a round of reads commits nothing."""
    served = ServedShard(tmp_path, [0, 1], cache_size=2)
    engine = served.engine
    path = tmp_path / "s.db"
    a, b = served.indices

    def on_disk():
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM kv WHERE key = 'note'").fetchone()[0]

    async def one_round():
        before = engine.store.commit
        for n, index in enumerate((a, b)):
            engine.batched(index)
            with engine.store.memory(index).transaction() as tx:
                tx.put("note", n)
        during = (engine.store.commit - before, on_disk())
        await asyncio.sleep(0)  # the loop turns: the round's end
        await asyncio.sleep(0)
        after = (engine.store.commit - before, on_disk())
        engine.batched(a)
        assert engine.store.memory(a).get("note") == 0
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return during, after, engine.store.commit - before

    try:
        during, after, reads = served.call(one_round())
        assert during == (0, 0) and after == (1, 2) and reads == 1
    finally:
        served.close()


def test_a_round_that_cannot_commit_powers_its_meters_off_and_sends_none_of_its_answers(tmp_path):
    """A batch whose commit fails (a real sqlite refusal at COMMIT, as a full disk gives):
    its answers are never sent (the connection is aborted), its meter restarts from its
    memory, and the same token delivered again is credited, once."""
    shard = ServedShard(tmp_path, [0], cache_size=4)
    engine = shard.engine
    (index,) = shard.indices
    try:
        (row,) = shard.manifest()["meters"]
        target = MeterTarget.from_row(row, 0)
        first, second = token_for(engine, index, "30", 0), token_for(engine, index, "20", 1)
        assert asyncio.run(deliver(target, first, timeout=20, on_before=None)).status == 3

        async def refuse(on):
            if on:
                engine.store._db.execute("CREATE TEMP TRIGGER refuse BEFORE UPDATE ON meta "
                                         "BEGIN SELECT RAISE(ABORT, 'refused'); END")
            else:
                engine.store._db.execute("DROP TRIGGER refuse")

        shard.call(refuse(True))
        with pytest.raises((DeliveryError, ConnectionError)):  # the connection ends with no verdict
            asyncio.run(deliver(target, second, timeout=20, on_before=None))
        assert engine.batch_failures == 1 and index not in engine._hydrated
        shard.call(refuse(False))
        assert recharged_on_disk(tmp_path / "s.db", index) == Decimal("30")
        assert asyncio.run(deliver(target, second, timeout=20, on_before=None)).status == 3
        assert asyncio.run(read_credit(target, timeout=20)).total_recharged == 5000
    finally:
        shard.close()


def test_the_manifest_is_written_without_hydrating_and_equals_each_meters_own_row(tmp_path):
    """Issue 12: writing a 125,000-meter shard's manifest hydrated every meter (25 ms each).
    Now a row comes from the meter's member configuration and the security its memory
    holds: for a fresh meter, a started one, and one whose keys a head-end changed over
    DLMS (key_transfer, then evicted), the row is the one the hydrated meter itself gives
    (MeterNode.manifest), and the changed keys open the meter's utility association."""
    from bijli.dlms import axdr
    from bijli.dlms.security import KeyId, wrap_key
    from bijli.firmware.cosem.catalogue import UTILITY_SECURITY_SETUP

    shard = ServedShard(tmp_path, [0, 5, 9, 15], cache_size=1)
    first = shard.indices[0]
    changed_index = first + 9
    try:
        before = shard.manifest()
        assert shard.engine.hydrations == 0  # nothing built for the rows
        fresh = before["meters"][1]
        read(fresh["target"], (1, SERIAL, 2))  # the second meter started (memory in the shard), then evicted below
        changed = before["meters"][2]
        dl = changed["dlms"]
        old = {"encryption_key": bytes.fromhex(dl["encryption_key"]),
               "authentication_key": bytes.fromhex(dl["authentication_key"])}
        new_ek, new_ak = bytes(range(100, 116)), bytes(range(200, 216))
        kek = shard.engine.base.meter.dlms.master_key
        client = Client(open_client_transport(changed["target"], 48),
                        ClientSettings.for_association(48, invocation_counter=1, **old))
        with client:
            client.associate()
            client.action(64, str(UTILITY_SECURITY_SETUP), 2, axdr.Array(tuple(
                axdr.Structure((axdr.Enum(key_id), axdr.OctetString(wrap_key(kek, key))))
                for key_id, key in ((KeyId.GLOBAL_UNICAST_ENCRYPTION, new_ek), (KeyId.AUTHENTICATION, new_ak)))))
            client.session.settings.encryption_key = new_ek
            client.session.settings.authentication_key = new_ak
        read(before["meters"][0]["target"], (1, SERIAL, 2))  # the third evicted: dormant, its keys in the shard
        deadline = time.monotonic() + 10
        while changed_index in shard.engine._hydrated and time.monotonic() < deadline:  # the close seen late
            time.sleep(0.01)
        assert changed_index not in shard.engine._hydrated
        hydrations = shard.engine.hydrations
        after = shard.manifest()
        assert shard.engine.hydrations == hydrations
        row = after["meters"][2]
        assert row["dlms"]["encryption_key"] == new_ek.hex().upper()
        assert row["dlms"]["authentication_key"] == new_ak.hex().upper()
        assert [r for i, r in enumerate(after["meters"]) if i != 2] == [r for i, r in enumerate(before["meters"])
                                                                      if i != 2]

        async def own_rows():  # each meter hydrated, its own MeterNode.manifest
            rows = []
            for index in shard.engine.indices:
                host, port = shard.endpoints[index]
                with shard.engine.observe(index) as node:
                    rows.append({"index": index, **node.manifest(host, port)})
            return rows
        assert json.dumps(shard.call(own_rows())) == json.dumps(after["meters"])
        (mode,) = read(row["target"], (111, "0.0.19.0.0.255", 2), sap=48, invocation_counter=50,
                       encryption_key=new_ek, authentication_key=new_ak)
        assert mode
    finally:
        shard.close()


def test_a_manifest_file_has_one_meter_per_line_and_shards_merge_by_index(tmp_path):
    from bijli.tools.fleet.manifest import merge_manifests, write_manifest

    parts = [{"count": 2, "clock": "sim", "meters": [{"index": 0, "serial": "A"}, {"index": 2, "serial": "C"}]},
             {"count": 1, "clock": "sim", "meters": [{"index": 1, "serial": "B"}]}]
    path = tmp_path / "m.json"
    write_manifest(path, merge_manifests(parts))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "count": 3, "clock": "sim", "meters": [{"index": 0, "serial": "A"}, {"index": 1, "serial": "B"},
                                               {"index": 2, "serial": "C"}]}
    assert len(lines) == 5 and json.loads(lines[2].rstrip(",")) == {"index": 1, "serial": "B"}
    assert not (tmp_path / "m.json.tmp").exists()
    write_manifest(path, {"count": 0, "clock": "real", "meters": []})
    assert json.loads(path.read_text(encoding="utf-8")) == {"count": 0, "clock": "real", "meters": []}
    with pytest.raises(UsageError, match="overlap"):
        merge_manifests(parts + parts[1:])


def test_shards_manifest_files_merge_line_by_line_as_parsed_ones_do(tmp_path):
    """The supervisor merges its shards' files without parsing them (250,000 rows: 1.5 s
    instead of 10-20 s): the same bytes as parsing, merging and writing them, and an
    indented or miscounted part is parsed whole instead; an overlap is refused."""
    from bijli.tools.fleet.manifest import merge_files, merge_manifests, write_manifest

    def part(indices):
        rows = [{"index": i, "serial": f"BJL{i:07d}", "keys": {"a": [i, "x,y"]}} for i in indices]
        return {"count": len(rows), "clock": "real", "meters": rows}
    parts = [part(range(k, 40, 3)) for k in range(3)] + [part([])]
    paths = []
    for k, p in enumerate(parts):
        paths.append(tmp_path / f"p{k}.json")
        write_manifest(paths[-1], p)
    write_manifest(tmp_path / "parsed.json", merge_manifests(parts))
    assert merge_files(paths, tmp_path / "lines.json") == 40
    assert (tmp_path / "lines.json").read_bytes() == (tmp_path / "parsed.json").read_bytes()
    paths[1].write_text(json.dumps(parts[1], indent=1), encoding="utf-8")  # by hand, indented
    assert merge_files(paths, tmp_path / "fallback.json") == 40
    assert (tmp_path / "fallback.json").read_bytes() == (tmp_path / "parsed.json").read_bytes()
    write_manifest(paths[1], {**parts[1], "count": 99})  # a count that is not its rows
    assert merge_files(paths, tmp_path / "recount.json") == 40
    assert json.loads((tmp_path / "recount.json").read_text(encoding="utf-8"))["count"] == 40
    sharded = {"shards": 3, "host_cores": 2}  # what the supervisor adds: where its meters are served
    for name in ("head.json", "head-fallback.json"):
        assert merge_files(paths, tmp_path / name, sharded) == 40
        merged = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        assert {k: merged[k] for k in sharded} == sharded and len(merged["meters"]) == 40
        paths[1].write_text(json.dumps(parts[1], indent=1), encoding="utf-8")  # the second time parsed whole
    write_manifest(paths[1], parts[0])
    with pytest.raises(UsageError, match="overlap"):
        merge_files(paths, tmp_path / "overlap.json")
