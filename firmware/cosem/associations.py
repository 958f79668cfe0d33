"""The associations and their secrets: who may see and change what, with which keys.

The three application associations of an IS 15959 meter (IEC 62056-5-3 / Blue Book
Association LN, IC 15): the public client (SAP 16, no security, identification and
time only), the meter reader (SAP 32, LLS password, read-only) and the utility
settings client (SAP 48, HLS mechanism 5 GMAC, security suite 0, ciphered). A secret
or key changed over DLMS (change_secret, key_transfer) is kept in the meter's
non-volatile memory and wins over the configured one; so are the invocation counters
(the dlms.security CounterStore) and the utility client's invocation counter object
0.0.43.1.3.255. The public and reader associations (.1, .2) are not ciphered, so they
have no counter to resynchronise. The association lockout (:mod:`dlms.lockout`: which
peers back off, and for how long) is kept there too (:func:`lockout`), so a restart,
or a fleet evicting the meter, does not wipe it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from bijli.dlms import axdr
from bijli.dlms.acse import Conformance, Mechanism
from bijli.dlms.cosem.association import AssociationPolicy, full_access, only, read_only
from bijli.dlms.cosem.data import Data
from bijli.dlms.errors import CounterStoreError, LockoutError
from bijli.dlms.lockout import Lockout, LockoutPolicy, LockoutRecord
from bijli.dlms.security import KeyId, SecuritySettings
from bijli.firmware.cosem.catalogue import (PUBLIC_ASSOCIATION, PUBLIC_OBJECTS, READER_ASSOCIATION, SAP_PUBLIC,
                                            SAP_READER, SAP_UTILITY, UTILITY_ASSOCIATION)
from bijli.firmware.errors import FirmwareError, StorageError
from bijli.firmware.events import EventCode
from bijli.firmware.records import from_record, to_record

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter, MeterConfig
    from bijli.firmware.storage import NonVolatileMemory

_BASE_CONFORMANCE = (Conformance.GET | Conformance.SELECTIVE_ACCESS | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
                     | Conformance.MULTIPLE_REFERENCES)
_FULL_CONFORMANCE = (_BASE_CONFORMANCE | Conformance.SET | Conformance.ACTION | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
                     | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.GENERAL_PROTECTION
                     | Conformance.GENERAL_BLOCK_TRANSFER | Conformance.DATA_NOTIFICATION)

SECRETS_KEY = "dlms_secrets"  # the changed secrets, by client SAP
KEYS_KEY = "dlms_keys"  # the keys changed by key_transfer, by KeyId name


def store_secret(meter: "Meter", policy: AssociationPolicy) -> None:
    """Keep an association's changed secret in non-volatile memory (it wins over the config),
    in one transaction with the event that records the change."""
    secrets = dict(meter.storage.get(SECRETS_KEY) or {})
    secrets[str(policy.client_sap)] = policy.secret.hex()
    meter.keep_setting(SECRETS_KEY, secrets, EventCode.LLS_SECRET_CHANGED if policy.mechanism == Mechanism.LLS
                       else EventCode.HLS_KEY_CHANGED, detail=f"client SAP {policy.client_sap}")


def policies(meter: "Meter") -> list[AssociationPolicy]:
    """The three associations of an IS 15959 meter: public, meter reader (LLS), utility settings (HLS).
    A secret changed over DLMS (kept in the meter's memory) wins over the configured one."""
    dlms = meter.config.dlms
    stored = {int(sap): bytes.fromhex(value) for sap, value in (meter.storage.get(SECRETS_KEY) or {}).items()}
    reader_password = stored.get(SAP_READER, dlms.reader_password)
    return [
        AssociationPolicy(SAP_PUBLIC, "public client", Mechanism.LOWEST, None, only(PUBLIC_OBJECTS, read_only),
                          _BASE_CONFORMANCE, logical_name=PUBLIC_ASSOCIATION),
        AssociationPolicy(SAP_READER, "meter reader", Mechanism.LLS, reader_password, read_only,
                          _BASE_CONFORMANCE | Conformance.ACTION, logical_name=READER_ASSOCIATION),
        AssociationPolicy(SAP_UTILITY, "utility settings", Mechanism.HLS_GMAC, dlms.hls_secret, full_access,
                          _FULL_CONFORMANCE, ciphered=True, logical_name=UTILITY_ASSOCIATION),
    ]


LOCKOUT_KEY = "dlms_lockout"  # the association lockout table (dlms.lockout.LockoutRecord)


def lockout(meter: "Meter", now: float, on_error: Callable[[Exception], None] | None = None) -> Lockout:
    """The association lockout with the meter's ``[dlms]`` numbers, its table as the meter
    last kept it (``now``: the server's clock, monotonic seconds), and every change kept
    again as it happens (one transaction per judged failure or cleared peer, never per
    refused AARQ). A record that does not read back is a StorageError, as for any
    other state. A change that cannot be kept (the disk is full) goes to ``on_error``
    and the table in RAM still holds it."""
    dl = meter.config.dlms
    policy = LockoutPolicy(allowance=dl.lockout_after, max_delay=dl.lockout_minutes * 60.0)

    def keep(record: LockoutRecord) -> None:
        try:
            meter.keep_setting(LOCKOUT_KEY, to_record(record))
        except FirmwareError as exc:
            if on_error is None:
                raise
            on_error(exc)

    table = Lockout(policy, on_change=keep)
    stored = meter.storage.get(LOCKOUT_KEY)
    if stored is not None:
        try:
            table.restore(from_record(LockoutRecord, stored), now)
        except LockoutError as exc:
            raise StorageError(f"stored {LOCKOUT_KEY} is corrupt: {exc}") from None
    return table


class StoredCounters:
    """Invocation counters in the meter's non-volatile memory (a dlms.security CounterStore),
    each update one meter transaction."""

    KEY = "dlms_counters"

    def __init__(self, meter: "Meter"):
        self.meter = meter

    def load(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.meter.storage.get(self.KEY) or {}).items()}

    def record(self, exact: dict[str, int]) -> dict[str, int]:
        """The stored record with ``exact`` values over it: what a clean stop commits with the
        meter's last step (:meth:`Meter.shutdown`'s settings) instead of a save per counter."""
        return {**self.load(), **{str(k): int(v) for k, v in exact.items()}}

    def save(self, name: str, value: int) -> None:
        self.save_many({name: value})

    def save_many(self, values: dict[str, int]) -> None:
        """Every counter in ``values`` in one meter transaction."""
        kept = self.load()
        kept.update((name, int(value)) for name, value in values.items())
        try:
            self.meter.keep_setting(self.KEY, kept)
        except StorageError as exc:  # a full disk: the server refuses what needs the counter, for now
            raise CounterStoreError(f"invocation counters {', '.join(values)} not kept: {exc}") from exc


