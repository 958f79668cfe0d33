"""The meter's object list: every COSEM object, bound to one Meter (IS 15959-2).

:func:`build_objects` is the one place the list is assembled, in the order a
head-end sees it in the Association LN object_list (IEC 62056-6-2 class 15
attribute 2). The objects read the meter through closures, so every GET sees the
live value and no copy of meter state lives in the protocol stack; writes and
methods call the Meter's own inputs (``enter_token``, ``remote_relay``, ...), so a
DLMS command goes through exactly the same decisions and the same transaction as a
keypad press. What each object shows is in the module that binds it: registers,
payment, token_gateway, supply, schedules, profiles, push, communication,
associations.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

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
    if security is None:
        security = next((o.settings for o in extra or () if isinstance(o, SecuritySetup)), None)
    if push is None:
        push = PushOutbox(meter.config.push)
    ident = meter.config.identity
    index: dict[Obis, CosemObject] = {}
    lookup = index.__getitem__
    tod = TodProgramming(meter)  # the passive calendar and prices a head-end writes
    zone = lambda: deviation(meter)  # noqa: E731 - range bounds follow a written time_zone
    objects: list[CosemObject] = [
        clock(meter, set_clock),
        Data(LOGICAL_DEVICE_NAME, axdr.OctetString(ident.ldn.encode("ascii"))),
        *measured_registers(meter),
        *name_plate_data(meter),
        *prepaid_data(meter),
        disconnect_control(meter),
        limiter(meter),
        *payment_objects(meter, tod),
        token_gateway(meter),
        special_days_table(meter),
        billing_schedule(meter),
        activity_calendar(meter, tod),
        *communication_setup(meter, tcp_port),
    ]
    # profiles: instantaneous (a live snapshot), block load, daily load, billing, event logs
    sets = meter.profiles
    objects.append(ProfileGeneric(Obis.parse(sets.instantaneous.logical_name),
                                  StoredProfile(meter, sets.instantaneous, lambda: instantaneous_row(meter)),
                                  time_zone=zone))
    for profile in (sets.block_load, sets.daily_load, sets.billing, *meter.events.profiles.values()):
        capture = meter.close_billing_now if profile is sets.billing else None
        objects.append(ProfileGeneric(Obis.parse(profile.logical_name), StoredProfile(meter, profile, on_capture=capture),
                                      time_zone=zone))
    objects.extend(event_data(meter))
    # snapshot profiles: name plate and the scaler profiles, read from the objects themselves
    objects.append(ProfileGeneric(NAME_PLATE, SnapshotSource(
        [CaptureObjectDefinition(1, obis, 2) for obis in NAME_PLATE_COLUMNS], lookup)))
    for obis, columns in scaler_profiles(meter).items():
        objects.append(ProfileGeneric(obis, SnapshotSource(columns, lookup)))
    if security is not None:
        objects.append(InvocationCounter(UTILITY_INVOCATION_COUNTER, security))
    objects.append(push_setup(meter, push, lookup))
    objects.extend(script_tables(meter, lookup))
    objects.extend(extra or ())
    all_objects = lambda: objects  # noqa: E731 - the association lists see objects added later too
    objects.append(AssociationLN(CURRENT_ASSOCIATION, None, all_objects, security_setup=UTILITY_SECURITY_SETUP))

    def policy_changed(policy: AssociationPolicy) -> None:
        store_secret(meter, policy)
        if on_policy_change is not None:
            on_policy_change(policy)  # the server: new associations use the new secret

    for p in policies(meter):
        objects.append(AssociationLN(p.logical_name, p, all_objects, security_setup=UTILITY_SECURITY_SETUP,
                                     on_policy_change=policy_changed))
    index.update((o.logical_name, o) for o in objects)
    return objects
