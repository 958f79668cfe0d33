"""`bijli token`: vend STS tokens for a meter and read tokens back.

A thin shell over :mod:`firmware.sts` (IEC 62055-41 as publicly described): the
key comes from ``--config meter.toml`` (its ``[sts]`` table), from key flags
(``--vk --pan --sgc --ti --krn --kt --ea --dkga --base`` or ``--decoder-key``),
or, with neither, from the demo meter's defaults; flags override the file.
``vend`` builds credit, power-limit, clear-credit, clear-tamper, key-change and
test tokens (``--time`` and ``--rnd`` make them reproducible, ``--count N`` vends
N tokens with consecutive-minute TIDs a meter accepts in order); ``decode`` prints
the fields of one or more tokens. With ``--json`` one token prints as an object
and several as a list.

Two promises a vending point keeps. Money: a credit token carries the largest
amount not above the request (the 16-bit amount field cannot hold every value) and
the line says what is left over; ``--exact`` refuses such a request instead.
TIDs: a per-meter journal (:mod:`tools.vend_journal`, ``--journal``) keeps the last
TID issued, so a second vend in the same minute, or with the clock set back, moves
to the next free minute and says so rather than issuing a TID the meter has used.
``--no-journal`` turns that off (for reproducing published vectors).

Only the standard library and ``firmware.sts`` load with this module, so a
``bijli token decode`` starts quickly; the journal loads when a vend needs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import datetime
from decimal import Decimal

from bijli.firmware.errors import ConfigError, FirmwareError
from bijli.firmware.sts.errors import VendError
from bijli.firmware.sts.config import StsConfig
from bijli.firmware.sts.crc import DEFAULT_CURRENCY_CRC, CrcCVariant
from bijli.firmware.sts.inspector import NAMES, amount_of, inspect_token
from bijli.firmware.sts.keys import DecoderKey
from bijli.firmware.sts.results import TestRequest
from bijli.firmware.sts.tid import datetime_from_tid, next_base, tid_from_datetime

# flag dest -> [sts] table key
_KEY_FLAGS = {
    "vk": "vending_key", "decoder_key": "decoder_key", "pan": "pan", "sgc": "sgc", "ti": "ti",
    "krn": "krn", "kt": "kt", "ea": "ea", "dkga": "dkga", "base": "base", "ken": "ken",
    "currency_crc": "currency_crc",
}  # fmt: skip
_FLAG_OF_KEY = {table: "--" + dest.replace("_", "-") for dest, table in _KEY_FLAGS.items()}


def _add_key_flags(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS if suppress else None
    g = p.add_argument_group("meter key (default: the demo meter)")
    g.add_argument("--config", metavar="FILE", default=d, help="meter TOML; its [sts] table gives the key")
    g.add_argument("--vk", metavar="HEX", default=d, help="vending key")
    g.add_argument("--decoder-key", metavar="HEX", default=d, help="the meter's decoder key itself")
    g.add_argument("--pan", default=d, help="meter PAN, 18 digits")
    g.add_argument("--sgc", default=d, help="supply group code, 6 digits")
    g.add_argument("--ti", default=d, help="tariff index, 2 digits")
    g.add_argument("--krn", type=int, default=d, help="key revision number")
    g.add_argument("--kt", type=int, default=d, help="key type 0..3")
    g.add_argument("--ea", choices=("07", "09", "11"), default=d, help="encryption algorithm")
    g.add_argument("--dkga", choices=("02", "04"), default=d, help="decoder key generation algorithm")
    g.add_argument("--base", type=int, choices=(1993, 2014, 2035), default=d, help="TID base date")
    g.add_argument("--ken", type=int, default=d, help="key expiry number (255 = never)")
    g.add_argument("--currency-crc", choices=[v.value for v in CrcCVariant], default=d,
                   help="the CRC rule of currency tokens, the meter's [sts] currency_crc setting "
                        f"(default {DEFAULT_CURRENCY_CRC.value}; see README, STS tokens)")
    p.add_argument("--json", action="store_true", default=d, help="print JSON")


def _add_vend_flags(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS if suppress else None
    p.add_argument("--time", metavar="ISO", default=d, help="vend time for the TID (default: now)")
    p.add_argument("--rnd", type=int, default=d, help="the 4-bit random field 0..15")
    p.add_argument("--count", type=int, default=d if suppress else 1, help="vend N tokens, TIDs a minute apart")
    p.add_argument("--journal", metavar="FILE", default=d,
                   help="the per-meter last-TID journal (default: $BIJLI_VEND_JOURNAL or "
                        "$XDG_STATE_HOME/bijli/vend-journal.json)")
    p.add_argument("--no-journal", action="store_true", default=d if suppress else False,
                   help="do not read or record TIDs (two vends in one minute then collide)")


def register(subparsers) -> None:
    token = subparsers.add_parser("token", help="vend and decode STS tokens")
    sub = token.add_subparsers(dest="token_command", required=True)

    vend = sub.add_parser("vend", help="build tokens for a meter")
    _add_key_flags(vend, False)
    _add_vend_flags(vend, False)
    kinds = vend.add_subparsers(dest="kind", required=True)

    def kind(name: str, help_text: str) -> argparse.ArgumentParser:
        p = kinds.add_parser(name, help=help_text)
        _add_key_flags(p, True)  # accept the shared flags after the kind as well
        _add_vend_flags(p, True)
        return p

    credit = kind("credit", "class 0 credit transfer")
    amount = credit.add_mutually_exclusive_group(required=True)
    amount.add_argument("--kwh", help="electricity in kWh (rounded up to 0.1 kWh)")
    amount.add_argument("--amount", help="money for electricity (subclass 4), or the --subclass's unit")
    credit.add_argument("--subclass", type=int, default=None, choices=range(8),
                        help="0 electricity kWh .. 4 electricity currency .. 7 time currency "
                             "(default: 4 with --amount, as the demo meter keeps credit in INR)")
    credit.add_argument("--exact", action="store_true",
                        help="refuse an amount no token carries exactly (default: vend the largest amount "
                             "not above it and print the remainder)")
    kind("power-limit", "set maximum power limit").add_argument("--watts", type=int, required=True)
    kind("phase-unbalance", "set maximum phase power unbalance limit").add_argument("--watts", type=int, required=True)
    kind("clear-credit", "clear credit").add_argument("--register", type=_int_any, default=0xFFFF,
                                                      help="register (default 0xFFFF = all)")  # fmt: skip
    kind("clear-tamper", "clear tamper condition")
    kc = kind("key-change", "key-change section tokens (encrypted with the current key)")
    kc.add_argument("--to-ti", help="new tariff index")
    kc.add_argument("--to-krn", type=int, help="new key revision number")
    kc.add_argument("--to-kt", type=int, help="new key type")
    kc.add_argument("--to-sgc", help="new supply group code (128-bit keys only)")
    kc.add_argument("--to-vk", metavar="HEX", help="new vending key")
    kc.add_argument("--to-decoder-key", metavar="HEX", help="new decoder key, given directly")
    kc.add_argument("--to-ken", type=int, help="new key expiry number (default 255 = never)")
    kc.add_argument("--rollover", action="store_true", help="set RO: clear TID memory, move to the next base date")
    test = kind("test", "class 1 test/display token (not encrypted, any meter of that manufacturer)")
    test.add_argument("--control", type=_hex, required=True,
                      help="control bits, hex (36 bits in subclass 0, 28 in subclass 1; bit 0 = test all)")
    test.add_argument("--mfr", type=int, default=0,
                      help="manufacturer code: 2 digits (8 bits) in subclass 0, 4 digits (16 bits) in subclass 1")
    test.add_argument("--subclass", type=int, choices=(0, 1), default=None,
                      help="0: 2-digit manufacturer code, 1: 4-digit (default: 0 when the values fit)")
    vend.set_defaults(func=_main)

    decode = sub.add_parser("decode", help="print the fields of tokens")
    _add_key_flags(decode, False)
    decode.add_argument("tokens", nargs="+", metavar="TOKEN", help="20-digit token (spaces allowed if quoted)")
    decode.set_defaults(func=_main)


def _int_any(s: str) -> int:
    return int(s, 0)


def _hex(s: str) -> int:
    try:
        return int(s, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a hex number") from None


# --- key material ---------------------------------------------------------------


def load_config(args) -> StsConfig:
    table: dict = {}
    if getattr(args, "config", None):
        import tomllib  # only with --config: a decode with the demo's or the flags' key parses no TOML

        with open(args.config, "rb") as f:
            table = dict(tomllib.load(f).get("sts", {}))
    for dest, key in _KEY_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            table[key] = value
    if "decoder_key" in table:  # flags choose the key form; drop the other form's fields
        if args.decoder_key is not None:
            for k in ("vending_key", "pan", "dkga"):
                table.pop(k, None)
    elif args.vk is not None:
        table.pop("decoder_key", None)
    return StsConfig.from_table(table)


def _explain(exc: ConfigError, args) -> str:
    name = exc.key.split(".", 1)[-1]
    where = _FLAG_OF_KEY.get(name, exc.key)
    source = f" (or {args.config} [sts].{name})" if getattr(args, "config", None) else ""
    return f"{where}{source}: {str(exc).split(': ', 1)[-1]}"


# --- vend -------------------------------------------------------------------------


def _vend(args, cfg: StsConfig) -> list[dict]:
    """The vended tokens as rows (what ``--json`` prints)."""
    from bijli.firmware.sts import vend as v  # vends only: decode does not load the vending side

    key = cfg.vend_key()
    if args.kind == "key-change":
        return [_describe_vended(t, key) for t in v.vend_key_change(key, _new_key(args, cfg), rollover=args.rollover)]
    if args.kind == "test":
        return [_describe_vended(v.vend_test(args.control, args.mfr, args.subclass), key)]
    count = args.count
    if count < 1:
        raise VendError("--count must be at least 1")
    make = _transfer_maker(args, cfg, key)
    when = (datetime.fromisoformat(args.time).replace(tzinfo=None) if args.time
            else datetime.now().replace(second=0, microsecond=0))  # fmt: skip
    wanted = tid_from_datetime(when, key.base)
    if args.no_journal:
        return [_tid_row(make(datetime_from_tid(wanted + i, key.base)), key, wanted + i) for i in range(count)]
    from bijli.tools.vend_journal import VendJournal

    journal = VendJournal(args.journal or _default_journal())
    with journal.reserve(_meter_id(cfg, key), wanted, count) as r:
        # built while the journal is held; they are printed only once it is written
        return [_tid_row(make(datetime_from_tid(r.first + i, key.base)), key, wanted + i) for i in range(count)]


def _default_journal():
    from bijli.tools.vend_journal import default_path

    return default_path()


def _meter_id(cfg: StsConfig, key: DecoderKey) -> str:
    """Whose TIDs a journal entry holds: the meter PAN (or its decoder key's digest) and base date."""
    if cfg.vending is not None:
        return f"{cfg.vending.pan.digits}@{key.base}"
    import hashlib

    return f"key:{hashlib.sha256(key.key).hexdigest()[:16]}@{key.base}"


def _transfer_maker(args, cfg: StsConfig, key: DecoderKey):
    """time -> token for the TID-carrying kinds; credit is planned once for all ``--count`` tokens."""
    from bijli.firmware.sts import vend as v

    rnd = args.rnd
    if args.kind == "credit":
        if args.kwh is not None:
            value, subclass = args.kwh, 0 if args.subclass is None else args.subclass
        else:
            value, subclass = args.amount, 4 if args.subclass is None else args.subclass
        plan = v.plan_credit(value, subclass, exact=args.exact)

        def credit(t):
            token = v.vend_planned_credit(key, plan, time=t, rnd=rnd, currency_crc=cfg.currency_crc)
            return token, plan

        return credit
    if args.kind == "power-limit":
        return lambda t: (v.vend_power_limit(key, args.watts, time=t, rnd=rnd), None)
    if args.kind == "phase-unbalance":
        return lambda t: (v.vend_phase_unbalance_limit(key, args.watts, time=t, rnd=rnd), None)
    if args.kind == "clear-credit":
        return lambda t: (v.vend_clear_credit(key, args.register, time=t, rnd=rnd), None)
    if args.kind == "clear-tamper":
        return lambda t: (v.vend_clear_tamper(key, time=t, rnd=rnd), None)
    raise VendError(f"unknown token kind {args.kind!r}")


def _tid_row(made, key: DecoderKey, wanted_tid: int) -> dict:
    token, plan = made
    d = _describe_vended(token, key)
    d["requested_time"] = datetime_from_tid(wanted_tid, key.base).isoformat(timespec="minutes")
    d["tid_bumped"] = token.tid != wanted_tid
    if plan is not None:
        d["requested"] = _json_number(plan.requested)
        d["remainder"] = _json_number(plan.remainder)
    return d


def _new_key(args, cfg: StsConfig) -> DecoderKey:
    cur = cfg.decoder_key
    base = next_base(cur.base) if args.rollover else cur.base
    if base is None:
        raise VendError(f"no base date after {cur.base} to roll over to")
    ti = args.to_ti if args.to_ti is not None else cur.ti
    krn = args.to_krn if args.to_krn is not None else cur.krn
    kt = args.to_kt if args.to_kt is not None else cur.kt
    sgc = args.to_sgc if args.to_sgc is not None else cur.sgc
    ken = args.to_ken if args.to_ken is not None else 0xFF
    if args.to_decoder_key:
        return DecoderKey(bytes.fromhex(args.to_decoder_key), cur.ea, kt, krn, ti, sgc, base, ken)
    if cfg.vending is None:
        raise VendError("key-change needs --to-decoder-key when the meter key is given as a decoder key")
    vk = bytes.fromhex(args.to_vk) if args.to_vk else cfg.vending.vk
    new = dataclasses.replace(cfg.vending, vk=vk, ti=ti, krn=krn, kt=kt, sgc=sgc, base=base, ken=ken)
    return new.decoder_key()


def _describe_vended(t, key: DecoderKey) -> dict:
    """A :class:`firmware.sts.vend.VendedToken` as a JSON row."""
    d = {"token": t.digits, "class": t.token_class, "subclass": t.subclass,
         "what": NAMES.get((t.token_class, t.subclass), "reserved"), "rnd": t.rnd, "tid": t.tid,
         "time": None if t.tid is None else datetime_from_tid(t.tid, key.base).isoformat(timespec="minutes"),
         "amount_field": t.amount_field, "amount": None, "unit": None}  # fmt: skip
    if t.amount_field is not None:
        amount, d["unit"] = amount_of(t.token_class, t.subclass, t.amount_field)
        d["amount"] = _json_number(amount)
    return d


def _json_number(x):
    if isinstance(x, Decimal):
        return int(x) if x == x.to_integral_value() else float(x)
    return x


def _print_vended(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=1))
        return
    for r in rows:
        print(_vended_line(r))


