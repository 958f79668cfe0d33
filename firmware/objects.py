"""The meter's COSEM object list: binds live firmware state to ``dlms.cosem`` objects.

This is the one place that knows both sides: which OBIS code shows which
firmware value, with which scaler and unit (the IS 15959-2 object model of
``shared/dlms/NOTES.md``), and which association may see or change it. The
objects read the meter through closures, so every GET sees the live value and
no copy of meter state lives in the protocol stack; writes and methods call the
Meter's own inputs (``enter_token``, ``remote_relay``, ...), so a DLMS command
goes through exactly the same decisions and the same transaction as a keypad
press.

Money crosses as integers of the currency's minor unit (paisa: ``currency_scale``
-2), energy as whole Wh/varh/VAh (scaler 0), as IS 15959 meters report them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from dlms import axdr
from dlms.acse import Conformance, Mechanism
from dlms.apdu import DataAccessResult
from dlms.cosem.association import AssociationLN, AssociationPolicy, full_access, only, read_only
from dlms.cosem.base import CosemError, CosemObject
from dlms.cosem.clock import Clock
from dlms.cosem.data import Data, Register
from dlms.cosem.disconnect import DisconnectControl
from dlms.cosem.limiter import Limiter
from dlms.cosem.payment import (Account, AccountModeAndStatus, AccountStatus, Charge, ChargeType, Credit,
                                CreditStatusBit, CreditType, Currency, CurrencyUnit, PaymentMode,
                                TokenGatewayConfiguration, flags)
from dlms.cosem.profile import CaptureObjectDefinition, EntryDescriptor, ProfileGeneric, RangeDescriptor
from dlms.cosem.schedule import SpecialDay, SpecialDaysTable
from dlms.cosem.token_gateway import (DeliveryMethod, TokenGateway, TokenGatewayResult, TokenRecord,
                                      TokenStatusCode)
from dlms.cosem.units import Unit
from dlms.cosem.values import ScriptReference, ValueDefinition
from dlms.obis import Obis
from dlms.security import KeyId, SecuritySettings
from firmware import profiles as fw_profiles
from firmware.errors import FirmwareError
from firmware.events import LogKind
from firmware.prepaid import CreditStatus
from firmware.relay import Trigger

if TYPE_CHECKING:  # pragma: no cover
    from firmware.meter import Meter, TokenOutcome

CLOCK = Obis(0, 0, 1, 0, 0, 255)
LOGICAL_DEVICE_NAME = Obis(0, 0, 42, 0, 0, 255)
SERIAL_NUMBER = Obis(0, 0, 96, 1, 0, 255)
CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
ACTIVE_IMPORT = Obis(1, 0, 1, 8, 0, 255)
ACTIVE_EXPORT = Obis(1, 0, 2, 8, 0, 255)
APPARENT_IMPORT = Obis(1, 0, 9, 8, 0, 255)
APPARENT_EXPORT = Obis(1, 0, 10, 8, 0, 255)
REACTIVE_Q = [Obis(1, 0, c, 8, 0, 255) for c in (5, 6, 7, 8)]
VOLTAGE_L1 = Obis(1, 0, 32, 7, 0, 255)
CURRENT_L1 = Obis(1, 0, 31, 7, 0, 255)
ACTIVE_POWER = Obis(1, 0, 1, 7, 0, 255)
APPARENT_POWER = Obis(1, 0, 9, 7, 0, 255)
POWER_FACTOR = Obis(1, 0, 13, 7, 0, 255)
FREQUENCY = Obis(1, 0, 14, 7, 0, 255)
DISCONNECT_CONTROL = Obis(0, 0, 96, 3, 10, 255)
LIMITER = Obis(0, 0, 17, 0, 0, 255)
ACCOUNT = Obis(0, 0, 19, 0, 0, 255)
TOKEN_CREDIT = Obis(0, 0, 19, 10, 0, 255)
EMERGENCY_CREDIT = Obis(0, 0, 19, 10, 1, 255)
CONSUMPTION_CHARGE = Obis(0, 0, 19, 20, 0, 255)
TOKEN_GATEWAY = Obis(0, 0, 19, 40, 0, 255)
SPECIAL_DAYS = Obis(0, 0, 11, 0, 0, 255)
DISCONNECT_SCRIPT_TABLE = Obis(0, 0, 10, 0, 106, 255)
# IS 15959-2 prepaid data objects
METERING_MODE = Obis(0, 0, 94, 96, 19, 255)
PAYMENT_MODE = Obis(0, 0, 94, 96, 20, 255)
LAST_RECHARGE_AMOUNT = Obis(0, 0, 94, 96, 21, 255)
LAST_RECHARGE_TIME = Obis(0, 0, 94, 96, 22, 255)
TOTAL_AT_LAST_RECHARGE = Obis(0, 0, 94, 96, 23, 255)
CURRENT_BALANCE = Obis(0, 0, 94, 96, 24, 255)
CURRENT_BALANCE_TIME = Obis(0, 0, 94, 96, 25, 255)

# the public client (SAP 16) may read only these (IS 15959: identification and time)
PUBLIC_OBJECTS = (CLOCK, LOGICAL_DEVICE_NAME, SERIAL_NUMBER, CURRENT_ASSOCIATION, ACTIVE_IMPORT)

SAP_PUBLIC = 16
SAP_READER = 32
SAP_UTILITY = 48

_BASE_CONFORMANCE = (Conformance.GET | Conformance.SELECTIVE_ACCESS | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
                     | Conformance.MULTIPLE_REFERENCES)
_FULL_CONFORMANCE = (_BASE_CONFORMANCE | Conformance.SET | Conformance.ACTION | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
                     | Conformance.BLOCK_TRANSFER_WITH_ACTION | Conformance.GENERAL_PROTECTION
                     | Conformance.GENERAL_BLOCK_TRANSFER | Conformance.DATA_NOTIFICATION)

# how a token result shows in the token gateway's status (class 115 attribute 6)
_GATEWAY_STATUS = {
    "accepted": TokenStatusCode.EXECUTION_OK,
    "format_error": TokenStatusCode.FORMAT_FAILURE,
    "crc_error": TokenStatusCode.AUTHENTICATION_FAILURE,
    "overflow": TokenStatusCode.EXECUTION_FAILURE,
    "function_error": TokenStatusCode.EXECUTION_FAILURE,
}


def policies(meter: "Meter") -> list[AssociationPolicy]:
    """The three associations of an IS 15959 meter: public, meter reader (LLS), utility settings (HLS)."""
    dlms = meter.config.dlms
    return [
        AssociationPolicy(SAP_PUBLIC, "public client", Mechanism.LOWEST, None, only(PUBLIC_OBJECTS, read_only),
                          _BASE_CONFORMANCE, logical_name=Obis(0, 0, 40, 0, 1, 255)),
        AssociationPolicy(SAP_READER, "meter reader", Mechanism.LLS, dlms.reader_password, read_only,
                          _BASE_CONFORMANCE | Conformance.ACTION, logical_name=Obis(0, 0, 40, 0, 2, 255)),
        AssociationPolicy(SAP_UTILITY, "utility settings", Mechanism.HLS_GMAC, dlms.hls_secret, full_access,
                          _FULL_CONFORMANCE, ciphered=True, logical_name=Obis(0, 0, 40, 0, 3, 255)),
    ]


# --- value conversions ---------------------------------------------------------------


def _u32(value: float) -> axdr.DoubleLongUnsigned:
    return axdr.DoubleLongUnsigned(min(max(int(round(value)), 0), 0xFFFFFFFF))


def minor_units(amount: Decimal | None) -> int:
    """Money as an integer of paisa (currency_scale -2), clamped to a double-long."""
    if amount is None:
        return 0
    return max(-(2**31), min(2**31 - 1, int((Decimal(amount) * 100).to_integral_value())))


def _date_time(t: datetime | None) -> axdr.OctetString:
    if t is None:
        return axdr.OctetString(bytes([0xFF] * 9) + b"\x80\x00\xff")  # every field "not specified"
    return axdr.OctetString(axdr.CosemDateTime.from_datetime(t).encode())


# per-column encoders for profile rows, by firmware column name; anything else by Python type
_COLUMN_ENCODERS: dict[str, Callable[[Any], axdr.Data]] = {
    "voltage": lambda v: axdr.LongUnsigned(min(int(round(v * 100)), 0xFFFF)),
    "average_voltage": lambda v: axdr.LongUnsigned(min(int(round(v * 100)), 0xFFFF)),
    "current": lambda v: axdr.DoubleLong(int(round(v * 100))),
    "average_current": lambda v: axdr.DoubleLong(int(round(v * 100))),
    "power_factor": lambda v: axdr.Long(int(round(v * 1000))),
    "average_power_factor": lambda v: axdr.Long(int(round(v * 1000))),
    "frequency": lambda v: axdr.LongUnsigned(int(round(v * 100))),
    "event_code": lambda v: axdr.LongUnsigned(int(v)),
    "relay_output_state": lambda v: axdr.Boolean(bool(v)),
}


def encode_value(name: str, value: Any, kind: fw_profiles.ColumnKind) -> axdr.Data:
    """One profile cell as A-XDR, with the type and scaler its register uses."""
    if kind in (fw_profiles.ColumnKind.CAPTURE_TIME, fw_profiles.ColumnKind.TIME) or isinstance(value, datetime):
        return _date_time(value)
    if value is None:
        return axdr.NullData()
    encoder = _COLUMN_ENCODERS.get(name)
    if encoder is not None:
        return encoder(value)
    if isinstance(value, bool):
        return axdr.Boolean(value)
    if isinstance(value, Decimal):
        return axdr.DoubleLong(minor_units(value))
    if isinstance(value, (int, float)):
        number = int(round(value))
        return axdr.DoubleLongUnsigned(min(number, 0xFFFFFFFF)) if number >= 0 else axdr.DoubleLong(max(number, -2**31))
    return axdr.VisibleString(str(value).encode("ascii", "replace").decode("ascii")[:64])


class StoredProfile:
    """A firmware profile (rows in sqlite) as the ProfileSource a Profile generic reads."""

    def __init__(self, meter: "Meter", profile: fw_profiles.Profile,
                 live_row: Callable[[], dict] | None = None):
        self.meter = meter
        self.profile = profile
        self._live_row = live_row  # the instantaneous profile: a fresh snapshot, not a stored row
        self._columns = [CaptureObjectDefinition(c.class_id, Obis.parse(c.logical_name), c.attribute_index,
                                                 c.data_index) for c in profile.capture_objects]

    def capture_objects(self) -> list[CaptureObjectDefinition]:
        return list(self._columns)

    def _encode(self, row: list, columns: list[int]) -> tuple[axdr.Data, ...]:
        objs = self.profile.capture_objects
        return tuple(encode_value(objs[i].name, v, objs[i].kind) for i, v in zip(columns, row))

    def rows(self, selection) -> list[tuple[axdr.Data, ...]]:
        ncol = len(self._columns)
        if self._live_row is not None:
            values = self.profile.make_row(self.meter.now, self._live_row())
            rows = [values]
            if isinstance(selection, EntryDescriptor):
                rows = rows[selection.slice()]
                cols = list(selection.selected_columns(ncol))
                return [self._encode([r[i] for i in cols], cols) for r in rows]
            cols = list(selection.selected_columns(self._columns)) if isinstance(selection, RangeDescriptor) \
                else list(range(ncol))
            return [self._encode([r[i] for i in cols], cols) for r in rows]
        try:
            if selection is None:
                cols = list(range(ncol))
                found = self.profile.rows(self.meter.storage)
            elif isinstance(selection, RangeDescriptor):
                cols = list(selection.selected_columns(self._columns))
                found = self.profile.rows(self.meter.storage, fw_profiles.RangeDescriptor(
                    selection.column(self._columns), selection.from_value, selection.to_value, tuple(cols)))
            else:
                cols = list(selection.selected_columns(ncol))
                found = self.profile.rows(self.meter.storage, fw_profiles.EntryDescriptor(
                    selection.from_entry, selection.to_entry, selection.from_selected_value,
                    selection.to_selected_value))
        except FirmwareError as exc:
            raise CosemError(DataAccessResult.OTHER_REASON, str(exc)) from None
        return [self._encode(r, cols) for r in found]

    def entries_in_use(self) -> int:
        return 1 if self._live_row is not None else self.profile.entries_in_use(self.meter.storage)

    def profile_entries(self) -> int:
        return self.profile.capacity

    def capture_period(self) -> int:
        return self.profile.capture_period

    def reset(self) -> None:
        with self.meter.storage.transaction() as tx:
            self.profile.reset(tx)

    def capture(self) -> None:
        raise CosemError(DataAccessResult.READ_WRITE_DENIED, "captures follow the meter's schedule")


# --- the token gateway ------------------------------------------------------------------


def token_digits(token: bytes) -> str:
    """A token as it arrives over DLMS: 20 ASCII digits, or 10 octets of packed BCD."""
    if len(token) == 10 and all((b >> 4) <= 9 and (b & 0xF) <= 9 for b in token):
        return "".join(f"{b:02x}" for b in token)
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return ""  # the decoder answers format_error


def gateway_result(outcome: "TokenOutcome") -> TokenGatewayResult:
    status = _GATEWAY_STATUS.get(outcome.word, TokenStatusCode.VALIDATION_FAILURE)
    descriptions = (outcome.word.encode(),) + ((outcome.message.encode("utf-8"),) if outcome.message else ())
    return TokenGatewayResult(status, descriptions=descriptions)


def _last_token(meter: "Meter") -> TokenRecord | None:
    t = meter.last_token
    if t is None:
        return None
    method = {"keypad": DeliveryMethod.MANUAL, "console": DeliveryMethod.LOCAL,
              "optical": DeliveryMethod.LOCAL}.get(t.source, DeliveryMethod.REMOTE)
    return TokenRecord(t.digits.encode("ascii", "replace"), meter.last_token_time, method, gateway_result(t))


# --- security ------------------------------------------------------------------------------


class StoredCounters:
    """Invocation counters in the meter's non-volatile memory (a dlms.security CounterStore)."""

    KEY = "dlms_counters"

    def __init__(self, storage):
        self.storage = storage

    def load(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.storage.get(self.KEY) or {}).items()}

    def save(self, name: str, value: int) -> None:
        values = self.load()
        values[name] = int(value)
        self.storage.put(self.KEY, values)


