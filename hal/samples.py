"""Sample sources: where the meter's voltage and current samples come from.

Every source has one shape: ``sample_rate``, ``phases`` and ``read_block(n) ->``
:class:`Block`, a tuple of ``(v_samples, i_samples)`` per phase, each an ``array('d')`` in
volts and amps, that also carries ``neutral``: the neutral conductor's current over the
same instants. A real single-phase meter measures both conductors (a shunt or CT in the
phase, a CT in the neutral), so that current which does not come back through the
neutral shows; every source therefore gives the neutral a channel of its own. Three
backends, chosen by a config string through :func:`open_source`:

- ``synthetic``: a mains waveform generator (harmonics, noise, ADC quantisation) whose
  true powers are known analytically, for tests, the accuracy test bench
  (IEC 62053-21 load points) and the emulated meter. Its neutral carries the sum of the
  phase currents (in a healthy single-phase installation the phase current itself) less
  an *earth current* that can be set (:meth:`SyntheticSource.set_earth_current`) to
  emulate earth leakage or a partial neutral bypass;
- ``csv:PATH``: a recorded CSV file (``t,v1,i1[,v2,i2,v3,i3],in``) replayed sample by sample;
- ``spi:BUS.DEV``: an MCP3208-class 12-bit SAR ADC on a Raspberry Pi rig via ``spidev``,
  the neutral CT on a channel of its own.

This module knows nothing of the firmware: the metering core consumes these blocks by
their shape alone.
"""

from __future__ import annotations

import csv
import math
import operator
import random
import time
from array import array
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Iterable, Sequence

from bijli.hal.errors import BackendError, HalError

_mul = operator.mul
_add = operator.add
_TWO_PI = 2.0 * math.pi
_SQRT2 = math.sqrt(2.0)
_NOISE_TABLE = 1 << 16  # length of the precomputed unit-Gaussian table that noise is cut from


class SampleFormatError(HalError):
    """A recorded sample file that is not the documented CSV layout."""


class Block(tuple):
    """One block of samples: a tuple of each phase's ``(v, i)`` pair, and ``neutral``, the
    neutral current samples at the same instants (``None``: the source has no neutral
    channel, e.g. a CSV recorded without one).

    The phases are the tuple and the neutral an attribute beyond it (as
    ``os.stat_result`` keeps fields beyond its tuple), so code that reads a block's phases
    (``(v, i), = block``) reads it unchanged; equality compares the neutral as well."""

    neutral: array | None

    def __new__(cls, phases: Iterable[tuple[array, array]], neutral: array | None = None) -> "Block":
        self = super().__new__(cls, phases)
        self.neutral = neutral
        return self

    def __getnewargs__(self) -> tuple:  # pickled with its neutral
        return tuple(self), self.neutral

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Block) and self.neutral != other.neutral:
            return False
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Block({tuple.__repr__(self)}, neutral={self.neutral!r})"


# --------------------------------------------------------------------------- synthetic


@dataclass(frozen=True)
class Harmonic:
    """A harmonic of the given order, its amplitude as a fraction of the fundamental.

    ``phase_deg`` is the harmonic current's displacement from the harmonic voltage
    (lagging positive), so it carries P_h = V_h I_h cos(phase_deg)."""

    order: int
    v_fraction: float
    i_fraction: float
    phase_deg: float = 0.0


@dataclass
class _PhaseLoad:
    voltage: float   # V rms of the fundamental
    current: float   # A rms of the fundamental
    angle: float     # current lag behind voltage, radians (lagging positive)


