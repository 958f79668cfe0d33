"""The Meter: owns the firmware parts and advances them when time passes.

Everything a meter does happens in a few calls, all with time passed in:

* :meth:`Meter.on_samples` with a block of samples from the hal source, in
  normal running (the block's energy is measured, any gap is integrated at the
  block's measurements);
* :meth:`Meter.on_steady` with a steady load measured apart (a simulated load
  change: :class:`~firmware.metrology.SteadyLoad`, the same for every meter drawing it);
* :meth:`Meter.advance_to` when simulated time jumps (``step 3d``): the load is
  held steady and the meter walks from one boundary to the next (a block-load
  capture, midnight, the billing date, the start or end of friendly hours), so
  a month runs in seconds yet every boundary is met exactly as in real time; given
  :class:`Stops` (a household's slot edges), it changes the load at each on the way,
  one jump that settles at every stop as walks ending there would;
* :meth:`Meter.enter_token`, :meth:`Meter.press_button`,
  :meth:`Meter.remote_relay`, :meth:`Meter.invoke_emergency`: the inputs.

After each of them :meth:`Meter._settle` charges the consumption through the
tariff to the prepaid account, asks the account whether supply is allowed, and
lets the relay's transition table decide. Where the relay decides is
:func:`firmware.relay.settle`; where a token is checked is
:func:`firmware.sts.decode`.

A walk settles only where something can change (README "Fleet engine", the walk): at
its end, at every edge where time alone changes what the settle decides (friendly
hours, billing, midnight, a time-of-day or tariff activation edge), after the load or
an input changed, while a limiter timer runs, and at the first step whose energy could
bring the credit to a threshold (low credit 1 and 2, zero, the emergency credit, the
debt limit) at the dearest rate; a capture between them writes its rows from the
registers alone. That this changes nothing is because the account is charged from
whole mWh of the cumulative register (not from each interval's float difference) and
the tariff's bill is cumulative and rounded once, and no charged interval straddles a
price edge: one charge for a day is its 96, to the paisa. Only *when* the account last
took a charge, and how much that charge was, depend on how often it settled
(tests/firmware/test_meter_settle.py walks a meter beside one that settles at every
step and compares everything else).

Non-volatile memory: one firmware step is one sqlite transaction carrying every
piece of state (energy, tariff, account, STS decoder, relay, limiter) together
with the rows it logs, so after a power cut the meter is exactly at the last
committed step: a token's TID and its credit are committed together, and the
consumption charged to the account always matches the energy registers.
Energy is committed every ``storage.save_interval_s`` of meter time, at every
profile capture and with every token: a power cut loses at most that interval's
consumption, and it loses it from the registers and the account alike. A jump
(:meth:`Meter.advance_to`) is one step of the simulated clock and one commit group
(:meth:`Storage.group`): its steps are savepoints of one transaction, on disk together
(one fsync, one seal), so a power cut while the jump is computed leaves the meter where
the jump began, as a cut just before it would; what the meter logs is the same.

Storage failing (a full disk, a write error): memory changes only when a step's
commit succeeds. :meth:`Meter._step` keeps what a step may change in RAM and puts it
back when the commit fails, so a token that could not be committed is credited in
neither memory nor storage and its TID is not remembered (its sender is told
``storage_error``, and the same token is accepted once storage works again).
Time passing is different: energy, the clock, the account's charges and the relay
decision go on in memory while commits fail, as between two saves; the walk
retries the commit every :data:`STORAGE_RETRY_S` of meter time, the events, bills
and profile rows of that time wait in memory (at most :data:`MAX_PENDING` of each),
and the first commit that succeeds writes them all: the meter recovers by itself.

Time going backwards (a clock set back from the console or a head-end, or a
restart at an earlier time than the saved one): the adjustment is logged as the
IEC 62056 pair "clock adjusted, old date/time" (stamped with the time before) and
"new date/time" (stamped with the time after), beside IS 15959's 151 "real time
clock set". The meter remembers the latest time it has lived (its high-water
mark, kept with every step). Until its clock passes that mark again, time is one
it has already stamped: the Clock's status shows "doubtful value" (IEC 62056-6-2
clock_status bit 1) and no periodic profile captures. A profile buffer thus
keeps strictly increasing capture times (no instant twice, none out of order, so
a range read by time means one thing); the skipped block's accumulators restart
as at a capture, so no block row ever spans more than its period (which would also
raise the maximum demand falsely); the energy of the re-lived stretch stays in
the cumulative registers and is charged to the account as always.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Iterator, Mapping, Sequence

from bijli.firmware.config import DlmsSettings, Identity, StorageSettings, Table
from bijli.firmware.earth_loading import EarthLoading
from bijli.firmware.errors import CommandError, FirmwareError, StorageError
from bijli.firmware.events import Event, EventCode, EventLog, LogKind, SecurityEvents
from bijli.firmware.metrology import (EnergyRegisters, Measurements, Metrology, MetrologyConfig, MetrologyError,
                                PhaseMeasurement, Quadrant, SteadyLoad)
from bijli.firmware.prepaid import (PrepaidAccount, AccountEvent, EmergencyRefused, PrepaidConfig, SupplyReason,
                              TokenTargets, apply_token, is_friendly,
                              next_friendly_boundary, supply_decision)
from bijli.firmware.push import PushConfig
from bijli.firmware.records import from_record, to_record
from bijli.firmware.profiles import (BILLING, BLOCK_LOAD, DAILY_LOAD, BlockAverager, Capture, Profile, ProfileConfig,
                               ProfileSet,
                               block_load_values, cumulative_values, profile_config_from_table)
from bijli.firmware.relay import (Cause, RelayState, RelayControl, LoadLimiter, LimiterAction, Refusal, RelayConfig,
                            RelayInputs, Trigger, control_event, settle)
from bijli.firmware.storage import Encoded, Storage, Transaction, dumps
from bijli.firmware.sts import (DecoderState, StsConfig, TokenResult, TokenResultCode, TokenSource, decode,
                                note_bad_token)
from bijli.firmware.sts.results import ClearCredit, KeyChanged
from bijli.firmware.tariff import Tariff, TariffProfile, TariffState
from bijli.firmware.tiers import TierRegisters

MAX_SEGMENT = timedelta(minutes=15)  # longest steady-load stretch between two settles in a jump
STORAGE_RETRY_S = 5.0  # meter seconds between commit attempts of the walk while storage fails
MAX_PENDING = 10_000  # events, bills or profile rows held in RAM while storage fails (oldest dropped)

log = logging.getLogger("bijli.meter")

#: IEC 62056-6-2 clause 4.5.1, Clock attribute 4 ``status`` (and byte 11 of every date-time):
#: bit 1 "doubtful value", shown while the meter re-lives time it has already stamped
CLOCK_STATUS_OK = 0x00
CLOCK_STATUS_DOUBTFUL = 0x02
_HIGH_WATER = "clock_high_water"  # storage key: the latest meter time ever reached
_ZERO, _ONE, _PAISA = Decimal(0), Decimal(1), Decimal("0.01")

# the account events that go to the transaction log, with bijli's codes for them
_ACCOUNT_EVENT_CODES = {
    AccountEvent.LOW_CREDIT_1: EventCode.LOW_CREDIT_1,
    AccountEvent.LOW_CREDIT_2: EventCode.LOW_CREDIT_2,
    AccountEvent.OUT_OF_CREDIT: EventCode.OUT_OF_CREDIT,
    AccountEvent.CREDIT_RESTORED: EventCode.CREDIT_RESTORED,
    AccountEvent.EMERGENCY_INVOKED: EventCode.EMERGENCY_CREDIT_INVOKED,
    AccountEvent.EMERGENCY_PAID_BACK: EventCode.EMERGENCY_CREDIT_PAID_BACK,
    AccountEvent.MAX_DEBT_EXCEEDED: EventCode.MAX_DEBT_EXCEEDED,
}

# the events an accepted token's effect logs besides its acceptance
_TOKEN_EVENTS = {KeyChanged: EventCode.KEY_CHANGE_TOKEN, ClearCredit: EventCode.CREDIT_CLEARED}

# supply allowed on the strength of credit (not of a friendly period)
_CREDIT_REASONS = (SupplyReason.CREDIT, SupplyReason.EMERGENCY, SupplyReason.POSTPAID)

RELAY_WORDS = {
    RelayState.CONNECTED: "connected",
    RelayState.DISCONNECTED: "disconnected",
    RelayState.READY_FOR_RECONNECTION: "ready",
}


@dataclass(frozen=True)
class MeterConfig:
    identity: Identity = field(default_factory=Identity)
    dlms: DlmsSettings = field(default_factory=DlmsSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    metrology: MetrologyConfig = field(default_factory=MetrologyConfig)
    tariff: Tariff = field(default_factory=lambda: Tariff.from_table({}))
    prepaid: PrepaidConfig = field(default_factory=lambda: PrepaidConfig.from_table({}))
    sts: StsConfig = field(default_factory=lambda: StsConfig.from_table({}))
    relay: RelayConfig = field(default_factory=RelayConfig)
    profiles: ProfileConfig = field(default_factory=ProfileConfig)
    push: PushConfig = field(default_factory=PushConfig)

    SECTIONS = ("meter", "dlms", "storage", "metrology", "tariff", "prepaid", "sts", "relay", "profiles", "push")

    @classmethod
    def from_dict(cls, data: dict, extra_sections: tuple[str, ...] = ()) -> "MeterConfig":
        """From a parsed TOML document. ``extra_sections`` are tables other layers own (``hal``)."""
        Table(data, "config", set(cls.SECTIONS) | set(extra_sections))
        tariff = Tariff.from_table(data.get("tariff", {}), "tariff")
        return cls(
            identity=Identity.from_table(data.get("meter", {}), "meter"),
            dlms=DlmsSettings.from_table(data.get("dlms", {}), "dlms"),
            storage=StorageSettings.from_table(data.get("storage", {}), "storage"),
            metrology=MetrologyConfig.from_table(data.get("metrology", {}), "metrology"),
            tariff=tariff,
            prepaid=PrepaidConfig.from_table(data.get("prepaid", {}), "prepaid"),
            sts=StsConfig.from_table(data.get("sts", {}), "sts"),
            relay=RelayConfig.from_table(data.get("relay", {}), "relay"),
            profiles=profile_config_from_table(data.get("profiles", {}), "profiles", tariff.billing_day),
            push=PushConfig.from_table(data.get("push", {}), "push"),
        )


#: values a record holds that never change in place: a step's copy shares them
_IMMUTABLE = (int, float, str, bytes, bool, type(None), Decimal, datetime, timedelta, Enum)


def _copy_record(v: Any) -> Any:
    """``copy.deepcopy(v)`` for what a meter's mutable records are made of (dataclasses,
    dicts, lists and tuples of immutable values), without deepcopy's generic machinery:
    every firmware step keeps its records first (:meth:`Meter._keep`), and deepcopy was
    a tenth of a fleet meter's token delivery. Anything else is deep-copied as before."""
    if isinstance(v, _IMMUTABLE):
        return v
    if isinstance(v, list):
        return [_copy_record(x) for x in v]
    if isinstance(v, dict):
        return {k: _copy_record(x) for k, x in v.items()}  # keys are hashable: immutable
    if isinstance(v, tuple) and type(v) is tuple:
        items = tuple(_copy_record(x) for x in v)
        return v if all(a is b for a, b in zip(items, v)) else items
    if dataclasses.is_dataclass(v) and not isinstance(v, type) and hasattr(v, "__dict__") \
            and not hasattr(type(v), "__slots__"):
        fresh = {k: _copy_record(x) for k, x in vars(v).items()}
        if type(v).__dataclass_params__.frozen and all(fresh[k] is x for k, x in vars(v).items()):
            return v  # frozen and holding only immutable values: deepcopy would copy it for nothing
        out = copy.copy(v)
        out.__dict__.update(fresh)
        return out
    return copy.deepcopy(v)


