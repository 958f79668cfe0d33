"""A load change on a simulated meter (MeterNode.draw): its steady block is measured once per
distinct load and taken on by every meter that draws it, so what a meter reads after a load
change is a pure function of the load, whatever its waveform's phase or its history."""

from __future__ import annotations

from datetime import datetime

from bijli.hal.clock import SimClock
from bijli.firmware.metrology import Metrology
from bijli.hal.samples import SyntheticSource
from bijli.tools.node import config as config_mod
from bijli.tools.node import meter_node
from bijli.tools.node.meter_node import ClockView, MeterNode, open_samples

START = datetime(2024, 6, 14, 18, 0)  # friendly hours: supply held without credit
CFG = config_mod.load(None)


def node(path, source=None) -> MeterNode:
    return MeterNode(CFG, path, ClockView(SimClock(START, rate=0)), source or open_samples(CFG, seed=0),
                     lazy_objects=True)


def test_the_same_load_reads_the_same_after_any_history_and_is_measured_once(tmp_path):
    a, b = node(tmp_path / "a"), node(tmp_path / "b")
    b.draw(3.3, 0.95, True, None)  # another load first, and a waveform run on by a tick
    b.clock.shared.step(0.37)  # type: ignore[attr-defined]
    b.tick()
    energy = b.meter.energy
    a.draw(7.25, 0.9, True, None)
    cached = len(meter_node._STEADY)
    b.draw(7.25, 0.9, True, None)
    assert len(meter_node._STEADY) == cached  # the second meter took the first one's measurement
    assert b.meter.energy == energy  # no time passed: no energy
    assert a.meter.measurements == b.meter.measurements
    assert a.meter.measurements is not b.meter.measurements  # each change is a change to its walk
    assert a.meter.status()["current"] == 7.25 and a.meter.status()["power_factor"] == 0.9
    for n in (a, b):
        n.step(3600)
    assert a.meter.measurements == b.meter.measurements
    grown_a = a.meter.energy.active_import_wh
    grown_b = b.meter.energy.active_import_wh - energy.active_import_wh
    assert abs(grown_a - grown_b) < 1e-6 and abs(grown_a - 230 * 7.25 * 0.9) < 230 * 7.25 * 0.9 * 0.01


def test_the_next_block_measures_on_from_the_held_load(tmp_path):
    """On a running clock the blocks after a load change continue its steady block: the first
    live window is the new load's, not a start-up's or a blend with the old load's. (A
    steady source is not measured again, see below: here it turns noisy, measured live.)"""
    a = node(tmp_path / "a")
    a.draw(12.0, 1.0, True, None)
    a.draw(5.0, 1.0, True, None)
    a.source.set_noise(1e-9)
    for _ in range(3):
        a.clock.shared.step(0.25)  # type: ignore[attr-defined]
        a.tick()
        assert abs(a.meter.measurements.phases[0].i_rms - 5.0) < 0.005


def test_a_noisy_source_measures_its_load_change_live(tmp_path):
    noisy = SyntheticSource(sample_rate=CFG.meter.metrology.sample_rate, noise_rms=(0.2, 0.01), seed=3)
    noisy.set_voltage(230.0)
    n = node(tmp_path / "noisy", noisy)
    cached = len(meter_node._STEADY)
    read = noisy.samples_read
    n.draw(6.0, 1.0, True, None)
    assert len(meter_node._STEADY) == cached
    assert noisy.samples_read == read + 2 * (CFG.meter.metrology.sample_rate // 10)  # two live blocks
    assert abs(n.meter.measurements.phases[0].i_rms - 6.0) < 0.05


def test_a_steady_load_is_not_measured_again_on_a_running_clock(tmp_path):
    """A noise-free source gives the same block for the same settings: ticks read no samples
    and integrate at the held measurements (a fleet meter observed on a real clock measured
    a block each time). Settings not yet measured (a fresh meter's first tick, a change made
    on the source itself) are measured as a load change is, once; a noisy source is always
    measured live."""
    rate = CFG.meter.metrology.sample_rate
    n = rate // 10
    fresh = node(tmp_path / "fresh")
    fresh.clock.shared.step(0.25)  # type: ignore[attr-defined]
    fresh.tick()
    live = Metrology(CFG.meter.metrology).process(open_samples(CFG, seed=0).read_block(n))
    assert fresh.meter.measurements == live  # what its first live block measures, bit for bit
    a = node(tmp_path / "a")
    a.draw(5.0, 1.0, True, None)
    read, before = a.source.samples_read, a.meter.energy.active_import_wh
    for _ in range(4):
        a.clock.shared.step(0.25)  # type: ignore[attr-defined]
        a.tick()
    assert a.source.samples_read == read
    assert abs(a.meter.energy.active_import_wh - before - 230 * 5.0 / 3600) < 230 * 5.0 / 3600 * 0.01
    a.source.set_harmonics([(3, 0.0, 0.2)])  # on the source, not through a load change
    reads = []
    for _ in range(3):
        a.clock.shared.step(0.25)  # type: ignore[attr-defined]
        a.tick()
        reads.append(a.source.samples_read)
    assert reads == [read + n] * 3  # measured once, as a load change is
    assert abs(a.meter.measurements.phases[0].i_rms - 5.0 * (1 + 0.2 ** 2) ** 0.5) < 0.01  # the harmonic's
    noisy = SyntheticSource(sample_rate=rate, noise_rms=(0.2, 0.01), seed=3)
    noisy.set_voltage(230.0)
    b = node(tmp_path / "noisy", noisy)
    b.draw(6.0, 1.0, True, None)
    for _ in range(3):
        read = noisy.samples_read
        b.clock.shared.step(0.25)  # type: ignore[attr-defined]
        b.tick()
        assert noisy.samples_read == read + rate // 4
