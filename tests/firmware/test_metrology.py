"""The metering core against IEC 62053-21 class 1 and its own energy bookkeeping.

Signals come from hal.samples.SyntheticSource, whose true powers are known analytically.
"""

from __future__ import annotations

import copy
import math
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.firmware.errors import ConfigError
from bijli.firmware.metrology import (
    EnergyRegisters,
    Metrology,
    MetrologyConfig,
    MetrologyError,
    PhaseCalibration,
    Quadrant,
    SteadyLoad,
)
from bijli.hal.samples import CsvReplaySource, SyntheticSource, record_csv

FS = 4096


def run(meter: Metrology, src, seconds: float, block: int = 1024):
    n = int(round(seconds * src.sample_rate))
    meas = None
    while n > 0:
        k = min(block, n)
        meas = meter.process(src.read_block(k))
        n -= k
    return meas


def error_pct(phases: int, current: float, pf: float, lagging: bool, seconds: float = 1.0, **src_opts) -> float:
    src = SyntheticSource(phases=phases, **src_opts)
    src.set_load(current, pf=pf, lagging=lagging)
    meter = Metrology(MetrologyConfig(phases=phases))
    run(meter, src, 0.25)
    e0, t0 = meter.energy.active_import_wh, meter.integrated_seconds
    run(meter, src, seconds)
    measured = meter.energy.active_import_wh - e0
    expected = src.expected_power()[0] * (meter.integrated_seconds - t0) / 3600
    return (measured - expected) / expected * 100


# IEC 62053-21 class 1 direct connected, Ib = 10 A, Imax = 60 A: (current, pf, lagging, limit %)
LOAD_POINTS = [
    (0.5, 1.0, True, 1.5), (1.0, 1.0, True, 1.0), (10.0, 1.0, True, 1.0), (60.0, 1.0, True, 1.0),
    (1.0, 0.5, True, 1.5), (2.0, 0.5, True, 1.0), (10.0, 0.5, True, 1.0), (60.0, 0.5, True, 1.0),
    (1.0, 0.8, False, 1.5), (2.0, 0.8, False, 1.0), (10.0, 0.8, False, 1.0), (60.0, 0.8, False, 1.0),
]


@pytest.mark.parametrize("phases", [1, 3])
@pytest.mark.parametrize("current,pf,lagging,limit", LOAD_POINTS)
def test_class_1_accuracy_at_every_load_point(phases, current, pf, lagging, limit):
    err = error_pct(phases, current, pf, lagging)
    # Class 1 allows `limit`; a sound sampler on clean signals does far better, so
    # hold it to a tenth of that to catch a regression long before it fails a lab.
    assert abs(err) < limit / 10, err


@pytest.mark.parametrize("current,pf,lagging,limit", [LOAD_POINTS[0], LOAD_POINTS[4], LOAD_POINTS[11]])
def test_accuracy_with_harmonics_noise_and_a_16_bit_adc(current, pf, lagging, limit):
    err = error_pct(1, current, pf, lagging, seconds=2.0, harmonics=[(3, 0.05, 0.3), (5, 0.04, 0.2, 30.0)],
                    noise_rms=(0.5, 0.005), adc_bits=16, adc_range=(500.0, 150.0), seed=3)
    assert abs(err) < limit / 2, err


def test_measurements_of_a_known_load():
    src = SyntheticSource(voltage=230.0)
    src.set_load(10.0, pf=0.5, lagging=True)
    meas = run(Metrology(MetrologyConfig()), src, 1.0)
    ph = meas.phases[0]
    assert ph.v_rms == pytest.approx(230.0, rel=1e-4)
    assert ph.i_rms == pytest.approx(10.0, rel=1e-4)
    assert ph.p == pytest.approx(1150.0, rel=1e-4)
    assert ph.q == pytest.approx(2300 * math.sin(math.acos(0.5)), rel=1e-3)
    assert ph.s == pytest.approx(2300.0, rel=1e-4)
    assert ph.pf == pytest.approx(0.5, abs=1e-4)
    assert ph.quadrant is Quadrant.I and ph.lagging and not ph.leading
    assert meas.duration == pytest.approx(0.25, abs=2 / 50)


