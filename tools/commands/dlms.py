"""`bijli objects|read|write|call|profile`: a DLMS/COSEM client on the command line.

Each command opens one association with a meter (ours or any IEC 62056 meter)
over the TCP wrapper, HDLC over TCP, or a serial line with the optional mode E
opening (:mod:`bijli.tools.commands.association`), does its one job through
:class:`dlms.client.Client`, releases and prints the result as text or JSON;
everything protocol is in ``dlms``.

What an engineer expects of a reading tool: ``--scale`` applies each register's
scaler_unit (IEC 62056-6-2 clause 4.3.2, attribute 3: value x 10^scaler, unit
enum) so a voltage reads ``230.00 V``, not ``23000``; ``objects`` names every
object; a profile read with no range reads the whole buffer; a token entered
through the token gateway (class 115, IEC 62056-6-2 clause 4.6.5) prints the
meter's word from its status and descriptions, not just "done".

Typed values (``write`` and ``call``) are ``TYPE:VALUE``; see VALUE_HELP. This
module is light to import: the DLMS stack is loaded by the functions that run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime

from bijli.tools.commands.association import add_association_arguments, close_client, connect
from bijli.tools.errors import TokenRefused, UsageError

__all__ = ["UsageError", "parse_value", "parse_ref", "to_json", "enter_token", "deliver", "add_association_arguments",
           "connect", "close_client"]

TOKEN_GATEWAY = "0.0.19.40.0.255"
TOKEN_GATEWAY_CLASS = 115
_ENTER = 1  # token gateway method 1, enter (IEC 62056-6-2 4.6.5)
_EXECUTION_OK = 3  # token_status_code execution_ok: the token was accepted and applied
_REGISTER_CLASSES = (3, 4, 5)  # register, extended register, demand register: attribute 3 is scaler_unit

VALUE_HELP = """\
VALUE is TYPE:TEXT. Types: null, bool (true/false), i8 i16 i32 i64 (integer, long,
double-long, long64), u8 u16 u32 u64 (unsigned ...), enum, f32, f64, octets (hex:
octets:0A0B), str (visible-string), utf8, bits (bits:0101), date-time
(date-time:2024-06-17T10:00, sent as a 12-octet octet-string as COSEM does).
Structures and arrays are JSON: json:["u8:1", ["str:a", "bool:true"]] is a structure
(a JSON list) holding a structure; {"array": ["u16:1", "u16:2"]} is an array.
The token gateway's enter (0.0.19.40.0.255:1) takes the 20 digits as they are,
as str:DIGITS or as octets.
Examples: u32:5  date-time:2024-06-17T10:00  octets:0102FF  json:["enum:1","u16:30"]"""

_INT_TYPES = {"i8": "Integer", "i16": "Long", "i32": "DoubleLong", "i64": "Long64", "u8": "Unsigned",
              "u16": "LongUnsigned", "u32": "DoubleLongUnsigned", "u64": "Long64Unsigned", "enum": "Enum"}


def parse_value(text: str):
    """A typed value from the command line (see VALUE_HELP)."""
    from bijli.dlms import axdr
    from bijli.dlms.errors import DlmsError

    kind, sep, rest = text.partition(":")
    if not sep:
        raise UsageError(f"value {text!r} needs a type: TYPE:VALUE (e.g. u32:5)")
    kind = kind.strip().lower()
    try:
        if kind in _INT_TYPES:
            value = getattr(axdr, _INT_TYPES[kind])(int(rest, 0))
            axdr.encode(value)  # range check
            return value
        if kind == "null":
            return axdr.NullData()
        if kind == "bool":
            if rest.lower() not in ("true", "false", "1", "0"):
                raise ValueError("bool is true or false")
            return axdr.Boolean(rest.lower() in ("true", "1"))
        if kind == "f32":
            return axdr.Float32(float(rest))
        if kind == "f64":
            return axdr.Float64(float(rest))
        if kind == "octets":
            return axdr.OctetString(bytes.fromhex(rest))
        if kind == "str":
            return axdr.VisibleString(rest)
        if kind == "utf8":
            return axdr.Utf8String(rest)
        if kind == "bits":
            return axdr.BitString(rest)
        if kind == "date-time":
            when = datetime.fromisoformat(rest)
            return axdr.OctetString(axdr.CosemDateTime.from_datetime(when, clock_status=None).encode())
        if kind == "json":
            return _from_json(json.loads(rest))
    except (ValueError, OverflowError, DlmsError, json.JSONDecodeError) as exc:
        raise UsageError(f"bad {kind} value {rest!r}: {exc}") from None
    raise UsageError(f"unknown value type {kind!r} (see --help)")


def _from_json(node):
    from bijli.dlms import axdr

    if isinstance(node, list):
        return axdr.Structure(tuple(_from_json(n) for n in node))
    if isinstance(node, dict) and set(node) == {"array"} and isinstance(node["array"], list):
        return axdr.Array(tuple(_from_json(n) for n in node["array"]))
    if isinstance(node, bool):
        return axdr.Boolean(node)
    if isinstance(node, str):
        return parse_value(node)
    raise ValueError(f"JSON leaves are 'TYPE:VALUE' strings or booleans, not {node!r}")


def token_octets(text: str) -> bytes:
    """The token the gateway's enter takes: its 20 digits as ASCII octets. Accepts the digits
    bare (spaces and dashes as printed on a receipt), as str:DIGITS, utf8:DIGITS or octets:HEX."""
    kind, sep, rest = text.partition(":")
    if sep and kind.lower() == "octets":
        try:
            return bytes.fromhex(rest)
        except ValueError:
            raise UsageError(f"bad octets value {rest!r}") from None
    digits = (rest if sep and kind.lower() in ("str", "utf8") else text).replace(" ", "").replace("-", "")
    if not digits.isdigit() or not digits.isascii():
        raise UsageError(f"a token is its digits (20 for STS), not {text!r}")
    return digits.encode("ascii")


def to_json(value) -> object:
    """A COSEM value as plain JSON: strings for octets (hex, or ISO date-time when 12 octets decode)."""
    from bijli.dlms import axdr
    from bijli.dlms.errors import DlmsError

    if isinstance(value, (axdr.Array, axdr.Structure)):
        return [to_json(v) for v in value.value]
    if isinstance(value, axdr.OctetString):
        raw = value.value
        if len(raw) == 12:
            try:
                return axdr.CosemDateTime.decode(raw).to_datetime().isoformat()
            except DlmsError:
                pass
        return raw.hex().upper()
    if isinstance(value, axdr.BitString):
        return value.value
    if hasattr(value, "to_python"):
        py = value.to_python()
        if isinstance(py, (int, float, str, bool)) or py is None:
            return py
        return str(py)
    return str(value)


def _text(value) -> str:
    j = to_json(value)
    return j if isinstance(j, str) else json.dumps(j)


def parse_ref(text: str, default_attr: int | None = None):
    """[CLASS/]OBIS[:INDEX] -> (class or None, obis, index)."""
    from bijli.dlms.errors import DlmsError
    from bijli.dlms.obis import Obis

    cls = None
    if "/" in text:
        c, text = text.split("/", 1)
        try:
            cls = int(c)
        except ValueError:
            raise UsageError(f"class id {c!r} is not a number") from None
    ln, sep, idx = text.rpartition(":")
    index: int | None = None
    if sep and idx.isdigit():
        try:
            obis, index = Obis.parse(ln), int(idx)
        except DlmsError:
            index = None  # "1-0:1.8.0" style: the colon belongs to the OBIS code
    if index is None:
        if default_attr is None:
            raise UsageError(f"{text!r} needs :INDEX")
        index = default_attr
        try:
            obis = Obis.parse(text)
        except DlmsError as exc:
            raise UsageError(str(exc)) from None
    return cls, obis, index


# --- scalers and units -----------------------------------------------------------------------


class Scaled:
    """A register value with its scaler_unit applied: ``230.00 V``."""

    def __init__(self, raw: int | float, scaler: int, unit: int):
        self.raw, self.scaler, self.unit = raw, scaler, unit

    @property
    def symbol(self) -> str:
        from bijli.dlms.cosem.units import Unit

        try:
            return Unit(self.unit).symbol
        except ValueError:
            return f"unit {self.unit}"

    @property
    def number(self) -> float | int:
        value = self.raw * 10 ** self.scaler
        return round(value, -self.scaler) if self.scaler < 0 else value

    def __str__(self) -> str:
        if self.scaler < 0 and isinstance(self.raw, int):
            text = f"{self.raw * 10 ** self.scaler:.{-self.scaler}f}"
        else:
            text = f"{self.number:g}" if isinstance(self.number, float) else str(self.number)
        return f"{text} {self.symbol}".rstrip()

    def to_json(self) -> dict:
        return {"value": self.number, "unit": self.symbol, "raw": self.raw, "scaler": self.scaler}


def scaler_unit(client, class_id: int, obis) -> tuple[int, int] | None:
    """(scaler, unit) of a register, or None for an object that has none."""
    if class_id not in _REGISTER_CLASSES:
        return None
    value = client.get(class_id, obis, 3)
    try:
        scaler, unit = (v.value for v in value.value)
        return int(scaler), int(unit)
    except (AttributeError, TypeError, ValueError):
        return None


def apply_scaler(value, su: tuple[int, int] | None):
    """The value with its scaler_unit applied, or the value itself when it has none or is not a number."""
    raw = getattr(value, "value", None)
    if su is None or isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return value
    return Scaled(raw, *su)


def _show(value) -> str:
    return str(value) if isinstance(value, Scaled) else _text(value)


def _as_json(value):
    return value.to_json() if isinstance(value, Scaled) else to_json(value)


# --- the token gateway -------------------------------------------------------------------------


def enter_token(client, token: bytes) -> tuple[bool, str]:
    """Send ``token`` through the token gateway (method 1, enter) and read back what the meter
    made of it: (accepted, its word and message). ``enter`` itself only says the token was
    received; the verdict is in status (attribute 6) and the words in descriptions (attribute 4)."""
    from bijli.dlms import axdr

    client.action(TOKEN_GATEWAY_CLASS, TOKEN_GATEWAY, _ENTER, axdr.OctetString(token))
    return gateway_verdict(client)


def gateway_verdict(client) -> tuple[bool, str]:
    status = client.get(TOKEN_GATEWAY_CLASS, TOKEN_GATEWAY, 6)
    code = int(status.value[0].value)
    descriptions = [d.value.decode("utf-8", "replace") for d in client.get(TOKEN_GATEWAY_CLASS, TOKEN_GATEWAY, 4).value]
    if descriptions:
        word = descriptions[0] + (f": {descriptions[1]}" if len(descriptions) > 1 else "")
    else:
        from bijli.dlms.cosem.token_gateway import TokenStatusCode

        word = TokenStatusCode(code).name.lower()
    return code == _EXECUTION_OK, word


# --- argument parsing ----------------------------------------------------------------------------


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("objects", formatter_class=fmt)
    add_association_arguments(p)
    p.set_defaults(func=_main, action="objects")

    p = subparsers.add_parser("read", formatter_class=fmt)
    p.add_argument("ref", nargs="+", help="[CLASS/]OBIS[:ATTR], e.g. 1.0.1.8.0.255:2 or 3/1.0.1.8.0.255:3")
    p.add_argument("--scale", action="store_true",
                   help="apply a register's scaler and unit (attribute 3): 230.00 V, not 23000")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="read")

    p = subparsers.add_parser("write", epilog=VALUE_HELP, formatter_class=fmt)
    p.add_argument("ref", help="[CLASS/]OBIS:ATTR")
    p.add_argument("value", help="TYPE:VALUE (see below)")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="write")

    p = subparsers.add_parser("call", epilog=VALUE_HELP, formatter_class=fmt)
    p.add_argument("ref", help="[CLASS/]OBIS:METHOD")
    p.add_argument("value", nargs="?", help="parameter, TYPE:VALUE (default: none)")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="call")

    p = subparsers.add_parser("profile", formatter_class=fmt)
    p.add_argument("obis", help="profile OBIS, e.g. 1.0.99.1.0.255")
    p.add_argument("--from", dest="start", help="ISO date-time (range read on the clock capture object)")
    p.add_argument("--to", dest="end", help="ISO date-time (default: now)")
    p.add_argument("--entries", help="N..M entries (1-based; M empty or 0 = to the newest)")
    p.add_argument("--scale", action="store_true", help="apply each captured register's scaler and unit")
    p.add_argument("--csv", action="store_true", help="print CSV (a header of capture objects, then rows)")
    p.add_argument("--plot", metavar="FILE", help="also draw the rows against the clock column, scaled, one panel "
                   "per unit, to FILE.png or FILE.svg (needs matplotlib: pip install 'bijli[plot]')")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="profile")


# --- running --------------------------------------------------------------------------------


class Bar:
    """A progress line on stderr, only on a terminal: blocks and octets, and a total with
    percent when one is known (``total`` octets, maybe an estimate); cleared when done."""

    def __init__(self, total: int | None = None, *, estimate: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.on = self.stream.isatty()
        self.total = total
        self.estimate = estimate
        self.shown = False

    def line(self, blocks: int, octets: int) -> str:
        text = f"{blocks} blocks, {octets:,} octets"
        if self.total:
            pct = min(99 if self.estimate else 100, octets * 100 // self.total)
            text += f" of {'~' if self.estimate else ''}{self.total:,} ({pct}%)"
        return text

    def __call__(self, blocks: int, octets: int) -> None:
        if self.on:
            self.stream.write("\r" + self.line(blocks, octets) + "\x1b[K")
            self.stream.flush()
            self.shown = True

    def done(self) -> None:
        if self.on and self.shown:
            self.stream.write("\r\x1b[K")  # the result is what stays on the screen
            self.stream.flush()
        self.shown = False


def _objects(args, client, out) -> int:
    from bijli.tools.commands.obis_names import class_name, obis_name

    bar = Bar()
    entries = client.object_list(progress=bar)
    bar.done()
    if args.json:
        json.dump([{"class_id": e.class_id, "version": e.version, "obis": str(e.logical_name),
                    "class": class_name(e.class_id), "name": obis_name(e.logical_name),
                    "attributes": list(e.attribute_access), "methods": list(e.method_access)} for e in entries],
                  out, indent=1)
        out.write("\n")
    else:
        for e in entries:
            out.write(f"{e.class_id:>4}  v{e.version}  {str(e.logical_name):<17} {class_name(e.class_id):<22} "
                      f"{obis_name(e.logical_name)}".rstrip() + "\n")
    return 0


def _read(args, client, out) -> int:
    results = {}
    for ref in args.ref:
        cls, obis, attr = parse_ref(ref, 2)
        cls = cls or client.class_of(obis)
        bar = Bar()
        value = client.get(cls, obis, attr, progress=bar)
        bar.done()
        if args.scale and attr == 2:
            value = apply_scaler(value, scaler_unit(client, cls, obis))
        results[f"{obis}:{attr}"] = _as_json(value)
        if not args.json:
            out.write(f"{obis}:{attr} = {_show(value)}\n")
    if args.json:
        json.dump(results if len(results) > 1 else next(iter(results.values())), out)
        out.write("\n")
    return 0


def _call(args, client, out) -> int:
    from bijli.dlms.obis import Obis

    cls, obis, method = parse_ref(args.ref)
    cls = cls or client.class_of(obis)
    if cls == TOKEN_GATEWAY_CLASS and obis == Obis.parse(TOKEN_GATEWAY) and method == _ENTER and args.value:
        return deliver(client, token_octets(args.value), out, as_json=args.json)
    value = parse_value(args.value) if args.value else None
    ret = client.action(cls, obis, method, value)
    if args.json:
        out.write(json.dumps({"result": "success", "return": None if ret is None else to_json(ret)}) + "\n")
    else:
        out.write(f"{obis}/{method} done" + ("" if ret is None else f": {_text(ret)}") + "\n")
    return 0


def deliver(client, token: bytes, out, *, as_json: bool = False) -> int:
    """Enter a token, print the meter's word; not accepted raises TokenRefused (exit 1)."""
    accepted, word = enter_token(client, token)
    out.write(json.dumps({"accepted": accepted, "word": word}) + "\n" if as_json else word + "\n")
    if not accepted:
        raise TokenRefused(f"the meter did not accept the token ({word.split(':', 1)[0]})")
    return 0


