"""Sample sources: the synthetic generator's truth, CSV record/replay, the SPI ADC's
conversions and its missing-backend error, and the config-string factory."""

from __future__ import annotations

import math
import statistics
from array import array

import pytest

from bijli.hal.errors import BackendError, HalError
from bijli.hal.samples import (
    Block,
    CsvReplaySource,
    SampleFormatError,
    SpiAdcSource,
    SyntheticSource,
    counts_to_value,
    mcp3208_command,
    mcp3208_decode,
    open_source,
    record_csv,
)


def rms(x) -> float:
    return math.sqrt(math.fsum(a * a for a in x) / len(x))


def mean_product(a, b) -> float:
    return math.fsum(x * y for x, y in zip(a, b)) / len(a)


def test_block_shape():
    src = SyntheticSource(phases=3, current=1.0)
    assert src.sample_rate == 4096 and src.phases == 3
    block = src.read_block(100)
    assert len(block) == 3
    for v, i in block:
        assert isinstance(v, array) and v.typecode == "d" and len(v) == len(i) == 100
    assert all(len(v) == 0 for v, _ in src.read_block(0))
    with pytest.raises(HalError):
        src.read_block(-1)


def test_rms_and_power_match_the_load():
    src = SyntheticSource(voltage=230.0)
    src.set_load(10.0, pf=0.8, lagging=True)
    (v, i), = src.read_block(4096)  # 50 whole cycles
    assert rms(v) == pytest.approx(230.0, rel=1e-9)
    assert rms(i) == pytest.approx(10.0, rel=1e-9)
    assert mean_product(v, i) == pytest.approx(1840.0, rel=1e-9)
    assert src.expected_power() == pytest.approx((1840.0, 1380.0))
    src.set_load(10.0, pf=0.8, lagging=False)
    assert src.expected_power()[1] == pytest.approx(-1380.0)
    with pytest.raises(HalError):
        src.set_load(1.0, pf=1.5)


def test_phase_runs_on_continuously_across_blocks():
    a = SyntheticSource(frequency=49.7, current=3.0, phase_angle_deg=20.0, harmonics=[(5, 0.1, 0.3)])
    b = SyntheticSource(frequency=49.7, current=3.0, phase_angle_deg=20.0, harmonics=[(5, 0.1, 0.3)])
    whole = a.read_block(1000)[0]
    parts = [b.read_block(n)[0] for n in (1, 333, 82, 584)]
    for ch in (0, 1):
        joined = array("d")
        for p in parts:
            joined.extend(p[ch])
        assert max(abs(x - y) for x, y in zip(whole[ch], joined)) < 1e-9


def test_three_phases_are_120_degrees_apart():
    src = SyntheticSource(phases=3, current=5.0)
    (v1, i1), (v2, i2), (v3, i3) = src.read_block(4096)
    assert max(abs(a + b + c) for a, b, c in zip(v1, v2, v3)) < 1e-9
    assert max(abs(a + b + c) for a, b, c in zip(i1, i2, i3)) < 1e-9
    assert mean_product(v1, v2) == pytest.approx(230.0 ** 2 * math.cos(math.radians(120)), rel=1e-9)
    src.set_load(2.0, phase=1)
    assert src.load(1)[1] == 2.0 and src.load(0)[1] == 5.0
    with pytest.raises(HalError):
        src.set_load(1.0, phase=3)


def test_harmonics_carry_their_power():
    src = SyntheticSource(current=10.0, harmonics=[(3, 0.1, 0.4), (5, 0.05, 0.2, 60.0)])
    (v, i), = src.read_block(4096)
    p, _ = src.expected_power()
    assert p == pytest.approx(2300 + 23 * 4 + 11.5 * 2 * 0.5)
    assert mean_product(v, i) == pytest.approx(p, rel=1e-9)
    assert rms(v) == pytest.approx(230 * math.sqrt(1 + 0.01 + 0.0025), rel=1e-9)


def test_noise_is_seeded_and_has_the_asked_rms():
    a = SyntheticSource(voltage=0.0, noise_rms=(2.0, 0.1), seed=42).read_block(8192)
    b = SyntheticSource(voltage=0.0, noise_rms=(2.0, 0.1), seed=42).read_block(8192)
    c = SyntheticSource(voltage=0.0, noise_rms=(2.0, 0.1), seed=43).read_block(8192)
    assert a == b and a != c
    v, i = a[0]
    assert statistics.pstdev(v) == pytest.approx(2.0, rel=0.05)
    assert statistics.pstdev(i) == pytest.approx(0.1, rel=0.05)
    assert abs(statistics.fmean(v)) < 0.1