@pytest.mark.parametrize("freq", [49.5, 50.0, 50.5])
@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_frequency_within_10_mhz(freq, noise):
    src = SyntheticSource(frequency=freq, current=5.0, noise_rms=(noise, 0.0), seed=1)
    meter = Metrology(MetrologyConfig())
    for _ in range(8):
        meas = meter.process(src.read_block(1024))
        assert meas.frequency == 0.0 or abs(meas.frequency - freq) < 0.01
    assert abs(meas.frequency - freq) < 0.01


@pytest.mark.parametrize("freq", [49.5, 50.5])
def test_reactive_power_exact_off_nominal_frequency(freq):
    src = SyntheticSource(frequency=freq)
    src.set_load(10.0, pf=0.8, lagging=False)
    meas = run(Metrology(MetrologyConfig()), src, 1.0)
    assert meas.total.q == pytest.approx(src.expected_power()[1], rel=1e-3)
    assert meas.total.p == pytest.approx(src.expected_power()[0], rel=1e-4)


@pytest.mark.parametrize("angle,quadrant,active,reactive,apparent", [
    (30.0, Quadrant.I, "active_import_wh", "reactive_q1_varh", "apparent_import_vah"),
    (150.0, Quadrant.II, "active_export_wh", "reactive_q2_varh", "apparent_export_vah"),
    (-150.0, Quadrant.III, "active_export_wh", "reactive_q3_varh", "apparent_export_vah"),
    (-30.0, Quadrant.IV, "active_import_wh", "reactive_q4_varh", "apparent_import_vah"),
])
def test_quadrants_fill_their_own_registers(angle, quadrant, active, reactive, apparent):
    src = SyntheticSource(current=10.0, phase_angle_deg=angle)
    meter = Metrology(MetrologyConfig())
    meas = run(meter, src, 2.0)
    assert meas.total.quadrant is quadrant and meas.phases[0].quadrant is quadrant
    assert (meas.total.pf < 0) == (quadrant in (Quadrant.II, Quadrant.III))  # PF sign follows P
    assert meas.total.lagging == (quadrant in (Quadrant.I, Quadrant.III))
    e = meter.energy
    hours = meter.integrated_seconds / 3600
    p, q = src.expected_power()
    assert getattr(e, active) == pytest.approx(abs(p) * hours, rel=1e-4)
    assert getattr(e, reactive) == pytest.approx(abs(q) * hours, rel=1e-3)
    assert getattr(e, apparent) == pytest.approx(2300 * hours, rel=1e-4)
    for name in ("active_import_wh", "active_export_wh", "reactive_q1_varh", "reactive_q2_varh",
                 "reactive_q3_varh", "reactive_q4_varh", "apparent_import_vah", "apparent_export_vah"):
        if name not in (active, reactive, apparent):
            assert getattr(e, name) == 0.0, name
    if quadrant is Quadrant.I:
        assert e.reactive_lag_varh == e.reactive_q1_varh > 0  # India: lag = Q1
    if quadrant is Quadrant.IV:
        assert e.reactive_lead_varh == e.reactive_q4_varh > 0  # India: lead = Q4


def test_no_creep_at_115_percent_voltage_for_a_month():
    src = SyntheticSource(voltage=1.15 * 230, current=0.0, noise_rms=(0.5, 0.002), seed=5)
    meter = Metrology(MetrologyConfig())
    meas = run(meter, src, 3.0)
    meter.accumulate(meas, 30 * 86400)
    assert meter.energy == EnergyRegisters()
    assert meter.pulses == 0
    assert meas.phases[0].v_rms == pytest.approx(264.5, rel=1e-3)


