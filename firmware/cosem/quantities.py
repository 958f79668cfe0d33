"""Quantities: how each firmware value crosses to A-XDR, with which scaler and unit.

Money crosses as integers of the currency's minor unit (paisa: ``currency_scale``
-2), energy as whole Wh/varh/VAh (scaler 0), as IS 15959 meters report them.
Every measured quantity has one entry in :data:`QUANTITIES` (A-XDR type, scaler,
unit; IEC 62056-6-2 scaler_unit, units from the Blue Book's unit table): the
registers, the profile cells and the scaler profiles (1.0.94.91.3..7.255) all come
from it, so a value and the scaler a head-end applies to it cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from bijli.dlms import axdr
from bijli.dlms.cosem.units import Unit
from bijli.dlms.cosem.values import date_time_octets
from bijli.firmware import profiles as fw_profiles
from bijli.firmware.tariff import TIERS

def minor_units(amount: Decimal | None) -> int:
    """Money as an integer of paisa (currency_scale -2), clamped to a double-long."""
    if amount is None:
        return 0
    return max(-(2**31), min(2**31 - 1, int((Decimal(amount) * 100).to_integral_value())))


def _scaled(kind: type, scaler: int) -> Callable[[Any], axdr.Data]:
    """value -> kind(value / 10**scaler), rounded and clamped to the type's range."""
    factor = 10 ** -scaler

    def encode(value: Any) -> axdr.Data:
        return kind(min(max(int(round(float(value) * factor)), kind.min), kind.max))

    return encode


@dataclass(frozen=True)
class Quantity:
    """How one physical quantity crosses to DLMS: A-XDR type (``encode`` takes the value
    in V, A, W, Wh, ...), and the scaler_unit a register showing it carries."""

    scaler: int
    unit: Unit
    encode: Callable[[Any], axdr.Data]


def _q(kind: type, scaler: int, unit: Unit) -> Quantity:
    return Quantity(scaler, unit, _scaled(kind, scaler))


_ENERGY_UNITS = {"active": Unit.WATT_HOUR, "reactive": Unit.VAR_HOUR, "apparent": Unit.VOLT_AMPERE_HOUR}

#: every measured quantity by its firmware name (the profile column names of
#: ``firmware.profiles``): V and A to 0.01, PF to 0.001, power in W, energy in Wh
QUANTITIES: dict[str, Quantity] = {
    "voltage": _q(axdr.LongUnsigned, -2, Unit.VOLT),
    "average_voltage": _q(axdr.LongUnsigned, -2, Unit.VOLT),
    "current": _q(axdr.DoubleLong, -2, Unit.AMPERE),
    "neutral_current": _q(axdr.DoubleLong, -2, Unit.AMPERE),  # as the phase current
    "average_current": _q(axdr.DoubleLong, -2, Unit.AMPERE),
    "power_factor": _q(axdr.Long, -3, Unit.COUNT),
    "average_power_factor": _q(axdr.Long, -3, Unit.COUNT),
    "frequency": _q(axdr.LongUnsigned, -2, Unit.HERTZ),
    "active_power": _q(axdr.DoubleLong, 0, Unit.WATT),
    "apparent_power": _q(axdr.DoubleLong, 0, Unit.VOLT_AMPERE),
    "md_active_import": _q(axdr.DoubleLongUnsigned, 0, Unit.WATT),
    "md_apparent_import": _q(axdr.DoubleLongUnsigned, 0, Unit.VOLT_AMPERE),
    **{name: _q(axdr.DoubleLongUnsigned, 0, _ENERGY_UNITS[name.split("_")[0]])
       for name in (*fw_profiles.ENERGY_NAMES, "reactive_q2", "reactive_q3")},
    # the time-of-day registers (tariff zones) are the totals' quantities
    **{f"{name}_tz{t}": _q(axdr.DoubleLongUnsigned, 0, _ENERGY_UNITS[name.split("_")[0]])
       for name in fw_profiles.TIER_ENERGIES for t in TIERS},
    **{f"md_active_import_tz{t}": _q(axdr.DoubleLongUnsigned, 0, Unit.WATT) for t in TIERS},
    **{f"md_apparent_import_tz{t}": _q(axdr.DoubleLongUnsigned, 0, Unit.VOLT_AMPERE) for t in TIERS},
    # IS 15959's durations, whole minutes
    "power_on": _q(axdr.DoubleLongUnsigned, 0, Unit.MINUTE),
    "period_power_on": _q(axdr.DoubleLongUnsigned, 0, Unit.MINUTE),
    "power_fail_duration": _q(axdr.DoubleLongUnsigned, 0, Unit.MINUTE),
}

# per-column encoders for profile rows, by firmware column name; anything else by Python type
_COLUMN_ENCODERS: dict[str, Callable[[Any], axdr.Data]] = {
    **{name: q.encode for name, q in QUANTITIES.items()},
    "event_code": lambda v: axdr.LongUnsigned(int(v)),
    "relay_output_state": lambda v: axdr.Boolean(bool(v)),
}


def encode_value(name: str, value: Any, kind: fw_profiles.ColumnKind) -> axdr.Data:
    """One profile cell as A-XDR, with the type and scaler its register uses."""
    if kind in (fw_profiles.ColumnKind.CAPTURE_TIME, fw_profiles.ColumnKind.TIME) or isinstance(value, datetime):
        return date_time_octets(value)
    if value is None:
        return axdr.NullData()
    encoder = _COLUMN_ENCODERS.get(name)
    if encoder is not None:
        return encoder(value)
    if isinstance(value, bool):
        return axdr.Boolean(value)
    if isinstance(value, Decimal):
        return axdr.DoubleLong(minor_units(value))
    if isinstance(value, (int, float)):
        number = int(round(value))
        return axdr.DoubleLongUnsigned(min(number, 0xFFFFFFFF)) if number >= 0 else axdr.DoubleLong(max(number, -2**31))
    return axdr.VisibleString(str(value).encode("ascii", "replace").decode("ascii")[:64])
