"""The earth loading rule (firmware.earth_loading): occurrence at a 12.5 % mismatch of the
larger current above 10 % of Ib, restoration below 6.25 % or at light load, and nothing
without a neutral reading."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bijli.firmware.earth_loading import (MIN_CURRENT_RATIO, OCCURRENCE_RATIO, RESTORATION_RATIO, EarthLoading)
from bijli.firmware.errors import StorageError
from bijli.firmware.events import EventCode
from bijli.firmware.metrology import Measurements, PhaseMeasurement, Quadrant

IB = 10.0


def meas(phase: float, neutral: float | None) -> Measurements:
    ph = PhaseMeasurement(230.0, phase, 230.0 * phase, 0.0, 230.0 * phase, 1.0, Quadrant.I)
    return Measurements.of([ph], 50.0, 1.0, neutral)


@pytest.mark.parametrize("phase,neutral,occurs", [
    (10.0, 10.0, False),     # healthy
    (10.0, 8.8, False),      # 12 % short of the phase: below the threshold
    (10.0, 8.75, True),      # 12.5 %: earth loading
    (10.0, 0.0, True),       # the whole load returns by earth
    (8.0, 10.0, True),       # the neutral carries more (phase CT bypassed): 20 % of the larger
    (0.9, 0.0, False),       # a light load: below 10 % of Ib nothing is judged
    (1.0, 0.0, True),        # at 10 % of Ib it is
])
def test_occurrence_needs_the_mismatch_and_a_load(phase, neutral, occurs):
    state, event = EarthLoading().update(meas(phase, neutral), IB)
    assert state.active is occurs and event is (EventCode.EARTH_LOADING if occurs else None)


def test_restoration_has_hysteresis_and_comes_with_light_load():
    active = EarthLoading(True)
    assert active.update(meas(10.0, 9.0), IB) == (active, None)  # 10 %: still in progress
    assert active.update(meas(10.0, 9.3), IB) == (active, None)  # 7 %: below the occurrence, above the restoration
    for restored in (meas(10.0, 9.4), meas(0.5, 0.0), meas(0.0, 0.0)):  # 6 % < 6.25 %; light loads
        assert active.update(restored, IB) == (EarthLoading(False), EventCode.EARTH_LOADING_RESTORED)


def test_no_neutral_reading_changes_nothing():
    for state in (EarthLoading(), EarthLoading(True)):
        assert state.update(meas(10.0, None), IB) == (state, None)


def test_the_state_is_a_record():
    assert EarthLoading.from_dict(EarthLoading(True).to_dict()) == EarthLoading(True)
    with pytest.raises(StorageError):
        EarthLoading.from_dict({"active": "yes"})


@given(st.floats(0, 60), st.floats(0, 60), st.booleans())
def test_the_rule_as_its_documentation_states_it(phase, neutral, active):
    state, event = EarthLoading(active).update(meas(phase, neutral), IB)
    larger, mismatch = max(phase, neutral), abs(phase - neutral)
    loaded = larger >= MIN_CURRENT_RATIO * IB
    if not active:
        assert state.active is (loaded and mismatch >= OCCURRENCE_RATIO * larger)
    else:
        assert state.active is (loaded and mismatch >= RESTORATION_RATIO * larger)
    assert (event is None) is (state.active is active)