def security_settings(meter: "Meter", on_key_change: Callable[[KeyId, bytes], None] | None = None
                      ) -> SecuritySettings:
    """Security suite 0 settings for the utility association. Keys changed over DLMS
    (key_transfer) are kept in non-volatile memory and win over the configured ones."""
    dl = meter.config.dlms
    stored = {KeyId[name]: bytes.fromhex(value) for name, value in (meter.storage.get("dlms_keys") or {}).items()}

    def keep(key_id: KeyId, key: bytes) -> None:
        keys = dict(meter.storage.get("dlms_keys") or {})
        keys[KeyId(key_id).name] = key.hex()
        meter.storage.put("dlms_keys", keys)
        if on_key_change is not None:
            on_key_change(key_id, key)

    return SecuritySettings(
        system_title=meter.config.identity.system_title,
        encryption_key=stored.get(KeyId.GLOBAL_UNICAST_ENCRYPTION, dl.encryption_key),
        authentication_key=stored.get(KeyId.AUTHENTICATION, dl.authentication_key),
        master_key=stored.get(KeyId.MASTER, dl.master_key),
        counter_store=StoredCounters(meter.storage),
        on_key_change=keep,
    )


# --- building the list --------------------------------------------------------------------


def _remote(meter: "Meter", trigger: Trigger) -> bool:
    return meter.remote_relay(trigger) is None


