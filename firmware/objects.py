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
Every measured quantity has one entry in :data:`QUANTITIES` (A-XDR type, scaler,
unit): the registers, the profile cells and the scaler profiles
(1.0.94.91.3..7.255) all come from it, so a value and the scaler a head-end
applies to it cannot disagree.

Choices where IS 15959 field practice gives no number (bijli's own, documented
here): name plate meter type 5 = single phase two wire, 6 = three phase four wire;
category "D2" (single phase) / "C" (three phase whole current); current rating
"Ib-Imax A"; year of manufacture = the year the meter's memory was first
initialised; manufacturer name = the FLAG id. The invocation counter object is
0.0.43.1.3.255 only: the public and reader associations (.1, .2) are not
ciphered, so they have no counter to resynchronise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from bijli.dlms import axdr
from bijli.dlms.acse import Conformance, Mechanism
from bijli.dlms.apdu import ActionResult, DataAccessResult
from bijli.dlms.cosem.association import AssociationLN, AssociationPolicy, full_access, only, read_only
from bijli.dlms.cosem.base import Context, CosemError, CosemObject
from bijli.dlms.cosem.clock import Clock
from bijli.dlms.cosem.data import Data, ExtendedRegister, Register
from bijli.dlms.cosem.disconnect import DisconnectControl
from bijli.dlms.cosem.limiter import Limiter, LimiterActions
from bijli.dlms.cosem.payment import (Account, AccountModeAndStatus, AccountStatus, Charge, ChargeTableElement, ChargeType,
                                Credit, CreditStatusBit, CreditType, Currency, CurrencyUnit, PaymentMode,
                                TokenGatewayConfiguration, UnitCharge, flags)
from bijli.dlms.cosem.profile import CaptureObjectDefinition, EntryDescriptor, ProfileGeneric, RangeDescriptor
from bijli.dlms.cosem.push import PushSetup, SendDestinationAndMethod, TransportService, MessageType
from bijli.dlms.cosem.security_setup import SecuritySetup
from bijli.dlms.cosem.schedule import (ActionSpecification, ActivityCalendar, DayProfile, DayProfileAction, ExecutionTime,
                                 ScheduleType, Script, ScriptTable, SeasonProfile, ServiceId, SingleActionSchedule,
                                 SpecialDay, SpecialDaysTable, WeekProfile)
from bijli.dlms.cosem.setup import BaudRate, IecHdlcSetup, IecLocalPortSetup, SapAssignment, SapAssignmentObject, TcpUdpSetup
from bijli.dlms.cosem.token_gateway import (DeliveryMethod, TokenGateway, TokenGatewayResult, TokenRecord,
                                      TokenStatusCode)
from bijli.dlms.cosem.units import Unit
from bijli.dlms.cosem.values import ScriptReference, ValueDefinition, date_time_octets
from bijli.dlms.obis import Obis
from bijli.dlms.security import KeyId, SecuritySettings
from bijli.firmware import profiles as fw_profiles
from bijli.firmware.errors import FirmwareError
from bijli.firmware.events import EventCode, LogKind, event_log_profile
from bijli.firmware.push import PushError, PushOutbox
from bijli.firmware.tariff import EnergyKind
from bijli.firmware.prepaid import CreditStatus
from bijli.firmware.relay import Trigger

