"""How many meters fit in one process: the open-file limit a fleet lives within.

A per-file fleet meter needs about four descriptors (its listening socket, its state
database with journal and WAL, a head-end's connection); a fleet-engine meter one (its
listening socket: the shard's database is shared). A process may open RLIMIT_NOFILE
files: the soft limit is raised towards the hard one when that is enough, the hard one
only by a process with CAP_SYS_RESOURCE (and never beyond the kernel's ``fs.nr_open``).
A fleet that cannot get them is refused before any meter is built, with the number of
shards that would fit, instead of failing with EMFILE half way through its start.
"""

from __future__ import annotations

import resource

from bijli.tools.errors import UsageError

FDS_PER_METER = 4  # its listening socket, its state database with journal and WAL, one head-end connection
FDS_PER_ENGINE_METER = 1  # the fleet engine: its listening socket (one shard database for all)
FD_SLACK = 64  # the interpreter, the console, the manifest, a few more connections
# a shard: the interpreter, its database, and the connections of a storm (each endpoint's
# cap is lowered to what is left, see hal.tcp.listen)
ENGINE_FD_HEADROOM = 1024


def check_file_descriptors(count: int, per_meter: int = FDS_PER_METER, headroom: int = FD_SLACK, *,
                           raise_hard: bool = False) -> None:
    """A fleet needs about ``per_meter`` descriptors per meter and ``headroom`` more. Raise
    the soft limit towards the hard one when that is enough; with ``raise_hard`` (a fleet
    engine shard: a listener per meter, 125,000 on one core) raise the hard limit too when
    the process may (as root, up to ``fs.nr_open``); otherwise refuse to start, before any
    meter is built, with how many are needed and how to get them, instead of failing with
    EMFILE half way through."""
    need = count * per_meter + headroom
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    if soft == unlimited or soft >= need:
        return
    if hard == unlimited or hard >= need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
            return
        except (ValueError, OSError):
            pass
    nr_open = _nr_open()
    if raise_hard and (nr_open is None or need <= nr_open):
        try:  # only a process with CAP_SYS_RESOURCE (root, unless a container withholds it) may raise its hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError):
            pass
    ceiling = f"; the kernel allows at most fs.nr_open = {nr_open:,} per process" if nr_open else ""
    fits = max(0, (hard if hard != unlimited else need) - headroom) // per_meter
    ceiling += f"; {fits:,} meters fit in one process under the hard limit" if raise_hard else ""
    raise UsageError(f"{count:,} meters need about {need:,} open files (about {per_meter} each and {headroom} more) "
                     f"but this process may open {soft:,} (hard limit {hard:,}, which only a process with "
                     f"CAP_SYS_RESOURCE may raise){ceiling}: raise the limit (`ulimit -n {need}` in the shell, "
                     f"LimitNOFILE={need} in a systemd unit) or run fewer meters per process (more shards: "
                     f"--processes, --shard K/N)")


def shard_descriptors(count: int, shards: int) -> None:
    """:func:`check_file_descriptors` for the largest of ``shards`` engine shards of a
    ``count``-meter fleet; refused with the number of shards that would fit too."""
    try:
        check_file_descriptors(-(-count // shards), FDS_PER_ENGINE_METER, ENGINE_FD_HEADROOM, raise_hard=True)
    except UsageError as exc:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        fits = (hard - ENGINE_FD_HEADROOM) // FDS_PER_ENGINE_METER if hard != resource.RLIM_INFINITY else 0
        if fits <= 0:
            raise
        raise UsageError(f"{exc}; for {count:,} meters under this limit: --processes {-(-count // fits)} (or "
                         f"--shard K/{-(-count // fits)})") from None


def _nr_open() -> int | None:
    """The most descriptors the kernel lets one process have (Linux fs.nr_open), or None."""
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def shards_that_fit(count: int, at_least: int = 1) -> int:
    """The fewest engine shards (at least ``at_least``) of a ``count``-meter fleet whose
    largest fits under this process's hard open-file limit (children inherit it)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    fits = (hard - ENGINE_FD_HEADROOM) // FDS_PER_ENGINE_METER if hard != resource.RLIM_INFINITY else count
    return max(at_least, -(-count // fits) if fits > 0 else at_least)
