"""Loading the meter's TOML configuration: firmware tables plus the ``[hal]`` table.

The firmware validates its own tables (``firmware.meter.MeterConfig``); this
module reads the file, adds the hal backends, and turns every problem into one
:class:`~firmware.errors.ConfigError` that names the offending key.

The ``[hal]`` table names one backend per part, so the same firmware runs
emulated and on a Raspberry Pi rig::

    [hal]
    clock = "real"            # or "sim"
    samples = "synthetic"     # or "csv:PATH", "spi:0.0"
    pin_factory = "mock"      # gpiozero pin factory: mock (emulator), native, lgpio, rpigpio, pigpio
    relay = "gpio:17"         # one key per pin role, "gpio:N" or "none"
    relay_feedback = "gpio:27"
    pulse_led = "gpio:22"
    alarm_led = "gpio:23"
    button = "gpio:24"
    cover = "gpio:25"
    magnet = "gpio:5"
    display = "none"          # "console" (stderr), "hd44780:BUS:ADDR" (I2C LCD)
    keypad = "console"        # keys typed as console 'k ...' lines; "none"; "matrix:5,6,13,19/12,16,20,21"
    console = "stdio"         # "none", "pty", "pty:LINKPATH", a serial device or pyserial URL
    optical = "none"          # the optical port (mode E, then HDLC): a serial device, pyserial URL, "pty"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bijli.firmware.config import Table
from bijli.firmware.errors import ConfigError
from bijli.firmware.meter import MeterConfig
from bijli.firmware.upgrade.config import UpgradeConfig

CLOCKS = ("real", "sim")
PIN_ROLES = ("relay", "relay_feedback", "pulse_led", "alarm_led", "button", "cover", "magnet")
# the emulator's pins: gpiozero mock pins on the BCM numbers a rig uses by default
DEFAULT_PINS = {"relay": 17, "relay_feedback": 27, "pulse_led": 22, "alarm_led": 23, "button": 24, "cover": 25,
                "magnet": 5}
PIN_FACTORIES = ("mock", "native", "lgpio", "rpigpio", "pigpio", "default")
_GPIO = re.compile(r"^gpio:(\d{1,2})$")
_HD44780 = re.compile(r"^hd44780:(\d+):(0x[0-9a-fA-F]{2}|\d+)$")


@dataclass(frozen=True)
class HalConfig:
    clock: str = "real"
    samples: str = "synthetic"
    pin_factory: str = "mock"
    pins: dict = field(default_factory=lambda: dict(DEFAULT_PINS))  # role -> BCM number
    display: str = "none"
    keypad: str = "console"
    console: str = "stdio"
    optical: str = "none"

    @classmethod
    def from_table(cls, table: dict, prefix: str = "hal") -> "HalConfig":
        t = Table(table, prefix, {"clock", "samples", "pin_factory", "display", "keypad", "console", "optical",
                                  *PIN_ROLES})
        samples = t.str("samples", "synthetic")
        if not (samples == "synthetic" or samples.startswith("csv:") and len(samples) > 4
                or re.fullmatch(r"spi:\d+\.\d+", samples)):
            raise ConfigError(t.key("samples"), f"must be synthetic, csv:PATH or spi:BUS.DEV, not {samples!r}")
        pins = {}
        for role in PIN_ROLES:
            value = t.str(role, f"gpio:{DEFAULT_PINS[role]}")
            if value == "none":
                continue
            m = _GPIO.match(value)
            if not m or int(m.group(1)) > 27:
                raise ConfigError(t.key(role), f"must be gpio:N (BCM 0..27) or none, not {value!r}")
            pins[role] = int(m.group(1))
        used: dict[int, str] = {}
        for role, number in pins.items():
            if number in used:
                raise ConfigError(t.key(role), f"gpio:{number} is already the {used[number]} pin")
            used[number] = role
        display = t.str("display", "none")
        if display not in ("none", "console") and not _HD44780.match(display):
            raise ConfigError(t.key("display"), f"must be none, console or hd44780:BUS:ADDR, not {display!r}")
        return cls(
            clock=t.choice("clock", "real", CLOCKS),
            samples=samples,
            pin_factory=t.choice("pin_factory", "mock", PIN_FACTORIES),
            pins=pins,
            display=display,
            keypad=_keypad(t, pins),
            console=t.str("console", "stdio"),
            optical=t.str("optical", "none"),
        )


def _keypad(t: Table, pins: dict) -> str:
    """ "console", "none", or "matrix:R1,R2,R3,R4/C1,C2,C3,C4" (BCM numbers of a 4x4 keypad's
    rows and columns, none of them used by another pin role)."""
    value = t.str("keypad", "console")
    if value in ("console", "none"):
        return value
    m = re.fullmatch(r"matrix:(\d{1,2}(?:,\d{1,2}){3})/(\d{1,2}(?:,\d{1,2}){3})", value)
    numbers = [int(n) for part in (m.groups() if m else ()) for n in part.split(",")]
    if not m or any(n > 27 for n in numbers) or len(set(numbers)) != 8:
        raise ConfigError(t.key("keypad"), f"must be console, none or matrix:R,R,R,R/C,C,C,C (eight distinct BCM "
                                           f"pins 0..27), not {value!r}")
    taken = set(numbers) & set(pins.values())
    if taken:
        raise ConfigError(t.key("keypad"), f"gpio:{min(taken)} is already another pin role's")
    return value


def keypad_pins(spec: str) -> tuple[list[int], list[int]]:
    """(rows, columns) of a validated "matrix:..." keypad spec."""
    rows, cols = spec.removeprefix("matrix:").split("/")
    return [int(n) for n in rows.split(",")], [int(n) for n in cols.split(",")]


@dataclass(frozen=True)
class Config:
    meter: MeterConfig
    hal: HalConfig
    upgrade: UpgradeConfig
    raw: dict


MAX_DEPTH = 12  # tables and arrays within one another; the deepest real key (tariff.tod...) needs 5


def _check_shape(data: dict) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, naming the key, before any part reads
    the document: a value nested thousands deep is never a meter setting, and walking it
    recursively would end in RecursionError instead of an error naming the key."""
    stack: list[tuple[str, object, int]] = [(str(k), v, 1) for k, v in data.items()]
    while stack:
        key, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(".".join(key.split(".")[:2]), f"nested more than {MAX_DEPTH} deep")
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((key, v, depth + 1) for v in value)


def parse(data: dict) -> Config:
    if not isinstance(data, dict):
        raise ConfigError("config", f"must be a table, not {type(data).__name__}")
    _check_shape(data)
    meter = MeterConfig.from_dict(data, extra_sections=("hal", "upgrade"))
    hal = HalConfig.from_table(data.get("hal", {}), "hal")
    upgrade = UpgradeConfig.from_table(data.get("upgrade", {}), "upgrade")
    return Config(meter, hal, upgrade, data)


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
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(str(p), f"not valid TOML: values nested more than {MAX_DEPTH} deep") from None
    return parse(data)