if TYPE_CHECKING:  # pragma: no cover
    from bijli.dlms.server import Server
    from bijli.firmware.meter import Meter, TokenOutcome

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
IEC_LOCAL_PORT_SETUP = Obis(0, 0, 20, 0, 0, 255)
BILLING_PROFILE = Obis(1, 0, 98, 1, 0, 255)
# IS 15959-2 prepaid data objects
METERING_MODE = Obis(0, 0, 94, 96, 19, 255)
PAYMENT_MODE = Obis(0, 0, 94, 96, 20, 255)
LAST_RECHARGE_AMOUNT = Obis(0, 0, 94, 96, 21, 255)
LAST_RECHARGE_TIME = Obis(0, 0, 94, 96, 22, 255)
TOTAL_AT_LAST_RECHARGE = Obis(0, 0, 94, 96, 23, 255)
CURRENT_BALANCE = Obis(0, 0, 94, 96, 24, 255)
CURRENT_BALANCE_TIME = Obis(0, 0, 94, 96, 25, 255)
BILLED_AMOUNT = Obis(0, 0, 94, 96, 26, 255)  # bijli: charges of the open billing period
# registers the profiles capture
AVERAGE_VOLTAGE = Obis(1, 0, 12, 27, 0, 255)
AVERAGE_CURRENT = Obis(1, 0, 11, 27, 0, 255)
BILLING_POWER_FACTOR = Obis(1, 0, 13, 0, 0, 255)  # average power factor of the billing period
MD_ACTIVE_IMPORT = Obis(1, 0, 1, 6, 0, 255)
MD_APPARENT_IMPORT = Obis(1, 0, 9, 6, 0, 255)
BILLING_DATE = Obis(0, 0, 0, 1, 2, 255)
# name plate (IS 15959-2 0.0.94.91.10.255 and the Data objects it captures)
NAME_PLATE = Obis(0, 0, 94, 91, 10, 255)
MANUFACTURER_NAME = Obis(0, 0, 96, 1, 1, 255)
FIRMWARE_VERSION = Obis(1, 0, 0, 2, 0, 255)
METER_TYPE = Obis(0, 0, 94, 91, 9, 255)
METER_CATEGORY = Obis(0, 0, 94, 91, 11, 255)
CURRENT_RATING = Obis(0, 0, 94, 91, 12, 255)
YEAR_OF_MANUFACTURE = Obis(0, 0, 96, 1, 4, 255)
# scaler profiles: one row of the scaler_unit of each register a profile captures
INSTANTANEOUS_SCALERS = Obis(1, 0, 94, 91, 3, 255)
BLOCK_LOAD_SCALERS = Obis(1, 0, 94, 91, 4, 255)
DAILY_LOAD_SCALERS = Obis(1, 0, 94, 91, 5, 255)
BILLING_SCALERS = Obis(1, 0, 94, 91, 6, 255)
EVENT_SCALERS = Obis(1, 0, 94, 91, 7, 255)
# schedules, calendar, communication set-up, push
BILLING_SCHEDULE = Obis(0, 0, 15, 0, 0, 255)
BILLING_SCRIPT_TABLE = Obis(0, 0, 10, 0, 1, 255)  # end of billing period / MD reset script
ACTIVITY_CALENDAR = Obis(0, 0, 13, 0, 0, 255)
TARIFFICATION_SCRIPT_TABLE = Obis(0, 0, 10, 0, 100, 255)
HDLC_SETUP = Obis(0, 0, 22, 0, 0, 255)
TCP_UDP_SETUP = Obis(0, 0, 25, 0, 0, 255)
IP_SETUP = Obis(0, 0, 25, 1, 0, 255)
SAP_ASSIGNMENT = Obis(0, 0, 41, 0, 0, 255)
UTILITY_INVOCATION_COUNTER = Obis(0, 0, 43, 1, 3, 255)
PUSH_SETUP = Obis(0, 0, 25, 9, 0, 255)

# the HDLC link the meter serves (tools.node.links uses the same figures; a test checks they agree)
HDLC_MAX_INFO = 1024
HDLC_WINDOW = 1
HDLC_INTER_OCTET_MS = 25
TCP_MSS = 1460  # Ethernet's; the wrapper frames up to max_pdu ride in several segments
WRAPPER_PORT = 4059  # IANA's DLMS/COSEM port

# the public client (SAP 16) may read only these (IS 15959: identification and time)
# and the utility client's invocation counter, so a head-end that lost track can resynchronise
# before it can associate (the way gurux and most head-ends read it)
PUBLIC_OBJECTS = (CLOCK, LOGICAL_DEVICE_NAME, SERIAL_NUMBER, CURRENT_ASSOCIATION, ACTIVE_IMPORT,
                  UTILITY_INVOCATION_COUNTER)

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


SECRETS_KEY = "dlms_secrets"


def store_secret(meter: "Meter", policy: AssociationPolicy) -> None:
    """Keep an association's changed secret in non-volatile memory (it wins over the config)."""
    secrets = dict(meter.storage.get(SECRETS_KEY) or {})
    secrets[str(policy.client_sap)] = policy.secret.hex()
    meter.storage.put(SECRETS_KEY, secrets)
    meter.record_event(EventCode.LLS_SECRET_CHANGED if policy.mechanism == Mechanism.LLS
                       else EventCode.HLS_KEY_CHANGED, detail=f"client SAP {policy.client_sap}")


def policies(meter: "Meter") -> list[AssociationPolicy]:
    """The three associations of an IS 15959 meter: public, meter reader (LLS), utility settings (HLS).
    A secret changed over DLMS (kept in the meter's memory) wins over the configured one."""
    dlms = meter.config.dlms
    stored = {int(sap): bytes.fromhex(value) for sap, value in (meter.storage.get(SECRETS_KEY) or {}).items()}
    reader_password = stored.get(SAP_READER, dlms.reader_password)
    return [
        AssociationPolicy(SAP_PUBLIC, "public client", Mechanism.LOWEST, None, only(PUBLIC_OBJECTS, read_only),
                          _BASE_CONFORMANCE, logical_name=Obis(0, 0, 40, 0, 1, 255)),
        AssociationPolicy(SAP_READER, "meter reader", Mechanism.LLS, reader_password, read_only,
                          _BASE_CONFORMANCE | Conformance.ACTION, logical_name=Obis(0, 0, 40, 0, 2, 255)),
        AssociationPolicy(SAP_UTILITY, "utility settings", Mechanism.HLS_GMAC, dlms.hls_secret, full_access,
                          _FULL_CONFORMANCE, ciphered=True, logical_name=Obis(0, 0, 40, 0, 3, 255)),
    ]


# --- value conversions ---------------------------------------------------------------


def minor_units(amount: Decimal | None) -> int:
    """Money as an integer of paisa (currency_scale -2), clamped to a double-long."""
    if amount is None:
        return 0
    return max(-(2**31), min(2**31 - 1, int((Decimal(amount) * 100).to_integral_value())))


