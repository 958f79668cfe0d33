"""The ``bijli`` command: one sub-command per program, each in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command modules, each exposing register(subparsers); a module that is
# missing (an optional part not installed) simply does not add its command
COMMANDS = (
    "bijli.tools.commands.meter",
    "bijli.tools.commands.console",
    "bijli.tools.commands.dlms",
    "bijli.tools.commands.token",
    "bijli.tools.commands.testbench",
    "bijli.tools.commands.bench",
    "bijli.tools.commands.flash",
    "bijli.tools.commands.upgrade",
    "bijli.tools.commands.fleet",
    "bijli.tools.commands.storm",
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
