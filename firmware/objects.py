"""The meter's COSEM object list: binds live firmware state to ``dlms.cosem`` objects.

This is the one place that knows both sides: which OBIS code shows which
firmware value, with which scaler and unit (IS 15959-2 object model, see
``shared/dlms/NOTES.md``), and which association may see or change it. The
objects read the meter through closures, so every GET sees the live value and
no copy of meter state lives in the protocol stack.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from dlms import axdr
from dlms.acse import Conformance, Mechanism
from dlms.cosem.association import AssociationLN, AssociationPolicy, full_access, only, read_only
from dlms.cosem.base import CosemObject
from dlms.cosem.clock import Clock
from dlms.cosem.data import Data, Register
from dlms.cosem.units import Unit
from dlms.obis import Obis

if TYPE_CHECKING:  # pragma: no cover
    from firmware.meter import Meter

CLOCK = Obis(0, 0, 1, 0, 0, 255)
LOGICAL_DEVICE_NAME = Obis(0, 0, 42, 0, 0, 255)
SERIAL_NUMBER = Obis(0, 0, 96, 1, 0, 255)
CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
ACTIVE_IMPORT = Obis(1, 0, 1, 8, 0, 255)
ACTIVE_EXPORT = Obis(1, 0, 2, 8, 0, 255)
APPARENT_IMPORT = Obis(1, 0, 9, 8, 0, 255)
REACTIVE_Q = [Obis(1, 0, c, 8, 0, 255) for c in (5, 6, 7, 8)]
VOLTAGE_L1 = Obis(1, 0, 32, 7, 0, 255)
CURRENT_L1 = Obis(1, 0, 31, 7, 0, 255)
ACTIVE_POWER = Obis(1, 0, 1, 7, 0, 255)
POWER_FACTOR = Obis(1, 0, 13, 7, 0, 255)
FREQUENCY = Obis(1, 0, 14, 7, 0, 255)

# the public client (SAP 16) may read only these (IS 15959: identification and time)
PUBLIC_OBJECTS = (CLOCK, LOGICAL_DEVICE_NAME, SERIAL_NUMBER, CURRENT_ASSOCIATION, ACTIVE_IMPORT)

SAP_PUBLIC = 16
SAP_READER = 32
SAP_UTILITY = 48

_BASE_CONFORMANCE = (Conformance.GET | Conformance.SELECTIVE_ACCESS | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
                     | Conformance.MULTIPLE_REFERENCES)
_FULL_CONFORMANCE = (_BASE_CONFORMANCE | Conformance.SET | Conformance.ACTION | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
                     | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.GENERAL_PROTECTION
                     | Conformance.GENERAL_BLOCK_TRANSFER | Conformance.DATA_NOTIFICATION)


def policies(meter: "Meter") -> list[AssociationPolicy]:
    """The three associations of an IS 15959 meter: public, meter reader (LLS), utility settings (HLS)."""
    dlms = meter.config.dlms
    return [
        AssociationPolicy(SAP_PUBLIC, "public client", Mechanism.LOWEST, None, only(PUBLIC_OBJECTS, read_only),
                          _BASE_CONFORMANCE, logical_name=Obis(0, 0, 40, 0, 1, 255)),
        AssociationPolicy(SAP_READER, "meter reader", Mechanism.LLS, dlms.reader_password, read_only,
                          _BASE_CONFORMANCE | Conformance.ACTION, logical_name=Obis(0, 0, 40, 0, 2, 255)),
        AssociationPolicy(SAP_UTILITY, "utility settings", Mechanism.HLS_GMAC, dlms.hls_secret, full_access,
                          _FULL_CONFORMANCE, ciphered=True, logical_name=Obis(0, 0, 40, 0, 3, 255)),
    ]


def _u32(value: float) -> axdr.DoubleLongUnsigned:
    return axdr.DoubleLongUnsigned(min(int(value), 0xFFFFFFFF))


def build_objects(meter: "Meter", set_clock: Callable[[datetime], None] | None) -> list[CosemObject]:
    """Every COSEM object of the meter, bound to ``meter``."""
    ident = meter.config.identity
    energy = lambda: meter.energy  # noqa: E731 - read at GET time, never cached
    meas = lambda: meter.measurements  # noqa: E731
    objects: list[CosemObject] = [
        Clock(CLOCK, now=lambda: meter.now, set_time=set_clock, time_zone=ident.time_zone_minutes),
        Data(LOGICAL_DEVICE_NAME, axdr.OctetString(ident.ldn.encode("ascii"))),
        Data(SERIAL_NUMBER, axdr.VisibleString(ident.serial)),
        # energy registers: whole Wh / varh / VAh, as IS 15959 meters report them with scaler 0
        Register(ACTIVE_IMPORT, lambda: _u32(energy().active_import_wh), 0, Unit.WATT_HOUR),
        Register(ACTIVE_EXPORT, lambda: _u32(energy().active_export_wh), 0, Unit.WATT_HOUR),
        Register(APPARENT_IMPORT, lambda: _u32(energy().apparent_import_vah), 0, Unit.VOLT_AMPERE_HOUR),
        *[
            Register(obis, (lambda n=n: _u32(getattr(energy(), f"reactive_q{n}_varh"))), 0, Unit.VAR_HOUR)
            for n, obis in enumerate(REACTIVE_Q, 1)
        ],
        # instantaneous values with the scalers IS 15959 uses: V and A to 0.01, PF to 0.001
        Register(VOLTAGE_L1, lambda: axdr.LongUnsigned(min(int(round(meas().phases[0].v_rms * 100)), 0xFFFF)), -2, Unit.VOLT),
        Register(CURRENT_L1, lambda: axdr.DoubleLong(int(round(meas().phases[0].i_rms * 100))), -2, Unit.AMPERE),
        Register(ACTIVE_POWER, lambda: axdr.DoubleLong(int(round(meas().total.p))), 0, Unit.WATT),
        Register(POWER_FACTOR, lambda: axdr.Long(int(round(meas().total.pf * 1000))), -3, Unit.COUNT),
        Register(FREQUENCY, lambda: axdr.LongUnsigned(int(round(meas().frequency * 100))), -2, Unit.HERTZ),
    ]
    pols = policies(meter)
    all_objects = lambda: objects  # noqa: E731 - the association lists see objects added later too
    objects.append(AssociationLN(CURRENT_ASSOCIATION, None, all_objects))
    for p in pols:
        objects.append(AssociationLN(p.logical_name, p, all_objects))
    return objects
