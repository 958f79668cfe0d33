"""Earth loading: a phase current the neutral does not bring back (IS 15959 events 69 / 70).

A single-phase meter measures the current in both of its conductors (the phase shunt or
CT and the neutral CT, :mod:`bijli.firmware.metrology`). In a healthy installation they
carry the same current; when part of the load returns by earth (a load wired phase to
earth, earth leakage, a partial bypass of the neutral) or part of it is fed round the
phase CT, they differ. IS 15959 field practice files this in the current-related event
log as "earth loading", occurrence 69 and restoration 70 (the codes as public head-end
sources that read IS 15959 single-phase meters name them, e.g. github.com/ruhmany/Gurux-try
``GuruxIndiaBase/ObisList.cs``: "Earth Loading Occurred" / "Earth Loading Restored"),
and its cumulative tamper count counts each occurrence.

No public IS 15959 text gives the threshold, so it is bijli's own, documented here:

- **occurrence** when the mismatch ``|I_phase - I_neutral|`` is at least
  :data:`OCCURRENCE_RATIO` (12.5 %) of the larger of the two currents while that larger
  current is at least :data:`MIN_CURRENT_RATIO` (10 %) of the basic current Ib: light
  loads, where the two CTs' noise is a larger share, never raise it;
- **restoration** when the mismatch falls below :data:`RESTORATION_RATIO` (6.25 %) of
  the larger current, or the larger current below that 10 % of Ib. The gap between the
  two ratios is the hysteresis that keeps a mismatch near the threshold from chattering.

It is judged where the meter settles (every committed step, as the load limiter is),
from the latest window's measurements. A window with no neutral reading (samples
without a neutral channel) changes nothing. The state (whether an earth loading is in
progress) is kept in non-volatile memory, so a restart neither repeats the occurrence
nor forgets to log the restoration.
"""

from __future__ import annotations

from dataclasses import dataclass

from bijli.firmware.events import EventCode
from bijli.firmware.metrology import Measurements
from bijli.firmware.records import from_record, to_record

OCCURRENCE_RATIO = 0.125
RESTORATION_RATIO = 0.0625
MIN_CURRENT_RATIO = 0.1


@dataclass(frozen=True)
class EarthLoading:
    """Whether an earth loading is in progress (its occurrence logged, its restoration not yet)."""

    active: bool = False

    def update(self, meas: Measurements, basic_current: float) -> tuple["EarthLoading", EventCode | None]:
        """The state after the measurements ``meas``, and the event to log (None: no change)."""
        neutral = meas.neutral_i_rms
        if neutral is None or not meas.phases:
            return self, None
        phase = meas.phases[0].i_rms
        larger = max(phase, neutral)
        mismatch = abs(phase - neutral)
        loaded = larger >= MIN_CURRENT_RATIO * basic_current
        if not self.active and loaded and mismatch >= OCCURRENCE_RATIO * larger:
            return EarthLoading(True), EventCode.EARTH_LOADING
        if self.active and (not loaded or mismatch < RESTORATION_RATIO * larger):
            return EarthLoading(False), EventCode.EARTH_LOADING_RESTORED
        return self, None

    @staticmethod
    def detail(meas: Measurements) -> str:
        """The event's detail: the two currents it was judged on."""
        return f"phase {meas.phases[0].i_rms:.2f} A, neutral {meas.neutral_i_rms:.2f} A"

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EarthLoading":
        return from_record(cls, d)