_date_time = date_time_octets  # None: every field "not specified"


def _scaled(kind: type, scaler: int) -> Callable[[Any], axdr.Data]:
    """value -> kind(value / 10**scaler), rounded and clamped to the type's range."""
    factor = 10 ** -scaler

    def encode(value: Any) -> axdr.Data:
        return kind(min(max(int(round(float(value) * factor)), kind.min), kind.max))

    return encode


@dataclass(frozen=True)
class Quantity:
    """How one physical quantity crosses to DLMS: A-XDR type (``encode`` takes the value
    in V, A, W, Wh, ...), and the scaler_unit a register showing it carries."""

    scaler: int
    unit: Unit
    encode: Callable[[Any], axdr.Data]


def _q(kind: type, scaler: int, unit: Unit) -> Quantity:
    return Quantity(scaler, unit, _scaled(kind, scaler))


_ENERGY_UNITS = {"active": Unit.WATT_HOUR, "reactive": Unit.VAR_HOUR, "apparent": Unit.VOLT_AMPERE_HOUR}

#: every measured quantity by its firmware name (the profile column names of
#: ``firmware.profiles``): V and A to 0.01, PF to 0.001, power in W, energy in Wh
QUANTITIES: dict[str, Quantity] = {
    "voltage": _q(axdr.LongUnsigned, -2, Unit.VOLT),
    "average_voltage": _q(axdr.LongUnsigned, -2, Unit.VOLT),
    "current": _q(axdr.DoubleLong, -2, Unit.AMPERE),
    "average_current": _q(axdr.DoubleLong, -2, Unit.AMPERE),
    "power_factor": _q(axdr.Long, -3, Unit.COUNT),
    "average_power_factor": _q(axdr.Long, -3, Unit.COUNT),
    "frequency": _q(axdr.LongUnsigned, -2, Unit.HERTZ),
    "active_power": _q(axdr.DoubleLong, 0, Unit.WATT),
    "apparent_power": _q(axdr.DoubleLong, 0, Unit.VOLT_AMPERE),
    "md_active_import": _q(axdr.DoubleLongUnsigned, 0, Unit.WATT),
    "md_apparent_import": _q(axdr.DoubleLongUnsigned, 0, Unit.VOLT_AMPERE),
    **{name: _q(axdr.DoubleLongUnsigned, 0, _ENERGY_UNITS[name.split("_")[0]])
       for name in (*fw_profiles.ENERGY_NAMES, "reactive_q2", "reactive_q3")},
}

