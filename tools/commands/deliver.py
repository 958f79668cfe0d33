"""`bijli token deliver TOKEN`: send a token to a meter through its token gateway and say what it made of it.

The vending side's last step, over DLMS instead of a keypad: one association
(usually the utility client, ``--client 48``), the token gateway's ``enter``
(class 115 method 1, 0.0.19.40.0.255, IEC 62056-6-2 clause 4.6.5), then its
status and descriptions, which carry the meter's own word (``accepted``,
``used``, ``crc_error``, ``locked_out`` ...). The word is printed; the exit status
is 0 only when the meter accepted the token (1 otherwise), so a script cannot
mistake a refused token for a delivered one.

It sits in the ``token`` group (``bijli.tools.cli`` adds it to the group's
sub-commands) but lives here, with the other DLMS client commands' helpers.
"""

from __future__ import annotations

import argparse
import sys


def register(token_commands) -> None:
    from bijli.tools.commands.association import add_association_arguments

    p = token_commands.add_parser("deliver", help="send a token through the meter's token gateway (DLMS)",
                                  description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("token", help="the token's digits (spaces or dashes allowed if quoted), or str:DIGITS")
    add_association_arguments(p)
    p.set_defaults(func=_main)


def _main(args) -> int:
    from bijli.tools.commands import dlms as dlms_cmd

    token = dlms_cmd.token_octets(args.token)
    client = dlms_cmd.connect(args)
    try:
        return dlms_cmd.deliver(client, token, sys.stdout, as_json=args.json)
    finally:
        dlms_cmd.close_client(client)