def _entry_range(text: str) -> tuple[int, int]:
    a, _, b = text.partition("..")
    try:
        first, last = int(a), int(b or 0)
    except ValueError:
        raise UsageError(f"--entries is N..M, not {text!r}") from None
    if first < 1 or last < 0:
        raise UsageError(f"--entries counts from 1: {text!r}")
    if last and last < first:
        raise UsageError(f"--entries {text}: the range is inverted (the last entry is before the first)")
    return first, last


def _row_size(client, obis, entries: int) -> int | None:
    """Octets of one encoded row (from entry 1), to estimate a long read's total."""
    from bijli.dlms import axdr

    if entries < 2:
        return None
    _, rows = client.profile_by_entry(obis, 1, 1)
    return len(axdr.encode(axdr.Structure(tuple(rows[0])))) if rows else None


def _profile(args, client, out) -> int:
    from bijli.dlms.obis import Obis
    from bijli.dlms.errors import DlmsError

    try:
        obis = Obis.parse(args.obis)
    except DlmsError as exc:
        raise UsageError(str(exc)) from None
    if args.entries and (args.start or args.end):
        raise UsageError("give --entries or --from/--to, not both")
    if args.start or args.end:
        try:
            start = datetime.fromisoformat(args.start) if args.start else None
            end = datetime.fromisoformat(args.end) if args.end else None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if start is not None and end is not None and end < start:
            raise UsageError(f"--from {args.start} is after --to {args.end}: the range is inverted")
        if start is None:
            start = datetime(2000, 1, 1)
        if end is None:
            end = client.read_clock().replace(tzinfo=None)
            if end < start:
                raise UsageError(f"--from {args.start} is after the meter's clock ({end.isoformat()})")
        bar = Bar()
        columns, rows = client.profile_by_range(obis, start, end, progress=bar)
    else:
        first, last = _entry_range(args.entries) if args.entries else (1, 0)
        in_use = int(client.get(7, obis, 7).value)
        count = max(0, (min(last, in_use) if last else in_use) - first + 1)
        bar = Bar()
        size = _row_size(client, obis, count) if bar.on else None  # only a terminal shows the bar
        bar.total = count * size + 3 if size else None
        bar.estimate = True
        columns, rows = client.profile_by_entry(obis, first, last, progress=bar)
    bar.done()
    header = [f"{c}/{ln}:{a}" for c, ln, a, _ in columns]
    units = None
    if args.scale or args.plot:
        units = [scaler_unit(client, c, ln) if a == 2 else None for c, ln, a, _ in columns]
    if args.plot:
        _plot(args, obis, columns, rows, units, out)
        if not (args.csv or args.json):
            return 0
    if args.scale:
        rows = [[apply_scaler(v, su) for v, su in zip(row, units)] for row in rows]
    if args.csv:
        w = csv.writer(out)
        w.writerow(header)
        for row in rows:
            w.writerow([_show(v) for v in row])
    elif args.json:
        json.dump({"columns": header, "rows": [[_as_json(v) for v in row] for row in rows]}, out)
        out.write("\n")
    else:
        out.write("  ".join(header) + "\n")
        for row in rows:
            out.write("  ".join(_show(v) for v in row) + "\n")
    return 0


