"""`bijli storm`: the recharge storm, the head-end and vending side of the seed's day.

For every meter of a manifest (``bijli fleet --manifest`` or ``bijli meter --manifest``)
vend one credit token offline and deliver it through the meter's DLMS token gateway in
the utility association, with at most ``--concurrency`` associations at once, retries
with jittered exponential back-off, a live progress line, and at the end a read-back
of every meter's credit: any meter not credited exactly once is named and the exit
status is 1. A journal (``--journal``) makes the storm resumable after a crash: run the
same command again. ``--scenario bakrid`` replays the Bakrid week on a fleet engine it
starts itself, ``--processes`` shard processes (:mod:`bijli.tools.storm.scenario`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path

from bijli.tools.storm import StormError  # errors only: the engine loads when a storm runs, so
# registering this command costs every other ``bijli`` command nothing


def register(subparsers) -> None:
    p = subparsers.add_parser("storm", help="vend and deliver a token to every meter of a manifest, then verify")
    p.add_argument("--manifest", metavar="FILE", help="fleet or meter manifest (JSON)")
    p.add_argument("--amount", default="100", help="INR per meter (default 100; a token carries the largest amount not above it)")
    p.add_argument("--concurrency", type=int, default=32, help="associations at once (default 32)")
    p.add_argument("--shards-at-once", type=int, metavar="K",
                   help="take the meters of K shard processes at a time (default: one per core of the host, when "
                        "the manifest says its shards share one; all of them otherwise)")
    p.add_argument("--retries", type=int, default=5, help="retries per meter on refusal or timeout (default 5)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    p.add_argument("--journal", metavar="FILE",
                   help="storm journal; the same command with the same journal resumes "
                        "(default: MANIFEST.storm-AMOUNT.jsonl beside the manifest)")
    p.add_argument("--vend-time", metavar="ISO", help="the vend time the TIDs are taken from (default: now)")
    p.add_argument("--vend-journal", metavar="FILE",
                   help="the per-meter TID journal shared with 'bijli token vend' (default: $BIJLI_VEND_JOURNAL or "
                        "$XDG_STATE_HOME/bijli/vend-journal.json)")
    p.add_argument("--no-verify", action="store_true", help="skip the read-back of every meter's credit")
    p.add_argument("--progress-every", type=float, metavar="S",
                   help="seconds between progress lines (default 0.25 on a terminal, 5 otherwise)")
    p.add_argument("--plot", metavar="FILE", help="PNG or SVG: deliveries and restorations over time; the latency "
                                                  "histogram goes to FILE-latency.EXT")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    s = p.add_argument_group("scenario (--scenario bakrid: the fleet is started here)")
    s.add_argument("--scenario", choices=("bakrid",), help="replay a week on a simulated fleet clock")
    s.add_argument("--count", type=int, default=10, help="meters in the scenario's fleet (default 10)")
    s.add_argument("--work", metavar="DIR", default="./storm-bakrid",
                   help="the scenario's fleet state, manifests and journals (default ./storm-bakrid)")
    s.add_argument("--small-credit", default="20", help="INR each meter holds on Friday (default 20)")
    s.add_argument("--processes", type=int, metavar="P",
                   help="shard processes of the scenario's fleet engine (bijli fleet --shard K/P; default: one "
                        "per core, or more when a shard's meters would not fit under the open-file limit; "
                        "at most one per meter)")
    s.add_argument("--tcp", metavar="HOST:BASEPORT",
                   help="the shards' --tcp (default: each meter at its own loopback address 127.x.y.z:4059; "
                        "HOST:0 lets each pick a free port)")
    s.add_argument("--cache", type=int, metavar="N", help="meters each shard keeps hydrated (bijli fleet --cache)")
    p.set_defaults(func=_main)


def options(args):
    """The engine's :class:`~bijli.tools.storm.engine.Options` from the command line."""
    from bijli.tools.storm.engine import Options

    if args.concurrency < 1 or args.retries < 0 or args.timeout <= 0:
        raise StormError("--concurrency must be at least 1, --retries at least 0, --timeout above 0")
    if args.shards_at_once is not None and args.shards_at_once < 1:
        raise StormError("--shards-at-once must be at least 1")
    return Options(concurrency=args.concurrency, retries=args.retries, timeout=args.timeout,
                   verify=not args.no_verify, shards_at_once=args.shards_at_once)


def _main(args) -> int:
    from bijli.tools import vend_journal
    from bijli.tools.plot import PlotError
    from bijli.tools.storm import report
    from bijli.tools.storm.run import default_journal, load_fleet_manifest, run_storm, waves

    try:
        opts = options(args)
        if args.scenario:
            from bijli.tools.storm import scenario

            if args.processes is not None and args.processes < 1 or args.cache is not None and args.cache < 1:
                raise StormError("--processes and --cache must be at least 1")
            result = scenario.bakrid(Path(args.work), args.count, opts, amount=args.amount,
                                     small_credit=args.small_credit, plot=args.plot,
                                     progress_every=args.progress_every, processes=args.processes,
                                     tcp=args.tcp, cache=args.cache)
            print(json.dumps(result, indent=1) if args.json else scenario.text(result))
            return 0 if result["ok"] else 1
        if not args.manifest:
            raise StormError("give --manifest FILE (or --scenario bakrid)")
        rows, head = load_fleet_manifest(args.manifest)
        wave = waves(head, args.shards_at_once)
        if args.shards_at_once is not None and not wave:
            raise StormError(f"--shards-at-once: {args.manifest} does not say which shard serves each meter "
                             "(a manifest of 'bijli fleet --processes' does)")
        opts = dataclasses.replace(opts, **wave)
        when = (datetime.fromisoformat(args.vend_time).replace(tzinfo=None, second=0, microsecond=0)
                if args.vend_time else datetime.now().replace(second=0, microsecond=0))
        out = run_storm(rows, args.amount, args.journal or default_journal(args.manifest, args.amount), opts,
                        vend_time=when, vend_journal=args.vend_journal or vend_journal.default_path(),
                        progress_every=args.progress_every, plot=args.plot)
    except (StormError, PlotError, ValueError) as exc:
        print(f"bijli storm: {exc}", file=sys.stderr)
        return 2
    out.pop("_storm")
    print(json.dumps(out, indent=1) if args.json else report.text(out))
    return 0 if out["ok"] else 1