# per-column encoders for profile rows, by firmware column name; anything else by Python type
_COLUMN_ENCODERS: dict[str, Callable[[Any], axdr.Data]] = {
    **{name: q.encode for name, q in QUANTITIES.items()},
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
                 live_row: Callable[[], dict] | None = None, on_capture: Callable[[], None] | None = None):
        self.meter = meter
        self.profile = profile
        self._live_row = live_row  # the instantaneous profile: a fresh snapshot, not a stored row
        self._on_capture = on_capture  # the billing profile: capture is the billing reset
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
        if self._on_capture is None:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, "captures follow the meter's schedule")
        self._on_capture()


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
                  extra: list[CosemObject] | None = None, *, security: SecuritySettings | None = None,
                  push: PushOutbox | None = None, tcp_port: "int | Callable[[], int]" = WRAPPER_PORT,
                  on_policy_change: Callable[[AssociationPolicy], None] | None = None
                  ) -> list[CosemObject]:
    """Every COSEM object of the meter, bound to ``meter``.

    ``security`` (by default the settings of a Security setup object in ``extra``) adds
    the utility client's invocation counter; ``push`` is the outbox the Push setup
    object queues to (by default a new one from ``[push]``; :func:`push_outbox` finds
    it for the I/O shell); ``tcp_port`` is the wrapper port the TCP-UDP setup shows
    (a getter, once the listener is bound)."""
    if security is None:
        security = next((o.settings for o in extra or () if isinstance(o, SecuritySetup)), None)
    if push is None:
        push = PushOutbox(meter.config.push)
    ident = meter.config.identity
    prepaid = meter.config.prepaid
    acct = lambda: meter.account  # noqa: E731 - read at GET time, never cached
    index: dict[Obis, CosemObject] = {}
    lookup = index.__getitem__
    objects: list[CosemObject] = [
        Clock(CLOCK, now=lambda: meter.now, set_time=set_clock, time_zone=ident.time_zone_minutes),
        Data(LOGICAL_DEVICE_NAME, axdr.OctetString(ident.ldn.encode("ascii"))),
        *_registers(meter),
        *_name_plate_data(meter),
        # IS 15959-2 prepaid data objects (amounts in paisa)
        Data(METERING_MODE, lambda: axdr.Unsigned(prepaid.metering_mode)),
        Data(PAYMENT_MODE, lambda: axdr.Unsigned(int(prepaid.payment_mode))),
        Data(LAST_RECHARGE_AMOUNT, lambda: axdr.DoubleLong(minor_units(acct().last_recharge_amount))),
        Data(LAST_RECHARGE_TIME, lambda: _date_time(acct().last_recharge_time)),
        Data(TOTAL_AT_LAST_RECHARGE, lambda: axdr.DoubleLong(minor_units(acct().total_amount_at_last_recharge))),
        Data(CURRENT_BALANCE, lambda: axdr.DoubleLong(minor_units(acct().current_balance_amount))),
        Data(CURRENT_BALANCE_TIME, lambda: _date_time(acct().current_balance_time)),
        Data(BILLED_AMOUNT, lambda: axdr.DoubleLong(minor_units(meter.config.tariff.bill_so_far(meter.tariff_state)))),
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
        _billing_schedule(meter),
        _activity_calendar(meter),
        *_communication_setup(meter, tcp_port),
    ]
    # profiles: instantaneous (a live snapshot), block load, daily load, billing, event logs
    sets = meter.profiles
    objects.append(ProfileGeneric(Obis.parse(sets.instantaneous.logical_name),
                                  StoredProfile(meter, sets.instantaneous, lambda: _instantaneous(meter)),
                                  time_zone=ident.time_zone_minutes))
    for profile in (sets.block_load, sets.daily_load, sets.billing, *meter.events.profiles.values()):
        capture = meter.close_billing_now if profile is sets.billing else None
        objects.append(ProfileGeneric(Obis.parse(profile.logical_name), StoredProfile(meter, profile, on_capture=capture),
                                      time_zone=ident.time_zone_minutes))
    for kind in LogKind:  # the last event code of each log (IS 15959 0.0.96.11.x.255) and its detail
        objects.append(Data(Obis(0, 0, 96, 11, int(kind), 255), lambda kind=kind: _last_event_code(meter, kind)))
        objects.append(Data(Obis(0, 128, 96, 11, int(kind), 255), lambda kind=kind: _last_event_detail(meter, kind)))
    # snapshot profiles: name plate and the scaler profiles, read from the objects themselves
    objects.append(ProfileGeneric(NAME_PLATE, SnapshotSource(
        [CaptureObjectDefinition(1, obis, 2) for obis in NAME_PLATE_COLUMNS], lookup)))
    for obis, columns in scaler_profiles(meter).items():
        objects.append(ProfileGeneric(obis, SnapshotSource(columns, lookup)))
    if security is not None:
        objects.append(_InvocationCounter(UTILITY_INVOCATION_COUNTER, security))
    objects.append(_push_setup(meter, push, lookup))
    objects.extend(_script_tables(meter, lookup))
    objects.extend(extra or ())
    pols = policies(meter)
    all_objects = lambda: objects  # noqa: E731 - the association lists see objects added later too
    objects.append(AssociationLN(CURRENT_ASSOCIATION, None, all_objects))
    def policy_changed(policy: AssociationPolicy) -> None:
        store_secret(meter, policy)
        if on_policy_change is not None:
            on_policy_change(policy)  # the server: new associations use the new secret

    for p in pols:
        objects.append(AssociationLN(p.logical_name, p, all_objects, on_policy_change=policy_changed))
    index.update((o.logical_name, o) for o in objects)
    return objects


# --- registers ------------------------------------------------------------------------------

_ENERGY_FIELDS = {
    "active_import": "active_import_wh", "active_export": "active_export_wh",
    "reactive_lag": "reactive_q1_varh", "reactive_q2": "reactive_q2_varh", "reactive_q3": "reactive_q3_varh",
    "reactive_lead": "reactive_q4_varh", "apparent_import": "apparent_import_vah",
    "apparent_export": "apparent_export_vah",
}
_REACTIVE_Q23 = (("reactive_q2", REACTIVE_Q[1]), ("reactive_q3", REACTIVE_Q[2]))


def register(obis: Obis, name: str, read: Callable[[], Any], cls: type[Register] = Register, **kw) -> Register:
    """A register showing quantity ``name`` (scaler, unit and type from QUANTITIES);
    ``read`` returns the physical value at GET time."""
    q = QUANTITIES[name]
    return cls(obis, lambda: q.encode(read()), q.scaler, q.unit, **kw)


