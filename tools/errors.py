"""One error hierarchy for the ``bijli`` command line, and the one place errors become exit statuses.

Every command raises :class:`ToolError` (or lets an error of a lower layer --
``dlms``, ``firmware``, ``hal``, an ``OSError`` -- pass) and never prints its own
"error: ..." line or picks its own status: :func:`run` in ``bijli.tools.cli``'s
``main`` does both, for every command, so a script sees the same status for the
same kind of failure whichever command it called. The statuses (README,
"Exit status"):

====  ==========================================================================
0     done; the meter accepted what was asked
1     the meter (or the check) said no: an association, access or token refused,
      a failed accuracy test, an error reply on the service console
2     bad input: a command line, value, file or configuration that cannot be
      used; nothing was sent
3     no conversation: the meter or port cannot be reached, or the link broke or
      timed out part way
130   interrupted (Ctrl-C)
141   the reader of our output went away (``bijli ... | head``): quietly
====  ==========================================================================

This module imports nothing of ours at load time: the lower layers' error
classes are looked up only when an error is being mapped, and only if their
module is already loaded (an exception cannot come from a module that was
never imported), so the mapping costs a command's start-up nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

OK = 0
REFUSED = 1
USAGE = 2
CONNECTION = 3
INTERRUPTED = 130
BROKEN_PIPE = 141


class ToolError(Exception):
    """Root of every error the ``bijli`` tools raise; ``status`` is the exit status."""

    status = REFUSED


class UsageError(ToolError):
    """A command line, value, file or configuration that cannot be used; nothing was sent."""

    status = USAGE


class ConnectionFailed(ToolError):
    """The meter or port cannot be reached, or the link broke or timed out."""

    status = CONNECTION


class RefusedByMeter(ToolError):
    """The meter answered, and its answer was no."""

    status = REFUSED


class AssociationRefused(RefusedByMeter):
    """The meter refused the application association (IEC 62056-5-3 AARE, result not accepted)."""


class LockedOut(AssociationRefused):
    """The client SAP is locked out after repeated failed authentications; it opens again later."""


class WrongSecret(AssociationRefused):
    """The password (LLS) or the keys (HLS-GMAC, ciphering) do not match the meter's."""


class StaleInvocationCounter(AssociationRefused):
    """Our invocation counter is not above the last one the meter accepted (a replay, to the meter)."""


class TokenRefused(RefusedByMeter):
    """The meter did not accept a token; the message is the meter's own word for why."""


def _loaded(module: str, name: str):
    """``module.name`` if ``module`` is already imported, else None (then no exception can be one)."""
    mod = sys.modules.get(module)
    return getattr(mod, name, None) if mod is not None else None


def classify(exc: BaseException) -> tuple[int, str | None]:
    """(exit status, message) for an error that reached the top; message None = print nothing.
    Anything not known here is a bug: :func:`run` lets it raise with its traceback."""
    if isinstance(exc, ToolError):
        return exc.status, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(exc, BrokenPipeError):
        return BROKEN_PIPE, None
    config_error = _loaded("bijli.firmware.errors", "ConfigError")
    if config_error is not None and isinstance(exc, config_error):
        return USAGE, str(exc)
    link_error = _loaded("bijli.dlms.errors", "LinkError")
    if link_error is not None and isinstance(exc, link_error):
        return CONNECTION, f"link: {exc}"
    dlms_error = _loaded("bijli.dlms.errors", "DlmsError")
    if dlms_error is not None and isinstance(exc, dlms_error):
        return REFUSED, str(exc)
    state_in_use = _loaded("bijli.hal.statelock", "StateInUse")
    if state_in_use is not None and isinstance(exc, state_in_use):
        return USAGE, str(exc)  # the state directory cannot be used while another meter holds it
    hal_error = _loaded("bijli.hal.errors", "HalError")
    if hal_error is not None and isinstance(exc, hal_error):
        return CONNECTION, str(exc)
    firmware_error = _loaded("bijli.firmware.errors", "FirmwareError")
    if firmware_error is not None and isinstance(exc, firmware_error):
        return USAGE, str(exc)
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return CONNECTION, str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return USAGE, f"{where}{exc.strerror or exc}"
    if isinstance(exc, ValueError):
        return USAGE, str(exc)
    raise exc


def run(prog: str, fn: Callable[[], int | None]) -> int:
    """Call ``fn`` and turn what it returns or raises into an exit status, printing
    ``prog: message`` on stderr for an error. The one exception-to-exit-status handler."""
    try:
        status = fn()
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return OK if status is None else int(status)
    except (Exception, KeyboardInterrupt) as exc:
        status, message = classify(exc)
    if status == BROKEN_PIPE:
        _silence_stdout()
    elif message is not None:
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
    return status


def _silence_stdout() -> None:
    """The reader is gone: point stdout at /dev/null so the interpreter's last flush of the
    bytes still buffered does not fail again with a second BrokenPipeError at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