def build_objects(meter: "Meter", set_clock: Callable[[datetime], None] | None,
                  extra: list[CosemObject] | None = None) -> list[CosemObject]:
    """Every COSEM object of the meter, bound to ``meter``."""
    ident = meter.config.identity
    prepaid = meter.config.prepaid
    energy = lambda: meter.energy  # noqa: E731 - read at GET time, never cached
    meas = lambda: meter.measurements  # noqa: E731
    acct = lambda: meter.account  # noqa: E731
    objects: list[CosemObject] = [
        Clock(CLOCK, now=lambda: meter.now, set_time=set_clock, time_zone=ident.time_zone_minutes),
        Data(LOGICAL_DEVICE_NAME, axdr.OctetString(ident.ldn.encode("ascii"))),
        Data(SERIAL_NUMBER, axdr.VisibleString(ident.serial)),
        # energy registers: whole Wh / varh / VAh, as IS 15959 meters report them with scaler 0
        Register(ACTIVE_IMPORT, lambda: _u32(energy().active_import_wh), 0, Unit.WATT_HOUR),
        Register(ACTIVE_EXPORT, lambda: _u32(energy().active_export_wh), 0, Unit.WATT_HOUR),
        Register(APPARENT_IMPORT, lambda: _u32(energy().apparent_import_vah), 0, Unit.VOLT_AMPERE_HOUR),
        Register(APPARENT_EXPORT, lambda: _u32(energy().apparent_export_vah), 0, Unit.VOLT_AMPERE_HOUR),
        *[
            Register(obis, (lambda n=n: _u32(getattr(energy(), f"reactive_q{n}_varh"))), 0, Unit.VAR_HOUR)
            for n, obis in enumerate(REACTIVE_Q, 1)
        ],
        # instantaneous values with the scalers IS 15959 uses: V and A to 0.01, PF to 0.001
        Register(VOLTAGE_L1, lambda: axdr.LongUnsigned(min(int(round(meas().phases[0].v_rms * 100)), 0xFFFF)), -2,
                 Unit.VOLT),
        Register(CURRENT_L1, lambda: axdr.DoubleLong(int(round(meas().phases[0].i_rms * 100))), -2, Unit.AMPERE),
        Register(ACTIVE_POWER, lambda: axdr.DoubleLong(int(round(meas().total.p))), 0, Unit.WATT),
        Register(APPARENT_POWER, lambda: axdr.DoubleLong(int(round(meas().total.s))), 0, Unit.VOLT_AMPERE),
        Register(POWER_FACTOR, lambda: axdr.Long(int(round(meas().total.pf * 1000))), -3, Unit.COUNT),
        Register(FREQUENCY, lambda: axdr.LongUnsigned(int(round(meas().frequency * 100))), -2, Unit.HERTZ),
        # IS 15959-2 prepaid data objects (amounts in paisa)
        Data(METERING_MODE, lambda: axdr.Unsigned(prepaid.metering_mode)),
        Data(PAYMENT_MODE, lambda: axdr.Unsigned(int(prepaid.payment_mode))),
        Data(LAST_RECHARGE_AMOUNT, lambda: axdr.DoubleLong(minor_units(acct().last_recharge_amount))),
        Data(LAST_RECHARGE_TIME, lambda: _date_time(acct().last_recharge_time)),
        Data(TOTAL_AT_LAST_RECHARGE, lambda: axdr.DoubleLong(minor_units(acct().total_amount_at_last_recharge))),
        Data(CURRENT_BALANCE, lambda: axdr.DoubleLong(minor_units(acct().current_balance_amount))),
        Data(CURRENT_BALANCE_TIME, lambda: _date_time(acct().current_balance_time)),
        DisconnectControl(
            DISCONNECT_CONTROL,
            output_state=lambda: meter.relay.output_state,
            control_state=lambda: int(meter.relay.control_state),
            control_mode=lambda: meter.relay.control_mode,
            set_control_mode=meter.set_control_mode,
            on_remote_disconnect=lambda: _remote(meter, Trigger.REMOTE_DISCONNECT),
            on_remote_reconnect=lambda: _remote(meter, Trigger.REMOTE_RECONNECT),
        ),
        _limiter(meter),
        *_payment(meter),
        TokenGateway(TOKEN_GATEWAY, enter=lambda token, method: gateway_result(
                         meter.enter_token(token_digits(token), "dlms" if method == DeliveryMethod.REMOTE
                                           else "optical")),
                     now=lambda: meter.now, last_token=lambda: _last_token(meter)),
        SpecialDaysTable(SPECIAL_DAYS, entries=lambda: _special_days(meter)),
    ]
    # profiles: instantaneous (a live snapshot), block load, daily load, billing, event logs
    sets = meter.profiles
    objects.append(ProfileGeneric(Obis.parse(sets.instantaneous.logical_name),
                                  StoredProfile(meter, sets.instantaneous, lambda: _instantaneous(meter)),
                                  time_zone=ident.time_zone_minutes))
    for profile in (sets.block_load, sets.daily_load, sets.billing, *meter.events.profiles.values()):
        objects.append(ProfileGeneric(Obis.parse(profile.logical_name), StoredProfile(meter, profile),
                                      time_zone=ident.time_zone_minutes))
    for kind in LogKind:  # the last event code of each log (IS 15959 0.0.96.11.x.255)
        objects.append(Data(Obis(0, 0, 96, 11, int(kind), 255), lambda kind=kind: _last_event_code(meter, kind)))
    objects.extend(extra or ())
    pols = policies(meter)
    all_objects = lambda: objects  # noqa: E731 - the association lists see objects added later too
    objects.append(AssociationLN(CURRENT_ASSOCIATION, None, all_objects))
    for p in pols:
        objects.append(AssociationLN(p.logical_name, p, all_objects))
    return objects