def _registers(meter: "Meter") -> list[CosemObject]:
    m = lambda: meter.measurements  # noqa: E731
    energy = lambda name: getattr(meter.energy, _ENERGY_FIELDS[name])  # noqa: E731

    def block(name: str) -> float:
        # the energy of the block in progress: what the block load profile will capture
        return max(energy(name) - meter.progress.block_start.get(name, energy(name)), 0.0)

    out: list[CosemObject] = [
        register(VOLTAGE_L1, "voltage", lambda: m().phases[0].v_rms),
        register(CURRENT_L1, "current", lambda: m().phases[0].i_rms),
        register(ACTIVE_POWER, "active_power", lambda: m().total.p),
        register(APPARENT_POWER, "apparent_power", lambda: m().total.s),
        register(POWER_FACTOR, "power_factor", lambda: m().total.pf),
        register(FREQUENCY, "frequency", lambda: m().frequency),
        # the running block's averages and the billing period's power factor
        register(AVERAGE_VOLTAGE, "average_voltage", lambda: meter.progress.averager.voltage),
        register(AVERAGE_CURRENT, "average_current", lambda: meter.progress.averager.current),
        register(BILLING_POWER_FACTOR, "average_power_factor", lambda: m().total.pf),
        # maximum demand of the billing period (block average power) and when it occurred
        register(MD_ACTIVE_IMPORT, "md_active_import", lambda: meter.progress.md_w, ExtendedRegister,
                 capture_time=lambda: meter.progress.md_time),
        # bijli does not track apparent demand: the billing row holds null, the register 0
        register(MD_APPARENT_IMPORT, "md_apparent_import", lambda: 0, ExtendedRegister),
        Register(BILLING_DATE, lambda: _date_time(meter.tariff_state.period_start), 0, Unit.COUNT),
    ]
    for name, cumulative, of_block in fw_profiles.ENERGY_REGISTERS:
        out.append(register(Obis.parse(cumulative), name, lambda name=name: energy(name)))
        out.append(register(Obis.parse(of_block), name, lambda name=name: block(name)))
    for name, obis in _REACTIVE_Q23:
        out.append(register(obis, name, lambda name=name: energy(name)))
    return out


# --- name plate ------------------------------------------------------------------------------

NAME_PLATE_COLUMNS = (SERIAL_NUMBER, MANUFACTURER_NAME, FIRMWARE_VERSION, METER_TYPE, METER_CATEGORY,
                      CURRENT_RATING, YEAR_OF_MANUFACTURE)


def firmware_version() -> str:
    """The bijli package version (what ``pip`` installed), as the running firmware's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bijli")
    except PackageNotFoundError:
        return "0+unknown"


def _year_of_manufacture(meter: "Meter") -> int:
    year = meter.storage.get("year_of_manufacture")
    if year is None:  # the first start of a meter is its manufacture
        year = meter.now.year
        meter.storage.put("year_of_manufacture", year)
    return int(year)


def _name_plate_data(meter: "Meter") -> list[CosemObject]:
    ident = meter.config.identity
    metro = meter.config.metrology
    three_phase = metro.phases == 3
    rating = f"{metro.basic_current:g}-{metro.max_current:g}A"
    text = lambda s: axdr.OctetString(s.encode("ascii", "replace"))  # noqa: E731
    return [
        Data(SERIAL_NUMBER, axdr.VisibleString(ident.serial)),
        Data(MANUFACTURER_NAME, text(ident.manufacturer)),
        Data(FIRMWARE_VERSION, text(firmware_version())),
        Data(METER_TYPE, axdr.Unsigned(6 if three_phase else 5)),
        Data(METER_CATEGORY, text("C" if three_phase else "D2")),
        Data(CURRENT_RATING, text(rating)),
        Data(YEAR_OF_MANUFACTURE, axdr.LongUnsigned(_year_of_manufacture(meter))),
    ]


# --- snapshot profiles: name plate and scalers ---------------------------------------------


class SnapshotSource:
    """A one-row Profile generic source whose row is read, at GET time, from the
    attributes its capture objects name (name plate, scaler profiles): nothing is
    stored, so the row always agrees with the objects."""

    def __init__(self, columns: list[CaptureObjectDefinition], lookup: Callable[[Obis], CosemObject]):
        self._columns = list(columns)
        self._lookup = lookup

    def capture_objects(self) -> list[CaptureObjectDefinition]:
        return list(self._columns)

    def rows(self, selection) -> list[tuple[axdr.Data, ...]]:
        if isinstance(selection, EntryDescriptor):
            if not [None][selection.slice()]:
                return []  # the entries asked for start after the one row
            cols = list(selection.selected_columns(len(self._columns)))
        elif isinstance(selection, RangeDescriptor):
            cols = list(selection.selected_columns(self._columns))
        else:
            cols = list(range(len(self._columns)))
        return [tuple(self._cell(self._columns[i]) for i in cols)]

    def _cell(self, c: CaptureObjectDefinition) -> axdr.Data:
        try:
            return self._lookup(c.logical_name).get(c.attribute_index, None, Context(0))
        except (KeyError, CosemError):
            return axdr.NullData()

    def entries_in_use(self) -> int:
        return 1

    def profile_entries(self) -> int:
        return 1

    def capture_period(self) -> int:
        return 0

    def reset(self) -> None:
        raise CosemError(DataAccessResult.READ_WRITE_DENIED, "a snapshot profile has nothing to reset")

    def capture(self) -> None:
        raise CosemError(DataAccessResult.READ_WRITE_DENIED, "a snapshot profile is read when it is read")


#: the attribute holding scaler_unit, by class: Register and Extended register 3, Demand register 4
_SCALER_UNIT_ATTRIBUTE = {3: 3, 4: 3, 5: 4}


def scaler_columns(profile: fw_profiles.Profile) -> list[CaptureObjectDefinition]:
    """The scaler profile columns of ``profile``: the scaler_unit of each register it captures."""
    out: list[CaptureObjectDefinition] = []
    for c in profile.capture_objects:
        attr = _SCALER_UNIT_ATTRIBUTE.get(c.class_id)
        if attr is None or c.kind is not fw_profiles.ColumnKind.VALUE:
            continue
        col = CaptureObjectDefinition(c.class_id, Obis.parse(c.logical_name), attr)
        if col not in out:
            out.append(col)
    return out


def scaler_profiles(meter: "Meter") -> dict[Obis, list[CaptureObjectDefinition]]:
    """1.0.94.91.3..7.255: the scaler profiles of the instantaneous, block load, daily
    load, billing and event profiles (the event logs all capture the same registers)."""
    sets = meter.profiles
    return {
        INSTANTANEOUS_SCALERS: scaler_columns(sets.instantaneous),
        BLOCK_LOAD_SCALERS: scaler_columns(sets.block_load),
        DAILY_LOAD_SCALERS: scaler_columns(sets.daily_load),
        BILLING_SCALERS: scaler_columns(sets.billing),
        EVENT_SCALERS: scaler_columns(event_log_profile(LogKind.VOLTAGE, 1)),
    }


# --- billing date, activity calendar ------------------------------------------------------------


def _billing_schedule(meter: "Meter") -> SingleActionSchedule:
    """The billing date: 00:00 on the tariff's billing day of every month (wildcard year and
    month). Writable with one such entry; the day is kept in the meter's memory."""
    def execution_time() -> tuple[ExecutionTime, ...]:
        return (ExecutionTime(axdr.CosemTime(0, 0, 0, 0),
                              axdr.CosemDate(None, None, meter.config.tariff.billing_day, None)),)

    def set_execution_time(times: tuple[ExecutionTime, ...]) -> None:
        if len(times) != 1:
            raise CosemError(DataAccessResult.OTHER_REASON, "the billing date is one execution time")
        t, d = times[0].time, times[0].date
        if (t.hour, t.minute, t.second or 0) != (0, 0, 0):
            raise CosemError(DataAccessResult.OTHER_REASON, "billing periods close at 00:00:00")
        if d.year is not None or d.month is not None or d.day_of_week is not None:
            raise CosemError(DataAccessResult.OTHER_REASON, "the billing date repeats monthly: wildcard year, "
                                                            "month and weekday")
        if d.day_of_month is None or not 1 <= d.day_of_month <= 28:
            raise CosemError(DataAccessResult.OTHER_REASON, "the billing day is 1..28")
        meter.set_billing_day(d.day_of_month)

    return SingleActionSchedule(BILLING_SCHEDULE, executed_script=ScriptReference(BILLING_SCRIPT_TABLE, 1),
                                type=ScheduleType.SIZE_1, execution_time=execution_time,
                                set_execution_time=set_execution_time)


