"""Errors of the hardware abstraction layer, rooted in :class:`HalError`.

Every error a hal module raises is a :class:`HalError`. The line errors also
derive from the built-in exception a caller of a socket or port would expect
(:class:`ConnectionError`, :class:`TimeoutError`), so code written against
those keeps working while ``except HalError`` catches them all.
"""


class HalError(Exception):
    """Root of every error raised by the ``hal`` package."""


class BackendError(HalError):
    """A backend named in the config cannot be opened (missing device, library, permission)."""


class LineError(HalError, ConnectionError):
    """A line (socket or serial port) could not be opened, failed, or the far end closed it."""


class InactivityTimeout(HalError, TimeoutError):
    """The peer sent nothing useful for the configured time."""
