"""`bijli state`: verify a meter's state directory, or recover a damaged one.

The meter refuses to start on a state it cannot vouch for (a missing, empty,
rolled-back or damaged database; see :mod:`firmware.storage`), and names these two
commands. ``verify`` changes nothing; ``recover`` rebuilds the database from the
verified backup with the state records of the seal (credit, debt, used TIDs as of
the last commit) and keeps the damaged files in ``damaged-<time>/``. Both hold the
state directory's lock, so neither runs under a meter that is using it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bijli.firmware import storage
from bijli.firmware.errors import FirmwareError
from bijli.hal import statelock
from bijli.hal.errors import HalError


def register(subparsers) -> None:
    p = subparsers.add_parser("state", help="verify or recover a meter's state directory")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="check the database, its seal and the backup; change nothing")
    v.add_argument("--state", metavar="DIR", default="./state", help="the meter's state directory (default ./state)")
    v.set_defaults(func=_verify)
    r = sub.add_parser("recover", help="rebuild a damaged database from the backup and the seal")
    r.add_argument("--state", metavar="DIR", default="./state", help="the meter's state directory (default ./state)")
    r.add_argument("--accept-older", action="store_true",
                   help="with no sound seal left, restore the backup although it may be older than the meter was")
    r.set_defaults(func=_recover)


def _held(args):
    if not Path(args.state).is_dir():
        raise HalError(f"state directory {args.state}: does not exist")
    return statelock.acquire(args.state)


def _verify(args) -> int:
    try:
        with _held(args):
            verdict = storage.verify(args.state)
    except (FirmwareError, HalError, OSError) as exc:
        print(f"bijli state: {exc}", file=sys.stderr)
        return 2
    print("\n".join(verdict.lines()))
    print("sound" if verdict.sound else "DAMAGED: bijli state recover --state " + args.state)
    return 0 if verdict.sound else 1


def _recover(args) -> int:
    try:
        with _held(args):
            report = storage.recover(args.state, accept_older=args.accept_older)
    except (FirmwareError, HalError, OSError) as exc:
        print(f"bijli state: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report))
    return 0