def _limiter(meter: "Meter") -> Limiter:
    def watts(value) -> axdr.Data:
        return axdr.NullData() if value is None else axdr.DoubleLongUnsigned(int(value))

    def set_normal(value: axdr.Data) -> None:
        if isinstance(value, axdr.NullData):
            meter.set_load_limit(None)
        elif isinstance(value, axdr.INTEGER_TYPES) and value.value >= 0:
            meter.set_load_limit(value.value)
        else:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "a load limit is whole watts")

    return Limiter(
        LIMITER,
        monitored_value=ValueDefinition(3, ACTIVE_POWER, 2),
        threshold_active=lambda: watts(meter.limiter.threshold_active),
        threshold_normal=lambda: watts(meter.limiter.threshold_normal),
        set_threshold_normal=set_normal,
        threshold_emergency=lambda: watts(meter.limiter.threshold_emergency),
        min_over_threshold_duration=lambda: meter.limiter.min_over_threshold_duration,
        min_under_threshold_duration=lambda: meter.limiter.min_under_threshold_duration,
        emergency_profile_active=lambda: meter.limiter.emergency_profile_active,
        actions=lambda: _limiter_actions(),
    )


def _limiter_actions():
    from dlms.cosem.limiter import LimiterActions

    return LimiterActions(ScriptReference(DISCONNECT_SCRIPT_TABLE, 1), ScriptReference(DISCONNECT_SCRIPT_TABLE, 2))


