"""The neutral current: measured from the sample blocks' neutral channel over the same
windows as the phase current, never copied from it (IS 15959's neutral current
1.0.91.7.0.255 is read from this measurement).

A healthy single-phase installation returns the whole phase current through the neutral;
earth leakage or a partial neutral bypass (the synthetic source's earth current) makes
the neutral differ by the current that returns another way.
"""

from __future__ import annotations

import math
from array import array

import pytest

from bijli.firmware.errors import ConfigError
from bijli.firmware.metrology import Measurements, Metrology, MetrologyConfig, MetrologyError
from bijli.hal.samples import Block, SyntheticSource

FS = 4096


def run(meter: Metrology, src, seconds: float, block: int = 1024) -> Measurements:
    n = int(round(seconds * src.sample_rate))
    meas = meter.measurements
    while n > 0:
        k = min(block, n)
        meas = meter.process(src.read_block(k))
        n -= k
    return meas


@pytest.mark.parametrize("current,pf", [(0.5, 1.0), (10.0, 0.8), (60.0, 0.5)])
def test_a_healthy_installation_reads_the_phase_current_in_the_neutral(current, pf):
    src = SyntheticSource(current=current, pf=pf, harmonics=[(3, 0.02, 0.1)], noise_rms=(0.5, 0.01),
                          adc_bits=16, seed=4)
    meter = Metrology(MetrologyConfig())
    meas = run(meter, src, 1.0)
    phase = meas.phases[0].i_rms
    assert phase == pytest.approx(current * math.sqrt(1 + 0.1 ** 2), rel=2e-3)
    # two CTs, their own noise: equal within what the noise and the ADC allow
    assert meas.neutral_i_rms == pytest.approx(phase, rel=2e-3, abs=2e-3)


@pytest.mark.parametrize("earth", [0.3, 2.0, 7.5, -1.5])
def test_earth_leakage_shows_as_a_neutral_that_differs_by_the_earth_current(earth):
    src = SyntheticSource(current=10.0, pf=0.8, noise_rms=(0.5, 0.01), seed=5)
    src.set_earth_current(earth)
    meter = Metrology(MetrologyConfig())
    meas = run(meter, src, 1.0, block=777)
    assert meas.phases[0].i_rms == pytest.approx(10.0, rel=1e-3)  # the phase CT sees the whole load
    assert meas.neutral_i_rms == pytest.approx(10.0 - earth, rel=1e-3)
    assert meas.phases[0].i_rms - meas.neutral_i_rms == pytest.approx(earth, abs=0.02)
    src.set_earth_current(0.0)  # the fault is cleared: the neutral matches again
    meas = run(meter, src, 0.5)
    assert meas.neutral_i_rms == pytest.approx(meas.phases[0].i_rms, rel=2e-3)


def test_the_neutral_has_no_load_of_its_own_and_reads_a_load_wired_to_earth():
    src = SyntheticSource(current=0.0)
    meter = Metrology(MetrologyConfig())
    assert run(meter, src, 0.5).neutral_i_rms == pytest.approx(0.0, abs=1e-9)
    src.set_earth_current(-4.0)  # current in the neutral that the phase CT never saw
    meas = run(meter, src, 0.5)
    assert meas.phases[0].i_rms == pytest.approx(0.0, abs=1e-9) and meas.neutral_i_rms == pytest.approx(4.0, rel=1e-6)


def test_the_neutral_is_measured_over_the_phase_currents_windows_whatever_the_blocks():
    src = SyntheticSource(current=6.0, harmonics=[(5, 0.02, 0.2)], noise_rms=(0.3, 0.02), seed=6)
    src.set_earth_current(1.0)
    warm_up = src.read_block(FS // 2)
    whole = src.read_block(3 * FS)
    big = Metrology(MetrologyConfig())
    big.process(warm_up)
    big_meas = big.process(whole)
    tiny = Metrology(MetrologyConfig())
    tiny.process(warm_up)
    (v, i), n = whole[0], whole.neutral
    step = 37  # shorter than a cycle: the neutral's part cycle waits with the phase's
    for k in range(0, len(v), step):
        tiny_meas = tiny.process(Block([(v[k:k + step], i[k:k + step])], n[k:k + step]))
    assert tiny_meas.duration > 0
    # the last window differs from the big one, but both read the same steady neutral
    assert tiny_meas.neutral_i_rms == pytest.approx(big_meas.neutral_i_rms, rel=5e-3)
    assert len(tiny._pn) == len(tiny._pv[0])  # the part cycle is one for every channel


def test_a_dc_offset_on_the_neutral_ct_is_removed_and_its_gain_applied():
    src = SyntheticSource(current=5.0)
    meter = Metrology(MetrologyConfig(neutral_gain=1.25))
    for _ in range(8):
        blk = src.read_block(1024)
        meas = meter.process(Block(list(blk), array("d", (x + 0.7 for x in blk.neutral))))
    assert meas.neutral_i_rms == pytest.approx(5.0 * 1.25, rel=1e-6)
    with pytest.raises(ConfigError, match="neutral_gain"):
        MetrologyConfig.from_table({"neutral_gain": 0})
    assert MetrologyConfig.from_table({"neutral_gain": 0.98}).neutral_gain == 0.98


def test_samples_without_a_neutral_channel_read_no_neutral_rather_than_a_made_up_one():
    src = SyntheticSource(current=5.0)
    meter = Metrology(MetrologyConfig())
    meas = run(meter, src, 0.5)
    assert meas.neutral_i_rms == pytest.approx(5.0, rel=1e-6)
    (v, i), = src.read_block(FS)
    assert meter.process([(v, i)]).neutral_i_rms is None  # plain (v, i) pairs: no neutral channel
    # the next windows that hold only samples with a neutral read it again
    assert run(meter, src, 0.5).neutral_i_rms == pytest.approx(5.0, rel=1e-6)


def test_a_bad_neutral_channel_raises_and_changes_nothing():
    src = SyntheticSource(current=5.0)
    meter = Metrology(MetrologyConfig())
    blk = src.read_block(2048)
    with pytest.raises(MetrologyError, match="neutral"):
        meter.process(Block(list(blk), blk.neutral[:-1]))
    with pytest.raises(MetrologyError, match="neutral"):
        meter.process(Block(list(blk), ["x"] * 2048))
    assert meter.integrated_seconds == 0.0 and len(meter._pn) == len(meter._pv[0]) == 0
    bad = array("d", blk.neutral)
    bad[1000] = float("inf")
    with pytest.raises(MetrologyError, match="neutral"):
        meter.process(Block(list(blk), bad))
    assert len(meter._pn) == len(meter._pv[0]) == 0  # dropped with the phases' samples
    assert run(meter, src, 0.5).neutral_i_rms == pytest.approx(5.0, rel=1e-6)
