"""`bijli testbench`: the accuracy tests a meter lab runs, on synthetic waveforms.

Follows IEC 62053-21 (static meters for active energy, class 1, direct connected):
the percentage error limits of its table for single-phase meters and polyphase meters
with balanced loads, the starting-current test at 0.004 Ib (PF 1) and the no-load
(creep) test at 115 % of the reference voltage with the current circuit open.

The reference "standard meter" is analytic: the synthetic source knows the true power
it generates, so the expected energy is P_true times the seconds the meter integrated.
Each point simulates a couple of seconds of samples; the starting and creep tests,
whose periods run to minutes, process a few seconds of samples and then let the meter
run on at those measurements with ``Metrology.accumulate`` (the meter's own fast path),
unless ``--full-time`` asks for every sample of the period.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field

from bijli.firmware.metrology import Metrology, MetrologyConfig, PhaseCalibration
from bijli.hal.samples import Harmonic, SyntheticSource

# IEC 62053-21 class 1: no-load test period, minutes = CREEP_CONSTANT / (k m Un Imax).
CREEP_CONSTANT = 600e6
# Starting test: the meter must emit a pulse within this many times the period one
# pulse takes at Ist (the period of one pulse is 3600e3 / (k m Un Ist) seconds).
STARTING_TIME_FACTOR = 1.5


@dataclass(frozen=True)
class TestPoint:
    """One row of the IEC 62053-21 error-limit table."""

    name: str          # "0.1 Ib", "Imax"
    multiple: float    # of the base current
    base: str          # "Ib" or "Imax"
    pf: float
    lagging: bool
    limit_pct: float

    def current(self, ib: float, imax: float) -> float:
        return self.multiple * (ib if self.base == "Ib" else imax)

    @property
    def pf_label(self) -> str:
        if self.pf == 1.0:
            return "1"
        return f"{self.pf:g}{'L' if self.lagging else 'C'}"


def load_points() -> list[TestPoint]:
    """Class 1, direct connected: 1.5 % at 0.05 Ib PF 1 and at 0.1 Ib PF 0.5L/0.8C,
    1.0 % from 0.1 Ib (PF 1) or 0.2 Ib (PF 0.5L/0.8C) up to Imax."""
    pts = [
        TestPoint("0.05 Ib", 0.05, "Ib", 1.0, True, 1.5),
        TestPoint("0.1 Ib", 0.1, "Ib", 1.0, True, 1.0),
        TestPoint("Ib", 1.0, "Ib", 1.0, True, 1.0),
        TestPoint("Imax", 1.0, "Imax", 1.0, True, 1.0),
    ]
    for pf, lagging in ((0.5, True), (0.8, False)):
        pts += [
            TestPoint("0.1 Ib", 0.1, "Ib", pf, lagging, 1.5),
            TestPoint("0.2 Ib", 0.2, "Ib", pf, lagging, 1.0),
            TestPoint("Ib", 1.0, "Ib", pf, lagging, 1.0),
            TestPoint("Imax", 1.0, "Imax", pf, lagging, 1.0),
        ]
    return pts


@dataclass(frozen=True)
class BenchOptions:
    phases: int = 1
    ib: float = 10.0
    imax: float = 60.0
    un: float = 230.0
    frequency: float = 50.0
    sample_rate: int = 4096
    meter_constant: float = 1600
    harmonics: tuple[Harmonic, ...] = ()
    noise_v: float = 0.0
    noise_i: float = 0.0
    adc_bits: int | None = None
    adc_range: tuple[float, float] = (500.0, 100.0)
    seconds: float = 2.0
    block: int = 1024
    seed: int = 1
    calibration: PhaseCalibration = field(default_factory=PhaseCalibration)
    full_time: bool = False

    def meter_config(self) -> MetrologyConfig:
        """The meter under test (its calibration is what the bench checks)."""
        return MetrologyConfig(sample_rate=self.sample_rate, nominal_frequency=self.frequency,
                               phases=self.phases, meter_constant=self.meter_constant,
                               basic_current=self.ib, max_current=self.imax, nominal_voltage=self.un,
                               calibration=(self.calibration,) * self.phases)

    def source(self, current: float, pf: float = 1.0, lagging: bool = True, voltage: float | None = None) -> SyntheticSource:
        src = SyntheticSource(sample_rate=self.sample_rate, frequency=self.frequency, phases=self.phases,
                              voltage=self.un if voltage is None else voltage, harmonics=self.harmonics,
                              noise_rms=(self.noise_v, self.noise_i), adc_bits=self.adc_bits,
                              adc_range=self.adc_range, seed=self.seed)
        src.set_load(current, pf=pf, lagging=lagging)
        return src


@dataclass(frozen=True)
class PointResult:
    test: str        # "accuracy", "starting", "no-load"
    load: str        # "0.1 Ib (1.00 A)"
    pf: str
    value: float     # error % (accuracy) or pulses counted (starting, no-load)
    limit: float     # +-limit % (accuracy); min pulses (starting); max pulses (no-load)
    passed: bool
    detail: str = ""


def _run(meter: Metrology, src: SyntheticSource, seconds: float, block: int) -> None:
    n = int(round(seconds * src.sample_rate))
    while n > 0:
        k = min(block, n)
        meter.process(src.read_block(k))
        n -= k


def run_accuracy_point(point: TestPoint, opts: BenchOptions) -> PointResult:
    current = point.current(opts.ib, opts.imax)
    src = opts.source(current, point.pf, point.lagging)
    meter = Metrology(opts.meter_config())
    _run(meter, src, 0.25, opts.block)  # settle: offsets and the first cycle alignment
    e0 = meter.energy
    t0 = meter.integrated_seconds
    _run(meter, src, opts.seconds, opts.block)
    e1 = meter.energy
    dt = meter.integrated_seconds - t0
    measured = (e1.active_import_wh - e0.active_import_wh) - (e1.active_export_wh - e0.active_export_wh)
    p_true, _ = src.expected_power()
    expected = p_true * dt / 3600.0
    error = (measured - expected) / expected * 100.0 if expected else math.inf
    return PointResult("accuracy", f"{point.name} ({current:g} A)", point.pf_label, error,
                       point.limit_pct, abs(error) <= point.limit_pct,
                       f"{measured:.6f} Wh vs {expected:.6f} Wh in {dt:.3f} s")


def _run_period(meter: Metrology, src: SyntheticSource, period: float, opts: BenchOptions) -> None:
    if opts.full_time:
        _run(meter, src, period, max(opts.block, 4096))
        return
    settle = min(period, opts.seconds)
    _run(meter, src, settle, opts.block)
    meter.accumulate(meter.measurements, max(0.0, period - meter.integrated_seconds))


def starting_period(opts: BenchOptions) -> float:
    ist = MetrologyConfig(basic_current=opts.ib, max_current=opts.imax).starting_current
    return STARTING_TIME_FACTOR * 3600e3 / (opts.meter_constant * opts.phases * opts.un * ist)


def creep_period(opts: BenchOptions) -> float:
    return CREEP_CONSTANT / (opts.meter_constant * opts.phases * opts.un * opts.imax) * 60.0


def run_starting_test(opts: BenchOptions) -> PointResult:
    cfg = opts.meter_config()
    ist = cfg.starting_current
    period = starting_period(opts)
    src = opts.source(ist, 1.0)
    meter = Metrology(cfg)
    _run_period(meter, src, period, opts)
    pulses = meter.pulses
    return PointResult("starting", f"Ist = 0.004 Ib ({ist:g} A)", "1", pulses, 1, pulses >= 1,
                       f"{pulses} pulse(s) in {period:.0f} s")


def run_creep_test(opts: BenchOptions) -> PointResult:
    period = creep_period(opts)
    src = opts.source(0.0, 1.0, voltage=1.15 * opts.un)
    meter = Metrology(opts.meter_config())
    _run_period(meter, src, period, opts)
    pulses = meter.pulses
    return PointResult("no-load", f"I = 0, U = 1.15 Un ({1.15 * opts.un:g} V)", "-", pulses, 1, pulses <= 1,
                       f"{pulses} pulse(s) in {period:.0f} s")


def run_all(opts: BenchOptions, tests: tuple[str, ...] = ("accuracy", "starting", "no-load")) -> list[PointResult]:
    results = []
    if "accuracy" in tests:
        results += [run_accuracy_point(p, opts) for p in load_points()]
    if "starting" in tests:
        results.append(run_starting_test(opts))
    if "no-load" in tests:
        results.append(run_creep_test(opts))
    return results


def format_table(results: list[PointResult]) -> str:
    lines = [f"{'test':<9} {'load':<34} {'PF':<5} {'result':>12} {'limit':>9}  verdict",
             "-" * 80]
    for r in results:
        if r.test == "accuracy":
            value, limit = f"{r.value:+.4f} %", f"+-{r.limit:g} %"
        elif r.test == "starting":
            value, limit = f"{r.value:g} pulses", f">= {r.limit:g}"
        else:
            value, limit = f"{r.value:g} pulses", f"<= {r.limit:g}"
        lines.append(f"{r.test:<9} {r.load:<34} {r.pf:<5} {value:>12} {limit:>9}  {'pass' if r.passed else 'FAIL'}")
    failed = sum(not r.passed for r in results)
    lines.append("-" * 80)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _harmonics(text: str) -> tuple[Harmonic, ...]:
    out = []
    for item in filter(None, text.split(",")):
        parts = item.split(":")
        try:
            if len(parts) not in (3, 4):
                raise ValueError
            out.append(Harmonic(int(parts[0]), *map(float, parts[1:])))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"harmonic {item!r}: expected ORDER:V_FRACTION:I_FRACTION[:PHASE_DEG]") from None
    return tuple(out)


def _pair(text: str) -> tuple[float, float]:
    try:
        v, i = map(float, text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected VOLTS_PEAK,AMPS_PEAK, not {text!r}") from None
    return v, i


def register(subparsers) -> None:
    p = subparsers.add_parser("testbench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(func=_main)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--phases", type=int, choices=(1, 3), default=1)
    p.add_argument("--ib", type=float, default=10.0, help="basic current, A (default 10)")
    p.add_argument("--imax", type=float, default=60.0, help="maximum current, A (default 60)")
    p.add_argument("--un", type=float, default=230.0, help="reference voltage, V (default 230)")
    p.add_argument("--frequency", type=float, default=50.0)
    p.add_argument("--sample-rate", type=int, default=4096)
    p.add_argument("--meter-constant", type=float, default=1600, help="imp/kWh (default 1600)")
    p.add_argument("--harmonics", type=_harmonics, default=(),
                   help="comma list of ORDER:V_FRACTION:I_FRACTION[:PHASE_DEG], e.g. 5:0.1:0.4")
    p.add_argument("--noise-v", type=float, default=0.0, help="voltage noise, V rms")
    p.add_argument("--noise-i", type=float, default=0.0, help="current noise, A rms")
    p.add_argument("--adc-bits", type=int, default=None, help="quantise samples to an N-bit ADC")
    p.add_argument("--adc-range", type=_pair, default=(500.0, 100.0), help="ADC full scale VPEAK,APEAK (default 500,100)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds of signal per point (default 2)")
    p.add_argument("--block", type=int, default=1024, help="samples per block (default 1024)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--v-gain", type=float, default=1.0, help="meter under test: voltage calibration gain")
    p.add_argument("--i-gain", type=float, default=1.0, help="meter under test: current calibration gain")
    p.add_argument("--phase-deg", type=float, default=0.0, help="meter under test: phase correction, degrees")
    p.add_argument("--only", choices=("accuracy", "starting", "no-load"), action="append",
                   help="run only this test (repeatable)")
    p.add_argument("--full-time", action="store_true",
                   help="sample-process the whole starting and no-load periods (slower)")
    p.add_argument("--json", action="store_true", help="print results as JSON")


def options_from_args(args) -> BenchOptions:
    return BenchOptions(phases=args.phases, ib=args.ib, imax=args.imax, un=args.un, frequency=args.frequency,
                        sample_rate=args.sample_rate, meter_constant=args.meter_constant,
                        harmonics=tuple(args.harmonics), noise_v=args.noise_v, noise_i=args.noise_i,
                        adc_bits=args.adc_bits, adc_range=tuple(args.adc_range), seconds=args.seconds,
                        block=args.block, seed=args.seed, full_time=args.full_time,
                        calibration=PhaseCalibration(args.v_gain, args.i_gain, args.phase_deg))


def _main(args) -> int:
    opts = options_from_args(args)
    results = run_all(opts, tuple(args.only or ("accuracy", "starting", "no-load")))
    if args.json:
        print(json.dumps({"passed": all(r.passed for r in results), "options": _jsonable(opts),
                          "results": [asdict(r) for r in results]}, indent=1))
    else:
        print(format_table(results))
    return 0 if all(r.passed for r in results) else 1


def _jsonable(opts: BenchOptions) -> dict:
    d = asdict(opts)
    d["harmonics"] = [list(asdict(h).values()) for h in opts.harmonics]
    return d


def main(argv: list[str] | None = None) -> int:
    """``python -m bijli.tools.commands.testbench``: the same as ``bijli testbench``."""
    from bijli.tools.cli import main as cli_main

    return cli_main(["testbench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
