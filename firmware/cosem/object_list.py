"""The meter's object list: every COSEM object, bound to one Meter (IS 15959-2).

:func:`_parts` is the one place the list is assembled, in the order a head-end
sees it in the Association LN object_list (IEC 62056-6-2 class 15 attribute 2):
:func:`build_objects` returns it whole, :class:`ObjectList` serves it by logical
name and builds each part when it is first looked up (a fleet meter hydrated for one
association reads a handful of its objects). The objects read the meter through closures, so every GET sees the
live value and no copy of meter state lives in the protocol stack; writes and
methods call the Meter's own inputs (``enter_token``, ``remote_relay``, ...), so a
DLMS command goes through exactly the same decisions and the same transaction as a
keypad press. What each object shows is in the module that binds it: registers,
payment, token_gateway, supply, schedules, profiles, push, communication,
associations.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable, Mapping

from bijli.dlms import axdr
from bijli.dlms.cosem.association import AssociationLN, AssociationPolicy
from bijli.dlms.cosem.base import CosemObject
from bijli.dlms.cosem.data import Data
from bijli.dlms.cosem.profile import CaptureObjectDefinition, ProfileGeneric
from bijli.dlms.cosem.security_setup import SecuritySetup
from bijli.dlms.obis import Obis
from bijli.dlms.security import SecuritySettings
from bijli.firmware.cosem.clock import clock, deviation
from bijli.firmware.cosem.associations import InvocationCounter, policies, store_secret
from bijli.firmware.cosem.catalogue import (CURRENT_ASSOCIATION, LOGICAL_DEVICE_NAME, NAME_PLATE,
                                            NAME_PLATE_COLUMNS, UTILITY_INVOCATION_COUNTER, UTILITY_SECURITY_SETUP)
from bijli.firmware.cosem.communication import WRAPPER_PORT, communication_setup
from bijli.firmware.cosem.payment import payment_objects, prepaid_data
from bijli.firmware.cosem.profiles import SnapshotSource, StoredProfile, instantaneous_row, scaler_profiles
from bijli.firmware.cosem.push import push_setup
from bijli.firmware.cosem.registers import event_data, measured_registers, name_plate_data
from bijli.firmware.cosem.schedules import activity_calendar, billing_schedule, script_tables, special_days_table
from bijli.firmware.cosem.supply import disconnect_control, limiter
from bijli.firmware.cosem.tod import TodProgramming
from bijli.firmware.cosem.token_gateway import token_gateway
from bijli.firmware.push import PushOutbox

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.meter import Meter


def build_objects(meter: "Meter", set_clock: Callable[[datetime], None] | None,
                  extra: list[CosemObject] | None = None, *, security: SecuritySettings | None = None,
                  push: PushOutbox | None = None, tcp_port: "int | Callable[[], int]" = WRAPPER_PORT,
                  on_policy_change: Callable[[AssociationPolicy], None] | None = None
                  ) -> list[CosemObject]:
    """Every COSEM object of the meter, bound to ``meter``.

    ``security`` (by default the settings of a Security setup object in ``extra``) adds
    the utility client's invocation counter; ``push`` is the outbox the Push setup
    object queues to (by default a new one from ``[push]``;
    :func:`bijli.firmware.cosem.push.push_outbox` finds it for the I/O shell);
    ``tcp_port`` is the wrapper port the TCP-UDP setup shows (a getter, once the
    listener is bound)."""
    return ObjectList(meter, set_clock, extra, security=security, push=push, tcp_port=tcp_port,
                      on_policy_change=on_policy_change).all()


class ObjectList(Mapping[Obis, CosemObject]):
    """The meter's objects by logical name, each group of them built when first looked up.

    The same objects as :func:`build_objects` (which is :meth:`all` of one), in the same
    order, built by the same code: the list is assembled from *parts* (one binding
    module's call each, in object-list order), and a lookup builds only the part that
    holds the name asked for. Which part that is was learned from a whole build of a
    meter with the same configuration sections (a fleet's meters share them), checked
    after the part is built (it must hold the name, and no other part may: names the
    whole build found twice are never looked up by part); a name not learned, and
    anything that needs the whole list (iteration, the association's object list,
    a name that is not there), builds every part. A fleet meter hydrated for one
    association (a token delivery: its associations, the invocation counter, the token
    gateway, the credit and the relay) builds a handful of its 200 objects."""

    def __init__(self, meter: "Meter", set_clock: Callable[[datetime], None] | None,
                 extra: list[CosemObject] | None = None, *, security: SecuritySettings | None = None,
                 push: PushOutbox | None = None, tcp_port: "int | Callable[[], int]" = WRAPPER_PORT,
                 on_policy_change: Callable[[AssociationPolicy], None] | None = None):
        if security is None:
            security = next((o.settings for o in extra or () if isinstance(o, SecuritySetup)), None)
        if push is None:
            push = PushOutbox(meter.config.push)
        self._index: dict[Obis, CosemObject] = {}
        self._built: list[list[CosemObject] | None] = []
        self._whole: list[CosemObject] | None = None
        self._parts = _parts(meter, set_clock, list(extra or ()), security, push, tcp_port, on_policy_change,
                             self.__getitem__, self.all)
        self._built = [None] * len(self._parts)
        c = meter.config
        # what decides which objects a meter has: its configuration's sections but its
        # identity and STS keys (no object depends on those being there; a fleet's meters
        # share the very same section objects), and what the caller adds
        self._shape = ((c.dlms, c.storage, c.metrology, c.tariff, c.prepaid, c.relay, c.profiles, c.push),
                       security is not None, tuple(type(o) for o in extra or ()))

    # --- building -------------------------------------------------------------------------
    def _part(self, i: int) -> list[CosemObject]:
        built = self._built[i]
        if built is None:
            built = self._built[i] = list(self._parts[i]())
            if self._whole is None:
                for o in built:
                    self._index.setdefault(o.logical_name, o)
        return built

    @property
    def whole(self) -> bool:
        """Whether every part is built (then a plain index of :meth:`all` serves as well)."""
        return self._whole is not None

    def all(self) -> list[CosemObject]:
        """Every object, in object-list order (what build_objects returns)."""
        if self._whole is None:
            whole = [o for i in range(len(self._parts)) for o in self._part(i)]
            self._whole = whole
            self._index = {o.logical_name: o for o in whole}  # as a Server indexes a list: the last wins
            _learn(self._shape, self._built)
        return self._whole

    # --- Mapping ----------------------------------------------------------------------------
    def __getitem__(self, name: Obis) -> CosemObject:
        if self._whole is None:
            i = _where(self._shape, name)
            if i is not None:
                self._part(i)
                obj = self._index.get(name)
                if obj is not None:
                    return obj
            self.all()
        return self._index[name]

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return self.get(name) is not None

    def __setitem__(self, name: Obis, obj: CosemObject) -> None:
        """An object a server adds (Server.add): indexed beside the whole list."""
        self.all()
        self._index[name] = obj

    def __iter__(self):
        self.all()
        return iter(self._index)

    def __len__(self) -> int:
        self.all()
        return len(self._index)


# shape key -> (the shape, name -> part) for the names a whole build found in one part only.
# The key is the sections' identities; the entry holds the sections, so they stay alive
# and an id is never reused for another configuration while its entry exists.
_WHERE: dict[tuple, tuple[tuple, dict[Obis, int]]] = {}


def _key(shape: tuple) -> tuple:
    sections, secured, extras = shape
    return tuple(map(id, sections)), secured, extras


def _where(shape: tuple, name: Obis) -> int | None:
    entry = _WHERE.get(_key(shape))
    if entry is None or not all(a is b for a, b in zip(entry[0][0], shape[0])):
        return None
    return entry[1].get(name)


def _learn(shape: tuple, parts: list) -> None:
    seen: dict[Obis, int] = {}
    twice: set[Obis] = set()
    for i, objs in enumerate(parts):
        for o in objs or ():
            if o.logical_name in seen:
                twice.add(o.logical_name)
            seen[o.logical_name] = i
    for name in twice:
        del seen[name]
    if len(_WHERE) >= 16:
        _WHERE.clear()
    _WHERE[_key(shape)] = (shape, seen)


def _parts(meter: "Meter", set_clock, extra: list[CosemObject], security: SecuritySettings | None,
           push: PushOutbox, tcp_port, on_policy_change, lookup: Callable[[Obis], CosemObject],
           everything: Callable[[], list[CosemObject]]) -> list[Callable[[], list[CosemObject]]]:
    """The object list as parts, in object-list order: each a call of one binding module."""
    ident = meter.config.identity
    tods: list[TodProgramming] = []

    def tod() -> TodProgramming:  # the passive calendar and prices a head-end writes: one, shared
        if not tods:
            tods.append(TodProgramming(meter))
        return tods[0]

    zone = lambda: deviation(meter)  # noqa: E731 - range bounds follow a written time_zone
    sets = meter.profiles

    def profiles() -> list[CosemObject]:
        # instantaneous (a live snapshot), block load, daily load, billing, event logs
        out: list[CosemObject] = [ProfileGeneric(Obis.parse(sets.instantaneous.logical_name),
                                                 StoredProfile(meter, sets.instantaneous,
                                                               lambda: instantaneous_row(meter)),
                                                 time_zone=zone)]
        for profile in (sets.block_load, sets.daily_load, sets.billing, *meter.events.profiles.values()):
            capture = meter.close_billing_now if profile is sets.billing else None
            out.append(ProfileGeneric(Obis.parse(profile.logical_name),
                                      StoredProfile(meter, profile, on_capture=capture), time_zone=zone))
        return out

    def snapshots() -> list[CosemObject]:
        # name plate and the scaler profiles, read from the objects themselves
        out: list[CosemObject] = [ProfileGeneric(NAME_PLATE, SnapshotSource(
            [CaptureObjectDefinition(1, obis, 2) for obis in NAME_PLATE_COLUMNS], lookup))]
        for obis, columns in scaler_profiles(meter).items():
            out.append(ProfileGeneric(obis, SnapshotSource(columns, lookup)))
        return out

    def associations() -> list[CosemObject]:
        # the association lists see every object, built when they are read
        def policy_changed(policy: AssociationPolicy) -> None:
            store_secret(meter, policy)
            if on_policy_change is not None:
                on_policy_change(policy)  # the server: new associations use the new secret

        out: list[CosemObject] = [AssociationLN(CURRENT_ASSOCIATION, None, everything,
                                                security_setup=UTILITY_SECURITY_SETUP)]
        for p in policies(meter):
            out.append(AssociationLN(p.logical_name, p, everything, security_setup=UTILITY_SECURITY_SETUP,
                                     on_policy_change=policy_changed))
        return out

    return [
        lambda: [clock(meter, set_clock)],
        lambda: [Data(LOGICAL_DEVICE_NAME, axdr.OctetString(ident.ldn.encode("ascii")))],
        lambda: measured_registers(meter),
        lambda: name_plate_data(meter),
        lambda: prepaid_data(meter),
        lambda: [disconnect_control(meter)],
        lambda: [limiter(meter)],
        lambda: payment_objects(meter, tod()),
        lambda: [token_gateway(meter)],
        lambda: [special_days_table(meter)],
        lambda: [billing_schedule(meter)],
        lambda: [activity_calendar(meter, tod())],
        lambda: communication_setup(meter, tcp_port),
        profiles,
        lambda: event_data(meter),
        snapshots,
        lambda: [InvocationCounter(UTILITY_INVOCATION_COUNTER, security)] if security is not None else [],
        lambda: [push_setup(meter, push, lookup)],
        lambda: script_tables(meter, lookup),
        lambda: list(extra),
        associations,
    ]