def _calendar_tables(profile) -> tuple[bytes, tuple, tuple, tuple]:
    """(name, seasons, weeks, days) of a tariff profile as the Activity calendar shows them;
    empty tables for a tariff without time of day. Day ids number the day schedules in
    configuration order; a script selector numbers the tiers by first appearance."""
    tod = profile.tod if profile is not None and profile.kind is EnergyKind.TOD else None
    if tod is None:
        return (profile.kind.value.encode() if profile is not None else b""), (), (), ()
    day_ids = {name: i for i, (name, _) in enumerate(tod.days, 1)}
    tiers: dict[str, int] = {}
    for _, actions in tod.days:
        for a in actions:
            tiers.setdefault(a.name, len(tiers) + 1)
    seasons = tuple(
        SeasonProfile(f"S{i}".encode(), axdr.CosemDateTime(axdr.CosemDate(None, month, day, None),
                                                           axdr.CosemTime(0, 0, 0, 0), None, None),
                      week.encode())
        for i, ((month, day), week) in enumerate(tod.seasons, 1))
    weeks = tuple(WeekProfile(name.encode(), tuple(day_ids[d] for d in ids)) for name, ids in tod.weeks)
    days = tuple(DayProfile(day_ids[name], tuple(
        DayProfileAction(axdr.CosemTime.from_time(a.start), TARIFFICATION_SCRIPT_TABLE, tiers[a.name])
        for a in actions)) for name, actions in tod.days)
    return profile.kind.value.encode(), seasons, weeks, days


def _activity_calendar(meter: "Meter") -> ActivityCalendar:
    """A read-only view of the time-of-day tariff: the active and the passive profile."""
    active = lambda: _calendar_tables(meter.config.tariff.active)  # noqa: E731
    passive = lambda: _calendar_tables(meter.config.tariff.passive) if meter.config.tariff.passive else \
        (b"", (), (), ())  # noqa: E731
    when = meter.config.tariff.activation_time
    return ActivityCalendar(
        ACTIVITY_CALENDAR,
        calendar_name_active=lambda: active()[0], season_profile_active=lambda: active()[1],
        week_profile_table_active=lambda: active()[2], day_profile_table_active=lambda: active()[3],
        calendar_name_passive=lambda: passive()[0], season_profile_passive=lambda: passive()[1],
        week_profile_table_passive=lambda: passive()[2], day_profile_table_passive=lambda: passive()[3],
        activate_passive_calendar_time=lambda: None if when is None else axdr.CosemDateTime.from_datetime(when),
    )