def test_below_starting_threshold_registers_nothing_and_at_ist_it_starts():
    cfg = MetrologyConfig()
    assert cfg.starting_current == pytest.approx(0.04)
    below = SyntheticSource(current=0.5 * cfg.starting_current)
    meter = Metrology(cfg)
    meter.accumulate(run(meter, below, 2.0), 3600)
    assert meter.energy.active_import_wh == 0.0

    at_ist = SyntheticSource(current=cfg.starting_current)
    meter = Metrology(cfg)
    meas = run(meter, at_ist, 2.0)
    one_pulse_s = 3600e3 / (cfg.meter_constant * 230 * cfg.starting_current)
    meter.accumulate(meas, 1.5 * one_pulse_s - meter.integrated_seconds)
    assert meter.pulses >= 1
    assert meter.energy.active_import_wh == pytest.approx(9.2 * 1.5 * one_pulse_s / 3600, rel=1e-3)


def test_tiny_blocks_register_the_same_energy_as_one_big_block():
    src = SyntheticSource(current=7.0, phase_angle_deg=25.0, harmonics=[(3, 0.03, 0.2)], noise_rms=0.1, seed=2)
    warm_up = src.read_block(FS // 2)  # the same start-up for both, so only block size differs
    (v, i), = src.read_block(3 * FS)
    big = Metrology(MetrologyConfig())
    big.process(warm_up)
    big.process([(v, i)])
    tiny = Metrology(MetrologyConfig())
    tiny.process(warm_up)
    step = 37  # not a divisor of anything in sight, and shorter than a cycle
    for k in range(0, len(v), step):
        tiny.process([(v[k:k + step], i[k:k + step])])
    # Both end at the same last crossing; its interpolated position differs a hair
    # because the tiny-block meter refines its offset estimate on the way.
    assert tiny.integrated_seconds == pytest.approx(big.integrated_seconds, abs=1e-6)
    for name, value in vars(big.energy).items():
        assert getattr(tiny.energy, name) == pytest.approx(value, rel=1e-5, abs=1e-9), name


def test_sub_wh_remainder_is_carried_not_rounded_away():
    src = SyntheticSource(current=0.05)  # 11.5 W: each millisecond adds 3.2e-6 Wh
    meter = Metrology(MetrologyConfig())
    meas = run(meter, src, 1.0)
    start = meter.energy.active_import_wh
    for _ in range(100_000):
        meter.accumulate(meas, 0.001)
    one = Metrology(MetrologyConfig())
    one.accumulate(meas, 100.0)
    gained = meter.energy.active_import_wh - start
    assert gained == pytest.approx(one.energy.active_import_wh, rel=1e-9)
    assert gained == pytest.approx(meas.total.p * 100 / 3600, rel=1e-12)


def test_a_month_at_full_load_keeps_whole_wh_exact():
    meas = run(Metrology(MetrologyConfig()), SyntheticSource(current=60.0), 1.0)
    meter = Metrology(MetrologyConfig())
    for _ in range(30 * 24):
        meter.accumulate(meas, 3600)
    wh = meas.total.p * 30 * 24
    assert meter.energy.active_import_wh == pytest.approx(wh, rel=1e-12)
    assert int(meter.energy.active_import_wh) == int(wh)


def test_accumulate_equals_processing_the_same_steady_signal():
    src = SyntheticSource(current=12.0, phase_angle_deg=-40.0)
    processed = Metrology(MetrologyConfig())
    meas = run(processed, src, 10.0)
    fast = Metrology(MetrologyConfig())
    fast.accumulate(meas, processed.integrated_seconds)
    for name, value in vars(processed.energy).items():
        assert getattr(fast.energy, name) == pytest.approx(value, rel=1e-5, abs=1e-9), name
    assert fast.pulses == processed.pulses


def test_pulses_at_the_meter_constant_and_edges_taken_once():
    meas = run(Metrology(MetrologyConfig()), SyntheticSource(current=1000 / 230), 1.0)
    meter = Metrology(MetrologyConfig(meter_constant=1600))
    edges = 0
    for _ in range(60):
        meter.accumulate(meas, 60)
        edges += meter.take_pulse_edges()
    assert meter.pulses == edges
    assert abs(meter.pulses - 1600) <= 1  # 1 kW for an hour
    assert meter.take_pulse_edges() == 0


def test_three_phase_totals_and_unbalanced_loads():
    src = SyntheticSource(phases=3)
    src.set_load(10.0, pf=1.0, phase=0)
    src.set_load(5.0, pf=0.5, lagging=True, phase=1)
    src.set_phase_angle(180.0, phase=2)  # phase 3 exports
    src.set_load(2.0, pf=1.0, phase=2)
    src.set_phase_angle(180.0, phase=2)
    meter = Metrology(MetrologyConfig(phases=3))
    meas = run(meter, src, 2.0)
    expected = [2300.0, 575.0, -460.0]
    for ph, p in zip(meas.phases, expected):
        assert ph.p == pytest.approx(p, rel=1e-4, abs=0.05)
    assert meas.total.p == pytest.approx(sum(expected), rel=1e-4)
    assert meas.total.q == pytest.approx(sum(ph.q for ph in meas.phases))
    assert meas.total.s == pytest.approx(2300 + 1150 + 460, rel=1e-4)
    # the import register takes the algebraic total, as a polyphase meter's sum does
    hours = meter.integrated_seconds / 3600
    assert meter.energy.active_import_wh == pytest.approx(sum(expected) * hours, rel=1e-4)
    assert meter.energy.active_export_wh == 0.0


def test_three_phase_with_phase_one_dead_still_measures_the_others():
    src = SyntheticSource(phases=3, current=10.0)
    src.set_load(0.0, voltage=0.0, phase=0)
    meas = run(Metrology(MetrologyConfig(phases=3)), src, 1.0)
    assert meas.frequency == pytest.approx(50.0, abs=0.01)
    assert meas.total.p == pytest.approx(4600.0, rel=1e-4)


def test_calibration_gains_and_phase_correction_are_applied():
    src = SyntheticSource(voltage=230.0 / 1.02)
    # a CT that makes the current lead by 0.5 degrees: the true load is 0.5 lagging
    src.set_load(10.0 / 0.97, pf=1.0)
    src.set_phase_angle(60.0 - 0.5)
    cal = PhaseCalibration(v_gain=1.02, i_gain=0.97, phase_deg=0.5)
    meas = run(Metrology(MetrologyConfig(calibration=(cal,))), src, 1.0)
    ph = meas.phases[0]
    assert ph.v_rms == pytest.approx(230.0, rel=1e-4)
    assert ph.i_rms == pytest.approx(10.0, rel=1e-4)
    assert ph.p == pytest.approx(1150.0, rel=1e-4)
    assert ph.q == pytest.approx(2300 * math.sin(math.radians(60)), rel=1e-3)
    uncal = run(Metrology(MetrologyConfig()), SyntheticSource(voltage=230.0 / 1.02, current=10 / 0.97,
                                                               phase_angle_deg=59.5), 1.0)
    assert uncal.phases[0].p != pytest.approx(1150.0, rel=1e-2)


def test_dc_offsets_are_removed():
    src = SyntheticSource(current=10.0, phase_angle_deg=20.0)
    (v, i), = src.read_block(2 * FS)
    clean = run_blocks(Metrology(MetrologyConfig()), v, i)
    shifted = run_blocks(Metrology(MetrologyConfig()),
                         array("d", (x + 40.0 for x in v)), array("d", (x - 3.0 for x in i)))
    assert shifted.phases[0].p == pytest.approx(clean.phases[0].p, rel=1e-6)
    assert shifted.phases[0].v_rms == pytest.approx(230.0, rel=1e-4)
    assert shifted.phases[0].i_rms == pytest.approx(10.0, rel=1e-4)


def run_blocks(meter, v, i, step=1024):
    meas = None
    for k in range(0, len(v), step):
        meas = meter.process([(v[k:k + step], i[k:k + step])])
    return meas


def test_csv_replay_gives_the_energy_of_the_source_it_was_recorded_from(tmp_path):
    path = tmp_path / "rec.csv"
    live = SyntheticSource(phases=3, current=8.0, phase_angle_deg=33.0, noise_rms=0.2, seed=9)
    twin = SyntheticSource(phases=3, current=8.0, phase_angle_deg=33.0, noise_rms=0.2, seed=9)
    record_csv(live, path, 1.5)
    a = Metrology(MetrologyConfig(phases=3))
    run(a, twin, 1.5)
    replay = CsvReplaySource(path)
    assert replay.sample_rate == FS and replay.phases == 3
    b = Metrology(MetrologyConfig(phases=3))
    run(b, replay, 1.5)
    assert b.energy == a.energy
    assert b.energy.active_import_wh > 0


def test_restore_loads_saved_registers_and_keeps_counting():
    saved = EnergyRegisters(active_import_wh=123456.75, reactive_q1_varh=10.5, apparent_import_vah=200000.25)
    meter = Metrology(MetrologyConfig())
    meter.restore(saved)
    assert meter.energy == saved
    meas = run(Metrology(MetrologyConfig()), SyntheticSource(current=1.0), 1.0)
    meter.accumulate(meas, 3600)
    assert meter.energy.active_import_wh == pytest.approx(123456.75 + meas.total.p, rel=1e-12)
    with pytest.raises(MetrologyError):
        meter.restore(EnergyRegisters(active_export_wh=-1.0))
    with pytest.raises(MetrologyError):
        meter.restore(EnergyRegisters(active_export_wh=float("nan")))


def test_bad_blocks_raise_metrology_error_and_the_meter_carries_on():
    meter = Metrology(MetrologyConfig())
    with pytest.raises(MetrologyError):
        meter.process([([1.0, 2.0], [1.0])])
    with pytest.raises(MetrologyError):
        meter.process([([1.0], [1.0]), ([1.0], [1.0])])
    with pytest.raises(MetrologyError):
        meter.process([(["a"], [1.0])])
    with pytest.raises(MetrologyError):
        meter.process(None)
    with pytest.raises(MetrologyError):
        meter.accumulate(meter.measurements, -1)
    src = SyntheticSource(current=5.0)
    (v, i), = src.read_block(2048)
    v[100] = float("nan")
    with pytest.raises(MetrologyError):
        meter.process([(v, i)])
    assert meter.energy == EnergyRegisters()
    meas = run(meter, src, 1.0)
    assert meas.total.p == pytest.approx(1150.0, rel=1e-4)


def test_config_from_table_and_errors_name_the_key():
    cfg = MetrologyConfig.from_table({"sample_rate": 8000, "phases": 3, "meter_constant": 1000,
                                      "calibration": [{"v_gain": 1.01}, {}, {"phase_deg": -0.3}]})
    assert cfg.sample_rate == 8000 and cfg.phases == 3
    assert cfg.phase_calibration(0).v_gain == 1.01 and cfg.phase_calibration(2).phase_deg == -0.3
    bad = [
        ({"sample_rate": "fast"}, "metrology.sample_rate"),
        ({"sample_rate": 0}, "metrology.sample_rate"),
        ({"sample_rate": 4096.5}, "metrology.sample_rate"),
        ({"phases": 2}, "metrology.phases"),
        ({"meter_constant": -5}, "metrology.meter_constant"),
        ({"max_current": 5.0}, "metrology.max_current"),
        ({"nominal_voltage": float("inf")}, "metrology.nominal_voltage"),
        ({"basic_current": True}, "metrology.basic_current"),
        ({"voltage": 230}, "metrology.voltage"),
        ({"calibration": [{"v_gain": 0}]}, "metrology.calibration[0].v_gain"),
        ({"calibration": [{"gain": 1}]}, "metrology.calibration[0].gain"),
        ({"phases": 3, "calibration": [{}]}, "metrology.calibration"),
    ]
    for table, key in bad:
        with pytest.raises(ConfigError) as exc:
            MetrologyConfig.from_table(table)
        assert exc.value.key == key, table
    with pytest.raises(ConfigError) as exc:
        MetrologyConfig.from_table({"phases": 9}, prefix="meter.metrology")
    assert exc.value.key == "meter.metrology.phases"
    with pytest.raises(ConfigError):
        MetrologyConfig(phases=3, calibration=(PhaseCalibration(),))


# --------------------------------------------------------------------------- properties

load = st.fixed_dictionaries({
    "voltage": st.floats(0.0, 300.0),
    "current": st.floats(0.0, 80.0),
    "phase_angle_deg": st.floats(-180.0, 180.0),
    "frequency": st.floats(45.0, 55.0),
    "harmonics": st.lists(st.tuples(st.integers(2, 15), st.floats(0, 0.2), st.floats(0, 0.5)), max_size=3),
    "noise_rms": st.floats(0.0, 2.0),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(load, st.sampled_from([1, 3]), st.integers(50, 3000))
def test_measurement_invariants(params, phases, block):
    src = SyntheticSource(phases=phases, seed=1, **params)
    meter = Metrology(MetrologyConfig(phases=phases))
    before = meter.energy
    for _ in range(4):
        meas = meter.process(src.read_block(block))
        for m in (*meas.phases, meas.total):
            assert m.s >= abs(m.p)
            assert -1.0 <= m.pf <= 1.0
            assert m.quadrant is Quadrant.of(m.p, m.q)
            assert math.isfinite(m.q)
        for ph in meas.phases:
            assert ph.v_rms >= 0 and ph.i_rms >= 0
        assert meas.frequency == 0.0 or 22.5 <= meas.frequency <= 110
        after = meter.energy
        for name, value in vars(after).items():
            assert value >= getattr(before, name)
        before = after


finite = st.floats(-1e4, 1e4, allow_nan=False)


# blocks of random floats are large inputs by Hypothesis' measure: keep them under
# its entropy budget (a few hundred samples) rather than switch the check off
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 3]), st.data())
def test_random_blocks_never_crash(phases, data):
    meter = Metrology(MetrologyConfig(phases=phases))
    for _ in range(data.draw(st.integers(1, 3))):
        n = data.draw(st.integers(0, 120 if phases == 3 else 300))
        block = [(data.draw(st.lists(finite, min_size=n, max_size=n)),
                  data.draw(st.lists(finite, min_size=n, max_size=n))) for _ in range(phases)]
        meas = meter.process(block)
        assert -1.0 <= meas.total.pf <= 1.0
        assert meas.total.s >= abs(meas.total.p)
    for value in vars(meter.energy).values():
        assert value >= 0 and math.isfinite(value)


