"""The ``bijli`` entry point: a static command table, lazy imports, one exit-status handler.

The start-up checks are about what gets imported, not about milliseconds: a test
that times start-up would fail on a busy machine and pass a slow change on an idle
one, while an import that should not be there is a fact (issue 16: every command
imported the whole meter, ~1 s per call).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib import metadata

import pytest

from tests.conftest import ROOT
from bijli.tools import cli, errors

# what no command's parser may load before its command runs: the meter, the DLMS stack and
# its server, the I/O shells, cryptography, asyncio, pyserial, and importlib.metadata
# (tens of milliseconds, only for --version)
HEAVY = ("bijli.dlms", "bijli.firmware", "bijli.hal", "bijli.tools.node", "cryptography", "asyncio", "serial",
         "importlib.metadata", "email")


def loaded_after_parsing(argv: list[str]) -> list[str]:
    """The heavy modules a fresh interpreter holds after building the parser for ``argv``."""
    code = ("import json, sys\n"
            "from bijli.tools.cli import build_parser\n"
            f"build_parser({argv!r})\n"
            f"heavy = {HEAVY!r}\n"
            "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def bijli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bijli.tools.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, **kw)


def test_help_loads_no_command_module_and_nothing_heavy():
    code = ("import sys\nfrom bijli.tools.cli import build_parser\nbuild_parser(['--help'])\n"
            "print([m for m in sys.modules if m.startswith('bijli.tools.commands.')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
    assert loaded_after_parsing(["--help"]) == []


@pytest.mark.parametrize("argv", [
    ["read", "1.0.12.7.0.255"], ["objects"], ["write", "0.0.1.0.0.255:2", "u8:1"], ["call", "x:1"],
    ["profile", "1.0.99.1.0.255"], ["console", "--port", "x"], ["upgrade", "image.bin"], ["flash"],
    ["bench"], ["fleet"], ["soak"],
])
def test_a_command_parser_loads_nothing_heavy(argv):
    """The DLMS client commands, console, upgrade, flash, bench and fleet import their work when
    they run, not when their parser is built."""
    # fleet names its load profiles from the household module, which is plain data
    assert [m for m in loaded_after_parsing(argv) if m not in ("bijli.tools.node", "bijli.tools.node.household")] == []


def test_token_commands_do_not_load_the_meter_or_the_dlms_stack():
    # the STS engine itself is token's to load; the meter, DLMS and asyncio are not
    for argv in (["token", "decode", "12345678901234567890"], ["token", "deliver", "12345678901234567890"]):
        loaded = loaded_after_parsing(argv)
        assert not [m for m in loaded if m.startswith(("bijli.dlms", "bijli.firmware.meter", "bijli.tools.node",
                                                       "asyncio", "serial"))], (argv, loaded)


def test_the_table_names_every_command_each_module_registers():
    names = {c.name for c in cli.COMMANDS}
    for command in cli.COMMANDS:
        parser = cli.build_parser([command.name])
        sub = cli._subcommands(parser)
        assert set(sub.choices) == names, command  # no command registered that the table does not list
        p = sub.choices[command.name]
        runs = p.get_default("func") is not None or any(isinstance(a, argparse._SubParsersAction) for a in p._actions)
        assert runs, f"{command.name} is still a placeholder after its module registered"
        assert p.description, command.name
    token = cli._subcommands(cli._subcommands(cli.build_parser(["token"])).choices["token"])
    assert {"vend", "decode", "deliver"} <= set(token.choices)


def test_version():
    r = bijli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"bijli {metadata.version('bijli')}"


def test_exit_statuses(tmp_path):
    # bad input: nothing is sent, status 2, one line saying what
    r = bijli("read", "not-an-obis", "--target", "tcp://127.0.0.1:1")
    assert r.returncode == errors.USAGE and r.stderr.startswith("bijli read: ") and "Traceback" not in r.stderr
    # nobody listening: status 3
    r = bijli("read", "0.0.1.0.0.255", "--target", "tcp://127.0.0.1:1", "--timeout", "2")
    assert r.returncode == errors.CONNECTION and "cannot reach the meter" in r.stderr, r.stderr
    r = bijli("console", "--port", str(tmp_path / "no-such-pty"))
    assert r.returncode == errors.CONNECTION and "cannot open" in r.stderr
    # no command: the help, status 2
    assert bijli().returncode == errors.USAGE


def test_a_closed_pipe_ends_quietly():
    """`bijli ... | head -1`: the reader goes away; no traceback, no 'Broken pipe' line."""
    proc = subprocess.Popen([sys.executable, "-m", "bijli.tools.cli", "token", "vend", "--time", "2024-06-17T10:00",
                             "--count", "3000", "credit", "--kwh", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert len(first.split()[0]) == 20
    assert proc.returncode == errors.BROKEN_PIPE and err == b"", err.decode()


def test_one_handler_maps_each_kind_of_error():
    from bijli.dlms.errors import LinkError, ServiceError
    from bijli.firmware.errors import ConfigError

    assert errors.classify(errors.WrongSecret("x")) == (errors.REFUSED, "x")
    assert errors.classify(errors.UsageError("x"))[0] == errors.USAGE
    assert errors.classify(ServiceError("READ_WRITE_DENIED"))[0] == errors.REFUSED
    assert errors.classify(LinkError("gone"))[0] == errors.CONNECTION
    assert errors.classify(ConfigError("meter.serial", "bad"))[0] == errors.USAGE
    assert errors.classify(FileNotFoundError(2, "No such file", "x.toml")) == (errors.USAGE, "x.toml: No such file")
    assert errors.classify(KeyboardInterrupt())[0] == errors.INTERRUPTED
    with pytest.raises(ZeroDivisionError):  # a bug is not an exit status: it keeps its traceback
        errors.classify(ZeroDivisionError())