# --- communication set-up --------------------------------------------------------------------


def _communication_setup(meter: "Meter", tcp_port: "int | Callable[[], int]") -> list[CosemObject]:
    dl = meter.config.dlms
    return [
        IecHdlcSetup(HDLC_SETUP, comm_speed=BaudRate.B9600, window_size_transmit=HDLC_WINDOW,
                     window_size_receive=HDLC_WINDOW, max_info_field_length_transmit=HDLC_MAX_INFO,
                     max_info_field_length_receive=HDLC_MAX_INFO, inter_octet_time_out=HDLC_INTER_OCTET_MS,
                     inactivity_time_out=min(int(dl.inactivity_timeout_s), 0xFFFF),
                     device_address=dl.hdlc_physical_address),
        TcpUdpSetup(TCP_UDP_SETUP, tcp_udp_port=tcp_port, ip_reference=bytes(IP_SETUP), mss=TCP_MSS,
                    nb_of_sim_conn=0xFF,  # hal.tcp sets no limit: the most the attribute can say
                    inactivity_time_out=min(int(dl.inactivity_timeout_s), 0xFFFF)),
        SapAssignmentObject(SAP_ASSIGNMENT, sap_assignment_list=(
            SapAssignment(1, meter.config.identity.ldn.encode("ascii")),)),
        # the optical port: an IEC 62056-21 sign-on at 300 baud (any address, no
        # passwords) that mode E turns into HDLC at 9600 (tools.node.links, --optical)
        IecLocalPortSetup(IEC_LOCAL_PORT_SETUP, default_mode=0, default_baud=BaudRate.B300,
                          prop_baud=BaudRate.B9600, response_time=1),
    ]


# --- security: the utility client's invocation counter -----------------------------------------


class _InvocationCounter(Data):
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


# --- push -------------------------------------------------------------------------------------

#: what a push carries unless the head-end writes another list: time, energy, balance, supply
DEFAULT_PUSH_OBJECTS = (
    CaptureObjectDefinition(8, CLOCK, 2),
    CaptureObjectDefinition(3, ACTIVE_IMPORT, 2),
    CaptureObjectDefinition(1, CURRENT_BALANCE, 2),
    CaptureObjectDefinition(70, DISCONNECT_CONTROL, 2),
)


def push_object_list(meter: "Meter") -> tuple[CaptureObjectDefinition, ...]:
    stored = meter.storage.get("push_objects")
    if not stored:
        return DEFAULT_PUSH_OBJECTS
    return tuple(CaptureObjectDefinition(int(c), Obis.parse(ln), int(a), int(d)) for c, ln, a, d in stored)


class MeterPushSetup(PushSetup):
    """The Push setup object with the outbox its ``push`` method queues to."""

    def __init__(self, outbox: PushOutbox, logical_name, **bindings):
        super().__init__(logical_name, **bindings)
        self.outbox = outbox


def push_outbox(objects) -> PushOutbox:
    """The outbox of the Push setup object in ``objects`` (for the push I/O shell)."""
    for obj in objects:
        if isinstance(obj, MeterPushSetup):
            return obj.outbox
    raise PushError("no Push setup object in this object list")


def _script_tables(meter: "Meter", lookup: Callable[[Obis], CosemObject]) -> list[ScriptTable]:
    """The script tables other objects point to. A script is a list of method calls and
    attribute writes on the meter's own objects, run through the same object hooks a
    head-end's request would use:

    - 0.0.10.0.106.255 disconnect control: 1 disconnects, 2 reconnects (the limiter's
      actions and a head-end name these);
    - 0.0.10.0.1.255 end of billing: 1 is the billing (MD) reset;
    - 0.0.10.0.100.255 tariffication: one script per time-of-day tier, named by the
      activity calendar. They hold no actions: the tariff engine follows the calendar
      itself, so switching tiers needs no register switching here.
    """
    def method(class_id: int, obis: Obis, index: int) -> ActionSpecification:
        return ActionSpecification(ServiceId.EXECUTE_SPECIFIC_METHOD, class_id, obis, index, axdr.Integer(0))

    def tables() -> dict[Obis, tuple[Script, ...]]:
        days = _calendar_tables(meter.config.tariff.active)[3]
        tiers = len({a.script_selector for d in days for a in d.day_schedule})
        return {
            DISCONNECT_SCRIPT_TABLE: (Script(1, (method(70, DISCONNECT_CONTROL, 1),)),
                                      Script(2, (method(70, DISCONNECT_CONTROL, 2),))),
            BILLING_SCRIPT_TABLE: (Script(1, (method(7, BILLING_PROFILE, 2),)),),
            TARIFFICATION_SCRIPT_TABLE: tuple(Script(i) for i in range(1, tiers + 1)),
        }

    def execute(table: Obis, identifier: int) -> None:
        script = next((sc for sc in tables()[table] if sc.script_identifier == identifier), None)
        if script is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, f"no script {identifier} in {table}")
        ctx = Context(0)
        for action in script.actions:
            target = lookup(action.logical_name)
            if action.service_id is ServiceId.EXECUTE_SPECIFIC_METHOD:
                target.invoke(action.index, action.parameter, ctx)
            else:
                target.set(action.index, action.parameter, ctx)

    return [ScriptTable(obis, scripts=lambda obis=obis: tables()[obis],
                        on_execute=lambda identifier, obis=obis: execute(obis, identifier))
            for obis in (DISCONNECT_SCRIPT_TABLE, BILLING_SCRIPT_TABLE, TARIFFICATION_SCRIPT_TABLE)]


