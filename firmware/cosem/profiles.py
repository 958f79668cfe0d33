"""The profile adapter: firmware profiles (rows in sqlite) as COSEM Profile generic sources.

:class:`StoredProfile` serves a :class:`bijli.firmware.profiles.Profile` to
:class:`bijli.dlms.cosem.profile.ProfileGeneric` (IEC 62056-6-2 class 7): it turns
the class's selective access (range_descriptor, entry_descriptor, Blue Book 4.3.6)
into the firmware's own row queries and each cell into A-XDR with the type and
scaler of the register it captures (:mod:`.quantities`). :class:`SnapshotSource`
serves the one-row profiles read from other objects at GET time: the name plate
(0.0.94.91.10.255) and the IS 15959-2 scaler profiles (1.0.94.91.3..7.255).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from bijli.dlms import axdr
from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.cosem.base import Context, CosemError, CosemObject
from bijli.dlms.cosem.profile import CaptureObjectDefinition, EntryDescriptor, RangeDescriptor
from bijli.dlms.obis import Obis
from bijli.firmware import profiles as fw_profiles
from bijli.firmware.cosem.catalogue import (BILLING_SCALERS, BLOCK_LOAD_SCALERS, DAILY_LOAD_SCALERS, EVENT_SCALERS,
                                            INSTANTANEOUS_SCALERS)
from bijli.firmware.cosem.quantities import encode_value
from bijli.firmware.cosem.results import cosem_result
from bijli.firmware.events import LogKind, event_log_profile

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter


# Each profile's capture object definitions, by the profile's identity: the profile
# definitions are frozen and shared by every meter of a configuration
# (ProfileSet.standard), so a fleet building an object list per association converts
# them once, not per meter. Bounded: a profile built afresh (a test) only adds an entry.
_DEFINITIONS: dict[int, tuple[fw_profiles.Profile, tuple[CaptureObjectDefinition, ...]]] = {}
_SCALERS: dict[int, tuple[fw_profiles.Profile, tuple[CaptureObjectDefinition, ...]]] = {}
_CACHED_PROFILES = 256


def _cached(cache: dict, profile: fw_profiles.Profile, build: Callable[[fw_profiles.Profile], list]) -> tuple:
    entry = cache.get(id(profile))
    if entry is None or entry[0] is not profile:
        if len(cache) >= _CACHED_PROFILES:
            cache.clear()
        entry = cache[id(profile)] = (profile, tuple(build(profile)))
    return entry[1]


def _definitions(profile: fw_profiles.Profile) -> tuple[CaptureObjectDefinition, ...]:
    return _cached(_DEFINITIONS, profile, lambda p: [
        CaptureObjectDefinition(c.class_id, Obis.parse(c.logical_name), c.attribute_index, c.data_index)
        for c in p.capture_objects])


class StoredProfile:
    """A firmware profile (rows in sqlite) as the ProfileSource a Profile generic reads."""

    def __init__(self, meter: "Meter", profile: fw_profiles.Profile,
                 live_row: Callable[[], dict] | None = None, on_capture: Callable[[], None] | None = None):
        self.meter = meter
        self.profile = profile
        self._live_row = live_row  # the instantaneous profile: a fresh snapshot, not a stored row
        self._on_capture = on_capture  # the billing profile: capture is the billing reset
        self._columns = _definitions(profile)

    def capture_objects(self) -> list[CaptureObjectDefinition]:
        return list(self._columns)

    def _encode(self, row: list, columns: list[int]) -> tuple[axdr.Data, ...]:
        objs = self.profile.capture_objects
        return tuple(encode_value(objs[i].name, v, objs[i].kind) for i, v in zip(columns, row))

    def rows(self, selection) -> list[tuple[axdr.Data, ...]]:
        ncol = len(self._columns)
        if self._live_row is not None:
            values = self.profile.make_row(self.meter.now, self._live_row())
            rows = [values]
            if isinstance(selection, EntryDescriptor):
                rows = rows[selection.slice()]
                cols = list(selection.selected_columns(ncol))
                return [self._encode([r[i] for i in cols], cols) for r in rows]
            cols = list(selection.selected_columns(self._columns)) if isinstance(selection, RangeDescriptor) \
                else list(range(ncol))
            return [self._encode([r[i] for i in cols], cols) for r in rows]
        with cosem_result():  # a selection outside the profile's definition: other-reason
            if selection is None:
                cols = list(range(ncol))
                found = self.profile.rows(self.meter.storage)
            elif isinstance(selection, RangeDescriptor):
                cols = list(selection.selected_columns(self._columns))
                found = self.profile.rows(self.meter.storage, fw_profiles.ValueRange(
                    selection.column(self._columns), selection.from_value, selection.to_value, tuple(cols)))
            else:
                cols = list(selection.selected_columns(ncol))
                found = self.profile.rows(self.meter.storage, fw_profiles.EntryRange(
                    selection.from_entry, selection.to_entry, selection.from_selected_value,
                    selection.to_selected_value))
        return [self._encode(r, cols) for r in found]

    def entries_in_use(self) -> int:
        return 1 if self._live_row is not None else self.profile.entries_in_use(self.meter.storage)

    def profile_entries(self) -> int:
        return self.profile.capacity

    def capture_period(self) -> int:
        return self.profile.capture_period

    def reset(self) -> None:
        self.meter.reset_profile(self.profile)

    def capture(self) -> None:
        if self._on_capture is None:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, "captures follow the meter's schedule")
        self._on_capture()


# --- snapshot profiles: name plate and scalers ---------------------------------------------


class SnapshotSource:
    """A one-row Profile generic source whose row is read, at GET time, from the
    attributes its capture objects name (name plate, scaler profiles): nothing is
    stored, so the row always agrees with the objects."""

    def __init__(self, columns: list[CaptureObjectDefinition], lookup: Callable[[Obis], CosemObject]):
        self._columns = list(columns)
        self._lookup = lookup

    def capture_objects(self) -> list[CaptureObjectDefinition]:
        return list(self._columns)

    def rows(self, selection) -> list[tuple[axdr.Data, ...]]:
        if isinstance(selection, EntryDescriptor):
            if not [None][selection.slice()]:
                return []  # the entries asked for start after the one row
            cols = list(selection.selected_columns(len(self._columns)))
        elif isinstance(selection, RangeDescriptor):
            cols = list(selection.selected_columns(self._columns))
        else:
            cols = list(range(len(self._columns)))
        return [tuple(self._cell(self._columns[i]) for i in cols)]

    def _cell(self, c: CaptureObjectDefinition) -> axdr.Data:
        try:
            return self._lookup(c.logical_name).get(c.attribute_index, None, Context(0))
        except (KeyError, CosemError):
            return axdr.NullData()

    def entries_in_use(self) -> int:
        return 1

    def profile_entries(self) -> int:
        return 1

    def capture_period(self) -> int:
        return 0

    def reset(self) -> None:
        raise CosemError(DataAccessResult.READ_WRITE_DENIED, "a snapshot profile has nothing to reset")

    def capture(self) -> None:
        raise CosemError(DataAccessResult.READ_WRITE_DENIED, "a snapshot profile is read when it is read")


#: the attribute holding scaler_unit, by class: Register and Extended register 3, Demand register 4
_SCALER_UNIT_ATTRIBUTE = {3: 3, 4: 3, 5: 4}


def scaler_columns(profile: fw_profiles.Profile) -> list[CaptureObjectDefinition]:
    """The scaler profile columns of ``profile``: the scaler_unit of each register it captures."""
    return list(_cached(_SCALERS, profile, _scaler_columns))


def _scaler_columns(profile: fw_profiles.Profile) -> list[CaptureObjectDefinition]:
    out: list[CaptureObjectDefinition] = []
    for c in profile.capture_objects:
        attr = _SCALER_UNIT_ATTRIBUTE.get(c.class_id)
        if attr is None or c.kind is not fw_profiles.ColumnKind.VALUE:
            continue
        col = CaptureObjectDefinition(c.class_id, Obis.parse(c.logical_name), attr)
        if col not in out:
            out.append(col)
    return out


def scaler_profiles(meter: "Meter") -> dict[Obis, list[CaptureObjectDefinition]]:
    """1.0.94.91.3..7.255: the scaler profiles of the instantaneous, block load, daily
    load, billing and event profiles (the event logs all capture the same registers)."""
    sets = meter.profiles
    return {
        INSTANTANEOUS_SCALERS: scaler_columns(sets.instantaneous),
        BLOCK_LOAD_SCALERS: scaler_columns(sets.block_load),
        DAILY_LOAD_SCALERS: scaler_columns(sets.daily_load),
        BILLING_SCALERS: scaler_columns(sets.billing),
        EVENT_SCALERS: scaler_columns(event_log_profile(LogKind.VOLTAGE, 1)),
    }


def instantaneous_row(meter: "Meter") -> dict:
    """The instantaneous profile's one row, read live at GET time (by column name)."""
    m = meter.measurements
    e = meter.energy
    return {
        "voltage": m.phases[0].v_rms, "current": m.phases[0].i_rms, "neutral_current": m.neutral_i_rms,
        "active_power": round(m.total.p),
        "apparent_power": round(m.total.s), "power_factor": m.total.pf, "frequency": m.frequency,
        "active_import": round(e.active_import_wh), "active_export": round(e.active_export_wh),
        "apparent_import": round(e.apparent_import_vah), "md_active_import": round(meter.progress.md_w),
        "md_active_import_time": meter.progress.md_time, "balance_amount": meter.account.balance,
        "relay_output_state": meter.relay.output_state, "load_limit": meter.limiter.threshold_active,
    }