def _vended_line(r: dict) -> str:
    """One receipt line: the token first (scripts take the first word), then what it carries and any caveat."""
    amount = "" if r["amount"] is None else f" {r['amount']} {r['unit']}"
    if r.get("remainder"):
        amount += (f" (asked {r['requested']} {r['unit']}: no token carries that; "
                   f"remainder {r['remainder']} {r['unit']} not vended)")
    tid = ""
    if r["tid"] is not None:
        tid = f", TID {r['tid']} ({r['time'].replace('T', ' ')}"
        if r.get("tid_bumped"):
            tid += (f"; {r['requested_time'].replace('T', ' ')} was already vended for this meter, "
                    "moved to the next free minute")
        tid += ")"
    return f"{r['token']}  {r['what']}{amount}{tid}"


# --- decode -------------------------------------------------------------------------


def _decode(args, cfg: StsConfig) -> int:
    rows, status = [], 0
    for text in args.tokens:
        try:
            info = inspect_token(cfg.decoder_key, text, cfg.currency_crc)
        except FirmwareError as exc:
            rows.append({"token": text, "error": str(exc), "crc_ok": False})
            status = 1
            continue
        rows.append(_with_extras(info))
        status |= 0 if info.crc_ok else 1
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=1))
    else:
        for r in rows:
            print(_text_row(r))
    return status