def _push_setup(meter: "Meter", outbox: PushOutbox, lookup: Callable[[Obis], CosemObject]) -> PushSetup:
    cfg = outbox.config

    def set_list(items: tuple[CaptureObjectDefinition, ...]) -> None:
        for c in items:
            try:
                obj = lookup(c.logical_name)
            except KeyError:
                raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"no object {c.logical_name}") from None
            if obj.CLASS_ID != c.class_id or not 1 <= c.attribute_index <= len(obj.ATTRIBUTES) or c.data_index:
                raise CosemError(DataAccessResult.OBJECT_UNDEFINED,
                                 f"{c.class_id}/{c.logical_name}/{c.attribute_index} is not an attribute here")
        meter.storage.put("push_objects", [[c.class_id, str(c.logical_name), c.attribute_index, 0] for c in items])

    def do_push() -> None:
        try:
            outbox.request("dlms push", meter.now)
        except PushError as exc:
            raise CosemError(DataAccessResult.TEMPORARY_FAILURE, str(exc)) from None

    return MeterPushSetup(
        outbox,
        PUSH_SETUP,
        push_object_list=lambda: push_object_list(meter),
        set_push_object_list=set_list,
        send_destination_and_method=SendDestinationAndMethod(
            TransportService.TCP, cfg.destination.encode("ascii"), MessageType.A_XDR_APDU),
        communication_window=(),  # always
        randomisation_start_interval=cfg.randomisation_start_interval_s,
        number_of_retries=cfg.retries,
        repetition_delay=cfg.repetition_delay_s,
        on_push=do_push,
    )


def attach_push(meter: "Meter", outbox: PushOutbox, server: "Server") -> None:
    """Let ``outbox`` build its DataNotifications with ``server`` (ciphered for the utility
    association's keys when ``[push] ciphered`` and the server has security settings), and
    push on meter events when ``[push] on_events``."""
    tz = meter.config.identity.time_zone_minutes

    def build(invoke_id: int, now: datetime) -> bytes:
        items = [(c.class_id, c.logical_name, c.attribute_index) for c in push_object_list(meter)]
        stamp = axdr.CosemDateTime.from_datetime(now, deviation=-tz)
        return server.data_notification(items, long_invoke_id=invoke_id, date_time=stamp,
                                        ciphered=outbox.config.ciphered and server.security is not None)

    outbox.attach(build)
    if outbox.on_event not in meter.event_listeners:
        meter.event_listeners.append(outbox.on_event)


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
        actions=LimiterActions(ScriptReference(DISCONNECT_SCRIPT_TABLE, 1), ScriptReference(DISCONNECT_SCRIPT_TABLE, 2)),
    )


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
               unit_charge_active=lambda: _unit_charge(meter.config.tariff.active),
               unit_charge_passive=lambda: _unit_charge(meter.config.tariff.passive),
               unit_charge_activation_time=lambda: meter.config.tariff.activation_time),
    ]


def _unit_charge(profile) -> UnitCharge:
    """A tariff profile's energy prices as Charge's unit_charge: paisa (price_scale -2) per
    kWh (commodity_scale 3) of active import, one charge-table row per slab, time-of-day
    tier or the flat rate, in the order the tariff applies them."""
    if profile is None:
        return UnitCharge()
    if profile.kind is EnergyKind.SLABS:
        rows = [(f"slab{i}", slab.rate) for i, slab in enumerate(profile.slabs, 1)]
    elif profile.kind is EnergyKind.TOD and profile.tod is not None:
        tiers: dict[str, Decimal] = {}
        for _, actions in profile.tod.days:
            for a in actions:
                tiers.setdefault(a.name, a.rate)
        rows = list(tiers.items())
    else:
        rows = [("flat", profile.flat_rate)]
    return UnitCharge(commodity_scale=3, price_scale=-2, commodity_class_id=3, commodity_logical_name=ACTIVE_IMPORT,
                      commodity_attribute_index=2,
                      charge_table=tuple(ChargeTableElement(name.encode("ascii", "replace"), minor_units(rate))
                                         for name, rate in rows))


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


def _last_event_detail(meter: "Meter", kind: LogKind) -> axdr.Data:
    rows = meter.events.events(meter.storage, kind)
    detail = "" if not rows or rows[-1].detail is None else str(rows[-1].detail)
    return axdr.VisibleString(detail.encode("ascii", "replace").decode("ascii")[:64])
