"""`bijli fleet`: N meters in one process, for head-end and vending-system tests.

Every meter is a full bijli meter (:class:`tools.fleet.Fleet` derives its serial,
PAN, decoder key, system title and state directory) serving DLMS over the
IEC 62056-47 TCP wrapper on a port of its own; all share one clock and one
event loop. One metering task ticks every meter each ``TICK``: no task per
meter, no thread. A manifest (JSON) tells the systems under test where each
meter is and how to vend for it; a small console on stdin shows the fleet,
steps its simulated clock (cooperatively: every meter keeps answering DLMS during
a step, and a signal ends it within a second) and reaches any one meter's own console.
As for ``bijli meter``, meters already in ``--state`` resume their simulated clocks
where they stopped, and ``--start`` there is refused unless ``--reset-clock``.
A stop (SIGINT, SIGTERM, ``quit``) commits and seals every meter, then ends the
process at once (:func:`end_process`: 1.4-1.7 s for 1,000 meters, measured).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bijli.tools.errors import UsageError
from bijli.tools.fleet.descriptors import check_file_descriptors, shard_descriptors
from bijli.tools.node import household  # light: the load profiles' names, for --load-profile

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

    from bijli.hal.clock import TimeSource
    from bijli.tools.node import config as config_mod
    from bijli.tools.node.fleet import Fleet

# the meters themselves (firmware, DLMS server, I/O shells) are imported by _main: building
# this command's parser, or any other command's, does not load them
log = logging.getLogger("bijli.fleet")


def register(subparsers) -> None:
    p = subparsers.add_parser("fleet")
    p.add_argument("--count", type=int, default=10, help="how many meters (default 10)")
    p.add_argument("--tcp", metavar="HOST:BASEPORT", default=None,
                   help="meter I serves the DLMS wrapper on BASEPORT+I (default 127.0.0.1:4059; "
                        "port 0: each picks a free port)")
    p.add_argument("--state", metavar="DIR", default="./fleet-state",
                   help="one state directory per meter under DIR, named by serial (default ./fleet-state)")
    p.add_argument("--config", metavar="FILE",
                   help="base TOML configuration; each meter gets its own serial and PAN (default: the demo meter)")
    p.add_argument("--clock", choices=("real", "sim"), default=None, help="real or simulated clock (config hal.clock)")
    p.add_argument("--start", metavar="ISO-8601",
                   help="start of the simulated clock (default: now, or where saved meters stopped)")
    p.add_argument("--reset-clock", action="store_true",
                   help="with --start on a --state that already holds meters: set their clocks to --start "
                        "(each logs the adjustment); without it that is refused")
    p.add_argument("--rate", type=float, default=1.0, help="simulated clock speed, x real time (default 1)")
    p.add_argument("--load-profile", choices=household.PROFILES, default=None,
                   help="random: each meter its own household load through the day, seeded by its index; "
                        "constant: 5 A at PF 1 on every meter (default random; with --shard or --processes "
                        "none: meters draw only the load a console gives them)")
    p.add_argument("--manifest", metavar="FILE", help="write JSON: each meter's serial, port, system title, "
                                                       "PAN/DRN and STS key parameters")
    p.add_argument("--console", choices=("stdio", "none"), default="stdio", help="the fleet console (default stdio)")
    p.add_argument("--log", default="warning", help="log level (debug, info, warning)")
    p.add_argument("--shard", metavar="K/N",
                   help="run the fleet engine (tools.fleet): the K-th of N slices of a --count fleet, meter I "
                        "at its own loopback address 127.x.y.z:4059 (or HOST:BASEPORT+I/N when --tcp names a "
                        "host), all shards' state in --state DIR/shard-K-of-N.db; the same console (see README)")
    p.add_argument("--cache", type=int, default=64, help="with --shard: meters kept hydrated at once (default 64)")
    p.add_argument("--processes", type=int, metavar="P",
                   help="run the fleet engine as P shard processes on this machine (--shard 0/P .. P-1/P), "
                        "supervised: a shard that dies is restarted; the manifests are merged into --manifest")
    p.add_argument("--print-unit", action="store_true",
                   help="print the systemd template unit bijli-fleet@.service (instance = shard) and exit")
    p.add_argument("--print-statefulset", metavar="N",type=int,
                   help="print a Kubernetes StatefulSet of N shards for --count meters (pod ordinal = shard) and exit")
    p.set_defaults(func=_main)


def _clock(args, cfg: config_mod.Config) -> tuple[TimeSource, bool]:
    """The shared clock, and whether the meters already in --state resume their own clocks."""
    from bijli.tools.node.meter_node import start_clock

    state = Path(args.state)
    existing = state.is_dir() and any(holds for holds in _members_held(state))
    return start_clock(args.clock or cfg.hal.clock, args.start, args.rate, cfg.meter.identity.time_zone_minutes,
                       existing=existing, reset_clock=args.reset_clock, where=f"fleet state directory {state}")


def _members_held(state: Path):
    from bijli.tools.node.meter_node import holds_meter

    return (holds_meter(d) for d in state.iterdir() if d.is_dir())


async def metering_loop(fleet: Fleet, stopping: asyncio.Event) -> None:
    """One task ticks every meter: the loop sleeps between ticks, whatever the fleet's size."""
    import asyncio

    from bijli.tools.node.meter_node import TICK

    while not stopping.is_set():
        fleet.tick()
        try:
            await asyncio.wait_for(stopping.wait(), TICK)
        except asyncio.TimeoutError:
            pass