def test_adc_quantises_and_clips():
    src = SyntheticSource(current=80.0, adc_bits=8, adc_range=(400.0, 100.0))
    (v, i), = src.read_block(4096)
    lsb_v, lsb_i = 400.0 / 128, 100.0 / 128
    assert all(abs(x / lsb_v - round(x / lsb_v)) < 1e-9 for x in v)
    assert len(set(v)) <= 256
    assert max(i) == pytest.approx(127 * lsb_i) and min(i) == pytest.approx(-128 * lsb_i)  # 113 A peak clipped
    assert rms(v) == pytest.approx(230.0, rel=0.01)


def test_csv_round_trip_is_exact(tmp_path):
    path = tmp_path / "r.csv"
    rec = SyntheticSource(phases=3, current=4.0, noise_rms=0.3, seed=1)
    ref = SyntheticSource(phases=3, current=4.0, noise_rms=0.3, seed=1)
    assert record_csv(rec, path, 0.5, block=300) == 2048
    assert path.read_text().splitlines()[0] == "t,v1,i1,v2,i2,v3,i3,in"
    replay = CsvReplaySource(path)
    assert replay.sample_rate == 4096 and replay.phases == 3 and len(replay) == 2048
    chunks = [ref.read_block(n) for n in (300,) * 6 + (248,)]  # as record_csv read them
    want = [[array("d") for _ in range(2)] for _ in range(3)]
    want_neutral = array("d")
    for blk in chunks:
        for ph in range(3):
            for ch in range(2):
                want[ph][ch].extend(blk[ph][ch])
        want_neutral.extend(blk.neutral)
    got1 = replay.read_block(2000)
    got2 = replay.read_block(2000)
    assert len(got2[0][0]) == 48
    assert replay.read_block(10)[0][0] == array("d")
    for ph in range(3):
        for ch in range(2):
            assert got1[ph][ch] + got2[ph][ch] == want[ph][ch]
    assert got1.neutral + got2.neutral == want_neutral  # the neutral channel replays exactly too


def test_csv_loop_wraps_around(tmp_path):
    path = tmp_path / "one.csv"
    record_csv(SyntheticSource(current=1.0), path, 100 / 4096)
    src = CsvReplaySource(path, loop=True)
    v, _ = src.read_block(250)[0]
    assert len(v) == 250 and v[100:200] == v[:100]


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("t,v,i\n0,1,2\n", "header"),
    ("t,v1,i1\n0,1\n", "expected 3 fields"),
    ("t,v1,i1\n0,1,x\n", "not a number"),
    ("t,v1,i1\n0,1,nan\n", "not finite"),
    ("t,v1,i1\n0,1,2\n", "sample rate"),
])
def test_malformed_csv_raises_sample_format_error(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SampleFormatError, match=match):
        CsvReplaySource(path)


def test_missing_csv_is_a_backend_error(tmp_path):
    with pytest.raises(BackendError):
        CsvReplaySource(tmp_path / "nope.csv")


def test_mcp3208_framing_and_count_conversion():
    assert mcp3208_command(0) == [0x06, 0x00, 0x00]
    assert mcp3208_command(5) == [0x07, 0x40, 0x00]
    assert mcp3208_command(7) == [0x07, 0xC0, 0x00]
    assert mcp3208_decode([0xFF, 0xEA, 0xBC]) == 0xABC  # top bits of byte 1 are don't-care
    assert mcp3208_decode([0, 0x0F, 0xFF]) == 4095
    assert counts_to_value(2048, 0.25) == 0.0
    assert counts_to_value(4095, 0.25) == pytest.approx(511.75)
    assert counts_to_value(0, 0.05, mid_rail=2047.5) == pytest.approx(-102.375)
    with pytest.raises(HalError):
        mcp3208_command(8)
    with pytest.raises(HalError):
        mcp3208_decode([1, 2])


def test_spi_source_without_spidev_or_device_is_a_backend_error():
    # This machine has no /dev/spidev*: whether spidev is missing or the device is,
    # the error is a BackendError that says what to fix.
    with pytest.raises(BackendError, match="spidev"):
        SpiAdcSource(0, 0)


def test_open_source_specs(tmp_path):
    assert isinstance(open_source("synthetic", current=2.0, phases=3), SyntheticSource)
    path = tmp_path / "x.csv"
    record_csv(SyntheticSource(), path, 0.01)
    assert isinstance(open_source(f"csv:{path}"), CsvReplaySource)
    with pytest.raises(BackendError):
        open_source("spi:0.0")
    for bad in ("spi:zero", "spi:0", "bogus", "csv:", "synthetic:x"):
        with pytest.raises(BackendError):
            open_source(bad)


# ---------------------------------------------------------------- the neutral channel


def test_a_healthy_single_phase_neutral_carries_the_phase_current():
    src = SyntheticSource(current=8.0, pf=0.8, harmonics=[(3, 0.02, 0.3, 10.0)])
    block = src.read_block(4096)
    (v, i), = block
    assert isinstance(block, Block) and len(block.neutral) == len(i)
    assert block.neutral == i  # the same samples: nothing returns other than by the neutral


