"""`bijli objects|read|write|call|profile`: a DLMS/COSEM client on the command line.

Each command opens one association with a meter (ours or any IEC 62056 meter)
over the TCP wrapper, HDLC over TCP, or a serial line with the optional mode E
opening, does its one job through :class:`dlms.client.Client`, releases and
prints the result as text or JSON. The connection comes from
``tools.node.links.open_client_transport``; everything protocol is in ``dlms``.

Typed values (``write`` and ``call``) are ``TYPE:VALUE``; see VALUE_HELP.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime

from bijli.dlms import axdr
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.errors import DlmsError
from bijli.dlms.obis import Obis

DEMO_EK = "000102030405060708090A0B0C0D0E0F"
DEMO_AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"

VALUE_HELP = """\
VALUE is TYPE:TEXT. Types: null, bool (true/false), i8 i16 i32 i64 (integer, long,
double-long, long64), u8 u16 u32 u64 (unsigned ...), enum, f32, f64, octets (hex:
octets:0A0B), str (visible-string), utf8, bits (bits:0101), date-time
(date-time:2024-06-17T10:00, sent as a 12-octet octet-string as COSEM does).
Structures and arrays are JSON: json:["u8:1", ["str:a", "bool:true"]] is a structure
(a JSON list) holding a structure; {"array": ["u16:1", "u16:2"]} is an array.
Examples: u32:5  date-time:2024-06-17T10:00  octets:0102FF  json:["enum:1","u16:30"]"""

_INT_TYPES = {
    "i8": axdr.Integer, "i16": axdr.Long, "i32": axdr.DoubleLong, "i64": axdr.Long64,
    "u8": axdr.Unsigned, "u16": axdr.LongUnsigned, "u32": axdr.DoubleLongUnsigned, "u64": axdr.Long64Unsigned,
    "enum": axdr.Enum,
}


class UsageError(Exception):
    pass


def parse_value(text: str) -> axdr.Data:
    """A typed value from the command line (see VALUE_HELP)."""
    kind, sep, rest = text.partition(":")
    if not sep:
        raise UsageError(f"value {text!r} needs a type: TYPE:VALUE (e.g. u32:5)")
    kind = kind.strip().lower()
    try:
        if kind in _INT_TYPES:
            value = _INT_TYPES[kind](int(rest, 0))
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


def _from_json(node) -> axdr.Data:
    if isinstance(node, list):
        return axdr.Structure(tuple(_from_json(n) for n in node))
    if isinstance(node, dict) and set(node) == {"array"} and isinstance(node["array"], list):
        return axdr.Array(tuple(_from_json(n) for n in node["array"]))
    if isinstance(node, bool):
        return axdr.Boolean(node)
    if isinstance(node, str):
        return parse_value(node)
    raise ValueError(f"JSON leaves are 'TYPE:VALUE' strings or booleans, not {node!r}")


def to_json(value) -> object:
    """A COSEM value as plain JSON: strings for octets (hex, or ISO date-time when 12 octets decode)."""
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


def parse_ref(text: str, default_attr: int | None = None) -> tuple[int | None, Obis, int]:
    """[CLASS/]OBIS[:INDEX] -> (class or None, obis, index)."""
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


# --- argument parsing ----------------------------------------------------------------------------


def add_association_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--target", default="tcp://127.0.0.1:4059",
                   help="tcp://HOST:PORT or serial://DEVICE-OR-PYSERIAL-URL (default tcp://127.0.0.1:4059)")
    g.add_argument("--hdlc", action="store_true", help="HDLC over TCP instead of the wrapper")
    g.add_argument("--mode-e", action="store_true", help="serial: IEC 62056-21 mode E opening at 300 baud first")
    g.add_argument("--physical", type=int, default=16, help="HDLC server lower (physical) address (default 16)")
    g.add_argument("--client", type=int, choices=(16, 32, 48), default=16,
                   help="association: 16 public, 32 meter reader (LLS), 48 utility (HLS-GMAC, ciphered)")
    g.add_argument("--password", default="12345678", help="LLS password for --client 32 (default the demo's)")
    g.add_argument("--key", default=DEMO_EK, help="global unicast encryption key, hex (default the demo's)")
    g.add_argument("--auth-key", default=DEMO_AK, help="authentication key, hex (default the demo's)")
    g.add_argument("--system-title", default="424A4C434C543031", help="our system title, 8 octets hex")
    g.add_argument("--ic", type=int, default=None,
                   help="first invocation counter (default: above the meter's expectation, from a clock-derived value)")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("objects", help="list a meter's COSEM objects (association object list)",
                              formatter_class=fmt)
    add_association_arguments(p)
    p.set_defaults(func=_main, action="objects")

    p = subparsers.add_parser("read", help="read an attribute: [CLASS/]OBIS[:ATTR] (ATTR default 2)",
                              formatter_class=fmt)
    p.add_argument("ref", nargs="+", help="[CLASS/]OBIS[:ATTR], e.g. 1.0.1.8.0.255:2 or 3/1.0.1.8.0.255:3")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="read")

    p = subparsers.add_parser("write", help="write an attribute: [CLASS/]OBIS:ATTR TYPE:VALUE",
                              epilog=VALUE_HELP, formatter_class=fmt)
    p.add_argument("ref", help="[CLASS/]OBIS:ATTR")
    p.add_argument("value", help="TYPE:VALUE (see below)")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="write")

    p = subparsers.add_parser("call", help="invoke a method: [CLASS/]OBIS:METHOD [TYPE:VALUE]",
                              epilog=VALUE_HELP, formatter_class=fmt)
    p.add_argument("ref", help="[CLASS/]OBIS:METHOD")
    p.add_argument("value", nargs="?", help="parameter, TYPE:VALUE (default: none)")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="call")

    p = subparsers.add_parser("profile", help="read a profile generic buffer by time range or by entry",
                              formatter_class=fmt)
    p.add_argument("obis", help="profile OBIS, e.g. 1.0.99.1.0.255")
    p.add_argument("--from", dest="start", help="ISO date-time (range read on the clock capture object)")
    p.add_argument("--to", dest="end", help="ISO date-time (default: now)")
    p.add_argument("--entries", help="N..M entries (1-based; M empty or 0 = to the newest)")
    p.add_argument("--csv", action="store_true", help="print CSV (a header of capture objects, then rows)")
    add_association_arguments(p)
    p.set_defaults(func=_main, action="profile")


# --- running --------------------------------------------------------------------------------


class _Bar:
    """A progress line on stderr, only on a terminal."""

    def __init__(self):
        self.on = sys.stderr.isatty()

    def __call__(self, blocks: int, octets: int) -> None:
        if self.on:
            sys.stderr.write(f"\r{blocks} blocks, {octets:,} octets received")
            sys.stderr.flush()

    def done(self) -> None:
        if self.on:
            sys.stderr.write("\n")


def connect(args) -> Client:
    from bijli.tools.node.links import open_client_transport

    try:
        ek, ak, title = bytes.fromhex(args.key), bytes.fromhex(args.auth_key), bytes.fromhex(args.system_title)
    except ValueError as exc:
        raise UsageError(f"keys and system title are hex: {exc}") from None
    if len(ek) != 16 or len(ak) != 16 or len(title) != 8:
        raise UsageError("keys are 16 octets, the system title 8")
    ic = args.ic if args.ic is not None else _load_ic(title)
    settings = ClientSettings.for_association(args.client, password=args.password.encode(), encryption_key=ek,
                                              authentication_key=ak, system_title=title, invocation_counter=ic)
    transport = open_client_transport(args.target, args.client, hdlc_over_tcp=args.hdlc, use_mode_e=args.mode_e,
                                      physical_address=args.physical, timeout=args.timeout)
    client = Client(transport, settings)
    try:
        client.associate()
    except BaseException:
        save_invocation_counter(title, settings.invocation_counter)
        transport.close()
        raise
    return client


_EPOCH = 1704067200  # 2024-01-01T00:00:00Z


def _counter_file():
    import os
    from pathlib import Path

    base = os.environ.get("BIJLI_CLIENT_STATE") or os.path.join(os.path.expanduser("~"), ".cache", "bijli")
    return Path(base) / "client-counters.json"


def _load_ic(title: bytes) -> int:
    """Our next invocation counter for this system title: the one saved after the last run,
    and never below 20 per second since 2024 (so a fresh machine starts above old runs)."""
    import time

    floor = max(0, int(time.time()) - _EPOCH) * 20
    try:
        saved = int(json.loads(_counter_file().read_text()).get(title.hex(), 0))
    except (OSError, ValueError, AttributeError):
        saved = 0
    return min(max(saved, floor), 0xFFFFFFFF)


def close_client(client: Client) -> None:
    """Close the connection and keep a ciphered client's invocation counter for next time."""
    client.close()
    settings = client.session.settings
    if settings.ciphered:
        save_invocation_counter(settings.system_title, settings.invocation_counter)