def _payment(meter: "Meter") -> list[CosemObject]:
    cfg = meter.config.prepaid
    acct = lambda: meter.account  # noqa: E731
    currency = Currency(meter.config.tariff.currency if cfg.unit != "kWh" else "kWh", -2,
                        CurrencyUnit.CONSUMPTION if cfg.unit == "kWh" else CurrencyUnit.MONETARY)

    def credit_status() -> int:
        a = acct()
        bits = []
        if a.available_credit > 0:
            bits.append(CreditStatusBit.IN_CREDIT)
        else:
            bits.append(CreditStatusBit.OUT_OF_CREDIT)
        if a.available_credit <= cfg.low_credit_1:
            bits.append(CreditStatusBit.LOW_CREDIT)
        if a.emergency_invoked:
            bits.append(CreditStatusBit.SELECTABLE_CREDIT_IN_USE)
        return flags(*bits)

    def invoke(_status) -> None:
        reply = meter.invoke_emergency()
        if reply.startswith("refused"):
            raise CosemError(DataAccessResult.TEMPORARY_FAILURE, reply)

    return [
        Account(ACCOUNT,
                account_mode_and_status=lambda: AccountModeAndStatus(
                    PaymentMode.PREPAYMENT if int(cfg.payment_mode) == 1 else PaymentMode.CREDIT, AccountStatus.ACTIVE),
                current_credit_in_use=lambda: 2 if acct().emergency_invoked else 1,
                current_credit_status=credit_status,
                available_credit=lambda: minor_units(acct().available_credit),
                aggregated_debt=lambda: minor_units(acct().debt),
                credit_reference_list=(TOKEN_CREDIT, EMERGENCY_CREDIT),
                charge_reference_list=(CONSUMPTION_CHARGE,),
                token_gateway_configuration=(TokenGatewayConfiguration(TOKEN_CREDIT, 100),),
                currency=currency,
                low_credit_threshold=minor_units(cfg.low_credit_1),
                max_provision=0),
        Credit(TOKEN_CREDIT,
               current_credit_amount=lambda: minor_units(max(acct().balance, Decimal(0))),
               type=CreditType.TOKEN, priority=1,
               warning_threshold=minor_units(cfg.low_credit_1),
               status=lambda: int(CreditStatus.IN_USE if acct().balance > 0 else CreditStatus.ENABLED)),
        Credit(EMERGENCY_CREDIT,
               current_credit_amount=lambda: minor_units(acct().emergency_limit - acct().emergency_used
                                                         if acct().emergency_invoked else cfg.emergency_credit),
               type=CreditType.EMERGENCY, priority=2,
               limit=minor_units(cfg.emergency_credit),
               preset_credit_amount=minor_units(cfg.emergency_credit),
               credit_available_threshold=minor_units(cfg.emergency_threshold),
               status=lambda: int(acct().emergency_status),
               on_invoke_credit=invoke),
        Charge(CONSUMPTION_CHARGE,
               total_amount_paid=lambda: minor_units(acct().total_charged),
               charge_type=ChargeType.CONSUMPTION_BASED_COLLECTION, priority=1,
               unit_charge_active=lambda: _unit_charge(meter)),
    ]


