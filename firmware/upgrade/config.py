"""The ``[upgrade]`` config table, and when an activated image takes over.

:class:`UpgradeConfig` reads the table the way the rest of the firmware reads its
tables (:class:`bijli.firmware.config.Table`: unknown keys and bad values are a
:class:`~bijli.firmware.errors.ConfigError` naming the key). :func:`activation_time`
applies the activation policy: at once, at a daily quiet hour, at a fixed date-time,
or when the head-end's image activation schedule says (the single action schedule
0.0.15.0.2.255, interface class 22 of IEC 62056-6-2), which wins over the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time as dtime, timedelta
from typing import Any

from bijli.firmware.config import Table
from bijli.firmware.errors import ConfigError
from bijli.firmware.upgrade.errors import UpgradeError
from bijli.firmware.upgrade.image import load_public_key


@dataclass(frozen=True)
class UpgradeConfig:
    """The ``[upgrade]`` table.

    ``public_key``: PEM or hex (Ed25519 32 octets, P-256 point 33/65 octets); no key, no
    image passes verification. ``activation``: "immediate", a daily "HH:MM" (the next such
    time after image_activate, e.g. a quiet hour) or an ISO date-time; the image
    activation schedule (0.0.15.0.2.255) set by the head-end overrides it.
    ``start_attempts``: starts a new image gets to come up healthy before the previous one
    runs again; ``healthy_after_s``: how long it must serve to count as healthy.
    """

    public_key: str = ""
    activation: str = "immediate"
    block_size: int = 512
    start_attempts: int = 2
    healthy_after_s: float = 10.0
    max_image_size: int = 16 * 1024 * 1024
    enabled: bool = True
    key: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_table(cls, table: dict, prefix: str = "upgrade") -> "UpgradeConfig":
        t = Table(table, prefix, {"public_key", "activation", "block_size", "start_attempts", "healthy_after_s",
                                  "max_image_size", "enabled"})
        text = t.str("public_key", "")
        key = None
        if text.strip():
            try:
                key = load_public_key(text)
            except UpgradeError as exc:
                raise ConfigError(t.key("public_key"), str(exc)) from None
        activation = t.str("activation", "immediate").strip()
        try:
            parse_activation(activation)
        except ValueError:
            raise ConfigError(t.key("activation"),
                              f'must be "immediate", "HH:MM" or an ISO date-time, not {activation!r}') from None
        return cls(
            public_key=text,
            activation=activation,
            block_size=t.int("block_size", 512, 16, 65535),
            start_attempts=t.int("start_attempts", 2, 1, 10),
            healthy_after_s=t.float("healthy_after_s", 10.0, 0.0, 3600.0),
            max_image_size=t.int("max_image_size", 16 * 1024 * 1024, 1024, 1 << 30),
            enabled=t.bool("enabled", True),
            key=key,
        )


def parse_activation(text: str) -> "None | dtime | datetime":
    if text == "immediate":
        return None
    if re.fullmatch(r"\d{1,2}:\d{2}", text):
        h, m = map(int, text.split(":"))
        return dtime(h, m)  # ValueError when out of range
    return datetime.fromisoformat(text).replace(tzinfo=None)


def activation_time(config: UpgradeConfig, now: datetime, scheduled: datetime | None = None) -> datetime:
    """When an image activated at ``now`` takes over (meter time)."""
    if scheduled is not None:
        return max(scheduled, now)
    when = parse_activation(config.activation)
    if when is None:
        return now
    if isinstance(when, dtime):
        at = datetime.combine(now.date(), when)
        return at if at > now else at + timedelta(days=1)
    return max(when, now)


__all__ = ["UpgradeConfig", "activation_time", "parse_activation"]