@dataclass(frozen=True)
class TokenOutcome:
    """What happened to one token: the decoder's result plus what the meter did with it."""

    result: TokenResult
    #: the final verdict: the decoder's, or OVERFLOW / FUNCTION_ERROR when the meter
    #: could not take the credit of a token the decoder accepted
    code: TokenResultCode
    credit_added: Decimal = Decimal(0)
    message: str = ""
    digits: str = ""
    source: TokenSource = TokenSource.CONSOLE

    @property
    def word(self) -> str:
        """The console and display word (accepted, used, old, crc_error, overflow, ...)."""
        return self.code.value

    @property
    def accepted(self) -> bool:
        return self.code is TokenResultCode.ACCEPT


@dataclass
class _Progress:
    """The meter's own bookkeeping between steps (persisted as one record)."""

    charged_wh: float = 0.0  # active import energy already charged to the account
    charged_until: datetime | None = None
    block_start: dict = field(default_factory=dict)  # cumulative registers at the start of the block
    averager: BlockAverager = field(default_factory=BlockAverager)
    md_w: float = 0.0  # maximum demand of the billing period (block average power)
    md_time: datetime | None = None
    last_now: datetime | None = None
    tamper: bool = False
    cut_for_credit: bool = False  # the relay opened because credit ran out

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: dict) -> "_Progress":
        return from_record(cls, d)


def saved_time(storage: Storage) -> datetime | None:
    """The meter time of the last committed step in ``storage`` (None: no meter there yet):
    where a simulated clock resumes when the meter starts again."""
    progress = storage.get("progress")
    if not progress or not progress.get("last_now"):
        return None
    last = progress["last_now"]
    return last if isinstance(last, datetime) else datetime.fromisoformat(last)


@dataclass
class _Counters:
    """The meter's lifetime counters (IEC 62056-6-1 0.0.0.1.0 billing period counter,
    0.0.96.2.0 configuration program changes, 0.0.96.7.0 power failures), counted as
    their events are logged, so no log's capacity caps them."""

    billing: int = 0
    programming: int = 0
    power_failures: int = 0

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: dict) -> "_Counters":
        return from_record(cls, d)

    def count(self, code: EventCode) -> None:
        if code is EventCode.POWER_FAIL:
            self.power_failures += 1
        elif EventCode.RTC_SET <= code <= EventCode.MD_RESET:  # IS 15959's programming (transaction) events
            self.programming += 1


COUNTERS_KEY = "event_counters"
TIERS_KEY = "tier_registers"  # the time-of-day registers (firmware.tiers)
DURATIONS_KEY = "durations"
EARTH_LOADING_KEY = "earth_loading"  # firmware.earth_loading: a state of its own, so older states load

#: the events IS 15959's cumulative tamper count (0.0.94.91.0.255) counts: the occurrences
#: of the tamper conditions of its voltage, current, other and non-rollover logs
_TAMPERS = frozenset({
    EventCode.R_VOLTAGE_MISSING, EventCode.Y_VOLTAGE_MISSING, EventCode.B_VOLTAGE_MISSING,
    EventCode.OVER_VOLTAGE, EventCode.LOW_VOLTAGE, EventCode.VOLTAGE_UNBALANCE, EventCode.CURRENT_REVERSE,
    EventCode.CURRENT_UNBALANCE, EventCode.CURRENT_BYPASS, EventCode.OVER_CURRENT, EventCode.EARTH_LOADING,
    EventCode.MAGNET, EventCode.NEUTRAL_DISTURBANCE, EventCode.LOW_POWER_FACTOR, EventCode.SINGLE_WIRE,
    EventCode.MODULE_REMOVED, EventCode.COVER_OPEN,
})


@dataclass
class _Durations:
    """IS 15959's durations (0.0.94.91.14 cumulative power-on, 0.0.94.91.13 power-on in the
    billing period, 0.0.94.91.8 cumulative power failure; kept in seconds, shown in
    minutes) and its cumulative tamper count (0.0.94.91.0). Their own record, so a state
    written before they existed still loads (they then count from that start)."""

    power_on_s: float = 0.0
    period_power_on_s: float = 0.0
    power_fail_s: float = 0.0
    tampers: int = 0

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: dict) -> "_Durations":
        return from_record(cls, d)
TARIFF_PROGRAMMED_KEY = "tariff_programmed"  # a tariff programmed over DLMS (Tariff.to_table)


@dataclass
class _BillingProgress:
    """The open billing period's own figures and the last collection from the account
    (persisted as their own record, so a state written before they existed still loads:
    a missing record opens them afresh)."""

    billing_start: dict = field(default_factory=dict)  # cumulative registers when the period opened
    md_va: float = 0.0  # maximum apparent demand of the period (block average VA)
    md_va_time: datetime | None = None
    # the last charge taken from the account (IC 113 last_collection_time / _amount)
    last_collection_time: datetime | None = None
    last_collection_amount: Decimal = Decimal(0)

    def to_dict(self) -> dict:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: dict) -> "_BillingProgress":
        return from_record(cls, d)


def _mwh(wh: float) -> int:
    """The whole mWh of a cumulative energy register (its floor): what the account is
    charged from, so an unsettled fraction of a mWh waits in the register, not lost."""
    return math.floor(wh * 1000) if wh > 0 else 0


def _mwh_charged(charged_wh: float) -> int:
    """The whole mWh already charged (the record keeps them as Wh, the float nearest
    mWh / 1000; a record from before whole-mWh charging rounds to its nearest mWh)."""
    return round(charged_wh * 1000)


#: the state records, in the order of :meth:`Meter._state`
_STATE_KEYS = (_HIGH_WATER, "energy", "tariff", "account", "sts", "relay", "limiter", "progress",
               "billing_progress", COUNTERS_KEY, DURATIONS_KEY, TIERS_KEY, EARTH_LOADING_KEY)
#: the records a step changes field by field rather than replaces (see :meth:`Meter._state`)
_MUTABLE_RECORDS = (_Progress, _BillingProgress, _Counters, _Durations)
_NOTHING = object()  # no record written yet
#: the texts of state records lately written first (a meter's first write of a key in its
#: RAM: its first start, a restart) by any meter of the process, a few per key. A fleet's
#: meters are born alike (one configuration, one start time), and encoding the thirteen
#: records of each first start again was two fifths of it.
_FIRST_TEXTS: dict[str, list[tuple[Any, str]]] = {}
_FIRST_TEXTS_PER_KEY = 4


