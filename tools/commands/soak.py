"""`bijli soak`: the standing attack-and-fault campaign against real meter processes (issue 14).

Runs the parts of :mod:`bijli.tools.soak` (hostile DLMS over the wrapper, HDLC over TCP
and a serial pty in every association; SIGKILLs during token entry; a full disk;
damaged databases; a connection flood and slow peers; the console fuzzed; malformed
configs) within ``--minutes``, then prints one table: what each part applied and its
crashes, hangs, tracebacks, lost or doubled credit, accepted replays, unauthorised
accesses and wrong answers. Exit status 1 when any of those is not zero (the work
directory is then kept, with each failing meter's state, config and logs), 0 otherwise.
``make soak`` runs it with the defaults, which reach issue 14's counts.
"""

from __future__ import annotations

import argparse
import sys

from bijli.tools.soak import campaign


def register(subparsers) -> None:
    p = subparsers.add_parser("soak", formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="parts: " + ", ".join(campaign.NAMES))
    p.add_argument("--minutes", type=float, default=campaign.DEFAULT_MINUTES,
                   help=f"time budget for the whole campaign (default {campaign.DEFAULT_MINUTES:g})")
    p.add_argument("--seed", type=int, default=1, help="the seed every input is drawn from (default 1)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every part's target (default 1: issue 14's counts)")
    p.add_argument("--parts", default=",".join(campaign.NAMES), help="comma-separated parts to run (default all)")
    p.add_argument("--work", help="directory for the meters' state and logs (default: a temporary one)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    p.set_defaults(func=_main)


def _main(args) -> int:
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from bijli.tools.errors import UsageError
    from bijli.tools.soak.report import render

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = [p for p in parts if p not in campaign.NAMES]
    if unknown or not parts:
        raise UsageError(f"--parts: no part {unknown[0] if unknown else '(none given)'!r}; "
                         f"parts are {', '.join(campaign.NAMES)}")
    if not args.minutes > 0 or not args.scale > 0:
        raise UsageError("--minutes and --scale must be positive")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bijli-soak-"))
    work.mkdir(parents=True, exist_ok=True)

    def progress(row) -> None:
        print(f"bijli soak: {row.part}: {row.inputs:,} {row.unit} in {row.seconds:.0f} s, "
              f"{row.failures} failures", file=sys.stderr, flush=True)

    rows = campaign.run(args.minutes, seed=args.seed, scale=args.scale, parts=parts, work=work, progress=progress)
    print(render(rows, args.seed), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n", encoding="utf-8")
    failed = sum(r.failures for r in rows)
    if failed:
        print(f"bijli soak: {failed} failures; the meters' states and logs are in {work}", file=sys.stderr)
        return 1
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0
