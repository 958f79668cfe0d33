"""The ``bijli`` sub-commands, one module each: argument parsing and output only.

Each module has ``register(subparsers)``; the work itself is done by the
packages below (dlms, firmware, hal) and the meter-node wiring in
:mod:`bijli.tools.node`.
"""