DEFAULT_LOAD_PROFILE = "random"  # the per-meter-file fleet's; a shard draws none unless named
DEFAULT_TCP = "127.0.0.1:4059"  # without --shard: meter I on port 4059+I of 127.0.0.1


def port_ranges(ports: list[int]) -> str:
    """4059,4060,4061,4070 -> '4059-4061,4070': a thousand consecutive ports fit in one line."""
    out: list[str] = []
    start = prev = None
    for p in ports + [None]:
        if p is not None and prev is not None and p == prev + 1:
            prev = p
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = p
    return ",".join(out)


def _one_host_ports(tcp: str | None, count: int, processes: int):
    """Each shard's --tcp when all of them run on this host. Shard K of N puts meter I on
    BASEPORT + I // N (tools.fleet.addressing: a shard per host, the same ports on each);
    on one host that would be N meters on every port, so shard K is given the K-th block
    of ceil(count / N) consecutive ports instead: meter I of shard K on
    BASEPORT + K * ceil(count / N) + I // N, every port of the fleet its own."""
    if tcp is None:
        return None  # each meter at its own loopback address: nothing is shared
    from bijli.hal.tcp_line import parse_endpoint

    try:
        host, base = parse_endpoint(tcp)
    except ValueError as exc:
        raise UsageError(f"--tcp: {exc}") from None
    if base == 0:
        return lambda k: ["--tcp", tcp]  # each listener picks a free port
    span = -(-count // processes)
    if base + processes * span - 1 > 65535:
        raise UsageError(f"--tcp {tcp}: {count:,} meters need ports {base}-{base + processes * span - 1}, "
                         "beyond 65535; use each meter's own loopback address (no --tcp) or a lower base port")
    return lambda k: ["--tcp", f"{host}:{base + k * span}"]


async def _run(args, cfg: config_mod.Config) -> int:
    import asyncio
    import gc
    import signal

    from bijli.hal import tcp
    from bijli.hal.tcp_line import parse_endpoint
    from bijli.tools.node import push as push_shell
    from bijli.tools.node.fleet import Fleet
    from bijli.tools.node.links import tcp_options, wrapper_session
    from bijli.tools.node.meter_node import stdio_console

    host, base_port = parse_endpoint(args.tcp or DEFAULT_TCP)
    if base_port and base_port + args.count - 1 > 65535:
        raise UsageError(f"ports {base_port}..{base_port + args.count - 1} do not fit below 65536")
    clock, resume = _clock(args, cfg)
    load_profile = args.load_profile or DEFAULT_LOAD_PROFILE
    fleet = Fleet(cfg, args.count, args.state, clock, load_profile=load_profile, resume=resume)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    listeners: list[asyncio.Server] = []
    tasks: list[asyncio.Task] = []
    stopped = False  # stopped by a signal or quit, not by an error
    try:
        print(f"bijli fleet: {args.count} meters, clock {'sim' if fleet.clock.simulated else 'real'} at "
              f"{fleet.clock.now().isoformat(timespec='seconds')}, load profile {load_profile}, "
              f"state in {Path(args.state).resolve()}", flush=True)
        for m in fleet.members:
            server = m.node.server
            listener = await tcp.serve(host, base_port + m.index if base_port else 0,
                                       lambda s, server=server: wrapper_session(s, server),
                                       **tcp_options(m.cfg.meter.dlms))
            listeners.append(listener)
            m.host, m.port = listener.sockets[0].getsockname()[:2]
            m.node.tcp_port = m.port
        # one line for the whole fleet, however large: each meter's serial, port, system title
        # and PAN are in the manifest and the console's `status`
        print(f"DLMS wrappers listening on {host}:{port_ranges([m.port for m in fleet.members])} "
              f"(meter 0 on the first port, in order; each meter's details in "
              f"{'the manifest' if args.manifest else '--manifest FILE'} and `status`)", flush=True)
        if args.manifest:
            Path(args.manifest).write_text(json.dumps(fleet.manifest(), indent=1) + "\n", encoding="utf-8")
            print(f"manifest in {Path(args.manifest).resolve()}", flush=True)
        tasks.append(asyncio.create_task(metering_loop(fleet, stopping)))
        # each meter pushes to the destination its [push] table names (none by default)
        tasks.extend(asyncio.create_task(push_shell.serve(m.node, stopping)) for m in fleet.members)
        if args.console == "stdio":
            print("fleet console on this terminal: type help", flush=True)
            tasks.append(asyncio.create_task(stdio_console(lambda line: fleet.execute_async(line, stopping), stopping,
                                                           prompt="fleet> ")))
        await stopping.wait()
        stopped = True
    finally:
        for listener in listeners:
            listener.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if stopped:
            # the process ends after the stop: the cycle collector need not scan every meter's
            # objects again each time the stop's records trigger a full collection
            gc.freeze()
            fleet.stop()  # FirmwareError when a meter could not save: then the usual way out, with it
        else:
            fleet.shutdown()
    print("fleet stopped, state saved", flush=True)
    end_process(0)


def end_process(code: int) -> NoReturn:
    """End ``bijli fleet`` once every meter's state is committed and sealed, without the
    interpreter's teardown. That teardown closed each meter's sqlite connection, which
    checkpoints its write-ahead log into meter.db (a copy and an fsync), and freed every
    meter's objects one by one: 1.7 s and 4.5 s of a 1,000-meter fleet's 12 s exit. Neither
    keeps anything: with ``synchronous=FULL`` every commit is on disk in the WAL when it
    returns, and sqlite reads the WAL at the next open as after a power cut. (The verified
    backup ``Storage.close`` would take is left to the meters' schedule, every
    :data:`~bijli.firmware.storage.BACKUP_INTERVAL_S` of running: ``bijli state recover``
    restores credit, debt and used TIDs from the seal, whatever the backup's age.) Output
    and the log are flushed first; the kernel releases the state locks and sockets."""
    import os
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone away: nothing more to tell it
            pass
    os._exit(code)


async def _run_shard(args, cfg: config_mod.Config) -> int:
    """``--shard K/N``: one slice of the fleet on the fleet engine, until SIGTERM or SIGINT."""
    import asyncio
    import signal

    from bijli.firmware.shard import ShardStore
    from bijli.tools.fleet import serve as fleet_serve
    from bijli.tools.fleet.addressing import parse_shard, shard_indices
    from bijli.tools.fleet.console import ShardConsole
    from bijli.tools.fleet.engine import FleetEngine
    from bijli.tools.fleet.manifest import write_manifest
    from bijli.tools.node.meter_node import stdio_console

    shard, shards = parse_shard(args.shard)
    indices = shard_indices(args.count, shard, shards)
    host = None
    base_port = 4059
    if args.tcp is not None:  # a host named: consecutive ports there; else each its own loopback address
        from bijli.hal.tcp_line import parse_endpoint

        host, base_port = parse_endpoint(args.tcp)
    store = ShardStore.open(Path(args.state) / f"shard-{shard}-of-{shards}.db")
    clock, _ = _clock(args, cfg)  # a shard's meters resume from its shard database (the engine's start-up)
    engine = FleetEngine(cfg, indices, store, clock, cache_size=args.cache, load_profile=args.load_profile)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        endpoints = await fleet_serve.serve(engine, host=host, base_port=base_port, shards=shards)
        import gc

        gc.collect()
        gc.freeze()  # code, configuration and listeners: out of the cycle collector's scans (FleetEngine._collect)
        first = endpoints[indices[0]] if len(indices) else None
        print(f"bijli fleet: shard {shard}/{shards}, {len(indices)} of {args.count} meters, clock "
              f"{'sim' if engine.clock.simulated else 'real'} at {engine.clock.now().isoformat(timespec='seconds')}, "
              f"meter {indices[0]} at {first[0]}:{first[1]}, state in {store.path.resolve()}", flush=True)
        if args.manifest:
            write_manifest(Path(args.manifest), fleet_serve.manifest(engine, endpoints))
            print(f"manifest in {Path(args.manifest).resolve()}", flush=True)
        print("serving", flush=True)
        if args.console == "stdio":
            console = ShardConsole(engine, endpoints)
            print("fleet console on this terminal: type help", flush=True)
            # a task of its own, cancelled with the connections below; a step or advance it runs
            # sees `stopping` between its slices
            asyncio.create_task(stdio_console(lambda line: console.execute_async(line, stopping), stopping,
                                              prompt="fleet> "))
        await stopping.wait()
    finally:
        for listener in engine.listeners:
            listener.close()
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        for t in others:  # open connections: their meters are unpinned as they end
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        engine.shutdown()
    print("fleet shard stopped, state saved", flush=True)
    return 0


def _main(args) -> int:
    from bijli.hal import loop as hal_loop

    from bijli.tools.node import config as config_mod

    logging.basicConfig(level=args.log.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.print_unit or args.print_statefulset is not None:
        from bijli.tools.fleet import deploy

        if args.print_statefulset is not None and args.print_statefulset < 1:
            raise UsageError("--print-statefulset needs at least one shard")
        print(deploy.systemd_unit() if args.print_unit else deploy.statefulset(args.count, args.print_statefulset),
              end="")
        return 0
    if args.processes is not None:
        if args.shard is not None:
            raise UsageError("--processes runs every shard itself: give --processes or --shard, not both")
        from bijli.tools.fleet.supervise import Supervisor

        if args.processes >= 1:  # refused here, once, with the number of processes that fit (not by every shard)
            shard_descriptors(args.count, args.processes)

        fleet_args = ["--count", str(args.count), "--state", args.state, "--cache", str(args.cache),
                      "--log", args.log, "--console", "none"]  # this process's stdin is the supervisor's
        for flag, value in (("--config", args.config), ("--clock", args.clock), ("--start", args.start),
                            ("--load-profile", args.load_profile)):
            if value is not None:
                fleet_args += [flag, value]
        fleet_args += ["--rate", repr(args.rate)]
        return Supervisor(fleet_args, args.processes, Path(args.manifest) if args.manifest else None,
                          Path(args.state), shard_args=_one_host_ports(args.tcp, args.count, args.processes)).run()
    if args.shard is not None:
        from bijli.tools.fleet.addressing import parse_shard

        _, shards = parse_shard(args.shard)
        shard_descriptors(args.count, shards)
        cfg = config_mod.load(args.config)
        return hal_loop.run(_run_shard(args, cfg))
    check_file_descriptors(args.count)
    cfg = config_mod.load(args.config)
    return hal_loop.run(_run(args, cfg))