class SyntheticSource:
    """A sinusoidal mains supply and load, sampled.

    Phase ``k`` voltage is ``sqrt2 V sin(wt - k*120deg) + harmonics``, its current lags it
    by the load angle. The phase of the waveform runs on continuously across blocks.
    Generating a block costs a few passes of builtins over cached ``sin``/``cos`` tables
    (angle addition: ``sin(a + wk) = sin a cos wk + cos a sin wk``), not a Python loop.

    ``noise_rms`` is (volts, amps) of white Gaussian noise (a single float applies to
    both); ``adc_bits`` quantises each channel to a bipolar ADC of that many bits over
    +-``adc_range`` (peak volts, peak amps), clipping beyond it.

    The neutral channel carries what returns through the neutral conductor: the sum of
    the phase currents (a single phase: its current) less the *earth current*
    (:meth:`set_earth_current`), the part of phase 1's load current that returns by earth
    rather than the neutral, so the neutral CT does not see it (earth leakage, a load
    wired phase to earth, a partial bypass of the neutral). It is a sinusoid of the
    fundamental in phase with phase 1's load current: with a sinusoidal load of I amps
    the neutral carries ``|I - earth|``. A negative earth current is the other way round:
    the neutral carries more than the phase CT (part of the load is fed round the phase
    CT). The neutral has noise and quantisation of its own, as the current channels do.
    """

    earth_current = 0.0  # A rms of phase 1's load returning by earth (set_earth_current)

    def __init__(self, sample_rate: int = 4096, frequency: float = 50.0, phases: int = 1,
                 voltage: float = 230.0, current: float = 0.0, pf: float | None = None,
                 phase_angle_deg: float = 0.0, harmonics: Iterable[Any] = (),
                 noise_rms: float | tuple[float, float] = 0.0, adc_bits: int | None = None,
                 adc_range: tuple[float, float] = (500.0, 100.0), seed: int | None = None):
        if phases not in (1, 3):
            raise HalError(f"phases must be 1 or 3, not {phases!r}")
        if not (sample_rate > 0 and frequency > 0):
            raise HalError("sample_rate and frequency must be positive")
        self.sample_rate = int(sample_rate)
        self.phases = phases
        self.frequency = float(frequency)
        angle = math.acos(_check_pf(pf)) if pf is not None else math.radians(phase_angle_deg)
        self._loads = [_PhaseLoad(float(voltage), float(current), angle) for _ in range(phases)]
        self.harmonics: tuple[Harmonic, ...] = ()
        self.set_harmonics(harmonics)
        self.set_noise(noise_rms)
        if adc_bits is not None and not (2 <= adc_bits <= 32):
            raise HalError(f"adc_bits must be 2..32, not {adc_bits!r}")
        self.adc_bits = adc_bits
        self.adc_range = (float(adc_range[0]), float(adc_range[1]))
        self._rng = random.Random(seed)
        self._noise: array | None = None
        self._cycles = 0.0  # phase of the next sample, in cycles of the fundamental, [0, 1)
        self._tables: dict[tuple[int, int], tuple[array, array]] = {}
        self.earth_current = 0.0
        self.samples_read = 0

    def __getstate__(self) -> dict:
        """Pickled (a fleet keeps a dormant meter's source so): the sin/cos tables are a
        cache rebuilt on demand, not part of the source's state."""
        state = dict(self.__dict__)
        state["_tables"] = {}
        return state

    # ---- setters

    def set_load(self, current: float, pf: float = 1.0, lagging: bool = True,
                 voltage: float | None = None, phase: int | None = None) -> None:
        """Set the load current (A rms) at a power factor, lagging or leading, on one
        phase (0-based) or all; optionally the voltage too."""
        angle = math.acos(_check_pf(pf))
        angle = angle if lagging else -angle
        for k in self._phase_indices(phase):
            load = self._loads[k]
            load.current = float(current)
            load.angle = angle
            if voltage is not None:
                load.voltage = float(voltage)

    def set_earth_current(self, amps: float) -> None:
        """How much of phase 1's load current (A rms, in phase with it) returns by earth
        instead of the neutral: 0 is a healthy installation, where the neutral carries
        the phase current; negative, the neutral carries more than the phase."""
        if isinstance(amps, bool) or not (isinstance(amps, (int, float)) and math.isfinite(amps)):
            raise HalError(f"earth current must be a finite number of amps, not {amps!r}")
        self.earth_current = float(amps)

    def set_voltage(self, voltage: float, phase: int | None = None) -> None:
        for k in self._phase_indices(phase):
            self._loads[k].voltage = float(voltage)

    def set_phase_angle(self, degrees: float, phase: int | None = None) -> None:
        """Current lag behind voltage in degrees (negative: leading; 180: export)."""
        for k in self._phase_indices(phase):
            self._loads[k].angle = math.radians(degrees)

    def set_frequency(self, frequency: float) -> None:
        if not frequency > 0:
            raise HalError(f"frequency must be positive, not {frequency!r}")
        self.frequency = float(frequency)
        self._tables.clear()

    def set_harmonics(self, harmonics: Iterable[Any]) -> None:
        """Harmonics as :class:`Harmonic` or tuples ``(order, v_fraction, i_fraction[, phase_deg])``."""
        out = []
        for h in harmonics:
            h = h if isinstance(h, Harmonic) else Harmonic(*h)
            if not (isinstance(h.order, int) and h.order >= 2):
                raise HalError(f"harmonic order must be an integer >= 2, not {h.order!r}")
            out.append(h)
        self.harmonics = tuple(out)

    def set_noise(self, noise_rms: float | tuple[float, float]) -> None:
        if isinstance(noise_rms, (int, float)):
            noise_rms = (float(noise_rms), float(noise_rms))
        self.noise_rms = (float(noise_rms[0]), float(noise_rms[1]))

    def _phase_indices(self, phase: int | None) -> range:
        if phase is None:
            return range(self.phases)
        if not 0 <= phase < self.phases:
            raise HalError(f"phase {phase} out of range (source has {self.phases})")
        return range(phase, phase + 1)

    # ---- truth

    def load(self, phase: int = 0) -> tuple[float, float, float]:
        """(V rms, I rms, current lag in degrees) of a phase's fundamental."""
        ld = self._loads[phase]
        return ld.voltage, ld.current, math.degrees(ld.angle)

    def expected_power(self, phase: int | None = None) -> tuple[float, float]:
        """True (P watts, Q vars) of one phase or all: fundamental plus harmonics
        (sum of V_h I_h cos / sin of each order's displacement). Noise is zero-mean and
        uncorrelated, so it adds nothing; ADC quantisation is the meter's error to show."""
        p = q = 0.0
        for k in self._phase_indices(phase):
            ld = self._loads[k]
            p += ld.voltage * ld.current * math.cos(ld.angle)
            q += ld.voltage * ld.current * math.sin(ld.angle)
            for h in self.harmonics:
                vh = ld.voltage * h.v_fraction
                ih = ld.current * h.i_fraction
                p += vh * ih * math.cos(math.radians(h.phase_deg))
                q += vh * ih * math.sin(math.radians(h.phase_deg))
        return p, q

    # ---- generation

    def _table(self, order: int, n: int) -> tuple[array, array]:
        key = (order, n)
        t = self._tables.get(key)
        if t is None:
            w = _TWO_PI * order * self.frequency / self.sample_rate
            steps = array("d", map(_mul, range(n), repeat(w)))
            t = (array("d", map(math.sin, steps)), array("d", map(math.cos, steps)))
            if len(self._tables) > 64:
                self._tables.clear()
            self._tables[key] = t
        return t

    def _wave(self, n: int, terms: list[tuple[int, float, float]]) -> array:
        """Sum over terms of ``amp * sin(order * (wk + a0) + phi)`` for k in range(n),
        where each term is (order, amp, order*a0 + phi)."""
        out: array | None = None
        for order, amp, angle in terms:
            if amp == 0.0:
                continue
            sin_t, cos_t = self._table(order, n)
            # sin(x + wk) = sin(x) cos(wk) + cos(x) sin(wk)
            part = map(_add, map(_mul, cos_t, repeat(amp * math.sin(angle))),
                       map(_mul, sin_t, repeat(amp * math.cos(angle))))
            out = array("d", part) if out is None else array("d", map(_add, out, part))
        return out if out is not None else array("d", bytes(8 * n))

    def _noise_block(self, channel: int, n: int, sigma: float) -> Iterable[float]:
        """``n`` samples of this channel's noise: consecutive entries of a shared
        unit-Gaussian table from the channel's own random start, so the noise does not
        depend on how the samples were cut into blocks (it repeats every 65536 samples)."""
        if self._noise is None:
            gauss = random.Random(self._rng.getrandbits(64)).gauss
            self._noise = array("d", (gauss(0.0, 1.0) for _ in range(_NOISE_TABLE)))
            self._noise_pos = [self._rng.randrange(_NOISE_TABLE) for _ in range(2 * self.phases)]
        if channel >= len(self._noise_pos):  # the neutral's start, drawn after the phases' own
            self._noise_pos.append(self._rng.randrange(_NOISE_TABLE))
        table = self._noise
        pos = self._noise_pos[channel]
        out = array("d")
        while len(out) < n:
            take = min(n - len(out), _NOISE_TABLE - pos)
            out.extend(table[pos:pos + take])
            pos = (pos + take) % _NOISE_TABLE
        self._noise_pos[channel] = pos
        return map(_mul, out, repeat(sigma))

    def _quantise(self, x: array, full_scale: float) -> array:
        half = 1 << (self.adc_bits - 1)
        lsb = full_scale / half
        codes = map(round, map(operator.truediv, x, repeat(lsb)))
        clipped = map(min, map(max, codes, repeat(-half)), repeat(half - 1))
        return array("d", map(_mul, clipped, repeat(lsb)))

    def steady_key(self) -> tuple | None:
        """What :meth:`steady_block` is a pure function of (hashable): the rate, the
        frequency, every phase's voltage, current and angle, the earth current, the
        harmonics and the ADC. None when the source is noisy: its blocks then depend on
        where its noise tables stand, not on its settings alone."""
        if self.noise_rms[0] or self.noise_rms[1]:
            return None
        return (self.sample_rate, self.frequency, tuple((ld.voltage, ld.current, ld.angle) for ld in self._loads),
                self.earth_current, self.harmonics, self.adc_bits, self.adc_range)

    def steady_block(self, n_samples: int) -> Block:
        """The block of ``n_samples`` this source's settings give from phase 0 (the
        waveform's rising zero of phase 1), without moving this source: what a meter
        measures of a steady load as a pure function of that load (:meth:`steady_key`),
        wherever the running waveform stands."""
        cycles, read = self._cycles, self.samples_read
        self._cycles = 0.0
        try:
            return self.read_block(n_samples)
        finally:
            self._cycles, self.samples_read = cycles, read

    def restart(self, n_samples: int) -> None:
        """The waveform as if :meth:`steady_block` had just been read from it: it restarts
        at phase 0 at a load change and runs on from there, so the meter, which took that
        block's measurements and pipeline, measures on without a seam."""
        self._cycles = math.fmod(n_samples * self.frequency / self.sample_rate, 1.0)
        self.samples_read += n_samples

    def read_block(self, n_samples: int) -> Block:
        n = int(n_samples)
        if n < 0:
            raise HalError(f"block size must be >= 0, not {n_samples!r}")
        a0 = _TWO_PI * self._cycles
        out = []
        neutral: array | None = None  # the phase currents' sum, before each channel's noise
        for k, ld in enumerate(self._loads):
            shift = -_TWO_PI * k / 3.0
            base = a0 + shift
            va = _SQRT2 * ld.voltage
            ia = _SQRT2 * ld.current
            v_terms = [(1, va, base)]
            i_terms = [(1, ia, base - ld.angle)]
            for h in self.harmonics:
                v_terms.append((h.order, va * h.v_fraction, h.order * base))
                i_terms.append((h.order, ia * h.i_fraction, h.order * base - math.radians(h.phase_deg)))
            v = self._wave(n, v_terms)
            i = self._wave(n, i_terms)
            neutral = array("d", i) if neutral is None else array("d", map(_add, neutral, i))
            if k == 0 and self.earth_current:
                # the earth current returns outside the neutral: a fundamental in phase with the load
                earth = self._wave(n, [(1, _SQRT2 * self.earth_current, base - ld.angle)])
                neutral = array("d", map(operator.sub, neutral, earth))
            if self.noise_rms[0]:
                v = array("d", map(_add, v, self._noise_block(2 * k, n, self.noise_rms[0])))
            if self.noise_rms[1]:
                i = array("d", map(_add, i, self._noise_block(2 * k + 1, n, self.noise_rms[1])))
            if self.adc_bits is not None:
                v = self._quantise(v, self.adc_range[0])
                i = self._quantise(i, self.adc_range[1])
            out.append((v, i))
        if neutral is None:
            neutral = array("d", bytes(8 * n))
        if self.noise_rms[1]:
            neutral = array("d", map(_add, neutral, self._noise_block(2 * self.phases, n, self.noise_rms[1])))
        if self.adc_bits is not None:
            neutral = self._quantise(neutral, self.adc_range[1])
        self._cycles = math.fmod(self._cycles + n * self.frequency / self.sample_rate, 1.0)
        self.samples_read += n
        return Block(out, neutral)