# --- a steady load measured apart (a simulated load change) ---------------------------------

def _state(m: Metrology) -> tuple:
    """Everything a later block's measurement depends on, and what it read."""
    return m.pipeline(), m.measurements, m.energy, m.integrated_seconds


@settings(max_examples=25, deadline=None)
@given(phases=st.sampled_from([1, 3]), current=st.sampled_from([0.0, 0.4, 5.0, 31.0]),
       pf=st.sampled_from([1.0, 0.86, -0.9]), earth=st.sampled_from([0.0, 1.5]),
       before=st.integers(0, 3000), after=st.lists(st.integers(1, 1500), min_size=1, max_size=4))
def test_a_held_steady_load_measures_on_as_if_its_block_had_been_measured(phases, current, pf, earth, before, after):
    """A meter that takes a SteadyLoad on (hold, the source restarted) measures every later
    block exactly as a meter that measured that very block from phase 0 itself, wherever
    its waveform and pipeline stood before: the load change is then a pure function of the
    load, measured once for all meters that draw it."""
    cfg = MetrologyConfig(phases=phases)
    src = SyntheticSource(phases=phases)
    live = Metrology(cfg)
    if before:
        live.process(src.read_block(before))  # some other load, some phase, a part cycle pending
    src.set_load(current, pf=abs(pf), lagging=pf >= 0)
    src.set_earth_current(earth)
    key = src.steady_key()
    n = FS // 10
    block = src.steady_block(n)
    assert src.steady_key() == key  # reading the steady block moves nothing
    steady = SteadyLoad.measure(cfg, block)
    registers = live.energy
    live.hold(steady.measurements, steady.pipeline)
    src.restart(n)
    assert live.measurements is steady.measurements and live.energy == registers  # no time passed
    reference, ref_src = Metrology(cfg), SyntheticSource(phases=phases)
    ref_src.set_load(current, pf=abs(pf), lagging=pf >= 0)
    ref_src.set_earth_current(earth)
    reference.process(ref_src.read_block(n))
    assert reference.pipeline() == steady.pipeline and reference.measurements == steady.measurements
    live_from, reference_from = live.integrated_seconds, reference.integrated_seconds
    for k in after:
        a, b = live.process(src.read_block(k)), reference.process(ref_src.read_block(k))
        assert a == b
        assert reference.pipeline() == live.pipeline()
    # the later blocks register the same time (and so the same energy) in both
    assert live.integrated_seconds - live_from == pytest.approx(reference.integrated_seconds - reference_from, abs=1e-12)


