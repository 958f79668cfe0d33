"""The storm's vending system: one credit token per meter, offline, from the manifest.

Each manifest row carries the meter's STS key parameters (IEC 62055-41: vending key,
PAN, SGC, TI, KRN, KT, EA, DKGA, base date); the decoder key is derived from them
exactly as ``bijli token vend`` does (:class:`bijli.firmware.sts.config.StsConfig`),
and the amount is planned the same way (the largest amount a token carries not above
the request, :func:`bijli.firmware.sts.vend.plan_credit`). TIDs come from the vending
tool's own per-meter journal (:mod:`bijli.tools.vend_journal`), so a storm never
reissues a TID that ``bijli token vend`` or an earlier storm gave the same meter.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bijli.firmware.errors import FirmwareError
from bijli.firmware.sts import vend as sts_vend
from bijli.firmware.sts.config import StsConfig
from bijli.firmware.sts.tid import datetime_from_tid, tid_from_datetime
from bijli.tools import vend_journal
from bijli.tools.storm import ManifestError, StormError

CURRENCY_SUBCLASS = 4  # class 0 subclass 4: electricity, currency (the demo meter keeps credit in INR)
_STS_KEYS = ("vending_key", "pan", "sgc", "ti", "krn", "kt", "ea", "dkga", "base", "ken", "currency_crc")


def plan(amount: "str | Decimal") -> sts_vend.CreditPlan:
    """What one token carries for ``amount`` INR: the largest amount a token carries not
    above it (the summary says so when that is less); the verification counts that value."""
    try:
        return sts_vend.plan_credit(amount, CURRENCY_SUBCLASS)
    except FirmwareError as exc:
        raise StormError(f"--amount {amount}: {exc}") from None


def paisa(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


def sts_config(row: dict) -> StsConfig:
    try:
        table = {k: row["sts"][k] for k in _STS_KEYS if k in row["sts"]}
        return StsConfig.from_table(table)
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"meter {row.get('serial')}: no STS vending parameters ({exc})") from None
    except FirmwareError as exc:
        raise ManifestError(f"meter {row.get('serial')}: {exc}") from None


def vend(rows: list[dict], credit: sts_vend.CreditPlan, when: datetime, journal_path: "str | Path") -> list[dict]:
    """A ``vended`` journal record per row: the token's digits, TID and value."""
    tids = vend_journal.VendJournal(journal_path)
    plans = []
    for row in rows:
        cfg = sts_config(row)
        key = cfg.vend_key()
        meter_id = f"{cfg.vending.pan.digits}@{key.base}"  # the key ``bijli token vend`` journals under
        plans.append((row, cfg, key, meter_id))
    out = []
    try:
        # one reservation for the whole fleet: the journal is read and written once
        with tids.reserve_many([(m, tid_from_datetime(when, key.base), 1) for _, _, key, m in plans]) as got:
            for (row, cfg, key, _), r in zip(plans, got):
                try:
                    token = sts_vend.vend_planned_credit(key, credit, time=datetime_from_tid(r.first, key.base),
                                                         currency_crc=cfg.currency_crc)
                except FirmwareError as exc:
                    raise StormError(f"meter {row['serial']}: cannot vend: {exc}") from None
                out.append({"kind": "vended", "meter": row["serial"], "token": token.digits, "tid": token.tid,
                            "value_paisa": paisa(credit.value)})
    except vend_journal.VendJournalError as exc:
        raise StormError(f"cannot vend: {exc}") from None
    return out