def _plot(args, obis, columns, rows, units, out) -> None:
    from bijli.tools.commands.obis_names import obis_name
    from bijli.tools.commands.profile_plot import plot_profile
    from bijli.tools.plot import PlotError

    title = f"{obis_name(obis) or 'profile'} {obis}: {len(rows)} entries"
    try:
        path, plotted, drawn = plot_profile(args.plot, obis, columns, rows, units, title=title)
    except PlotError as exc:
        raise UsageError(str(exc)) from None
    # with --csv or --json stdout is the data; the note goes where a person reads it
    note = sys.stderr if (args.csv or args.json) else out
    note.write(f"{plotted} rows, {drawn} series plotted to {path}\n")


def _write(args, client, out) -> int:
    cls, obis, attr = parse_ref(args.ref)
    value = parse_value(args.value)
    client.set(cls or client.class_of(obis), obis, attr, value)
    out.write(json.dumps({"result": "success"}) + "\n" if args.json else f"{obis}:{attr} written\n")
    return 0


_ACTIONS = {"objects": _objects, "read": _read, "write": _write, "call": _call, "profile": _profile}


def _check_input(args) -> None:
    """A typo should not cost an association: check what can be checked offline first."""
    if args.action == "write":
        parse_ref(args.ref)
        parse_value(args.value)
    elif args.action == "call":
        parse_ref(args.ref)
        if args.value:
            try:
                parse_value(args.value)
            except UsageError:
                token_octets(args.value)  # bare token digits are for the token gateway
    elif args.action == "read":
        for ref in args.ref:
            parse_ref(ref, 2)
    elif args.action == "profile":
        if args.entries:
            _entry_range(args.entries)
        if args.plot:
            from bijli.tools import plot

            try:
                plot.check(args.plot)  # a missing matplotlib or a .jpg costs no association
            except plot.PlotError as exc:
                raise UsageError(str(exc)) from None


def _main(args) -> int:
    _check_input(args)
    client = connect(args)
    try:
        return _ACTIONS[args.action](args, client, sys.stdout)
    finally:
        close_client(client)