def save_invocation_counter(title: bytes, value: int) -> None:
    path = _counter_file()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[title.hex()] = max(int(data.get(title.hex(), 0) or 0), value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass  # the clock floor still keeps us ahead in most cases


def _run(args, client: Client) -> int:
    out = sys.stdout
    if args.action == "objects":
        entries = client.object_list(progress=_Bar())
        if args.json:
            json.dump([{"class_id": e.class_id, "version": e.version, "obis": str(e.logical_name),
                        "attributes": list(e.attribute_access), "methods": list(e.method_access)} for e in entries],
                      out, indent=1)
            out.write("\n")
        else:
            for e in entries:
                out.write(f"{e.class_id:>4}  v{e.version}  {e.logical_name}\n")
        return 0
    if args.action == "read":
        results = {}
        for ref in args.ref:
            cls, obis, attr = parse_ref(ref, 2)
            cls = cls or client.class_of(obis)
            bar = _Bar()
            value = client.get(cls, obis, attr, progress=bar)
            bar.done()
            results[f"{obis}:{attr}"] = to_json(value)
            if not args.json:
                out.write(f"{obis}:{attr} = {_text(value)}\n")
        if args.json:
            json.dump(results if len(results) > 1 else next(iter(results.values())), out)
            out.write("\n")
        return 0
    if args.action == "write":
        cls, obis, attr = parse_ref(args.ref)
        value = parse_value(args.value)
        client.set(cls or client.class_of(obis), obis, attr, value)
        out.write(json.dumps({"result": "success"}) + "\n" if args.json else f"{obis}:{attr} written\n")
        return 0
    if args.action == "call":
        cls, obis, method = parse_ref(args.ref)
        value = parse_value(args.value) if args.value else None
        ret = client.action(cls or client.class_of(obis), obis, method, value)
        if args.json:
            out.write(json.dumps({"result": "success", "return": None if ret is None else to_json(ret)}) + "\n")
        else:
            out.write(f"{obis}/{method} done" + ("" if ret is None else f": {_text(ret)}") + "\n")
        return 0
    if args.action == "profile":
        obis = Obis.parse(args.obis)
        bar = _Bar()
        if args.entries:
            a, _, b = args.entries.partition("..")
            try:
                first, last = int(a), int(b or 0)
            except ValueError:
                raise UsageError("--entries is N..M") from None
            columns, rows = client.profile_by_entry(obis, first, last, progress=bar)
        else:
            if not args.start:
                raise UsageError("profile needs --from (and --to) or --entries")
            try:
                start = datetime.fromisoformat(args.start)
                end = datetime.fromisoformat(args.end) if args.end else client.read_clock().replace(tzinfo=None)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            columns, rows = client.profile_by_range(obis, start, end, progress=bar)
        bar.done()
        header = [f"{c}/{ln}:{a}" for c, ln, a, _ in columns]
        if args.csv:
            w = csv.writer(out)
            w.writerow(header)
            for row in rows:
                w.writerow([_text(v) for v in row])
        elif args.json:
            json.dump({"columns": header, "rows": [[to_json(v) for v in row] for row in rows]}, out)
            out.write("\n")
        else:
            out.write("  ".join(header) + "\n")
            for row in rows:
                out.write("  ".join(_text(v) for v in row) + "\n")
        return 0
    raise UsageError(f"unknown action {args.action}")


def _main(args) -> int:
    prog = f"bijli {args.action}"
    try:
        if args.action in ("write", "call") and args.value:
            parse_value(args.value)  # a typo should not cost an association
        client = connect(args)
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except (DlmsError, OSError, TimeoutError, ValueError) as exc:
        print(f"{prog}: cannot associate: {exc}", file=sys.stderr)
        return 1
    try:
        return _run(args, client)
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except (DlmsError, OSError, TimeoutError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    finally:
        close_client(client)