def _unit_charge(meter: "Meter"):
    from dlms.cosem.payment import UnitCharge

    return UnitCharge()


def _special_days(meter: "Meter") -> list[SpecialDay]:
    out = []
    for i, (spec, _name) in enumerate(meter.config.prepaid.friendly.holidays.entries, 1):
        out.append(SpecialDay(i, axdr.CosemDate(spec.year, spec.month, spec.day, None), 1))
    return out


def _instantaneous(meter: "Meter") -> dict:
    m = meter.measurements
    e = meter.energy
    return {
        "voltage": m.phases[0].v_rms, "current": m.phases[0].i_rms, "active_power": round(m.total.p),
        "apparent_power": round(m.total.s), "power_factor": m.total.pf, "frequency": m.frequency,
        "active_import": round(e.active_import_wh), "active_export": round(e.active_export_wh),
        "apparent_import": round(e.apparent_import_vah), "md_active_import": round(meter.progress.md_w),
        "md_active_import_time": meter.progress.md_time, "balance_amount": meter.account.balance,
        "relay_output_state": meter.relay.output_state, "load_limit": meter.limiter.threshold_active,
    }


def _last_event_code(meter: "Meter", kind: LogKind) -> axdr.Data:
    rows = meter.events.events(meter.storage, kind)
    return axdr.LongUnsigned(int(rows[-1].code) if rows else 0)
