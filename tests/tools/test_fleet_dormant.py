"""The dormant record: a real engine meter's RAM round-trips, the shared configuration goes
by reference (resolved against the configuration the meter is hydrated with), an unused
random generator by its seed, and everything else by value."""

from __future__ import annotations

import dataclasses
import pickle
import random
import zlib
from datetime import datetime

import pytest

from bijli.firmware.shard import ShardStore
from bijli.hal.clock import SimClock
from bijli.tools.fleet import dormant
from bijli.tools.fleet.engine import FleetEngine
from bijli.tools.node import config
from bijli.tools.node.fleet import member_config

START = datetime(2024, 6, 14, 17, 0)


def _ram(node):
    return {"meter": node.meter.volatile(), "source": node.source, "load": node._load, "earth": node._earth,
            "offset": node.clock.offset, "counters": node.security.counters.positions()}


def test_a_meters_ram_round_trips_with_its_configuration_by_reference(tmp_path):
    base = config.load(None)
    engine = FleetEngine(base, [7], ShardStore.open(tmp_path / "s.db"), SimClock(START, rate=0))
    try:
        with engine.observe(7) as node:
            node.set_load(7.5, 0.9, True, None)
            node.set_earth_current(1.25)  # a leaking installation: its neutral is RAM too
            ram = _ram(node)
            layout = dormant.Layout()
            blob = dormant.pack(ram, node.cfg.meter, node.source, layout)
            whole = zlib.compress(pickle.dumps(ram, protocol=pickle.HIGHEST_PROTOCOL), 1)
            assert len(blob) < len(whole) / 1.5  # most of a record was the shared configuration
            again = member_config(base, 7)  # what the next hydration builds: equal, not the same objects
            back = dormant.unpack(blob, again.meter, 7)
            assert pickle.dumps(back) == pickle.dumps(dormant.unpack(blob, again.meter, 7))
            m, b = ram["meter"], back["meter"]
            assert b["account"] == m["account"] and b["account"].cfg is again.meter.prepaid
            assert b["metrology"].config is again.meter.metrology
            assert b["progress"] == m["progress"] and b["relay"] == m["relay"] and b["sts"] == m["sts"]
            assert b["metrology"].energy == m["metrology"].energy
            assert back["counters"] == ram["counters"] and back["load"] == ram["load"] and back["earth"] == 1.25
            # the metering core's neutral, with its part cycle, and the source's earth current
            assert b["metrology"].measurements == m["metrology"].measurements
            assert b["metrology"].measurements.neutral_i_rms == pytest.approx(7.5 - 1.25, abs=0.01)
            assert b["metrology"]._pn == m["metrology"]._pn and len(b["metrology"]._pn) == len(b["metrology"]._pv[0])
            assert back["source"].earth_current == 1.25
            # the generator drew nothing: it comes back as Random(seed), the very same state
            assert back["source"]._rng.getstate() == random.Random(7).getstate() == ram["source"]._rng.getstate()
            # a second pack, with the layout found once, is the same record
            assert dormant.pack(ram, node.cfg.meter, node.source, layout) == blob
            assert back["source"].read_block(64) == node.source.read_block(64)
    finally:
        engine.shutdown()


def test_a_used_generator_and_changed_configuration_go_by_value(tmp_path):
    base = config.load(None)
    cfg = member_config(base, 3)
    from bijli.tools.node.meter_node import open_samples

    source = open_samples(cfg, seed=3)
    source.set_noise((0.5, 0.01))
    source.set_load(5.0)
    source.read_block(32)  # draws noise: the generator is no longer Random(seed)
    # equal in value, but not this meter's object (members share their common sections,
    # so another member's would be this very object)
    other = dataclasses.replace(member_config(base, 4).meter.prepaid)
    assert other is not cfg.meter.prepaid
    ram = {"source": source, "prepaid": other, "tariff": cfg.meter.tariff}
    back = dormant.unpack(dormant.pack(ram, cfg.meter, source), member_config(base, 3).meter, 3)
    assert back["source"]._rng.getstate() == source._rng.getstate() != random.Random(3).getstate()
    assert back["source"].read_block(16) == source.read_block(16)
    assert back["prepaid"] == other
    assert back["tariff"] == cfg.meter.tariff


def test_a_layout_reuses_the_shared_sections_and_resolves_what_differs_exactly_as_a_fresh_walk():
    """The layout's table for member after member equals a fresh walk of each (same
    paths, same objects); a member whose section is another object (its own tariff) has
    that section resolved again, not the last member's reused."""
    base = config.load(None)
    layout = dormant.Layout()

    def same(table, cfg):
        fresh = dormant.Layout().table(cfg)
        return {i: (path, id(obj)) for i, (path, obj) in table.items()} == \
            {i: (path, id(obj)) for i, (path, obj) in fresh.items()}

    for index in (0, 7, 7, 250_000 - 1):
        cfg = member_config(base, index).meter
        assert same(layout.table(cfg), cfg)
    assert "prepaid" in layout._reuse and "tariff" in layout._reuse
    cfg = member_config(base, 3).meter
    own = dataclasses.replace(cfg, tariff=dataclasses.replace(cfg.tariff))
    table = layout.table(own)
    assert same(table, own)
    assert id(own.tariff) in table and id(cfg.tariff) not in table
    assert same(layout.table(cfg), cfg)  # and back