def security_settings(meter: "Meter", on_key_change: Callable[[KeyId, bytes], None] | None = None
                      ) -> SecuritySettings:
    """Security suite 0 settings for the utility association. Keys changed over DLMS
    (key_transfer) are kept in non-volatile memory and win over the configured ones."""
    def keep(key_id: KeyId, key: bytes) -> None:
        keys = dict(meter.storage.get(KEYS_KEY) or {})
        keys[KeyId(key_id).name] = key.hex()
        meter.keep_setting(KEYS_KEY, keys)
        if on_key_change is not None:
            on_key_change(key_id, key)

    return SecuritySettings(**_utility_keys(meter.config, meter.storage), counter_store=StoredCounters(meter),
                            on_key_change=keep)


def utility_security(config: "MeterConfig", storage: "NonVolatileMemory | None") -> SecuritySettings:
    """The utility association's security as a meter's memory holds it, for a meter that is
    not running (a fleet's manifest): the same keys :func:`security_settings` gives its
    server, with no counter store and nothing kept. ``config``: the meter's settings (its
    ``identity`` and ``dlms`` are read); ``storage`` None: a meter with no memory yet,
    hence its configured keys."""
    return SecuritySettings(**_utility_keys(config, storage))


def _utility_keys(config: "MeterConfig", storage: "NonVolatileMemory | None") -> dict:
    dl = config.dlms
    record = storage.get(KEYS_KEY) if storage is not None else None
    stored = {KeyId[name]: bytes.fromhex(value) for name, value in (record or {}).items()}
    return {"system_title": config.identity.system_title,
            "encryption_key": stored.get(KeyId.GLOBAL_UNICAST_ENCRYPTION, dl.encryption_key),
            "authentication_key": stored.get(KeyId.AUTHENTICATION, dl.authentication_key),
            "master_key": stored.get(KeyId.MASTER, dl.master_key)}


class InvocationCounter(Data):
    """0.0.43.1.3.255: the lowest invocation counter the utility association accepts next.
    Read inside the ciphered association it is that client's own; read by anyone else
    it is the highest over every client system title seen, which any of them may use."""

    def __init__(self, logical_name, security: SecuritySettings):
        super().__init__(logical_name, axdr.DoubleLongUnsigned(0))
        self.security = security

    def get_value(self, ctx) -> axdr.Data:
        counters = self.security.counters
        title = getattr(getattr(ctx, "association", None), "client_system_title", None)
        if title:
            expected = counters.expected_rx(title)
        else:
            titles = [bytes.fromhex(name[3:]) for name in counters.store.load() if name.startswith("rx:")]
            expected = max((counters.expected_rx(t) for t in titles), default=0)
        return axdr.DoubleLongUnsigned(min(expected, 0xFFFFFFFF))
