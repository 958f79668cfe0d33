"""Registers and Data objects: the meter's measured values, name plate and last events.

Register and Extended register (IC 3, 4) for every measured quantity, each with the
scaler, unit and A-XDR type of its :data:`.quantities.QUANTITIES` entry and read
from the meter at GET time (the neutral current 1.0.91.7.0.255 is the neutral CT's own
measurement, beside the phase current, not a copy of it), the time-of-day registers of tariff zones 1..8 among
them (:mod:`bijli.firmware.tiers`), and IS 15959's durations (0.0.94.91.8/13/14, whole
minutes) and tamper count (0.0.94.91.0); the IS 15959-2 name plate Data objects; the last event
code of each event log (IS 15959 0.0.96.11.x.255) and bijli's detail text beside it
(0.128.96.11.x.255, a manufacturer-specific B field).

Choices where IS 15959 field practice gives no number (bijli's own, documented
here): name plate meter type 5 = single phase two wire, 6 = three phase four wire;
category "D2" (single phase) / "C" (three phase whole current); current rating
"Ib-Imax A"; year of manufacture = the year the meter's memory was first
initialised; manufacturer name = the FLAG id.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

from bijli.dlms import axdr
from bijli.dlms.cosem.base import CosemObject
from bijli.dlms.cosem.data import Data, ExtendedRegister, Register
from bijli.dlms.cosem.units import Unit
from bijli.dlms.cosem.values import date_time_octets
from bijli.dlms.obis import Obis
from bijli.firmware import profiles as fw_profiles
from bijli.firmware.cosem.catalogue import (ACTIVE_POWER, APPARENT_POWER, AVERAGE_CURRENT, AVERAGE_VOLTAGE,
                                            AVAILABLE_BILLING_PERIODS, BILLING_COUNT, BILLING_DATE, BILLING_POWER_FACTOR,
                                            BLOCK_LOAD_CAPTURE_PERIOD, CURRENT_RATING, DAILY_LOAD_CAPTURE_PERIOD,
                                            DEMAND_INTEGRATION_PERIOD, NEUTRAL_CURRENT, PHASE_CURRENT, POWER_FAILURES,
                                            PROGRAMMING_COUNT,
                                            FIRMWARE_VERSION, FREQUENCY, MANUFACTURER_NAME, MD_ACTIVE_IMPORT,
                                            MD_APPARENT_IMPORT, METER_CATEGORY, METER_TYPE, POWER_FACTOR, REACTIVE_Q,
                                            SERIAL_NUMBER, VOLTAGE, YEAR_OF_MANUFACTURE, ACTIVE_IMPORT_TIERS,
                                            APPARENT_IMPORT_TIERS, MD_ACTIVE_IMPORT_TIERS, MD_APPARENT_IMPORT_TIERS,
                                            PERIOD_POWER_ON_DURATION, POWER_FAIL_DURATION, POWER_ON_DURATION,
                                            TAMPER_COUNT)
from bijli.firmware.cosem.quantities import QUANTITIES
from bijli.firmware.events import LogKind
from bijli.firmware.tariff import TIERS

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter


_ENERGY_FIELDS = {
    "active_import": "active_import_wh", "active_export": "active_export_wh",
    "reactive_lag": "reactive_q1_varh", "reactive_q2": "reactive_q2_varh", "reactive_q3": "reactive_q3_varh",
    "reactive_lead": "reactive_q4_varh", "apparent_import": "apparent_import_vah",
    "apparent_export": "apparent_export_vah",
}
_REACTIVE_Q23 = (("reactive_q2", REACTIVE_Q[1]), ("reactive_q3", REACTIVE_Q[2]))


def register(obis: Obis, name: str, read: Callable[[], Any], cls: type[Register] = Register, **kw) -> Register:
    """A register showing quantity ``name`` (scaler, unit and type from QUANTITIES);
    ``read`` returns the physical value at GET time, or None when the meter has none
    (null-data, the Blue Book's value for "no value")."""
    q = QUANTITIES[name]

    def value() -> axdr.Data:
        physical = read()
        return axdr.NullData() if physical is None else q.encode(physical)

    return cls(obis, value, q.scaler, q.unit, **kw)


def measured_registers(meter: "Meter") -> list[CosemObject]:
    """Every measured quantity as a register: instantaneous values, block averages, demand, energies."""
    m = lambda: meter.measurements  # noqa: E731
    energy = lambda name: getattr(meter.energy, _ENERGY_FIELDS[name])  # noqa: E731

    def block(name: str) -> float:
        # the energy of the block in progress: what the block load profile will capture
        return max(energy(name) - meter.progress.block_start.get(name, energy(name)), 0.0)

    out: list[CosemObject] = [
        register(VOLTAGE, "voltage", lambda: m().phases[0].v_rms),
        register(PHASE_CURRENT, "current", lambda: m().phases[0].i_rms),
        # the neutral CT's own measurement over the same window (None: a source without one)
        register(NEUTRAL_CURRENT, "neutral_current", lambda: m().neutral_i_rms),
        register(ACTIVE_POWER, "active_power", lambda: m().total.p),
        register(APPARENT_POWER, "apparent_power", lambda: m().total.s),
        register(POWER_FACTOR, "power_factor", lambda: m().total.pf),
        register(FREQUENCY, "frequency", lambda: m().frequency),
        # the running block's averages and the billing period's power factor
        register(AVERAGE_VOLTAGE, "average_voltage", lambda: meter.progress.averager.voltage),
        register(AVERAGE_CURRENT, "average_current", lambda: meter.progress.averager.current),
        register(BILLING_POWER_FACTOR, "average_power_factor", meter.billing_power_factor),
        # maximum demand of the billing period (block average power) and when it occurred
        register(MD_ACTIVE_IMPORT, "md_active_import", lambda: meter.progress.md_w, ExtendedRegister,
                 capture_time=lambda: meter.progress.md_time),
        register(MD_APPARENT_IMPORT, "md_apparent_import", lambda: meter.billing_progress.md_va, ExtendedRegister,
                 capture_time=lambda: meter.billing_progress.md_va_time),
        Register(BILLING_DATE, lambda: date_time_octets(meter.tariff_state.period_start), 0, Unit.COUNT),
        # how many closed billing periods the billing profile holds
        Register(AVAILABLE_BILLING_PERIODS, lambda: axdr.Unsigned(min(meter.profiles.billing.entries_in_use(meter.storage),
                                                                       255)), 0, Unit.COUNT),
        # lifetime counters, counted as their events are logged (no log capacity caps them)
        Data(BILLING_COUNT, lambda: axdr.DoubleLongUnsigned(meter.counters.billing)),
        Data(PROGRAMMING_COUNT, lambda: axdr.DoubleLongUnsigned(meter.counters.programming)),
        Data(POWER_FAILURES, lambda: axdr.DoubleLongUnsigned(meter.counters.power_failures)),
        # the demand integration period is the block: MD is the highest block average
        Register(DEMAND_INTEGRATION_PERIOD,
                 lambda: axdr.DoubleLongUnsigned(meter.profiles.block_load.capture_period), 0, Unit.SECOND),
        Register(BLOCK_LOAD_CAPTURE_PERIOD,
                 lambda: axdr.DoubleLongUnsigned(meter.profiles.block_load.capture_period), 0, Unit.SECOND),
        Register(DAILY_LOAD_CAPTURE_PERIOD,
                 lambda: axdr.DoubleLongUnsigned(meter.profiles.daily_load.capture_period), 0, Unit.SECOND),
    ]
    out.extend(tier_registers(meter))
    durations = lambda: meter.durations  # noqa: E731
    out += [
        # IS 15959's durations in whole minutes, and its cumulative tamper count
        register(POWER_ON_DURATION, "power_on", lambda: durations().power_on_s // 60),
        register(PERIOD_POWER_ON_DURATION, "period_power_on", lambda: durations().period_power_on_s // 60),
        register(POWER_FAIL_DURATION, "power_fail_duration", lambda: durations().power_fail_s // 60),
        Data(TAMPER_COUNT, lambda: axdr.DoubleLongUnsigned(durations().tampers)),
    ]
    for name, cumulative, of_block in fw_profiles.ENERGY_REGISTERS:
        out.append(register(Obis.parse(cumulative), name, lambda name=name: energy(name)))
        out.append(register(Obis.parse(of_block), name, lambda name=name: block(name)))
    for name, obis in _REACTIVE_Q23:
        out.append(register(obis, name, lambda name=name: energy(name)))
    return out


def tier_registers(meter: "Meter") -> list[CosemObject]:
    """The time-of-day registers of tariff zones 1..8 (:mod:`bijli.firmware.tiers`):
    cumulative kWh and kVAh, and the billing period's MD kW and MD kVA with when."""
    t = lambda: meter.tiers  # noqa: E731 - read at GET time
    out: list[CosemObject] = []
    for i, tier in enumerate(TIERS):
        out += [
            register(ACTIVE_IMPORT_TIERS[i], f"active_import_tz{tier}", lambda i=i: t().active_wh[i]),
            register(APPARENT_IMPORT_TIERS[i], f"apparent_import_tz{tier}", lambda i=i: t().apparent_vah[i]),
            register(MD_ACTIVE_IMPORT_TIERS[i], f"md_active_import_tz{tier}", lambda i=i: t().md_w[i],
                     ExtendedRegister, capture_time=lambda i=i: t().md_w_time[i]),
            register(MD_APPARENT_IMPORT_TIERS[i], f"md_apparent_import_tz{tier}", lambda i=i: t().md_va[i],
                     ExtendedRegister, capture_time=lambda i=i: t().md_va_time[i]),
        ]
    return out


@lru_cache(maxsize=1)
def firmware_version() -> str:
    """The bijli package version (what ``pip`` installed), as the running firmware's version.
    Read once per process: ``importlib.metadata`` parses the installed metadata each call
    (about 3 ms, a third of building an object list), and the running code cannot change."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bijli")
    except PackageNotFoundError:
        return "0+unknown"


def name_plate_data(meter: "Meter") -> list[CosemObject]:
    ident = meter.config.identity
    metro = meter.config.metrology
    three_phase = metro.phases == 3
    rating = f"{metro.basic_current:g}-{metro.max_current:g}A"
    text = lambda s: axdr.OctetString(s.encode("ascii", "replace"))  # noqa: E731
    return [
        Data(SERIAL_NUMBER, axdr.VisibleString(ident.serial)),
        Data(MANUFACTURER_NAME, text(ident.manufacturer)),
        Data(FIRMWARE_VERSION, text(firmware_version())),
        Data(METER_TYPE, axdr.Unsigned(6 if three_phase else 5)),
        Data(METER_CATEGORY, text("C" if three_phase else "D2")),
        Data(CURRENT_RATING, text(rating)),
        # read when read (a row of the meter's memory, written once at its first start), not
        # at every build of the object list: a fleet builds one per association
        Data(YEAR_OF_MANUFACTURE, lambda: axdr.LongUnsigned(meter.year_of_manufacture)),
    ]


def _last_event_code(meter: "Meter", kind: LogKind) -> axdr.Data:
    rows = meter.events.events(meter.storage, kind)
    return axdr.LongUnsigned(int(rows[-1].code) if rows else 0)


def _last_event_detail(meter: "Meter", kind: LogKind) -> axdr.Data:
    rows = meter.events.events(meter.storage, kind)
    detail = "" if not rows or rows[-1].detail is None else str(rows[-1].detail)
    return axdr.VisibleString(detail.encode("ascii", "replace").decode("ascii")[:64])


def event_data(meter: "Meter") -> list[CosemObject]:
    """For each event log, its last event code and that event's detail."""
    out: list[CosemObject] = []
    for kind in LogKind:
        out.append(Data(Obis(0, 0, 96, 11, int(kind), 255), lambda kind=kind: _last_event_code(meter, kind)))
        out.append(Data(Obis(0, 128, 96, 11, int(kind), 255), lambda kind=kind: _last_event_detail(meter, kind)))
    return out
