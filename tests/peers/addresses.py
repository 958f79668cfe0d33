"""Fleet meter indices for a test, clear of any fleet already serving on this machine.

A fleet meter listens on its own loopback address (meter ``i`` at 127.x.y.z:4059, see
``tools/fleet/addressing.py``). A test that served meters 0, 1 or 1,777 at theirs met
the listeners of a fleet a user (or another test run) was serving on the same machine:
``address in use``, a failure that says nothing about the code. So a test takes its
meters above :data:`SEED_FLEET` (a fleet of the seed's 250,000 meters ends there), at an
offset of its own process, and checks that their endpoints are free before it serves.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Iterable

from bijli.tools.fleet.addressing import LOOPBACK_METERS, meter_endpoint

SEED_FLEET = 250_000  # meters 0..249,999: what a seed-sized fleet on this machine may hold
# indices below it: on loopback, and the demo configuration's serial (BJL0000001 + index) 7 digits
TOP = min(LOOPBACK_METERS, 10**7 - 1)
_TRIES = 64


def endpoints_free(indices: Iterable[int]) -> bool:
    """Whether every meter of ``indices`` could listen at its own address now."""
    for index in indices:
        host, port = meter_endpoint(index)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as hal.tcp.listen binds
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
                raise
    return True


def clear_offset(indices: Iterable[int], modulus: int = 1) -> int:
    """An offset, a multiple of ``modulus`` (a shard's N keeps each index in its shard), that
    moves every one of ``indices`` above :data:`SEED_FLEET` to endpoints free now. It
    depends on the process, so two test runs at once take different addresses."""
    indices = list(indices)
    step = modulus * -(-(max(indices) + 1) // modulus)  # whole moduli past the highest index
    room = (TOP - SEED_FLEET - step) // step
    if room < 1:
        raise ValueError(f"indices up to {max(indices)} do not fit between {SEED_FLEET} and {TOP}")
    first = modulus * -(-SEED_FLEET // modulus)
    start = os.getpid() % room
    for k in range(min(_TRIES, room)):
        offset = first + ((start + k) % room) * step
        if endpoints_free(i + offset for i in indices):
            return offset
    raise RuntimeError(f"no free loopback addresses for meters {indices} after {_TRIES} tries")


def clear_shard(n: int, meters: int) -> int:
    """A shard ``K`` of ``N`` = ``n`` whose first ``meters`` meters (K, K + N, ...) are above
    :data:`SEED_FLEET` at endpoints free now: a few meters spread over a fleet of
    ``K + meters * N`` or more. ``n`` must leave room above the seed's fleet."""
    if n <= SEED_FLEET or SEED_FLEET + (meters - 1) * n >= TOP:
        raise ValueError(f"a shard of N = {n} cannot hold {meters} meters between {SEED_FLEET} and {TOP}")
    room = min(n, TOP - (meters - 1) * n) - SEED_FLEET
    start = os.getpid() % room
    for t in range(min(_TRIES, room)):
        k = SEED_FLEET + (start + t * 7919) % room  # apart from a neighbour's pid's
        if endpoints_free(k + j * n for j in range(meters)):
            return k
    raise RuntimeError(f"no free loopback addresses for a shard of {n} after {_TRIES} tries")


def clear_indices(indices: Iterable[int], modulus: int = 1) -> list[int]:
    """``indices`` moved by :func:`clear_offset`."""
    indices = list(indices)
    offset = clear_offset(indices, modulus)
    return [i + offset for i in indices]