def _with_extras(info) -> dict:
    d = info.to_json()
    f = info.fields
    if info.token_class == 1 and f is not None:
        d["control"] = f"{f.control:X}"
        d["mfr"] = f.mfr
        d["requests"] = [r.name for r in TestRequest.from_control(f.control)]
    elif f is not None and not hasattr(f, "tid"):
        d["fields"] = {k: (f"{x:X}" if k.startswith("nk") else x) for k, x in dataclasses.asdict(f).items()}
    return d


def _text_row(r: dict) -> str:
    if "error" in r:
        return f"{r['token']}: {r['error']}"
    parts = [r["token"], f"class {r['class']}", f"subclass {r['subclass']}", f"({r['what']})"]
    if r["tid"] is not None:
        parts += [f"rnd {r['rnd']}", f"tid {r['tid']}", r["time"].replace("T", " "), f"amount_field {r['amount_field']}"]
        if r["amount"] is not None:
            parts.append(f"amount {r['amount']} {r['unit']}")
    if "control" in r:
        parts += [f"control {r['control']}", f"mfr {r['mfr']}"]
    if "fields" in r:
        parts += [f"{k} {x}" for k, x in r["fields"].items()]
    parts.append("crc ok" if r["crc_ok"] else "CRC ERROR")
    return "  ".join(parts)


# --- entry --------------------------------------------------------------------------


def _main(args) -> int:
    try:
        cfg = load_config(args)
    except ConfigError as exc:
        print(f"bijli token: {_explain(exc, args)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError (tomllib loads only with --config)
        print(f"bijli token: cannot read {args.config}: {exc}", file=sys.stderr)
        return 2
    if args.token_command == "decode":
        return _decode(args, cfg)
    from bijli.tools.vend_journal import VendJournalError  # vends only: decode never loads the journal

    try:
        rows = _vend(args, cfg)
    except (FirmwareError, ValueError, VendJournalError) as exc:
        print(f"bijli token vend: {exc}", file=sys.stderr)
        return 2
    _print_vended(rows, bool(args.json))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``bijli token`` on its own (``python -m tools.token_cmd vend ...``)."""
    parser = argparse.ArgumentParser(prog="bijli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["token", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

