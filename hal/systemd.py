"""The service manager's side door: sd_notify readiness and watchdog pings.

A unit with ``Type=notify`` waits for ``READY=1`` and, with ``WatchdogSec=``,
restarts the meter if ``WATCHDOG=1`` stops arriving. The protocol
(sd_notify(3)) is one datagram of ``KEY=value`` lines to the AF_UNIX socket
named in ``$NOTIFY_SOCKET`` (a leading ``@`` names the abstract namespace), so
this is a few lines of stdlib rather than a dependency. Outside systemd (no
``$NOTIFY_SOCKET``) every call is a cheap no-op returning False.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "ready", "stopping", "status", "watchdog_ping", "watchdog_interval"]


def _address(path: str) -> str | bytes:
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def notify(state: str, *, socket_path: str | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``, ``"WATCHDOG=1"``) to the service manager.

    Returns True when the datagram was sent, False when there is no manager to
    tell or it cannot be reached: a meter must keep metering even if the
    notification channel is broken, so this never raises for that.
    """
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
    if not path or not (path.startswith("/") or path.startswith("@")):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), _address(path))
    except OSError:
        return False
    return True


def ready(**kw) -> bool:
    return notify("READY=1", **kw)


def stopping(**kw) -> bool:
    return notify("STOPPING=1", **kw)


def status(text: str, **kw) -> bool:
    """A one-line status shown by ``systemctl status`` (newlines would end it)."""
    return notify("STATUS=" + text.replace("\n", " "), **kw)


def watchdog_ping(**kw) -> bool:
    return notify("WATCHDOG=1", **kw)


def watchdog_interval() -> float | None:
    """Seconds within which the manager expects a ping, or None if it does not.

    Per sd_watchdog_enabled(3): ``$WATCHDOG_USEC``, and ``$WATCHDOG_PID`` if set
    must be our pid. Ping at half this interval.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None