def test_a_steady_load_is_the_same_at_every_waveform_phase_and_refuses_a_noisy_source():
    cfg = MetrologyConfig()
    a, b = SyntheticSource(current=7.0, pf=0.9), SyntheticSource(current=7.0, pf=0.9)
    b.read_block(1234)  # another phase
    assert a.steady_key() == b.steady_key()
    assert SteadyLoad.measure(cfg, a.steady_block(409)) == SteadyLoad.measure(cfg, b.steady_block(409))
    m = SteadyLoad.measure(cfg, a.steady_block(409)).measurements
    assert m.phases[0].i_rms == pytest.approx(7.0, rel=1e-4) and m.total.p == pytest.approx(230 * 7.0 * 0.9, rel=1e-4)
    assert SyntheticSource(noise_rms=0.01).steady_key() is None  # its blocks depend on its noise tables
    with pytest.raises(MetrologyError):
        SteadyLoad.measure(cfg, a.steady_block(10))  # not a whole cycle
    with pytest.raises(MetrologyError):
        Metrology(MetrologyConfig(phases=3)).hold(m, Metrology(MetrologyConfig(phases=3)).pipeline())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phases=st.sampled_from([1, 3]), current=st.floats(0.0, 60.0), angle=st.floats(-90.0, 90.0),
       first=st.integers(0, 2500), second=st.integers(1, 2500))
