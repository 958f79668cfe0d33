"""The metering core: blocks of voltage and current samples -> V, I, P, Q, S, PF, f and energy.

It follows IEC 62053-21 (static meters for active energy, class 1) for what must be
registered and when (starting current 0.004 Ib, no creep at no load), IEC 62053-23 for
the reactive quadrants, and the Indian convention (IS 16444) that calls quadrant I
reactive energy "lag" and quadrant IV "lead".

Theory of operation
-------------------
Samples are cut into *measurement windows* that hold a whole number of mains cycles: a
window ends at the last rising zero crossing of the reference voltage in what has
arrived so far, and the samples after it wait for the next block. Over a whole number
of cycles the mean of each channel is exactly its DC offset, so offset removal is a
subtraction of means, and Vrms, Irms and P carry no ripple from a part-cycle. Means are
taken over the exact span between the interpolated crossings (sums over whole samples
are corrected for the sub-sample edges), which also gives the frequency. A window's
energy is its powers times that span, so windows tile time exactly: energy is neither
lost nor counted twice at block boundaries, whatever the block size (a block shorter
than a cycle just waits, and ``integrated_seconds`` trails by that part-cycle).
The first window after start-up also pays for the samples before its first crossing.

Reactive power uses the voltage delayed by ``d`` whole samples, ``d`` the sample count
nearest a quarter of a nominal period. The delay is then not exactly 90 degrees (20
samples at 4096 Hz and 50 Hz are 87.9 degrees, and the angle moves with frequency), but
its angle ``psi = -2*pi*f*d/fs`` is known exactly from the measured frequency, and
``<v(t-d) i(t)> = P cos(psi) - Q sin(psi)``, so ``Q = (P cos(psi) - <v(t-d) i(t)>) /
sin(psi)``. That costs one sum of products over slices already in memory, needs no
filter state and no interpolation, and is exact at any frequency in range. A Hilbert
transformer or integrator would shift every harmonic by 90 degrees but costs a filter
pass per sample in Python; IEC 62053-23/24 define reactive energy for sinusoidal (or
fundamental) quantities, and with harmonics present this Q is the fundamental's plus a
harmonic term of order V_h I_h.

The neutral current is measured over the very same windows as the phase currents:
a block's ``neutral`` samples (the second current channel a single-phase meter has, its
neutral CT, as the sample sources deliver it) wait with the phases' part cycle, and their RMS
is taken over the same interpolated whole cycles, offset removed and scaled by
``neutral_gain``. A phase current the neutral does not match is current returning
another way (earth leakage, a bypass): the two are reported side by side, never one
copied for the other. A block without a neutral channel (``neutral`` absent or None)
makes the window's neutral current None: not measured.

Signs: P > 0 is import. Q > 0 is inductive (current lagging voltage). PF = P / S, so its
sign follows P (IEC convention); lag or lead is read from the quadrant (or the sign of
Q): quadrant I (+P +Q) import lagging, II (-P +Q) export leading, III (-P -Q) export
lagging, IV (+P -Q) import leading. S = Vrms * Irms (arithmetic apparent power).

A steady load measured apart (:class:`SteadyLoad`): what a just-started meter measures
over one block of that load, from the waveform's rising zero, and the pipeline the block
leaves. It is a pure function of the configuration and the samples, so a simulated load
change takes it on (:meth:`Metrology.hold`, no energy: no time passes) instead of
measuring blocks of its own, and the blocks after it measure on from it without a seam
(the sample source restarts its waveform there).

Energy registers keep whole units as Python ints and the sub-unit remainder as a float
in [0, 1), so a month of one-second blocks loses nothing to rounding. The pulse output
(the "test LED") counts the absolute active energy at the meter constant.
"""

from __future__ import annotations

import copy
import math
import operator
from array import array
from dataclasses import dataclass, fields
from enum import IntEnum
from itertools import repeat
from typing import Any, Mapping, Sequence

from bijli.firmware.errors import ConfigError, FirmwareError

_mul = operator.mul
_lt = operator.lt
_SQRT2 = math.sqrt(2.0)
# Two samples below then two at/above the offset: a rising crossing that a single noisy
# sample cannot fake.
_RISING = b"\x01\x01\x00\x00"