def test_the_earth_current_returns_outside_the_neutral():
    src = SyntheticSource(current=10.0, pf=0.8)
    src.set_earth_current(3.0)  # 3 A of the load goes back by earth
    block = src.read_block(4096)
    (v, i), = block
    assert rms(i) == pytest.approx(10.0, rel=1e-9)  # the phase CT still sees the whole load
    assert rms(block.neutral) == pytest.approx(7.0, rel=1e-9)
    # in phase with the load current: the neutral is the load current scaled by 7/10
    assert max(abs(n - 0.7 * x) for n, x in zip(block.neutral, i)) < 1e-9
    src.set_earth_current(-2.5)  # the neutral carries more than the phase (phase CT bypassed)
    assert rms(src.read_block(4096).neutral) == pytest.approx(12.5, rel=1e-9)
    src.set_earth_current(0)
    block = src.read_block(4096)
    assert block.neutral == block[0][1]
    for bad in (float("nan"), float("inf"), "1", True, None):
        with pytest.raises(HalError):
            src.set_earth_current(bad)
    assert src.earth_current == 0.0  # refused: nothing changed


def test_a_balanced_three_phase_neutral_carries_only_what_does_not_cancel():
    src = SyntheticSource(phases=3, current=10.0, harmonics=[(3, 0.0, 0.2)])
    block = src.read_block(4096)
    # the fundamentals cancel; the third harmonics of the three phases add up in the neutral
    assert rms(block.neutral) == pytest.approx(3 * 2.0, rel=1e-6)
    src.set_harmonics([])
    src.set_load(5.0, phase=2)  # an unbalanced load
    block = src.read_block(4096)
    total = [x + y + z for x, y, z in zip(block[0][1], block[1][1], block[2][1])]
    assert max(abs(n - t) for n, t in zip(block.neutral, total)) < 1e-9
    assert rms(block.neutral) == pytest.approx(5.0, rel=1e-6)


def test_the_neutral_has_noise_and_quantisation_of_its_own():
    src = SyntheticSource(current=5.0, noise_rms=(0.0, 0.05), seed=9)
    block = src.read_block(8192)
    (_, i), = block
    diff = [n - x for n, x in zip(block.neutral, i)]
    assert statistics.pstdev(diff) == pytest.approx(0.05 * math.sqrt(2), rel=0.1)  # independent noise
    lsb = 100.0 / 128
    quantised = SyntheticSource(current=5.0, adc_bits=8).read_block(512).neutral
    assert all(abs(x / lsb - round(x / lsb)) < 1e-9 for x in quantised)


def test_the_phase_channels_noise_is_as_before_the_neutral_had_noise():
    # the neutral's noise start is drawn after the phases' own: their noise did not move
    src = SyntheticSource(voltage=0.0, noise_rms=(2.0, 0.1), seed=42)
    again = SyntheticSource(voltage=0.0, noise_rms=(2.0, 0.1), seed=42)
    assert src.read_block(1000)[0] == again.read_block(1000)[0]


def test_a_block_compares_and_pickles_with_its_neutral():
    import pickle

    a = Block([(array("d", [1.0]), array("d", [2.0]))], array("d", [2.0]))
    b = Block([(array("d", [1.0]), array("d", [2.0]))], array("d", [1.5]))
    assert a != b and not a == b and a == Block(list(a), array("d", [2.0]))
    assert pickle.loads(pickle.dumps(a)) == a and pickle.loads(pickle.dumps(a)).neutral == a.neutral
    ((v, i),) = a  # unpacks as the phases it holds
    assert v == array("d", [1.0])


def test_a_csv_without_a_neutral_column_replays_with_no_neutral(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("t,v1,i1\n0,1,2\n0.5,3,4\n")
    block = CsvReplaySource(path).read_block(2)
    assert block.neutral is None and block[0] == (array("d", [1.0, 3.0]), array("d", [2.0, 4.0]))
    path.write_text("t,v1,i1,in\n0,1,2,1.5\n0.5,3,4,3.5\n")
    assert CsvReplaySource(path).read_block(2).neutral == array("d", [1.5, 3.5])
    path.write_text("t,v1,in,i1\n0,1,2,1.5\n0.5,3,4,3.5\n")
    with pytest.raises(SampleFormatError, match="header"):
        CsvReplaySource(path)


def test_spi_source_refuses_a_neutral_channel_another_signal_uses():
    with pytest.raises(HalError, match="one signal"):
        SpiAdcSource(0, 0, neutral_channel=1)
    with pytest.raises(HalError, match="one signal"):
        SpiAdcSource(0, 0, phases=1, channels=[(3, 3)])