def _same_value(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` would be stored as the very same text: the same object, or of
    the same type and equal in every part in a way their text cannot tell apart (a Decimal
    by its digits and exponent, since 1.0 and 1.00 are equal but written differently; a
    float with its sign, for -0.0; a date-time with the same zone object; a date, bytes
    by value). Anything this
    does not know is not the same (it is then written)."""
    if a is b:
        return True
    t = type(a)
    if t is not type(b):
        return False
    if t is float:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if t is int or t is str or t is bool:
        return a == b
    if t is Decimal:
        return a.as_tuple() == b.as_tuple()
    if t is datetime:
        return a == b and a.tzinfo is b.tzinfo
    if t is date or t is bytes:
        return a == b
    if t is tuple or t is list:
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if t is dict:
        return a.keys() == b.keys() and all(_same_value(x, b[k]) for k, x in a.items())
    if dataclasses.is_dataclass(t) and hasattr(a, "__dict__"):
        va, vb = vars(a), vars(b)
        return va.keys() == vb.keys() and all(_same_value(x, vb[k]) for k, x in va.items())
    return False


def _stored(key: str, value: Any) -> Any:
    """State record ``key`` holding ``value`` as it is stored (encoded by ``dumps``)."""
    return asdict(value) if key == "energy" else value.to_dict()


def _first_text(key: str, value: Any) -> Encoded:
    """The text of state record ``key`` holding ``value`` (kept: a copy of a mutable one):
    one another meter of this process wrote first, if it is the very same text
    (:func:`_same_value`), else encoded now and remembered for the next meter."""
    known = _FIRST_TEXTS.setdefault(key, [])
    for seen, text in known:
        if _same_value(seen, value):
            return Encoded(text)
    text = Encoded(dumps(_stored(key, value)))
    known.append((value, text))
    if len(known) > _FIRST_TEXTS_PER_KEY:
        del known[0]
    return text


def _hold(pending: list, item: Any) -> None:
    """Keep ``item`` for the next commit, the oldest dropped beyond :data:`MAX_PENDING`."""
    pending.append(item)
    if len(pending) > MAX_PENDING:
        del pending[: len(pending) - MAX_PENDING]


def _open_circuit(meas: Measurements) -> Measurements:
    """The same voltages with no current: what the meter sees with its relay open."""
    phases = [PhaseMeasurement(ph.v_rms, 0.0, 0.0, 0.0, 0.0, 1.0, Quadrant.I) for ph in meas.phases]
    return Measurements.of(phases, meas.frequency, meas.duration)


class Stops:
    """Where a caller's jump changes what the meter draws (a household's slot edges, the
    steps of a shared clock): the walk ends a step at each stop and settles there, as a
    walk ending there would, then tells the caller (:meth:`reached`), which draws the next
    load (a new steady measurement), and walks on from it. So ``advance_to(b, stops)`` is
    ``advance_to(s1)``, draw, ``advance_to(s2)``, draw, ... ``advance_to(b)`` step for step,
    settle for settle, capture for capture, but one jump: one commit group (or one
    savepoint of a fleet's), the state records written once. The firmware knows no load:
    this is the caller's (``tools.fleet.engine``'s slot schedule)."""

    def next_stop(self, after: datetime) -> datetime | None:
        """The first stop after ``after`` (None: no more)."""
        raise NotImplementedError

    def reached(self, at: datetime) -> None:
        """The walk stands at the stop ``at``, settled: draw what is drawn from there on."""
        raise NotImplementedError

    def keep(self) -> Any:
        """What :meth:`reached` changes, kept before a grouped jump: a jump whose commit
        fails is walked again from its start, its loads drawn again (:meth:`restore`)."""
        return None

    def restore(self, kept: Any) -> None:
        """Put back what :meth:`keep` returned."""


class Meter:
    def __init__(self, config: MeterConfig, storage: Storage, now: datetime,
                 on_relay: Callable[[bool], None] | None = None):
        self.config = config
        self.storage = storage
        self.now = now
        self.on_relay = on_relay or (lambda closed: None)
        self.metrology = Metrology(config.metrology)
        self.profiles = ProfileSet.standard(config.profiles)
        self.scheduler = self.profiles.scheduler()
        self.events = EventLog()
        self.event_listeners: list[Callable[[Event], None]] = []  # e.g. push on events
        self._apply_programmed()
        self.last_token: TokenOutcome | None = None
        self.last_token_time: datetime | None = None
        self._remote: Trigger | None = None
        # events and bills of steps taken between commits; they go out with the next one,
        # and a power cut before it rolls back the state that made them as well
        self._pending_events: list[tuple[EventCode, Any]] = []
        self._pending_bills: list[tuple[datetime, dict]] = []
        # security events counted, not logged one by one (RAM: a power cut loses one window's tally)
        self.security_events = SecurityEvents()
        self._pending_rows: list[tuple[Profile, datetime, dict]] = []  # profile captures not yet committed
        self._pending_control: list[Event] = []  # relay control events of settles without a transaction
        self._notices: list[Event] | None = None  # events of the step in progress, told once it commits
        self.storage_fault: str | None = None  # why the last commit failed, until one succeeds
        self._retry_at: datetime | None = None
        # what the last settle saw and how much energy may go uncharged (see _settle_due)
        self._settled: tuple | None = None
        # key -> what this meter last wrote as that state record (RAM, kept with the rest;
        # a restart writes every record once): a step writes only the records that changed
        self._written: dict[str, Any] = {}
        self._written_epoch = storage.rollbacks  # NonVolatileMemory.rollbacks when _written was noted
        self._committed_energy: EnergyRegisters | None = None  # the energy of the last commit
        try:
            self._load(now)
        except StorageError as exc:
            if isinstance(exc.__cause__, StorageError):  # the start-up commit failed: the state is whole
                raise StorageError(f"{storage.path}: cannot write the start-up step ({exc.__cause__})") from None
            raise StorageError(f"{storage.path}: saved meter state is corrupt ({exc})") from None
        except (KeyError, TypeError, ValueError, MetrologyError, FirmwareError) as exc:
            raise StorageError(f"{storage.path}: saved meter state is corrupt ({exc})") from None
        self._last_save = now
        self.on_relay(self.relay.output_state)

    # --- kept powered: a fleet's dormant meter -----------------------------------------
    #: what a meter shares with its configuration or its host rather than holds in RAM
    _NOT_VOLATILE = frozenset({"config", "storage", "on_relay", "event_listeners", "profiles", "scheduler",
                               "events"})

    def volatile(self) -> dict[str, Any]:
        """The RAM of this powered meter between two steps (metrology and its part cycle,
        uncommitted progress and deferred events, the last token, the time of the last
        save), without its non-volatile memory or what it shares. A fleet keeps a dormant
        meter as this (compressed) and :meth:`resume` s it when it is observed: the meter
        never lost power, so unlike a restart no power failure is logged and nothing
        uncommitted is lost. Every step leaves the meter with no open transaction, so
        between steps this is the whole of it."""
        return {k: v for k, v in self.__dict__.items() if k not in self._NOT_VOLATILE}

    @classmethod
    def resume(cls, config: MeterConfig, storage: Storage, volatile: dict[str, Any],
               on_relay: Callable[[bool], None] | None = None) -> "Meter":
        """The meter whose RAM :meth:`volatile` returned, on the same non-volatile memory,
        exactly as it was (the shared parts rebuilt as ``__init__`` builds them)."""
        meter = cls.__new__(cls)
        meter.config = config
        meter.storage = storage
        meter.on_relay = on_relay or (lambda closed: None)
        meter.profiles = ProfileSet.standard(config.profiles)
        meter.scheduler = meter.profiles.scheduler()
        meter.events = EventLog()
        meter.event_listeners = []
        meter._apply_programmed()
        meter.__dict__.update(volatile)
        return meter

    def _apply_programmed(self) -> None:
        """What was programmed from outside and is kept in memory over the configuration:
        a tariff programmed over DLMS, the billing day. A start and a fleet's resume both
        apply it (the configuration a fleet hands back is the shared, configured one)."""
        programmed = self.storage.get(TARIFF_PROGRAMMED_KEY)
        if programmed is not None:  # a tariff programmed over DLMS wins over the configured one
            self.config = replace(self.config, tariff=Tariff.from_table(programmed))
        self._apply_billing_day(self.storage.get("billing_day"))

    # --- start-up ---------------------------------------------------------------------
    def _load(self, now: datetime) -> None:
        s = self.storage
        cfg = self.config
        energy = s.get("energy")
        if energy is not None:
            self.metrology.restore(EnergyRegisters(**energy))
        tariff_state = s.get("tariff")
        self.tariff_state = (TariffState.from_dict(tariff_state) if tariff_state is not None
                             else TariffState.initial(now))
        account = s.get("account")
        self.account = (PrepaidAccount.from_dict(account, cfg.prepaid) if account is not None
                        else PrepaidAccount.initial(cfg.prepaid, now))
        sts = s.get("sts")
        self.sts = DecoderState.from_dict(sts) if sts is not None else cfg.sts.initial_state()
        relay = s.get("relay")
        self.relay = RelayControl.from_dict(relay) if relay is not None else cfg.relay.initial_control()
        if self.relay.control_mode != cfg.relay.control_mode:
            self.relay = self.relay.with_mode(cfg.relay.control_mode)
        limiter = s.get("limiter")
        self.limiter = LoadLimiter.from_dict(limiter) if limiter is not None else cfg.relay.initial_limiter()
        progress = s.get("progress")
        self.progress = _Progress.from_dict(progress) if progress is not None else _Progress()
        first_start = progress is None
        if self.progress.charged_until is None:  # a new meter: nothing consumed is owed yet
            self.progress.charged_wh = self.metrology.energy.active_import_wh
        if not self.progress.block_start:
            self.progress.block_start = self._cumulative()
        high_water = s.get(_HIGH_WATER)
        self.high_water = (datetime.fromisoformat(high_water) if high_water
                           else max(self.progress.last_now or now, now))
        counters = s.get(COUNTERS_KEY)
        self.counters = _Counters.from_dict(counters) if counters else _Counters()
        billing = s.get("billing_progress")
        self.billing_progress = _BillingProgress.from_dict(billing) if billing else _BillingProgress()
        if not self.billing_progress.billing_start:  # a new meter, or one that billed before this record
            self.billing_progress.billing_start = self._cumulative()
        tiers = s.get(TIERS_KEY)
        e = self.metrology.energy
        self.tiers = (TierRegisters.from_dict(tiers) if tiers
                      else TierRegisters.starting_at(e.active_import_wh, e.apparent_import_vah))
        durations = s.get(DURATIONS_KEY)
        self.durations = _Durations.from_dict(durations) if durations else _Durations()
        earth = s.get(EARTH_LOADING_KEY)
        self.earth_loading = EarthLoading.from_dict(earth) if earth else EarthLoading()
        with self._step() as tx:
            if s.get("year_of_manufacture") is None:  # the first start of a meter is its manufacture
                tx.put("year_of_manufacture", now.year)
            if not first_start and self.progress.last_now is not None:
                # the meter was off from its last committed step until now
                self.durations.power_fail_s += max((now - self.progress.last_now).total_seconds(), 0.0)
                self._log(tx, EventCode.POWER_FAIL, "", self.progress.last_now)
                if now < self.progress.last_now:  # it comes back earlier than it went off
                    self._log_adjustment(tx, self.progress.last_now, now)
                self._log(tx, EventCode.POWER_RESTORED, "", now)
            self.progress.charged_until = now  # nothing was consumed while the meter was off
            self._write_state(tx)

    # --- time passing ----------------------------------------------------------------
    def on_samples(self, block: Sequence[tuple[Sequence[float], Sequence[float]]], now: datetime) -> Measurements:
        """Measure one block of samples ending at ``now``; integrate any gap before it steadily."""
        n = len(block[0][0]) if block else 0
        block_seconds = n / self.config.metrology.sample_rate
        meas = self.metrology.process(block) if n else self.metrology.measurements
        gap = (now - self.now).total_seconds() - block_seconds
        if gap > 0:
            self.metrology.accumulate(self._steady(meas), gap)
        if now > self.now:
            self._walk(now, integrate=False)
        return meas

    def on_steady(self, steady: SteadyLoad) -> None:
        """A new steady load, measured apart (a simulated load change: the same load always
        measures the same, :class:`~firmware.metrology.SteadyLoad`): its measurements held
        from now on, its energy integrated by the time that passes, none now. A copy, so
        that the next step sees a change (:meth:`_settle_due` compares the measurements it
        settled on by identity) even when the same load comes back."""
        self.metrology.hold(copy.copy(steady.measurements), steady.pipeline)

    def advance_to(self, now: datetime, stops: Stops | None = None) -> None:
        """Jump to ``now`` with the load held steady at the latest measurements, or, given
        ``stops``, changed at each of its stops on the way (a household's slot loads): one
        jump that ends a step and settles at every stop, as consecutive ``advance_to`` calls
        to each stop would (see :class:`Stops`), but one commit group, not one per stop."""
        if now <= self.now:
            return
        self._walk(now, integrate=True, stops=stops)

    def set_time(self, when: datetime) -> None:
        """The clock was set (console, DLMS): no energy is integrated across the jump.
        Backwards or forwards, the adjustment is logged (see the module's note on time
        going backwards)."""
        with self._step() as tx:
            self._log_adjustment(tx, self.now, when)
            self.now = when
            self.progress.charged_until = when
            self._settle(tx)
            self._write_state(tx)
        self._last_save = when

    def _log_adjustment(self, tx: Transaction, old: datetime, new: datetime) -> None:
        """The clock moved from ``old`` to ``new`` other than by time passing."""
        delta = new - old
        way = f"back {-delta}" if delta < timedelta(0) else f"forward {delta}"
        text = f"{old.isoformat(timespec='seconds')} -> {new.isoformat(timespec='seconds')} ({way})"
        self._log(tx, EventCode.CLOCK_ADJUSTED_OLD, text, old)
        self._log(tx, EventCode.CLOCK_ADJUSTED_NEW, text, new)
        self._log(tx, EventCode.RTC_SET, text, new)

    @property
    def clock_status(self) -> int:
        """The Clock's status byte: "doubtful" while the meter re-lives time it has stamped."""
        return CLOCK_STATUS_DOUBTFUL if self.now < self.high_water else CLOCK_STATUS_OK

    def _steady(self, meas: Measurements) -> Measurements:
        return meas if self.relay.output_state else _open_circuit(meas)

    def _walk(self, until: datetime, *, integrate: bool, stops: Stops | None = None) -> None:
        """Move meter time to ``until`` boundary by boundary, settling at each. With
        ``integrate`` the segment's energy is added at steady load (a jump); without it
        the caller has measured the energy already (samples). A jump longer than one
        segment is one commit group (:meth:`_walk_grouped`) when storage works and no
        group is open already (a fleet's); what the meter does is the same either way."""
        if (integrate and until - self.now > MAX_SEGMENT and self.storage_fault is None
                and self._walk_grouped(until, stops)):
            return
        self._walk_steps(until, integrate=integrate, grouped=False, stops=stops)

    def _walk_grouped(self, until: datetime, stops: Stops | None = None) -> bool:
        """The jump to ``until`` as one commit group: every step a savepoint of one
        transaction, committed (one fsync, one seal) at the end; the state records are
        written once, as the jump's last committed step left them (each step inside would
        only overwrite the one before). A power cut during the jump leaves the meter
        where the jump began, as if the cut came just before it: the jump is one step
        of the simulated clock, and the clock resumes at the last committed time.
        Events reach the listeners once the group is on disk. When storage fails
        anywhere in the group, the meter's RAM goes back to the jump's start (energy
        included) and the jump is walked again step by step, which meters on in memory
        and retries as :meth:`_walk_steps` always does. Returns whether it committed.

        Inside a commit group someone else opened (a fleet's, around many meters) the jump
        is one step of that group instead, one savepoint: its captures and the state
        records once at the end, rolled back together if any of it fails (then walked
        again step by step, as above); it is on disk when that group commits."""
        kept, metrology = self._keep(), self.metrology.copy()
        kept_stops = stops.keep() if stops is not None else None
        relay_before = self.relay.output_state
        outer, self._notices = self._notices, []
        try:
            if self.storage.in_group:
                with self.storage.transaction() as tx:  # one savepoint of the open group
                    state = self._walk_steps(until, integrate=True, grouped=True, tx=tx, stops=stops)
                    if state is not None:
                        self._put_state(tx, state)
            else:
                with self.storage.group():
                    state = self._walk_steps(until, integrate=True, grouped=True, stops=stops)
                    if state is not None:
                        with self.storage.transaction() as tx:
                            self._put_state(tx, state)
        except StorageError:
            moved = self.relay.output_state
            self.__dict__.update(kept)
            self.metrology = metrology
            if stops is not None:  # the loads drawn on the way go back with the rest
                stops.restore(kept_stops)
            self._notices = outer
            if moved != relay_before:
                self.on_relay(self.relay.output_state)
            return False
        except BaseException:
            self._notices = outer
            raise
        notices, self._notices = self._notices, outer
        for event in notices:
            self._notify(event)
        return True

    def _walk_steps(self, until: datetime, *, integrate: bool, grouped: bool,
                    tx: Transaction | None = None, stops: Stops | None = None) -> tuple | None:
        """The walk itself. ``grouped``: inside :meth:`_walk_grouped`'s commit group, each
        committed step is a savepoint whose failure aborts the whole group (or, given the
        jump's one transaction ``tx``, a part of it), and the state records of the last one
        are returned (:meth:`_state`) for the group to write; otherwise each is its own
        transaction, and one that fails is kept in memory and retried. ``stops``: each of
        its stops before ``until`` ends a step that settles, as a walk's end does, and is
        then :meth:`Stops.reached` (where the caller draws the next load), as if the walk
        had ended there and the next had begun: the steps after it are cut from it."""
        jump = tx
        state = None
        fresh = False  # grouped: the RAM holds the state the last committed step left
        capture: Capture | None = None  # the next capture after the step's start
        friendly: datetime | None = None  # the next friendly-hour edge after it
        price: datetime | None = None  # the next time-of-day or tariff activation edge after it
        stop = until if stops is None else stops.next_stop(self.now)  # the next stop of the caller's
        if stop is None or stop > until:
            stop = until
        while self.now < until:
            start = self.now
            # each stays the answer until it is reached (they depend on the time alone; a
            # tariff programmed meanwhile is a step of its own, after which a walk begins anew)
            if capture is None or capture.time <= start:
                capture = self.scheduler.next_capture(start)
            if friendly is None or friendly <= start:
                friendly = next_friendly_boundary(self.config.prepaid, start)
            if price is None or price <= start:
                price = self.config.tariff.next_price_change(start)
            edge = self._next_edge(start, friendly, price)
            soft = start + MAX_SEGMENT
            if capture is not None and capture.time < soft:
                soft = capture.time
            nxt = min(stop, soft, edge)
            # the captures in (start, nxt]: the next one if it falls at nxt, or none
            captures = [capture] if capture is not None and capture.time == nxt else []
            due = captures or (nxt - self._last_save).total_seconds() >= self.config.storage.save_interval_s
            if fresh and not due:  # this step is not committed: keep what the last one left
                state, fresh = self._state(copied=True), False
            seconds = (nxt - start).total_seconds()
            meas = self._steady(self.metrology.measurements)
            if integrate:
                self.metrology.accumulate(meas, seconds)
            p = meas.phases[0]
            self.progress.averager = self.progress.averager.add(p.v_rms, p.i_rms, seconds)
            self.durations.power_on_s += seconds  # powered: the meter lives this segment
            self.durations.period_power_on_s += seconds
            self.now = nxt
            # a capture or the longest segment alone changes nothing the settle decides
            # unless the load, an input or the credit says so (see _settle_due: asked once
            # the step's energy is in the registers)
            settling = nxt == stop or nxt == edge or self._settle_due(nxt)
            committed = False
            if due and grouped:
                with self._part(jump) as tx:  # a savepoint of the group, or a part of the jump's
                    if settling:
                        self._settle(tx)
                    for c in captures:
                        self._capture(tx, c.profiles)
                    self._flush_pending(tx)
                state, fresh = None, True
                committed = True
                self._last_save = self.now
            elif due and (self._retry_at is None or self.now >= self._retry_at):
                try:
                    with self._step() as tx:
                        if settling:
                            self._settle(tx)
                        for c in captures:
                            self._capture(tx, c.profiles)
                        self._write_state(tx)
                except StorageError:
                    pass  # the step was put back whole: it happens in memory below, committed later
                else:
                    committed = True
                    self._last_save = self.now
            if not committed:  # between saves, or storage failing: on in memory, committed later
                if settling:
                    self._settle(None)
                for c in captures:
                    self._capture(None, c.profiles)
            self.high_water = max(self.high_water, nxt)
            if nxt == stop and stop < until:  # a walk would have ended here: the caller's turn
                stops.reached(nxt)  # type: ignore[union-attr]
                stop = stops.next_stop(nxt)  # type: ignore[union-attr]
                if stop is None or stop > until:
                    stop = until
        return self._state(copied=False) if fresh else state

    @contextmanager
    def _part(self, jump: Transaction | None) -> Iterator[Transaction]:
        """A committed step of a grouped walk: its own savepoint, or a part of the jump's
        one transaction when the jump is a single step of someone else's group."""
        if jump is not None:
            yield jump
        else:
            with self.storage.transaction() as tx:
                yield tx

    def _next_edge(self, now: datetime, friendly: datetime | None, price: datetime | None) -> datetime:
        """The first instant after ``now`` where the settle always runs, because time alone
        changes what it decides there: a friendly-hour edge (supply may be cut or held), the
        billing time (the period closes), midnight (a day's fixed charge, the daily profile)
        or a price edge (a time-of-day action or a tariff's activation: an interval the
        account is charged for never straddles one, so its tiers and prices are whole)."""
        edge = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())  # midnight
        if friendly is not None and friendly < edge:
            edge = friendly
        if price is not None and price < edge:
            edge = price
        b = self.config.tariff.next_billing_time(self.tariff_state)
        if now < b < edge:
            edge = b
        return edge

    #: settle at every step of a walk, as before settles were skipped: the reference the
    #: firmware tests walk beside the meter that skips them (a subclass sets it)
    SETTLE_EVERY_STEP = False

    def _settle_due(self, at: datetime) -> bool:
        """Whether a step of the walk ending at ``at`` (a capture or the longest segment,
        not an edge) must settle. It need not when the settle could change nothing: the
        last settle saw this very load, account, limiter, relay and tariff state (the
        record :meth:`_settle` leaves, compared by identity: every change replaces them),
        no limiter timer runs and no emergency window opens or closes, no remote command
        waits, and the energy not charged yet costs less than the credit left above the
        next threshold (low credit 1 and 2, zero, the emergency credit, the debt limit),
        priced at the dearest rate. The step where it might cross is settled, so a cut for
        credit lands on the same grid of steps as when every step settled."""
        seen = self.__dict__.get("_settled")  # absent: RAM from before it was kept
        if seen is None or self.SETTLE_EVERY_STEP or self._remote is not None:
            return True
        meas, limiter, account, relay, tariff_state, flags, headroom_mwh = seen
        if (meas is not self.metrology.measurements or limiter is not self.limiter or account is not self.account
                or relay is not self.relay or tariff_state is not self.tariff_state
                or flags != (self.progress.tamper, self.progress.cut_for_credit)):
            return True
        if limiter.since is not None or limiter.emergency_applies(at) != limiter.emergency_profile_active:
            return True
        pending = _mwh(self.metrology.energy.active_import_wh) - _mwh_charged(self.progress.charged_wh)
        return pending >= headroom_mwh

    def _headroom_mwh(self) -> float:
        """The energy (whole mWh) that can be charged, at the dearest rate, before the
        available credit could reach the next threshold the account or the supply decision
        looks at; ``inf`` when none lies below it. The margin covers the bill's roundings
        (each line and the duty rounded to the paisa, a line or two more than now)."""
        acct, cfg = self.account, self.config.prepaid
        available = acct.available_credit
        thresholds = [cfg.low_credit_1, cfg.low_credit_2, _ZERO, acct.emergency_limit]
        if cfg.max_debt is not None:
            thresholds.append(-cfg.max_debt)
        gaps = [available - t for t in thresholds if t <= available]
        if not gaps:
            return math.inf
        if cfg.unit == "kWh":  # charged the energy itself, exactly
            money, rate = min(gaps), _ONE
        else:
            money = min(gaps) - _PAISA * 2 * (len(self.tariff_state.lines) + 6)
            rate = self.config.tariff.highest_rate()
        if money <= 0:
            return 0
        if rate <= 0:
            return math.inf
        return int(money / rate * 1_000_000)  # kWh -> mWh, rounded down

    # --- the decision step ---------------------------------------------------------------
    def _settle(self, tx: Transaction | None, *, button: bool = False) -> list:
        """Charge consumption, close the billing period if due, and let the relay decide.
        Returns the relay steps taken. Events need ``tx``; without one they are deferred to
        the next committed step (only harmless, re-derivable state changes happen then)."""
        now = self.now
        # what this settle decides on, for _settle_due: the measurements it reads and the
        # relay it starts from (a relay that moves, or a load that the move changes, makes
        # the next step settle again)
        seen_meas, seen_relay = self.metrology.measurements, self.relay
        events: list[tuple[EventCode, Any]] = []
        # billing date first: consumption before it belongs to the closing period
        bill_at = self.config.tariff.next_billing_time(self.tariff_state)
        if bill_at <= now:
            self._charge_consumption(bill_at, events)
            self._close_billing(bill_at, tx)
        self._charge_consumption(now, events)
        # the limiter watches active power
        self.limiter, action = self.limiter.update(max(self.metrology.measurements.total.p, 0.0), now)
        if action is LimiterAction.OVER_THRESHOLD:
            events.append((EventCode.OVERLOAD, f"{self.metrology.measurements.total.p:.0f} W"))
        elif action is LimiterAction.UNDER_THRESHOLD:
            events.append((EventCode.OVERLOAD_RESTORED, ""))
        # the phase current the neutral does not bring back (IS 15959 earth loading)
        meas = self.metrology.measurements
        self.earth_loading, earth_event = self.earth_loading.update(meas, self.config.metrology.basic_current)
        if earth_event is not None:
            events.append((earth_event, EarthLoading.detail(meas)))
        decision = supply_decision(self.config.prepaid, self.account, now)
        allowed = decision.allowed
        if self.progress.cut_for_credit:
            if decision.reason in _CREDIT_REASONS:
                self.progress.cut_for_credit = False  # credit is back: the cut is over
            elif not self.config.relay.reconnect_in_friendly_period:
                allowed = False  # a friendly period does not undo a cut for credit
        inputs = RelayInputs(supply_allowed=allowed, supply_reason=decision.reason.value,
                             limiter_over=self.limiter.over, tamper=self.progress.tamper,
                             remote=self._remote, button=button)
        self._remote = None
        before = self.relay.output_state
        self.relay, steps = settle(self.relay, inputs, self.config.relay.policy)
        if any(st.transition is not None and st.decision.cause is Cause.PREPAID for st in steps):
            self.progress.cut_for_credit = True
        if tx is not None:
            for code, detail in events:
                self._log(tx, code, detail)
            for step in steps:
                ev = control_event(step, now)
                if ev is not None:
                    self.events.record(tx, ev, self._snapshot(), self.storage)
                    self._notify(ev)
        else:
            for item in events:
                _hold(self._pending_events, item)
            for step in steps:
                ev = control_event(step, now)
                if ev is not None:
                    _hold(self._pending_control, ev)
        if self.relay.output_state != before:
            self.on_relay(self.relay.output_state)
        self._settled = (seen_meas, self.limiter, self.account, seen_relay, self.tariff_state,
                         (self.progress.tamper, self.progress.cut_for_credit), self._headroom_mwh())
        return list(steps)

    def _charge_consumption(self, until: datetime, events: list) -> None:
        """Charge the energy since the last charge. The account is charged whole mWh of
        the cumulative register (its floor), never a float difference: what is charged up
        to an instant is then the same whether the walk settled once or at every capture
        on the way (the tariff's bill is cumulative too, and rounded once to the paisa)."""
        start = self.progress.charged_until or until
        e = self.metrology.energy
        mwh = _mwh(e.active_import_wh) - _mwh_charged(self.progress.charged_wh)
        wh = Decimal(mwh).scaleb(-3)  # exact: mWh / 1000
        if until >= start:  # the energy since the last charge, into the tiers the tariff prices it in
            self.tiers = self.tiers.add_energy(e.active_import_wh, e.apparent_import_vah,
                                               self.config.tariff.tier_shares(start, until))
        if wh > 0 and until >= start:
            # the tariff keeps its bill (and slab position) either way; a kWh account is
            # charged the energy itself rather than its price
            cost, self.tariff_state = self.config.tariff.charge_energy(self.tariff_state, wh, start, max(until, start))
            if self.config.prepaid.unit == "kWh":
                cost = wh.scaleb(-3)
            # kept as the float nearest mWh / 1000: _mwh_charged gives the whole mWh back exactly
            self.progress.charged_wh = (_mwh_charged(self.progress.charged_wh) + mwh) / 1000
            if cost:
                self._charge(cost, until, events)
        if until > start:
            # the days that ended, after their energy: a bill's lines then first appear in
            # the order time reached them, however often the walk settled on the way
            cost, self.tariff_state = self.config.tariff.charge_fixed(self.tariff_state, until)
            if cost:
                self._charge(cost, until, events)
        self.progress.charged_until = max(until, start)

    def _charge(self, amount: Decimal, now: datetime, events: list) -> None:
        self.billing_progress.last_collection_time, self.billing_progress.last_collection_amount = now, amount
        self.account, evs = self.account.charge(amount, now)
        events.extend((_ACCOUNT_EVENT_CODES[e], "") for e in evs if e in _ACCOUNT_EVENT_CODES)

    def _close_billing(self, at: datetime, tx: Transaction | None) -> None:
        fixed, self.tariff_state = self.config.tariff.charge_fixed(self.tariff_state, at)
        if fixed:
            self._charge(fixed, at, [])
        self.tariff_state, bill = self.config.tariff.close_billing_period(self.tariff_state, at)
        row = {
            "billing_date": at,
            "average_power_factor": self.billing_power_factor(),
            **cumulative_values(self._cumulative()),
            "md_active_import": round(self.progress.md_w), "md_active_import_time": self.progress.md_time,
            "md_apparent_import": round(self.billing_progress.md_va), "md_apparent_import_time": self.billing_progress.md_va_time,
            **self.tiers.billing_values(),
            "period_power_on": int(self.durations.period_power_on_s // 60),
            "billed_amount": bill.total, "balance_amount": self.account.balance,
        }
        self.progress.md_w, self.progress.md_time = 0.0, None
        self.tiers = self.tiers.demand_reset()
        self.durations.period_power_on_s = 0.0
        self.counters.billing += 1
        self.billing_progress = replace(_BillingProgress(self._cumulative()),  # the last collection stays
                                        last_collection_time=self.billing_progress.last_collection_time,
                                        last_collection_amount=self.billing_progress.last_collection_amount)
        if tx is not None:
            self.profiles.billing.capture(tx, at, row, self.storage)
        else:
            _hold(self._pending_bills, (at, row))

    def billing_power_factor(self) -> float:
        """The billing period's average power factor (IS 15959: kWh / kVAh of the period),
        from the energies since the period opened, so an idle spell before the billing
        date does not hide how the load drew. 1.0 when the period drew no apparent energy."""
        cum = self._cumulative()
        start = self.billing_progress.billing_start
        wh = cum["active_import"] - start.get("active_import", 0)
        vah = cum["apparent_import"] - start.get("apparent_import", 0)
        return round(min(wh / vah, 1.0), 3) if vah > 0 else 1.0

    def _cumulative(self) -> dict[str, float]:
        e = self.metrology.energy
        return {
            "active_import": round(e.active_import_wh), "active_export": round(e.active_export_wh),
            "reactive_lag": round(e.reactive_q1_varh), "reactive_lead": round(e.reactive_q4_varh),
            "apparent_import": round(e.apparent_import_vah), "apparent_export": round(e.apparent_export_vah),
        }

    def _capture(self, tx: Transaction, profile_names) -> None:
        now = self.now
        cum = self._cumulative()
        relived = now <= self.high_water  # this instant is stamped already: no capture again
        for name in profile_names:
            if name == BLOCK_LOAD and relived:
                # the block ends here all the same: the next row covers one period only
                self.progress.block_start = cum
                self.progress.averager = BlockAverager()
            elif relived:
                pass
            elif name == BLOCK_LOAD:
                values = block_load_values(self.progress.block_start, cum, self.progress.averager)
                period_h = self.profiles.block_load.capture_period / 3600
                demand = values["active_import"] / period_h if period_h else 0.0
                if demand > self.progress.md_w:
                    self.progress.md_w, self.progress.md_time = demand, now
                apparent = values["apparent_import"] / period_h if period_h else 0.0
                if apparent > self.billing_progress.md_va:
                    self.billing_progress.md_va, self.billing_progress.md_va_time = apparent, now
                # the block's demand counts in the tier in force when the block began
                began = now - timedelta(seconds=self.profiles.block_load.capture_period)
                self.tiers = self.tiers.note_demand(self.config.tariff.tier_shares(began, began)[0][0],
                                                    demand, apparent, now)
                self._capture_row(tx, self.profiles.block_load, now, values)
                self.progress.block_start = cum
                self.progress.averager = BlockAverager()
            elif name == DAILY_LOAD:
                self._capture_row(tx, self.profiles.daily_load, now, cumulative_values(cum))
            elif name == BILLING:
                pass  # the tariff's billing date closes the period (see _settle)

    def _capture_row(self, tx: Transaction | None, profile: Profile, at: datetime, values) -> None:
        if tx is not None:
            profile.capture(tx, at, values, self.storage)
        else:  # no commit now (storage failing): the row goes out with the next one
            _hold(self._pending_rows, (profile, at, values))

    # --- non-volatile memory ---------------------------------------------------------
    @contextmanager
    def _step(self) -> Iterator[Transaction]:
        """One firmware step: one transaction, and memory changed only if it commits. What
        the step may change in RAM is kept first; a failed commit (a full disk) puts it back,
        tells the relay hal again if the step had moved it, and raises StorageError. The
        step's events reach the listeners (push) only once committed."""
        kept = self._keep()
        relay_before = self.relay.output_state
        outer, self._notices = self._notices, []
        try:
            with self.storage.transaction() as tx:
                yield tx
        except StorageError as exc:
            moved = self.relay.output_state
            self.__dict__.update(kept)
            self._notices = outer
            if moved != relay_before:
                self.on_relay(self.relay.output_state)
            self._storage_failed(exc)
            raise StorageError(f"storage error, nothing changed: {exc}") from exc
        except BaseException:
            self._notices = outer
            raise
        notices, self._notices = self._notices, outer
        self._storage_works()
        for event in notices:
            self._notify(event)

    #: what a step never puts back: measured energy, and what the meter shares or is given
    _NOT_KEPT = frozenset({"storage", "on_relay", "event_listeners", "metrology", "events", "_notices"})

    def _keep(self) -> dict[str, Any]:
        """What a step may change in RAM: frozen values as they are (a step replaces them),
        lists and dicts copied (their items are never changed in place), mutable records
        (progress, counters, durations, the security-event tallies) copied whole."""
        kept = {}
        for k, v in self.__dict__.items():
            if k in self._NOT_KEPT:
                continue
            if isinstance(v, list):
                v = list(v)
            elif isinstance(v, dict):
                v = dict(v)
            elif dataclasses.is_dataclass(v) and not type(v).__dataclass_params__.frozen:
                v = _copy_record(v)
            kept[k] = v
        return kept

    def _storage_failed(self, exc: StorageError) -> None:
        if self.storage_fault is None:
            log.warning("storage fails, metering on in memory and retrying: %s", exc)
        self.storage_fault = str(exc)
        self._retry_at = self.now + timedelta(seconds=STORAGE_RETRY_S)

    def _storage_works(self) -> None:
        if self.storage_fault is not None:
            log.warning("storage works again: the state held in memory is committed")
        self.storage_fault = None
        self._retry_at = None

    def _write_state(self, tx: Transaction) -> None:
        self._flush_pending(tx)
        self._put_state(tx, self._state(copied=False))

    def _flush_pending(self, tx: Transaction) -> None:
        """A committed step's rows: what earlier steps held for it, the security tallies
        of windows that ended; and the time it is committed at."""
        for code, detail in self._pending_events:
            self._log(tx, code, detail)
        self._pending_events = []
        for code, detail in self.security_events.due(self.now):  # tallies of windows that ended
            self._log(tx, code, detail)
        for ev in self._pending_control:
            self.events.record(tx, ev, self._snapshot(), self.storage)
            self._notify(ev)
        self._pending_control = []
        for at, row in self._pending_bills:
            self.profiles.billing.capture(tx, at, row, self.storage)
        self._pending_bills = []
        for profile, at, values in self._pending_rows:
            profile.capture(tx, at, values, self.storage)
        self._pending_rows = []
        self.progress.last_now = self.now
        self.high_water = max(self.high_water, self.now)

    def _state(self, *, copied: bool) -> tuple:
        """The state records' sources as they are now. ``copied``: the mutable records
        copied (their fields are only ever replaced, never changed in place, so a shallow
        copy holds them), to be written later by :meth:`_put_state`."""
        mutable = (self.progress, self.billing_progress, self.counters, self.durations)
        if copied:
            mutable = tuple(copy.copy(r) for r in mutable)
        return (self.high_water, self.metrology.energy, self.tariff_state, self.account, self.sts, self.relay,
                self.limiter, *mutable, self.tiers, self.earth_loading)

    def _put_state(self, tx: Transaction, state: tuple) -> None:
        """Write the state records of ``state`` (:meth:`_state`) that differ from what this
        meter last wrote (:attr:`_written`); the others already hold their values. A token
        changes three or four of the thirteen, and writing all of them (each converted,
        encoded, checksummed and written) was a third of a fleet token's commit. Unchanged
        means stored as the very same text (:func:`_same_value`, part by part, which is much
        cheaper than converting and encoding): what is kept of a record written is the
        record itself (they are frozen, replaced on change) or, for the mutable ones, a
        shallow copy (their fields are only ever replaced, never changed in place: see
        :meth:`_state`). Anything else is written."""
        if self._written_epoch != self.storage.rollbacks:
            # a commit group failed after this meter wrote in it (a fleet's): what it noted
            # as written may not be on disk, so every record is written again
            self._written, self._written_epoch = {}, self.storage.rollbacks
        written = self._written
        for key, value in zip(_STATE_KEYS, state):
            last = written.get(key, _NOTHING)
            if last is not _NOTHING and _same_value(last, value):
                continue
            if key is _HIGH_WATER:
                text = value.isoformat()
                if last is not _NOTHING and last == text:
                    continue
                tx.put(key, text)
                written[key] = text
                continue
            kept = copy.copy(value) if type(value) in _MUTABLE_RECORDS else value
            tx.put(key, _first_text(key, kept) if last is _NOTHING else _stored(key, value))
            written[key] = kept
        self._committed_energy = state[1]  # (put back with the rest if the commit fails)

    def _put_record(self, tx: Transaction, key: str, record: Any) -> None:
        """Write one mutable state record now (an event's counter), noted as written."""
        tx.put(key, record.to_dict())
        self._written[key] = copy.copy(record)

    def unsaved(self) -> bool:
        """Whether this meter's RAM holds anything its last commit lacks: time metered since
        it, energy measured at the same instant (a load change measures a block at once),
        events, bills or captures deferred, security events being counted, a commit that
        failed. A fleet's clean stop saves only the dormant meters for which this is true."""
        return (self.now != self.progress.last_now or self.storage_fault is not None
                or bool(self._pending_events or self._pending_bills or self._pending_rows or self._pending_control)
                or self.security_events.counting > 0
                or self.metrology.energy != self._committed_energy)

    def save(self) -> None:
        with self._step() as tx:
            self._settle(tx)
            self._write_state(tx)
        self._last_save = self.now

    def shutdown(self, settings: Mapping[str, Any] | None = None) -> None:
        """A clean stop: the state saved, and the security events still being counted logged;
        ``settings`` (kept as :meth:`keep_setting` keeps one: the invocation counters' exact
        values) in the same transaction, so a stop is one commit."""
        try:
            with self.storage.transaction() as tx:
                for key, value in (settings or {}).items():
                    tx.put(key, value)
                for code, detail in self.security_events.close():
                    self._log(tx, code, detail)
                self._settle(tx)
                self._write_state(tx)
        except BaseException:
            self._written = {}  # not a step (nothing is put back): what it noted is not on disk
            raise
        self._last_save = self.now

    def _snapshot(self) -> dict:
        m = self.metrology.measurements
        return {"voltage": round(m.phases[0].v_rms, 2), "current": round(m.phases[0].i_rms, 3),
                "power_factor": round(m.total.pf, 3), "active_import": round(self.metrology.energy.active_import_wh)}

    def _log(self, tx: Transaction, code: EventCode, detail: Any = "", when: datetime | None = None) -> None:
        event = Event(code, when or self.now, detail)
        self.events.record(tx, event, self._snapshot(), self.storage)
        counted = vars(self.counters).copy()
        self.counters.count(event.code)
        if vars(self.counters) != counted:  # most events count nothing: the record stands
            self._put_record(tx, COUNTERS_KEY, self.counters)
        if event.code in _TAMPERS:
            self.durations.tampers += 1
            self._put_record(tx, DURATIONS_KEY, self.durations)
        self._notify(event)

    def _notify(self, event: Event) -> None:
        if self._notices is not None:  # inside a step: told once it commits
            self._notices.append(event)
            return
        for listener in self.event_listeners:
            listener(event)

    # --- inputs -------------------------------------------------------------------------
    def enter_token(self, digits: str, source: TokenSource | str = TokenSource.CONSOLE) -> TokenOutcome:
        """Decode, validate and apply one token (:func:`firmware.prepaid.apply_token` applies
        its effect); credit and TID commit in one transaction. ``source`` names whose
        bad-token lockout it counts towards (each source has its own). A token whose
        commit fails (storage failing) changes nothing, in memory either, and comes back
        as ``storage_error``: not credited, its TID not remembered, so it can be entered
        again once storage works."""
        try:
            source = TokenSource(source)
        except ValueError:
            raise CommandError(f"no token source {source!r}") from None
        now = self.now
        digits = "".join(ch for ch in str(digits) if not ch.isspace() and ch != "-")
        result, new_state = decode(self.sts, digits, now, source)
        outcome = TokenOutcome(result, result.code, message=result.detail)
        targets = TokenTargets(self.account, self.limiter, self.progress.tamper)
        if result.code is TokenResultCode.ACCEPT:
            applied = apply_token(result.effect, targets, now, result.detail)
            targets = applied.targets
            outcome = replace(outcome, code=applied.code, credit_added=applied.credit_added, message=applied.message)
            if not outcome.accepted:
                # overflow or a credit this meter cannot take: the token stays unused
                new_state = note_bad_token(self.sts, now, source)
        try:
            self._commit_token(outcome, new_state, targets, source, digits)
        except StorageError as exc:
            cause = exc.__cause__ or exc
            return replace(outcome, code=TokenResultCode.STORAGE_ERROR, credit_added=Decimal(0), digits=digits,
                           source=source, message=f"not credited, try again ({cause})")
        self._last_save = now
        outcome = replace(outcome, digits=digits, source=source)
        self.last_token, self.last_token_time = outcome, now
        return outcome

    def _commit_token(self, outcome: TokenOutcome, new_state: DecoderState, targets: TokenTargets,
                      source: TokenSource, digits: str) -> None:
        result = outcome.result
        with self._step() as tx:
            self.sts = new_state
            self.account = targets.account
            self.limiter = targets.limiter
            self.progress.tamper = targets.tamper
            code = EventCode.TOKEN_ACCEPTED if outcome.accepted else EventCode.TOKEN_REJECTED
            self._log(tx, code, f"{outcome.word} tid={result.tid} via {source.value} {digits[:4]}...{digits[-4:]}")
            if outcome.credit_added:
                self._log(tx, EventCode.RECHARGE, str(outcome.credit_added))
            effect_event = _TOKEN_EVENTS.get(type(result.effect))
            if effect_event is not None and outcome.accepted:
                self._log(tx, effect_event, outcome.message if effect_event is EventCode.KEY_CHANGE_TOKEN else "")
            self._settle(tx)
            self._write_state(tx)

    def press_button(self) -> str:
        """The push button: reconnects a relay that is ready for reconnection (or, in
        modes that allow it, disconnects). Returns the relay word afterwards."""
        with self._step() as tx:
            self._settle(tx, button=True)
            self._write_state(tx)
        return RELAY_WORDS[self.relay.control_state]

    def remote_relay(self, trigger: Trigger) -> Refusal | None:
        """A head-end remote_disconnect / remote_reconnect (disconnect control methods)."""
        refusal = self.relay.refusal(trigger)
        if refusal is not None:
            return refusal
        self._remote = trigger
        with self._step() as tx:
            self._settle(tx)
            self._write_state(tx)
        return None

    def close_billing_now(self) -> None:
        """The billing (MD) reset: close the billing period now, out of schedule, as
        the end-of-billing script does. The next period closes on the billing day."""
        with self._step() as tx:
            self._settle(tx)  # consumption up to now belongs to the closing period
            self._close_billing(self.now, tx)
            self._log(tx, EventCode.MD_RESET, "")
            self._write_state(tx)
        self._last_save = self.now

    def set_load_limit(self, watts: float | None) -> None:
        """The head-end sets the limiter's normal threshold (None: no limit)."""
        with self._step() as tx:
            self.limiter = replace(self.limiter, threshold_normal=watts)
            self._log(tx, EventCode.LOAD_LIMIT_SET, "none" if watts is None else f"{watts} W")
            self._settle(tx)
            self._write_state(tx)

    def set_billing_day(self, day: int) -> None:
        """The head-end moves the billing date (single action schedule 0.0.15.0.0.255): kept
        in memory over the configured ``tariff.billing_day``; the open period closes on it."""
        if type(day) is not int or not 1 <= day <= 28:
            raise FirmwareError(f"the billing day is a day of the month 1..28, not {day!r}")
        with self._step() as tx:
            tx.put("billing_day", day)
            self._apply_billing_day(day)
            self._log(tx, EventCode.BILLING_DATE_SET, f"day {day}")
            self._settle(tx)
            self._write_state(tx)

    def program_tariff(self, profile: TariffProfile, activation_time: datetime) -> None:
        """A passive tariff programmed from outside (IC 20 activate_passive_calendar and its
        activation time, over DLMS): from ``activation_time`` on it prices energy, at once
        when that time is not in the future. Energy up to now is charged at the old prices
        first; the tariff is kept in memory over the configured one, with its event, in one
        transaction."""
        if not isinstance(profile, TariffProfile) or not isinstance(activation_time, datetime):
            raise FirmwareError("a programmed tariff needs a tariff profile and an activation time")
        with self._step() as tx:
            self._settle(tx)
            tariff = self.config.tariff.activated(self.now).with_passive(profile, activation_time)
            tariff = tariff.activated(self.now)  # due now: the passive takes over at once
            tx.put(TARIFF_PROGRAMMED_KEY, tariff.to_table())
            self.config = replace(self.config, tariff=tariff)
            self._settled = None  # new prices: the next step settles and bounds them again
            when = "now" if tariff.passive is None else activation_time.isoformat(timespec="seconds")
            self._log(tx, EventCode.ACTIVITY_CALENDAR_SET, f"{profile.kind.value} from {when}")
            self._write_state(tx)

    def _apply_billing_day(self, day: int | None) -> None:
        if day is None or day == self.config.tariff.billing_day:
            return
        self.config = replace(self.config, tariff=replace(self.config.tariff, billing_day=day),
                              profiles=replace(self.config.profiles, billing_day=day))
        self.profiles = replace(self.profiles, billing_schedule=replace(self.profiles.billing_schedule, day=day))
        self.scheduler = self.profiles.scheduler()
        self._settled = None  # another billing date: the next step settles

    def set_control_mode(self, mode: int) -> None:
        self.relay = self.relay.with_mode(mode)
        self.save()

    def invoke_emergency(self) -> str:
        try:
            account, events = self.account.invoke_emergency(self.now)
        except EmergencyRefused as exc:
            return f"refused: {exc.reason.value}"
        with self._step() as tx:
            self.account = account
            for e in events:
                if e in _ACCOUNT_EVENT_CODES:
                    self._log(tx, _ACCOUNT_EVENT_CODES[e], "")
            self._settle(tx)
            self._write_state(tx)
        return f"emergency credit {self.config.prepaid.display(self.account.emergency_limit)} invoked"

    def record_event(self, code: EventCode, *, tamper: bool = False, detail: str = "") -> None:
        """Something the hal sensed (cover opened, magnet, relay feedback disagreeing).
        ``tamper`` latches the tamper flag until a clear-tamper token."""
        with self._step() as tx:
            if tamper:
                self.progress.tamper = True
            self._log(tx, code, detail)
            self._settle(tx)
            self._write_state(tx)

    def keep_setting(self, key: str, value: Any, code: EventCode | None = None, detail: str = "") -> None:
        """Keep a setting changed from outside (an association's secret, a DLMS key, the push
        object list, the invocation counters) with its event, if any, in one transaction: a
        power cut keeps both or neither. The binding wing writes storage only through here."""
        with self._step() as tx:
            tx.put(key, value)
            if code is not None:
                self._log(tx, code, detail)

    def reset_profile(self, profile: Profile) -> None:
        """Class 7 ``reset`` from a head-end: empty one profile's buffer in one transaction."""
        with self._step() as tx:
            profile.reset(tx)

    @property
    def year_of_manufacture(self) -> int:
        """The year this meter's memory was first initialised (written at its first start)."""
        return int(self.storage.get("year_of_manufacture"))

    def log_security(self, code: EventCode, detail: str, source: str = "") -> None:
        """An association authentication failure or lockout from the DLMS server, from
        ``source`` (the client SAP and the peer). Rate-limited (:class:`SecurityEvents`):
        the first of its kind from its source in a window is logged now, in the security
        log; the rest are counted and logged as one row when the window ends. Nothing is
        written for an event that is only counted; rows that cannot be written now
        (storage failing) go out with the next commit."""
        rows = self.security_events.take(code, source, detail, self.now)
        if not rows:
            return
        try:
            with self._step() as tx:
                for row_code, text in rows:
                    self._log(tx, row_code, text)
        except StorageError:
            for row in rows:
                _hold(self._pending_events, row)

    # --- reading -----------------------------------------------------------------------
    @property
    def measurements(self) -> Measurements:
        return self.metrology.measurements

    @property
    def energy(self) -> EnergyRegisters:
        return self.metrology.energy

    def friendly_now(self) -> str | None:
        reason = is_friendly(self.config.prepaid, self.now)
        return reason.value if reason is not None else None

    def recent_events(self, n: int = 10) -> list[Event]:
        out: list[Event] = []
        for kind in LogKind:
            out.extend(self.events.events(self.storage, kind))
        out.sort(key=lambda e: e.time)
        return out[-n:]

    def status(self) -> dict[str, Any]:
        m = self.measurements
        e = self.energy
        a = self.account
        decision = supply_decision(self.config.prepaid, a, self.now)
        return {
            "time": self.now.isoformat(timespec="seconds"),
            "serial": self.config.identity.serial,
            "relay": RELAY_WORDS[self.relay.control_state],
            "relay_mode": self.relay.control_mode,
            "credit": str(a.balance),
            "credit_unit": self.config.prepaid.unit,
            "available_credit": str(a.available_credit),
            "debt": str(a.debt),
            "emergency_credit_active": a.emergency_invoked,
            "friendly_now": self.friendly_now() is not None,
            "supply_reason": decision.reason.value,
            "total_recharged": str(a.total_recharged),
            "total_charged": str(a.total_charged),
            "load_limit_w": self.limiter.threshold_active,
            "token_lockout": self.sts.locked_out(self.now, TokenSource.KEYPAD),
            "token_lockouts": [source.value for source in self.sts.locked_sources(self.now)],
            "storage": "ok" if self.storage_fault is None else f"failing: {self.storage_fault}",
            "energy_import_kwh": round(e.active_import_wh / 1000.0, 3),
            "energy_export_kwh": round(e.active_export_wh / 1000.0, 3),
            "voltage": round(m.phases[0].v_rms, 2),
            "current": round(m.phases[0].i_rms, 3) if self.relay.output_state else 0.0,
            "neutral_current": (None if m.neutral_i_rms is None else
                                round(m.neutral_i_rms, 3) if self.relay.output_state else 0.0),
            "power_w": round(m.total.p, 1) if self.relay.output_state else 0.0,
            "power_factor": round(m.total.pf, 3),
            "frequency": round(m.frequency, 2),
        }
