"""The ``bijli`` command: a static table of sub-commands, each imported only when chosen.

Scripts call ``bijli token decode`` and ``bijli read`` in loops, so start-up is
most of their cost. The top-level parser is built from :data:`COMMANDS` (name,
one-line help, module) without importing any command module: every command is a
placeholder that only lists its help, except the one named on the command line,
whose module is imported and registers its real parser (``register(subparsers)``).
Each command module is light to import and keeps its heavy imports inside the
function that runs it, so ``bijli --help`` loads no meter, no DLMS stack and no
cryptography (tests/tools/test_cli.py checks).

Errors: every command raises (:mod:`bijli.tools.errors`) and :func:`main` maps
what reaches it to an exit status in one place, :func:`bijli.tools.errors.run`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

from bijli.tools import errors


class Command(NamedTuple):
    name: str
    help: str
    module: str


_C = "bijli.tools.commands."

#: every sub-command, in the order ``bijli --help`` lists them. One module may register
#: several commands (the DLMS client's five); the module is imported when any is chosen.
COMMANDS: tuple[Command, ...] = (
    Command("meter", "run a meter (DLMS server, console, metering)", _C + "meter"),
    Command("fleet", "run N meters in one process (DLMS wrapper port each, shared clock)", _C + "fleet"),
    Command("storm", "a recharge storm: vend and deliver a token to every meter of a manifest, then verify",
            _C + "storm"),
    Command("console", "talk to a meter's service console on a serial line or pty", _C + "console"),
    Command("objects", "list a meter's COSEM objects (association object list)", _C + "dlms"),
    Command("read", "read attributes: [CLASS/]OBIS[:ATTR] (ATTR default 2)", _C + "dlms"),
    Command("write", "write an attribute: [CLASS/]OBIS:ATTR TYPE:VALUE", _C + "dlms"),
    Command("call", "invoke a method: [CLASS/]OBIS:METHOD [TYPE:VALUE]", _C + "dlms"),
    Command("profile", "read a profile generic buffer: all of it, by time range or by entry", _C + "dlms"),
    Command("token", "vend, decode and deliver STS tokens", _C + "token"),
    Command("upgrade", "send a new bijli build to a meter (DLMS image transfer)", _C + "upgrade"),
    Command("state", "check or rebuild a meter's state directory (verify, recover)", _C + "state"),
    Command("testbench", "IEC 62053-21 class 1 accuracy, starting and no-load tests on synthetic waveforms",
            _C + "testbench"),
    Command("bench", "measure the performance figures (dlms, sts, firmware)", _C + "bench"),
    Command("soak", "the attack-and-fault campaign against real meters: one table, all failures zero",
            _C + "soak"),
    Command("flash", "write a Raspberry Pi rig's files into its root file system", _C + "flash"),
)

#: sub-commands of a group that live outside the group's own module: (group, module);
#: the module's ``register(subparsers)`` gets the group's sub-command action.
GROUP_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("token", _C + "deliver"),
)

EXIT_STATUS = """\
exit status: 0 done; 1 the meter (or the check) said no; 2 bad input, nothing sent;
3 the meter or port cannot be reached, or the link broke; 130 interrupted;
141 the reader of the output went away (| head), quietly"""


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import bijli

        print(f"bijli {bijli.__version__}")
        parser.exit()


def chosen_command(argv: list[str]) -> str | None:
    """The sub-command named on the command line: the first word that is not an option
    (the top level has no option that takes a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the chosen command's module registers its real parser,
    every other command is a placeholder carrying its help line."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="bijli", description="bijli: a prepaid smart meter and its DLMS/COSEM stack",
                                     epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    name = chosen_command(argv)
    module = next((c.module for c in COMMANDS if c.name == name), None)
    done = False
    for command in COMMANDS:
        if command.module != module:
            sub.add_parser(command.name, help=command.help, add_help=False)
        elif not done:
            importlib.import_module(module).register(sub)
            done = True
    if module is not None:
        for command in COMMANDS:
            p = sub.choices.get(command.name)
            if command.module == module and p is not None and not p.description:
                p.description = command.help  # the table is the one place the line is written
        for group, ext in GROUP_EXTENSIONS:
            if group in sub.choices and COMMANDS_BY_NAME[group].module == module:
                importlib.import_module(ext).register(_subcommands(sub.choices[group]))
    return parser


COMMANDS_BY_NAME = {c.name: c for c in COMMANDS}


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError(f"{parser.prog} has no sub-commands")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return errors.USAGE
    prog = "bijli " + " ".join(w for w in (args.command, getattr(args, "token_command", None)) if w)
    return errors.run(prog, lambda: func(args))


if __name__ == "__main__":
    sys.exit(main())
