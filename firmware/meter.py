"""The Meter: owns the firmware parts and advances them when time passes.

Everything a meter does happens in one of two calls, both with time passed in:

* :meth:`Meter.on_samples` with a block of samples from the hal source, in
  normal running (the block's energy is measured, any gap is integrated at the
  block's measurements);
* :meth:`Meter.advance_to` when simulated time jumps (``step 3d``): the load is
  held steady and the meter walks from one boundary to the next (a profile
  capture, a tariff change, the end of friendly hours), so a month runs in
  seconds yet every boundary is met exactly as in real time.

Non-volatile state goes through :mod:`firmware.storage`; energy registers are
saved every ``storage.save_interval_s`` seconds of meter time and on shutdown,
so a power cut loses at most that interval's energy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence

from firmware.config import DlmsSettings, Identity, StorageSettings, Table
from firmware.errors import ConfigError, StorageError
from firmware.metrology import EnergyRegisters, Measurements, Metrology, MetrologyConfig
from firmware.storage import Storage

ENERGY_KEY = "energy"


@dataclass(frozen=True)
class MeterConfig:
    identity: Identity = field(default_factory=Identity)
    dlms: DlmsSettings = field(default_factory=DlmsSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    metrology: MetrologyConfig = field(default_factory=MetrologyConfig)

    SECTIONS = ("meter", "dlms", "storage", "metrology")

    @classmethod
    def from_dict(cls, data: dict, extra_sections: tuple[str, ...] = ()) -> "MeterConfig":
        """From a parsed TOML document. ``extra_sections`` are tables other layers own (``hal``)."""
        Table(data, "config", set(cls.SECTIONS) | set(extra_sections))
        return cls(
            identity=Identity.from_table(data.get("meter", {}), "meter"),
            dlms=DlmsSettings.from_table(data.get("dlms", {}), "dlms"),
            storage=StorageSettings.from_table(data.get("storage", {}), "storage"),
            metrology=MetrologyConfig.from_table(data.get("metrology", {}), "metrology"),
        )


class Meter:
    def __init__(self, config: MeterConfig, storage: Storage, now: datetime):
        self.config = config
        self.storage = storage
        self.now = now
        self.metrology = Metrology(config.metrology)
        saved = storage.get(ENERGY_KEY)
        if saved is not None:
            try:
                self.metrology.restore(EnergyRegisters(**saved))
            except (TypeError, ValueError) as exc:
                raise StorageError(f"energy registers in {storage.path} are corrupt: {exc}") from None
        self._last_save = now

    # --- time passing ----------------------------------------------------------------
    def on_samples(self, block: Sequence[tuple[Sequence[float], Sequence[float]]], now: datetime) -> Measurements:
        """Measure one block of samples ending at ``now``; integrate any gap before it steadily."""
        n = len(block[0][0]) if block else 0
        block_seconds = n / self.config.metrology.sample_rate
        meas = self.metrology.process(block) if n else self.metrology.measurements
        gap = (now - self.now).total_seconds() - block_seconds
        if gap > 0:
            self.metrology.accumulate(meas, gap)
        self.now = max(now, self.now)
        self._after_time_passed()
        return meas

    def advance_to(self, now: datetime) -> None:
        """Jump to ``now`` with the load held steady at the latest measurements."""
        seconds = (now - self.now).total_seconds()
        if seconds <= 0:
            self.now = max(now, self.now) if seconds == 0 else self.now
            return
        self.metrology.accumulate(self.metrology.measurements, seconds)
        self.now = now
        self._after_time_passed()

    def set_time(self, when: datetime) -> None:
        """The clock was set (console, DLMS): no energy is integrated across the jump."""
        self.now = when
        self.save()

    def _after_time_passed(self) -> None:
        if (self.now - self._last_save).total_seconds() >= self.config.storage.save_interval_s:
            self.save()

    # --- non-volatile memory ---------------------------------------------------------
    def save(self) -> None:
        with self.storage.transaction() as tx:
            tx.put(ENERGY_KEY, asdict(self.metrology.energy))
        self._last_save = self.now

    def shutdown(self) -> None:
        self.save()

    # --- reading -----------------------------------------------------------------------
    @property
    def measurements(self) -> Measurements:
        return self.metrology.measurements

    @property
    def energy(self) -> EnergyRegisters:
        return self.metrology.energy

    def status(self) -> dict[str, Any]:
        m = self.measurements
        e = self.energy
        return {
            "time": self.now.isoformat(timespec="seconds"),
            "serial": self.config.identity.serial,
            "energy_import_kwh": round(e.active_import_wh / 1000.0, 3),
            "energy_export_kwh": round(e.active_export_wh / 1000.0, 3),
            "voltage": round(m.phases[0].v_rms, 2),
            "current": round(m.phases[0].i_rms, 3),
            "power_w": round(m.total.p, 1),
            "power_factor": round(m.total.pf, 3),
            "frequency": round(m.frequency, 2),
        }
