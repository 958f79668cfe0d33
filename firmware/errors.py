"""One error hierarchy for the meter firmware, rooted in :class:`FirmwareError`.

Bad input to the firmware (a corrupt config, an impossible console command, a
storage file from the future) raises one of these with a message a test-rig
engineer can act on; the meter's state is unchanged when it does.
"""


class FirmwareError(Exception):
    """Root of every error raised by the ``firmware`` package."""


class ConfigError(FirmwareError):
    """A configuration value is missing, of the wrong type or out of range.

    ``key`` is the dotted TOML path of the offending value (``prepaid.max_debt``).
    """

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class StorageError(FirmwareError):
    """The non-volatile memory cannot be opened, is corrupt, or is too new."""


class StateDamaged(StorageError):
    """The non-volatile memory is missing, empty, rolled back or damaged: the meter
    refuses to start on it (and says how to recover), rather than forget money."""


class CommandError(FirmwareError):
    """A console or keypad command that cannot be carried out as typed."""


class TokenError(FirmwareError):
    """A token string that is not 20 decimal digits, or a vend request out of range."""