class MetrologyError(FirmwareError):
    """A sample block or energy value the metering core cannot use (wrong shape, not finite)."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class PhaseCalibration:
    """Per-phase calibration constants, found by a calibration bench against a reference.

    ``v_gain`` and ``i_gain`` multiply the measured voltage and current. ``phase_deg``
    delays the current channel by that angle (positive adds lag), to cancel the phase
    displacement of a CT or anti-alias filter, which usually makes the current lead.
    """

    v_gain: float = 1.0
    i_gain: float = 1.0
    phase_deg: float = 0.0


def _number(key: str, value: Any, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, not {value!r}")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise ConfigError(key, f"must be a whole number, not {value!r}")
    if not math.isfinite(value):
        raise ConfigError(key, f"must be finite, not {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ConfigError(key, f"must be {'>' if lo_open else '>='} {lo}, not {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(key, f"must be <= {hi}, not {value!r}")
    return value


def _check_calibration(key: str, cal: Any) -> None:
    if not isinstance(cal, PhaseCalibration):
        raise ConfigError(key, f"must be a PhaseCalibration, not {cal!r}")
    _number(f"{key}.v_gain", cal.v_gain, lo=0.0, hi=10.0, lo_open=True)
    _number(f"{key}.i_gain", cal.i_gain, lo=0.0, hi=10.0, lo_open=True)
    _number(f"{key}.phase_deg", cal.phase_deg, lo=-10.0, hi=10.0)


@dataclass(frozen=True)
class MetrologyConfig:
    """What the metering core needs to know about the meter and its sampling.

    ``calibration`` is empty (all phases uncalibrated) or one entry per phase.
    ``neutral_gain`` multiplies the measured neutral current (its CT's calibration).
    ``starting_current_ratio`` is Ist / Ib (IEC 62053-21 class 1 direct: 0.004).
    Below ``creep_ratio`` * Ist a phase registers nothing (anti-creep); the margin
    below 1 keeps a meter at exactly Ist registering despite measurement error.
    """

    sample_rate: int = 4096
    nominal_frequency: float = 50.0
    phases: int = 1
    meter_constant: float = 1600
    basic_current: float = 10.0
    max_current: float = 60.0
    nominal_voltage: float = 230.0
    calibration: tuple[PhaseCalibration, ...] = ()
    starting_current_ratio: float = 0.004
    creep_ratio: float = 0.75
    neutral_gain: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.calibration, list):
            object.__setattr__(self, "calibration", tuple(self.calibration))
        self._validate("metrology")

    def _validate(self, prefix: str) -> None:
        k = lambda name: f"{prefix}.{name}"  # noqa: E731
        _number(k("sample_rate"), self.sample_rate, lo=100, hi=1_000_000, integer=True)
        _number(k("nominal_frequency"), self.nominal_frequency, lo=10.0, hi=1000.0)
        if self.sample_rate < 8 * self.nominal_frequency:
            raise ConfigError(k("sample_rate"), "must be at least 8 samples per nominal period")
        if self.phases not in (1, 3) or isinstance(self.phases, bool):
            raise ConfigError(k("phases"), f"must be 1 or 3, not {self.phases!r}")
        _number(k("meter_constant"), self.meter_constant, lo=0.0, hi=1e7, lo_open=True)
        _number(k("basic_current"), self.basic_current, lo=0.0, hi=1e5, lo_open=True)
        _number(k("max_current"), self.max_current, lo=self.basic_current, hi=1e5)
        _number(k("nominal_voltage"), self.nominal_voltage, lo=0.0, hi=1e6, lo_open=True)
        _number(k("starting_current_ratio"), self.starting_current_ratio, lo=0.0, hi=1.0, lo_open=True)
        _number(k("creep_ratio"), self.creep_ratio, lo=0.0, hi=1.0)
        _number(k("neutral_gain"), self.neutral_gain, lo=0.0, hi=10.0, lo_open=True)
        if not isinstance(self.calibration, tuple) or len(self.calibration) not in (0, self.phases):
            raise ConfigError(k("calibration"), f"must hold one entry per phase ({self.phases})")
        for n, cal in enumerate(self.calibration):
            _check_calibration(k(f"calibration[{n}]"), cal)

    @property
    def starting_current(self) -> float:
        return self.basic_current * self.starting_current_ratio

    @property
    def creep_current(self) -> float:
        return self.starting_current * self.creep_ratio

    def phase_calibration(self, phase: int) -> PhaseCalibration:
        return self.calibration[phase] if self.calibration else PhaseCalibration()

    @classmethod
    def from_table(cls, table: Mapping[str, Any], prefix: str = "metrology") -> "MetrologyConfig":
        """Build from the ``[metrology]`` TOML table; errors name the dotted key."""
        if not isinstance(table, Mapping):
            raise ConfigError(prefix, "must be a table")
        names = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in table.items():
            if key not in names:
                raise ConfigError(f"{prefix}.{key}", "unknown key")
            kwargs[key] = value
        if "calibration" in kwargs:
            kwargs["calibration"] = _calibrations_from(kwargs["calibration"], f"{prefix}.calibration")
        defaults = cls()
        # Build without validation, then validate once under the caller's prefix.
        obj = object.__new__(cls)
        for f in fields(cls):
            object.__setattr__(obj, f.name, kwargs.get(f.name, getattr(defaults, f.name)))
        obj._validate(prefix)
        return obj


def _calibrations_from(value: Any, key: str) -> tuple[PhaseCalibration, ...]:
    if isinstance(value, Mapping) or not isinstance(value, (list, tuple)):
        raise ConfigError(key, "must be a list of tables, one per phase")
    out = []
    allowed = {f.name for f in fields(PhaseCalibration)}
    for n, item in enumerate(value):
        k = f"{key}[{n}]"
        if isinstance(item, PhaseCalibration):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(k, "must be a table (v_gain, i_gain, phase_deg)")
        for name in item:
            if name not in allowed:
                raise ConfigError(f"{k}.{name}", "unknown key")
        cal = PhaseCalibration(**item)
        _check_calibration(k, cal)
        out.append(cal)
    return tuple(out)


# --------------------------------------------------------------------------- values


class Quadrant(IntEnum):
    """IEC 62053-23 quadrants of the (P, Q) plane."""

    I = 1    # +P +Q import, inductive: India "lag"
    II = 2   # -P +Q export, capacitive
    III = 3  # -P -Q export, inductive
    IV = 4   # +P -Q import, capacitive: India "lead"

    @classmethod
    def of(cls, p: float, q: float) -> "Quadrant":
        if p >= 0.0:
            return cls.I if q >= 0.0 else cls.IV
        return cls.II if q >= 0.0 else cls.III


def _pf(p: float, s: float) -> float:
    # No load reads unity, as meter displays do; the clamp absorbs float rounding.
    if s <= 0.0:
        return 1.0
    return max(-1.0, min(1.0, p / s))


class _ReactiveSense:
    """Lagging / leading from the quadrant, for a phase and for the total alike."""

    q: float
    quadrant: Quadrant

    @property
    def lagging(self) -> bool:
        """Inductive (quadrants I and III); False at exactly zero Q."""
        return self.q != 0.0 and self.quadrant in (Quadrant.I, Quadrant.III)

    @property
    def leading(self) -> bool:
        """Capacitive (quadrants II and IV); False at exactly zero Q."""
        return self.q != 0.0 and self.quadrant in (Quadrant.II, Quadrant.IV)


@dataclass(frozen=True)
class PhaseMeasurement(_ReactiveSense):
    v_rms: float
    i_rms: float
    p: float
    q: float
    s: float
    pf: float
    quadrant: Quadrant


@dataclass(frozen=True)
class TotalMeasurement(_ReactiveSense):
    """Sum over phases: P and Q algebraic, S arithmetic (sum of phase Vrms*Irms)."""

    p: float
    q: float
    s: float
    pf: float
    quadrant: Quadrant


@dataclass(frozen=True)
class Measurements:
    """One measurement window: per phase, the total, the frequency (0.0 when no voltage),
    the seconds of signal the window covered (0.0 before the first window) and the
    neutral current's RMS over the same window (None: the samples had no neutral channel)."""

    phases: tuple[PhaseMeasurement, ...]
    total: TotalMeasurement
    frequency: float
    duration: float
    neutral_i_rms: float | None = 0.0

    @classmethod
    def of(cls, phases: Sequence[PhaseMeasurement], frequency: float, duration: float,
           neutral_i_rms: float | None = 0.0) -> "Measurements":
        p = sum(ph.p for ph in phases)
        q = sum(ph.q for ph in phases)
        s = sum(ph.s for ph in phases)
        s = max(s, abs(p))
        return cls(tuple(phases), TotalMeasurement(p, q, s, _pf(p, s), Quadrant.of(p, q)), frequency, duration,
                   neutral_i_rms)

    @classmethod
    def zero(cls, phases: int) -> "Measurements":
        ph = PhaseMeasurement(0.0, 0.0, 0.0, 0.0, 0.0, 1.0, Quadrant.I)
        return cls.of([ph] * phases, 0.0, 0.0)


_REGISTERS = (
    "active_import_wh", "active_export_wh",
    "reactive_q1_varh", "reactive_q2_varh", "reactive_q3_varh", "reactive_q4_varh",
    "apparent_import_vah", "apparent_export_vah",
)


@dataclass(frozen=True)
class EnergyRegisters:
    """Snapshot of the energy registers (floats: whole units plus the kept remainder).

    Displays and billing show ``int(value)``; the fraction is what keeps rounding from
    losing energy between blocks.
    """

    active_import_wh: float = 0.0    # A+
    active_export_wh: float = 0.0    # A-
    reactive_q1_varh: float = 0.0    # import lag (India "lag")
    reactive_q2_varh: float = 0.0
    reactive_q3_varh: float = 0.0
    reactive_q4_varh: float = 0.0    # import lead (India "lead")
    apparent_import_vah: float = 0.0
    apparent_export_vah: float = 0.0

    @property
    def reactive_lag_varh(self) -> float:
        return self.reactive_q1_varh

    @property
    def reactive_lead_varh(self) -> float:
        return self.reactive_q4_varh

    @property
    def reactive_import_varh(self) -> float:
        return self.reactive_q1_varh + self.reactive_q2_varh

    @property
    def reactive_export_varh(self) -> float:
        return self.reactive_q3_varh + self.reactive_q4_varh


class _Register:
    """Whole units in an int, the remainder in a float in [0, 1)."""

    __slots__ = ("whole", "frac")

    def __init__(self, value: Any = 0) -> None:
        whole = math.floor(value)
        self.whole = int(whole)
        self.frac = float(value - whole)

    def add(self, x: float) -> int:
        """Add ``x`` >= 0; return how many whole units it carried in."""
        xw = math.floor(x)
        f = self.frac + (x - xw)  # x - floor(x) is exact, so the remainder keeps full precision
        carry = int(xw)
        if f >= 1.0:
            f -= 1.0
            carry += 1
        self.frac = f
        self.whole += carry
        return carry

    @property
    def value(self) -> float:
        return self.whole + self.frac

    def copy(self) -> "_Register":
        reg = _Register.__new__(_Register)
        reg.whole, reg.frac = self.whole, self.frac
        return reg


# --------------------------------------------------------------------------- core


class Metrology:
    """Sans-IO metering core: ``process(block)`` per block of samples, energy in registers."""

    def __init__(self, config: MetrologyConfig):
        c = config
        self.config = c
        self._fs = float(c.sample_rate)
        self._f_nom = float(c.nominal_frequency)
        spp = c.sample_rate / c.nominal_frequency
        self._delay = max(1, round(spp / 4.0))
        self._hist_len = self._delay + 2
        # A rising crossing closer than 3/4 nominal period to the previous one is noise
        # chatter (a falling edge's chatter sits half a period away).
        self._spacing = max(3, int(spp * 0.75))
        # No crossing in this many samples: no (usable) voltage; measure what there is.
        self._hold = int(math.ceil(spp * 3.0))
        self._v_present_pp = 2.0 * _SQRT2 * 0.1 * c.nominal_voltage
        n = c.phases
        self._pv = [array("d") for _ in range(n)]
        self._pi = [array("d") for _ in range(n)]
        self._pn = array("d")  # the neutral's pending samples, cut with the phases'
        # the pending samples before this index came in blocks without a neutral channel
        self._pn_missing = 0
        self._hist = [array("d") for _ in range(n)]
        self._ov = [0.0] * n
        self._oi = [0.0] * n
        self._ref: int | None = None
        self._aligned = False
        self._start_t = 0.0  # when aligned: the crossing that starts the pending samples, in (-1, 0]
        # Where the registered time ends, in samples relative to the first pending sample:
        # the last window's end crossing, or earlier while samples before the first
        # crossing wait to be counted with the first whole-cycle window.
        self._t0 = 0.0
        self._cal = []
        for ph in range(n):
            cal = c.phase_calibration(ph)
            th = math.radians(cal.phase_deg)
            self._cal.append((cal.v_gain, cal.i_gain, math.cos(th), math.sin(th)))
        self._creep = c.creep_current
        self._regs = {name: _Register() for name in _REGISTERS}
        self._pulse_reg = _Register()
        self._pulses_per_wh = c.meter_constant / 1000.0
        self._pulses = 0
        self._edges = 0
        self._integrated = 0.0
        self._last = Measurements.zero(n)

    # ---- public

    @property
    def energy(self) -> EnergyRegisters:
        return EnergyRegisters(**{name: reg.value for name, reg in self._regs.items()})

    @property
    def pulses(self) -> int:
        return self._pulses

    @property
    def measurements(self) -> Measurements:
        """The latest window's measurements."""
        return self._last

    @property
    def integrated_seconds(self) -> float:
        """Seconds of signal (processed or accumulated) whose energy is in the registers.

        Trails the samples handed to ``process`` by the part-cycle still waiting."""
        return self._integrated

    def take_pulse_edges(self) -> int:
        """Pulses emitted since the last call (for the hal to blink the LED that often)."""
        n, self._edges = self._edges, 0
        return n

    def restore(self, energy: EnergyRegisters) -> None:
        """Load registers saved in non-volatile memory (at start-up)."""
        regs = {}
        for name in _REGISTERS:
            value = getattr(energy, name)
            try:
                ok = value >= 0 and math.isfinite(value)
            except TypeError:
                ok = False
            if not ok:
                raise MetrologyError(f"{name}: not a finite non-negative energy: {value!r}")
            regs[name] = _Register(value)
        self._regs = regs

    def process(self, block: Sequence[tuple[Sequence[float], Sequence[float]]]) -> Measurements:
        """Measure a block (one ``(v, i)`` pair of sample sequences per phase, and its
        ``neutral`` samples, as the sample sources' blocks carry them) and
        register its energy. Returns the latest window's measurements; a block that
        completes no window (shorter than a cycle) returns the previous ones."""
        arrays, neutral = self._check_block(block)
        for ph, (v, i) in enumerate(arrays):
            self._pv[ph].extend(v)
            self._pi[ph].extend(i)
        if neutral is None:  # no neutral channel: the window it falls in has no neutral reading
            self._pn.frombytes(bytes(8 * len(arrays[0][0])))
            self._pn_missing = len(self._pn)
        else:
            self._pn.extend(neutral)
        window = self._find_window()
        if window is None:
            return self._last
        start, end, duration, frequency, t_start, t_end = window
        try:
            phases = [self._measure(ph, start, end, frequency, t_start, t_end)
                      for ph in range(self.config.phases)]
            i_neutral = (None if self._pn_missing > start
                         else self._measure_neutral(start, end, frequency, t_start, t_end))
        except MetrologyError:
            self._drop(len(self._pv[0]))
            self._aligned = False
            self._t0 = 0.0
            raise
        self._drop(end)
        self._t0 = t_end - end
        meas = Measurements.of(phases, frequency, duration / self._fs, i_neutral)
        self._register([(ph.i_rms, ph.p, ph.q, ph.s) for ph in meas.phases], meas.duration)
        self._last = meas
        return meas

    def copy(self) -> "Metrology":
        """An independent copy, as ``copy.deepcopy`` makes one (a jump keeps it to put back if
        its commit fails): the registers, the pipeline's arrays and lists copied, the rest
        (the configuration, the measurements: frozen; numbers) shared. deepcopy's generic
        walk copied the frozen configuration and measurements too, field by field: a fifth
        of a fleet meter's catch-up."""
        new = copy.copy(self)
        for name in self._PIPELINE:  # what blocks change in place, copied as pipeline() copies it
            setattr(new, name, _copied(getattr(self, name)))
        new._cal = list(self._cal)
        new._regs = {name: reg.copy() for name, reg in self._regs.items()}
        new._pulse_reg = self._pulse_reg.copy()
        return new

    #: what the sample pipeline carries from one block to the next (the pending part cycle,
    #: the delay line's history, the offsets, the alignment on the reference crossing)
    _PIPELINE = ("_pv", "_pi", "_pn", "_pn_missing", "_hist", "_ov", "_oi", "_ref", "_aligned", "_start_t", "_t0")

    def pipeline(self) -> tuple:
        """The sample pipeline as it stands (copied): :meth:`hold` takes it on."""
        return tuple(_copied(getattr(self, name)) for name in self._PIPELINE)

    def hold(self, meas: Measurements, pipeline: tuple) -> None:
        """Take ``meas`` as the latest measurements and ``pipeline`` (:meth:`pipeline`) as
        the samples pending, registering no energy (no time passes): a steady load measured
        apart (:class:`SteadyLoad`), which a jump of simulated time then holds and the next
        block measures on from, as if this meter had measured that block itself."""
        if not isinstance(meas, Measurements) or len(meas.phases) != self.config.phases:
            raise MetrologyError(f"not {self.config.phases}-phase measurements: {meas!r}")
        pv, pi, pn, self._pn_missing, hist, ov, oi, self._ref, self._aligned, self._start_t, self._t0 = pipeline
        # the arrays are changed in place by the blocks that follow: this meter's own copies
        self._pv = [array("d", a) for a in pv]
        self._pi = [array("d", a) for a in pi]
        self._pn = array("d", pn)
        self._hist = [array("d", a) for a in hist]
        self._ov, self._oi = list(ov), list(oi)
        self._last = meas

    def accumulate(self, meas: Measurements, seconds: float) -> None:
        """Register ``seconds`` of energy at the steady measurements ``meas``."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise MetrologyError(f"seconds must be finite and >= 0, not {seconds!r}")
        self._register([(ph.i_rms, ph.p, ph.q, ph.s) for ph in meas.phases], float(seconds))

    # ---- energy

    def _register(self, rates: Sequence[tuple[float, float, float, float]], seconds: float) -> None:
        """Register ``seconds`` at per-phase (Irms, P, Q, S); phases under the creep
        threshold register nothing."""
        self._integrated += seconds
        p = q = s = 0.0
        for i_rms, p_ph, q_ph, s_ph in rates:
            if i_rms >= self._creep and i_rms > 0.0:
                p += p_ph
                q += q_ph
                s += s_ph
        if p == 0.0 and q == 0.0 and s == 0.0:
            return
        hours = seconds / 3600.0
        regs = self._regs
        if p >= 0.0:
            regs["active_import_wh"].add(p * hours)
            regs["apparent_import_vah"].add(s * hours)
        else:
            regs["active_export_wh"].add(-p * hours)
            regs["apparent_export_vah"].add(s * hours)
        quadrant = Quadrant.of(p, q)
        regs[f"reactive_q{int(quadrant)}_varh"].add(abs(q) * hours)
        n = self._pulse_reg.add(abs(p) * hours * self._pulses_per_wh)
        self._pulses += n
        self._edges += n

    # ---- windows

    def _check_block(self, block: Any) -> tuple[list[tuple[array, array]], array | None]:
        neutral = getattr(block, "neutral", None)
        try:
            pairs = list(block)
        except TypeError as exc:
            raise MetrologyError(f"block must be a sequence of (v, i) pairs: {exc}") from None
        if len(pairs) != self.config.phases:
            raise MetrologyError(f"block has {len(pairs)} phases, meter has {self.config.phases}")
        out = []
        length = None
        for ph, pair in enumerate(pairs):
            try:
                v, i = pair
                v = v if isinstance(v, array) and v.typecode == "d" else array("d", v)
                i = i if isinstance(i, array) and i.typecode == "d" else array("d", i)
            except (TypeError, ValueError) as exc:
                raise MetrologyError(f"phase {ph + 1}: not a (v, i) pair of float sequences: {exc}") from None
            if len(v) != len(i) or (length is not None and len(v) != length):
                raise MetrologyError(f"phase {ph + 1}: channels of unequal length")
            length = len(v)
            out.append((v, i))
        if neutral is not None:
            try:
                neutral = neutral if isinstance(neutral, array) and neutral.typecode == "d" else array("d", neutral)
            except (TypeError, ValueError) as exc:
                raise MetrologyError(f"neutral: not a sequence of floats: {exc}") from None
            if len(neutral) != length:
                raise MetrologyError("neutral: channel of unequal length")
        return out, neutral

    def _reference_phase(self) -> int | None:
        for ph, v in enumerate(self._pv):
            if len(v) and max(v) - min(v) >= self._v_present_pp:
                return ph
        return None

    def _find_window(self) -> tuple[int, int, float, float, float, float] | None:
        """(start, end, duration in samples, frequency, start and end crossing
        positions) of the next window; None while waiting for more samples."""
        n = len(self._pv[0])
        ref = self._reference_phase()
        if ref != self._ref:
            self._ref = ref
            self._aligned = False
        if ref is not None:
            v = self._pv[ref]
            off = self._ov[ref]
            below = bytes(map(_lt, v, repeat(off)))
            accepted: list[int] = []
            last = 0 if self._aligned else -self._spacing
            find = below.find
            pos = find(_RISING)
            while pos >= 0:
                c = pos + 2
                if c - last >= self._spacing:
                    accepted.append(c)
                    last = c
                pos = find(_RISING, pos + 1)
            if accepted:
                end = accepted[-1]
                t_end = self._crossing_time(v, off, end)
                if self._aligned:
                    start, t_start, cycles = 0, self._start_t, len(accepted)
                else:
                    start = accepted[0]
                    t_start = self._crossing_time(v, off, start)
                    cycles = len(accepted) - 1
                self._aligned = True
                self._start_t = t_end - end
                if cycles == 0:
                    # The first crossing after start-up or a dropout: the samples before
                    # it are counted with the first whole-cycle window.
                    self._drop(end)
                    self._t0 -= end
                    return None
                frequency = cycles * self._fs / (t_end - t_start)
                if not (0.5 * self._f_nom <= frequency <= 2.0 * self._f_nom):
                    frequency = 0.0
                return start, end, t_end - self._t0, frequency, t_start, t_end
        if n >= self._hold:
            # No usable crossing for three nominal periods: no voltage, or a DC offset
            # not yet estimated. Measure what there is (its mean bootstraps the offset).
            self._aligned = False
            return 0, n, n - self._t0, 0.0, 0.0, float(n)
        return None

    @staticmethod
    def _crossing_time(v: array, off: float, c: int) -> float:
        a = v[c - 1]
        b = v[c]
        return c - 1 + (off - a) / (b - a)

    def _drop(self, end: int) -> None:
        h = self._hist_len
        for ph in range(self.config.phases):
            pv = self._pv[ph]
            if end >= h:
                self._hist[ph] = pv[end - h:end]
            else:
                self._hist[ph] = (self._hist[ph] + pv[:end])[-h:]
            del pv[:end]
            del self._pi[ph][:end]
        del self._pn[:end]
        self._pn_missing = max(0, self._pn_missing - end)

    def _measure(self, ph: int, start: int, end: int, frequency: float,
                 t_start: float, t_end: float) -> PhaseMeasurement:
        """The phase's measurements over the window's whole cycles (or its samples when
        there are no crossings)."""
        pv = self._pv[ph]
        pi = self._pi[ph]
        w = end - start
        v = pv[start:end]
        i = pi[start:end]
        sv = sum(v)
        si = sum(i)
        vv = sum(map(_mul, v, v))
        ii = sum(map(_mul, i, i))
        vi = sum(map(_mul, v, i))
        d = self._delay
        if start >= d:
            vd = pv[start - d:end - d]
        else:
            hist = self._hist[ph]
            need = d - start
            if len(hist) >= need:
                vd = hist[len(hist) - need:] + pv[:end - d]
            else:
                # No history (start-up): the window is whole cycles, so rotating it
                # is the same as delaying it.
                vd = v[w - d:] + v[:w - d]
        sd = sum(vd)
        rd = sum(map(_mul, vd, i))
        if not math.isfinite(sv + si + vv + ii + vi + sd + rd):
            raise MetrologyError(f"phase {ph + 1}: samples not finite or too large")
        f = frequency if frequency else self._f_nom
        if frequency and end < len(pv):
            # Means over the exact whole cycles between the interpolated crossings. A sum
            # over samples c0..c1-1 is the integral from t0 to t1 plus edge * f(crossing),
            # edge = (c1 - t1) - (c0 - t0); for v (zero at its own crossing) that term
            # vanishes, for i and the delayed v it does not.
            span = t_end - t_start
            edge = (end - t_end) - (start - t_start)
            a = t_end - (end - 1)
            v_x = self._ov[ph] if ph == self._ref else pv[end - 1] + a * (pv[end] - pv[end - 1])
            i_x = pi[end - 1] + a * (pi[end] - pi[end - 1])
            d_x = pv[end - 1 - d] + a * (pv[end - d] - pv[end - 1 - d])
            p, q, v_rms, i_rms = self._finish(
                ph, span, sv - edge * v_x, si - edge * i_x, vv - edge * v_x * v_x, ii - edge * i_x * i_x,
                vi - edge * v_x * i_x, sd - edge * d_x, rd - edge * d_x * i_x, f)
        else:
            p, q, v_rms, i_rms = self._finish(ph, w, sv, si, vv, ii, vi, sd, rd, f)
        self._ov[ph] = sv / w
        self._oi[ph] = si / w
        # |P| <= Vrms*Irms holds for the sums (Cauchy-Schwarz) but a phase correction
        # of a distorted waveform can rotate P a hair past it.
        s = max(v_rms * i_rms, abs(p))
        return PhaseMeasurement(v_rms, i_rms, p, q, s, _pf(p, s), Quadrant.of(p, q))

    def _measure_neutral(self, start: int, end: int, frequency: float, t_start: float, t_end: float) -> float:
        """The neutral current's RMS over the window's whole cycles, as :meth:`_measure`
        takes a phase current's (the same edge correction at the interpolated crossings)."""
        pn = self._pn
        x = pn[start:end]
        sx = sum(x)
        xx = sum(map(_mul, x, x))
        if not math.isfinite(sx + xx):
            raise MetrologyError("neutral: samples not finite or too large")
        n: float = end - start
        if frequency and end < len(pn):
            n = t_end - t_start
            edge = (end - t_end) - (start - t_start)
            a = t_end - (end - 1)
            x_c = pn[end - 1] + a * (pn[end] - pn[end - 1])
            sx -= edge * x_c
            xx -= edge * x_c * x_c
        mean = sx / n
        return self.config.neutral_gain * math.sqrt(max(0.0, xx / n - mean * mean))

    def _finish(self, ph: int, n: float, sv: float, si: float, vv: float, ii: float, vi: float,
                sd: float, rd: float, f: float) -> tuple[float, float, float, float]:
        """(P, Q, Vrms, Irms) from sums over ``n`` samples, offsets removed, calibrated."""
        ov = sv / n
        oi = si / n
        var_v = max(0.0, vv / n - ov * ov)
        var_i = max(0.0, ii / n - oi * oi)
        p = vi / n - ov * oi
        r = (rd - oi * sd) / n
        psi = -2.0 * math.pi * f * self._delay / self._fs
        q = (p * math.cos(psi) - r) / math.sin(psi)
        gv, gi, cth, sth = self._cal[ph]
        g = gv * gi
        return (g * (p * cth - q * sth), g * (q * cth + p * sth),
                gv * math.sqrt(var_v), gi * math.sqrt(var_i))



def _copied(value: Any) -> Any:
    """A pipeline part copied: its arrays and lists of arrays are changed in place."""
    if isinstance(value, array):
        return array("d", value)
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


_PRISTINE: dict[MetrologyConfig, Metrology] = {}  # a just-built metrology per configuration


def _fresh(config: MetrologyConfig) -> Metrology:
    """``Metrology(config)``, from a pristine one built once: its derived constants shared,
    what blocks change in place (the pipeline's arrays, offsets and registers) new. A
    steady load's block is measured by a fresh metrology, and building one was a quarter
    of that."""
    pristine = _PRISTINE.get(config)
    if pristine is None:
        pristine = _PRISTINE[config] = Metrology(config)
    m = copy.copy(pristine)
    n = config.phases
    m._pv, m._pi, m._hist = [array("d") for _ in range(n)], [array("d") for _ in range(n)], [array("d") for _ in range(n)]
    m._pn, m._ov, m._oi = array("d"), [0.0] * n, [0.0] * n
    m._regs = {name: _Register() for name in _REGISTERS}
    m._pulse_reg = _Register()
    return m


@dataclass(frozen=True)
class SteadyLoad:
    """What a meter that has just started measures over one block of a steady load (its
    first whole-cycle window, nothing before it): the measurements and the pipeline the
    block leaves. A pure function of the configuration and the samples, so a steady
    load's block is measured once and every change to that load takes it on
    (:meth:`Metrology.hold`): the simulated meters' household slots."""

    measurements: Measurements
    pipeline: tuple

    @classmethod
    def measure(cls, config: MetrologyConfig,
                block: Sequence[tuple[Sequence[float], Sequence[float]]]) -> "SteadyLoad":
        metrology = _fresh(config)
        meas = metrology.process(block)
        if not meas.duration:
            raise MetrologyError("the block holds no whole cycle to measure")
        # the metrology is this block's alone: its pipeline is taken, not copied
        return cls(meas, tuple(getattr(metrology, name) for name in Metrology._PIPELINE))
