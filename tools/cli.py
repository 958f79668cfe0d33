"""The ``bijli`` command: one sub-command per program, each in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command modules, each exposing register(subparsers); a module that is
# missing (an optional part not installed) simply does not add its command
COMMANDS = (
    "bijli.tools.meter_cmd",
    "bijli.tools.console_cmd",
    "bijli.tools.dlms_cmd",
    "bijli.tools.token_cmd",
    "bijli.tools.testbench",
    "bijli.tools.bench",
    "bijli.tools.flash",
    "bijli.tools.upgrade_cmd",
    "bijli.tools.fleet_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bijli", description="bijli: a prepaid smart meter and its DLMS/COSEM stack")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
