"""Errors of the hardware abstraction layer, rooted in :class:`HalError`."""


class HalError(Exception):
    """Root of every error raised by the ``hal`` package."""


class BackendError(HalError):
    """A backend named in the config cannot be opened (missing device, library, permission)."""