def test_a_copy_measures_on_as_a_deep_copy_and_leaves_the_original_alone(phases, current, angle, first, second):
    """Metrology.copy (a jump's undo) is copy.deepcopy's equal in all it does next, and
    shares nothing a block or a register changes in place."""
    cfg = MetrologyConfig(phases=phases)
    src = SyntheticSource(sample_rate=cfg.sample_rate, phases=phases, seed=5)
    src.set_load(current, pf=math.cos(math.radians(angle)), lagging=angle >= 0)
    m = Metrology(cfg)
    m.process(src.read_block(first + 1))
    m.accumulate(m.measurements, 1.5)
    fast, deep = m.copy(), copy.deepcopy(m)
    for name, value in vars(m).items():
        if isinstance(value, (list, dict, array)) or type(value).__name__ == "_Register":
            assert vars(fast)[name] is not value, name  # a part changed in place is the copy's own
    energy, pending = m.energy, [array("d", a) for a in m._pv]
    block = src.read_block(second)
    assert fast.process(block) == deep.process(block)
    fast.accumulate(fast.measurements, 2.0)
    deep.accumulate(deep.measurements, 2.0)
    assert fast.energy == deep.energy and fast.pulses == deep.pulses
    assert m.energy == energy and m._pv == pending  # the original is as it was
