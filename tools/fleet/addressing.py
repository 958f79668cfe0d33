"""Where each meter of a fleet is, and which shard holds it: functions of its index alone.

A field meter has an IP address of its own and serves the IEC 62056-47 wrapper on the
IANA port 4059; a head-end addresses it by that address alone. A fleet meter does the
same on loopback: meter ``i`` is at ``127.x.y.z`` with ``x.y.z`` = ``i + 1`` written in
base 256 (meter 0 at 127.0.0.1, meter 249,999 at 127.3.208.144). Linux delivers the
whole of 127.0.0.0/8 to the loopback interface without configuration, so no client
needs to know it talks to a fleet. Only when the user names a host does a fleet
listen elsewhere, and then on consecutive ports of that host (``BASEPORT + i // N``
for shard ``i % N``: a shard per host, as a StatefulSet's pods are).

Shards: meter ``i`` belongs to shard ``i % N`` of ``N``. Identities, keys, addresses
and load seeds are functions of the index (``tools.node.fleet.member_config``), so N
processes, on one machine or on many, each running ``--shard K/N``, together form
the same fleet a single process would, and their manifests merge by index.
"""

from __future__ import annotations

from bijli.tools.errors import UsageError

WRAPPER_PORT = 4059  # IEC 62056-47 / IANA "dlms" over TCP
LOOPBACK_METERS = 2**24 - 2  # 127.0.0.1 .. 127.255.255.254 (the broadcast address is not a meter's)


def meter_address(index: int) -> str:
    """Meter ``index``'s own loopback address."""
    if type(index) is not int or not 0 <= index < LOOPBACK_METERS:
        raise UsageError(f"meter index {index!r}: loopback holds meters 0..{LOOPBACK_METERS - 1}")
    n = index + 1
    return f"127.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def meter_endpoint(index: int, host: str | None = None, base_port: int = WRAPPER_PORT,
                   shards: int = 1) -> tuple[str, int]:
    """(host, port) meter ``index`` listens on: its own loopback address on 4059, or, when the
    user names a host, that host on ``base_port + index // shards`` (its place in its shard:
    each shard on a host of its own, e.g. a Kubernetes pod, uses the same ports)."""
    if host is None:
        return meter_address(index), WRAPPER_PORT
    if base_port == 0:  # each picks a free port (tests; the manifest says which)
        return host, 0
    port = base_port + index // shards
    if not 0 < port <= 65535:
        raise UsageError(f"meter {index} on {host}: port {port} does not fit below 65536; "
                         f"use its own loopback address (no --tcp host) or fewer meters")
    return host, port


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N), 0 <= K < N."""
    k, sep, n = str(text).partition("/")
    try:
        shard, shards = int(k), int(n)
    except ValueError:
        raise UsageError(f"--shard is K/N (e.g. 0/4), not {text!r}") from None
    if not sep or shards < 1 or not 0 <= shard < shards:
        raise UsageError(f"--shard {text!r}: K/N with 0 <= K < N")
    return shard, shards


def shard_indices(count: int, shard: int, shards: int) -> range:
    """The meters of shard ``shard`` of ``shards`` in a fleet of ``count``: every N-th from K."""
    if count < 1:
        raise UsageError("a fleet has at least one meter")
    if not 0 <= shard < shards:
        raise UsageError(f"shard {shard} of {shards}: K/N with 0 <= K < N")
    if count > LOOPBACK_METERS:
        raise UsageError(f"{count} meters do not fit on loopback (at most {LOOPBACK_METERS})")
    return range(shard, count, shards)
