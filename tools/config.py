"""Loading the meter's TOML configuration: firmware tables plus the ``[hal]`` table.

The firmware validates its own tables (``firmware.meter.MeterConfig``); this
module reads the file, adds the hal backends, and turns every problem into one
:class:`~firmware.errors.ConfigError` that names the offending key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from firmware.config import Table
from firmware.errors import ConfigError
from firmware.meter import MeterConfig

CLOCKS = ("real", "sim")


@dataclass(frozen=True)
class HalConfig:
    clock: str = "real"
    samples: str = "synthetic"
    pins: dict = field(default_factory=dict)  # name -> GPIO number; empty: no pins
    pin_factory: str = "mock"
    display: str = "none"
    keypad: str = "console"

    @classmethod
    def from_table(cls, table: dict, prefix: str = "hal") -> "HalConfig":
        t = Table(table, prefix, {"clock", "samples", "pins", "pin_factory", "display", "keypad"})
        pins = t.sub("pins")
        for name, number in pins.items():
            if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 53:
                raise ConfigError(f"{prefix}.pins.{name}", f"must be a GPIO number 0..53, not {number!r}")
        return cls(
            clock=t.choice("clock", "real", CLOCKS),
            samples=t.str("samples", "synthetic"),
            pins=dict(pins),
            pin_factory=t.str("pin_factory", "mock"),
            display=t.str("display", "none"),
            keypad=t.str("keypad", "console"),
        )


@dataclass(frozen=True)
class Config:
    meter: MeterConfig
    hal: HalConfig
    raw: dict


def parse(data: dict) -> Config:
    meter = MeterConfig.from_dict(data, extra_sections=("hal",))
    hal = HalConfig.from_table(data.get("hal", {}), "hal")
    return Config(meter, hal, data)


def load(path: str | Path | None) -> Config:
    """The configuration in ``path``; the documented defaults when ``path`` is None."""
    if path is None:
        return parse({})
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), f"not valid TOML: {exc}") from None
    return parse(data)