def _check_pf(pf: float) -> float:
    if not (isinstance(pf, (int, float)) and -1.0 <= pf <= 1.0):
        raise HalError(f"power factor must be in [-1, 1], not {pf!r}")
    return float(pf)


# --------------------------------------------------------------------------- CSV


class CsvReplaySource:
    """Replays a CSV of samples: header ``t,v1,i1[,v2,i2,v3,i3],in``, one row per sample,
    ``in`` the neutral current.

    The sample rate is read from the ``t`` column (or given). ``read_block`` returns
    fewer samples at the end of the file and empty arrays after it, unless ``loop``.
    A file recorded without the ``in`` column (before sources had a neutral channel) is
    still read; its blocks say they have no neutral (``neutral`` None) rather than
    inventing one.
    """

    def __init__(self, path: str, sample_rate: int | None = None, loop: bool = False):
        self.path = str(path)
        self.loop = loop
        try:
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
        except OSError as exc:
            raise BackendError(f"cannot open sample file {self.path}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SampleFormatError(f"{self.path}: not a CSV text file: {exc}") from None
        if not rows:
            raise SampleFormatError(f"{self.path}: empty file (expected header t,v1,i1...)")
        header = [h.strip() for h in rows[0]]
        one, three = ["t", "v1", "i1"], ["t", "v1", "i1", "v2", "i2", "v3", "i3"]
        if header not in (one + ["in"], three + ["in"], one, three):
            raise SampleFormatError(f"{self.path}: header must be t,v1,i1,in or t,v1,i1,v2,i2,v3,i3,in "
                                    f"(without in: no neutral channel), not {','.join(header)}")
        self.has_neutral = header[-1] == "in"
        self.phases = (len(header) - 1 - self.has_neutral) // 2
        cols = [array("d") for _ in header]
        for line, row in enumerate(rows[1:], start=2):
            if len(row) != len(header):
                raise SampleFormatError(f"{self.path}:{line}: expected {len(header)} fields, got {len(row)}")
            try:
                values = [float(x) for x in row]
            except ValueError:
                raise SampleFormatError(f"{self.path}:{line}: not a number in {row!r}") from None
            if not all(map(math.isfinite, values)):
                raise SampleFormatError(f"{self.path}:{line}: value not finite")
            for col, x in zip(cols, values):
                col.append(x)
        self._t = cols[0]
        self._cols = cols[1:]
        if sample_rate is None:
            if len(self._t) < 2 or not self._t[-1] > self._t[0]:
                raise SampleFormatError(f"{self.path}: need two or more rows with rising t to know the sample rate")
            sample_rate = round((len(self._t) - 1) / (self._t[-1] - self._t[0]))
        self.sample_rate = int(sample_rate)
        self._pos = 0

    def __len__(self) -> int:
        return len(self._t)

    def read_block(self, n_samples: int) -> Block:
        n = int(n_samples)
        total = len(self._t)
        if self.loop and total:
            parts = []
            while n > 0:
                take = min(n, total - self._pos)
                parts.append((self._pos, self._pos + take))
                n -= take
                self._pos = (self._pos + take) % total
            cols = []
            for col in self._cols:
                a = array("d")
                for s, e in parts:
                    a.extend(col[s:e])
                cols.append(a)
        else:
            s, e = self._pos, min(total, self._pos + max(0, n))
            self._pos = e
            cols = [col[s:e] for col in self._cols]
        return Block(((cols[2 * k], cols[2 * k + 1]) for k in range(self.phases)),
                     cols[-1] if self.has_neutral else None)


def record_csv(source: Any, path: str, seconds: float, block: int = 1024) -> int:
    """Record ``seconds`` of ``source`` to a CSV replayable by :class:`CsvReplaySource`,
    its neutral channel too when it has one (the ``in`` column).

    Values are written with ``repr`` so a replay gives back the very same floats.
    Returns the number of rows written."""
    fs = source.sample_rate
    total = int(round(seconds * fs))
    header = ["t"] + [f"{c}{k + 1}" for k in range(source.phases) for c in ("v", "i")]
    with_neutral = None
    written = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if not total:
            w.writerow(header + ["in"])
        while written < total:
            n = min(block, total - written)
            blk = source.read_block(n)
            chans = [ch for pair in blk for ch in pair]
            neutral = getattr(blk, "neutral", None)
            if with_neutral is None:  # the first block says whether the source has a neutral
                with_neutral = neutral is not None
                w.writerow(header + ["in"] * with_neutral)
            if with_neutral != (neutral is not None):
                raise HalError("the source's neutral channel came and went while recording")
            if with_neutral:
                chans.append(neutral)
            ts = (repr((written + k) / fs) for k in range(n))
            w.writerows(zip(ts, *(map(repr, ch) for ch in chans)))
            written += n
    return written


# --------------------------------------------------------------------------- SPI ADC


def mcp3208_command(channel: int) -> list[int]:
    """The three bytes that start a single-ended conversion of ``channel`` (0..7)."""
    if not 0 <= channel <= 7:
        raise HalError(f"MCP3208 channel must be 0..7, not {channel!r}")
    return [0x06 | (channel >> 2), (channel & 0x03) << 6, 0x00]


def mcp3208_decode(response: Sequence[int]) -> int:
    """The 12-bit result in the last two of the three bytes clocked back."""
    if len(response) != 3:
        raise HalError(f"MCP3208 reply must be 3 bytes, got {len(response)}")
    return ((response[1] & 0x0F) << 8) | response[2]


def counts_to_value(count: int, per_count: float, mid_rail: float = 2048.0) -> float:
    """ADC counts to volts or amps: the signal is AC-coupled onto mid-rail, so
    ``(count - mid_rail) * per_count``."""
    return (count - mid_rail) * per_count


class SpiAdcSource:
    """Samples from an MCP3208-class 12-bit ADC over SPI (``spidev``), for a Pi rig.

    ``channels`` maps each phase to its (voltage channel, current channel), and
    ``neutral_channel`` is the neutral CT's (by default the channel after the phases':
    2 for one phase, 6 for three; ``amps_per_count`` scales it as the phase currents).
    Each sample instant reads every channel with one ``xfer2`` apiece, then waits for the next
    instant on ``time.perf_counter``; if the bus falls behind the schedule restarts
    from now rather than bursting (the measured rate is in ``achieved_rate``). A Pi
    manages roughly 10-20k transfers per second from Python, enough for one phase and its
    neutral at 4096 Hz; use a lower sample rate for three phases.
    """

    def __init__(self, bus: int = 0, device: int = 0, sample_rate: int = 4096, phases: int = 1,
                 channels: Sequence[tuple[int, int]] | None = None, neutral_channel: int | None = None,
                 volts_per_count: float = 0.25, amps_per_count: float = 0.05,
                 mid_rail: float = 2048.0, speed_hz: int = 1_000_000):
        if phases not in (1, 3):
            raise HalError(f"phases must be 1 or 3, not {phases!r}")
        if channels is None:
            channels = [(2 * k, 2 * k + 1) for k in range(phases)]
        if len(channels) != phases:
            raise HalError(f"channels must map each of {phases} phases to (v, i)")
        if neutral_channel is None:
            neutral_channel = 2 * phases
        used = [c for pair in channels for c in pair]
        if neutral_channel in used or len(set(used)) != len(used):
            raise HalError(f"each ADC channel reads one signal: phases {list(channels)}, neutral {neutral_channel}")
        self.commands = [(mcp3208_command(vc), mcp3208_command(ic)) for vc, ic in channels]
        self.neutral_command = mcp3208_command(neutral_channel)
        self.sample_rate = int(sample_rate)
        self.phases = phases
        self.volts_per_count = float(volts_per_count)
        self.amps_per_count = float(amps_per_count)
        self.mid_rail = float(mid_rail)
        self.achieved_rate = 0.0
        try:
            import spidev  # type: ignore[import-not-found]
        except ImportError:
            raise BackendError("SPI ADC needs the 'spidev' package (pip install spidev; Raspberry Pi only)") from None
        spi = spidev.SpiDev()
        try:
            spi.open(bus, device)
        except (OSError, IOError) as exc:
            raise BackendError(f"cannot open /dev/spidev{bus}.{device}: {exc} (is SPI enabled?)") from None
        spi.max_speed_hz = speed_hz
        spi.mode = 0
        self._spi = spi

    def read_block(self, n_samples: int) -> Block:
        xfer = self._spi.xfer2
        period = 1.0 / self.sample_rate
        raw = [(array("d"), array("d")) for _ in range(self.phases)]
        raw_neutral = array("d")
        ncmd = self.neutral_command
        clock = time.perf_counter
        t0 = next_t = clock()
        for _ in range(int(n_samples)):
            for (vcmd, icmd), (va, ia) in zip(self.commands, raw):
                va.append(mcp3208_decode(xfer(list(vcmd))))
                ia.append(mcp3208_decode(xfer(list(icmd))))
            raw_neutral.append(mcp3208_decode(xfer(list(ncmd))))
            next_t += period
            now = clock()
            if next_t > now:
                while clock() < next_t:  # sleep() is too coarse for 244 us
                    pass
            else:
                next_t = now
        elapsed = clock() - t0
        self.achieved_rate = n_samples / elapsed if elapsed > 0 else 0.0
        out = []
        amps = lambda counts: array("d", map(counts_to_value, counts, repeat(self.amps_per_count),  # noqa: E731
                                             repeat(self.mid_rail)))
        for va, ia in raw:
            out.append((array("d", map(counts_to_value, va, repeat(self.volts_per_count), repeat(self.mid_rail))),
                        amps(ia)))
        return Block(out, amps(raw_neutral))

    def close(self) -> None:
        self._spi.close()


# --------------------------------------------------------------------------- factory


def open_source(spec: str, **opts: Any) -> Any:
    """Open a sample source from a config string: ``synthetic``, ``csv:PATH``, ``spi:BUS.DEV``."""
    kind, _, arg = str(spec).partition(":")
    if kind == "synthetic" and not arg:
        return SyntheticSource(**opts)
    if kind == "csv" and arg:
        return CsvReplaySource(arg, **opts)
    if kind == "spi":
        bus, dot, dev = arg.partition(".")
        if not (bus.isdigit() and dot and dev.isdigit()):
            raise BackendError(f"SPI source must be spi:BUS.DEV (e.g. spi:0.0), not {spec!r}")
        return SpiAdcSource(int(bus), int(dev), **opts)
    raise BackendError(f"unknown sample source {spec!r} (use synthetic, csv:PATH or spi:BUS.DEV)")
