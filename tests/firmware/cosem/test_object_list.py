"""The meter's object list (firmware.cosem) on a real meter and a real DLMS server:
every profile column exists with its class, scaler profiles agree with the registers,
every attribute reads as the utility association, the billing date can be moved,
and a push builds a DataNotification with the live values."""

from __future__ import annotations

from datetime import datetime

import pytest

from bijli.dlms import apdu, axdr, security
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.cosem import CLASSES
from bijli.dlms.cosem.base import Context, CosemError
from bijli.dlms.cosem.profile import CaptureObjectDefinition, ProfileGeneric
from bijli.dlms.errors import ServiceError
from bijli.dlms.obis import Obis
from bijli.dlms.server import Server
from bijli.firmware.cosem import associations, catalogue, object_list, quantities, registers
from bijli.firmware.cosem import profiles as cosem_profiles
from bijli.firmware.cosem import push as cosem_push
from bijli.firmware import profiles as fw_profiles
from bijli.firmware.events import LogKind
from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.push import PushOutbox
from bijli.firmware.storage import Storage
from tests.peers.direct import Direct

START = datetime(2024, 6, 10, 10, 0)  # a Monday
TOD_PASSIVE = {"kind": "tod", "passive": {"activation_time": "2025-04-01T00:00:00", "kind": "flat"}}


class Rig:
    def __init__(self, state, config: dict | None = None, *, clock_writable: bool = False, start=None):
        self.cfg = MeterConfig.from_dict(config or {})
        self.storage = Storage.open(state)
        self.meter = Meter(self.cfg, self.storage, start or START)
        self.security = associations.security_settings(self.meter)
        self.outbox = PushOutbox(self.cfg.push)
        self.objects = object_list.build_objects(self.meter, self.meter.set_time if clock_writable else None, security=self.security, push=self.outbox)
        self.server = Server(self.objects, associations.policies(self.meter), security=self.security)
        cosem_push.attach_push(self.meter, self.outbox, self.server)
        self.index = {o.logical_name: o for o in self.objects}

    def client(self, sap: int = 48) -> Client:
        ic = self.security.counters.expected_rx(b"BJLCLT01")
        c = Client(Direct(self.server, sap), ClientSettings.for_association(sap, invocation_counter=ic))
        c.associate()
        return c


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path, {"push": {"destination": "127.0.0.1:4060", "ciphered": False}, "tariff": TOD_PASSIVE})


def _profiles(rig):
    return [o for o in rig.objects if isinstance(o, ProfileGeneric)]


def test_every_capture_object_of_every_profile_exists_with_its_class(rig):
    checked = 0
    for profile in _profiles(rig):
        for c in profile.source.capture_objects():
            obj = rig.index.get(c.logical_name)
            assert obj is not None, f"{profile.logical_name} captures {c.logical_name}, which is not in the list"
            assert obj.CLASS_ID == c.class_id, (profile.logical_name, c)
            assert 1 <= c.attribute_index <= len(obj.ATTRIBUTES), (profile.logical_name, c)
            checked += 1
    assert len(_profiles(rig)) == 4 + 8 + 1 + 5 and checked > 80  # eight event logs: the security log too


def test_scaler_profiles_agree_with_the_registers_and_the_profile_encoders(rig):
    rig.meter.on_samples([], START)  # any measurements at all
    for obis, columns in cosem_profiles.scaler_profiles(rig.meter).items():
        profile = rig.index[obis]
        (row,) = profile.get(2, None, None).value
        assert len(row.value) == len(columns) > 0
        for cell, col in zip(row.value, columns):
            assert col.attribute_index == 3
            assert cell == rig.index[col.logical_name].get(3, None, None)
    # one table: each profile column's register carries the scaler and unit its cells are encoded for
    sets = rig.meter.profiles
    for profile in (sets.instantaneous, sets.block_load, sets.daily_load, sets.billing):
        for c in profile.capture_objects:
            q = quantities.QUANTITIES.get(c.name)
            if q is None or c.attribute_index != 2:
                continue
            reg = rig.index[Obis.parse(c.logical_name)]
            assert (reg.scaler, reg.unit) == (q.scaler, q.unit), c.name
            assert type(quantities.encode_value(c.name, 1.5, c.kind)) is type(reg.get(2, None, None)), c.name
    for name in ("average_voltage", "average_current"):  # captured at the resolution they cross at
        assert quantities.QUANTITIES[name].scaler == -fw_profiles.AVERAGE_DECIMALS, name
    assert quantities.QUANTITIES["voltage"].encode(230.456) == axdr.LongUnsigned(23046)
    assert quantities.QUANTITIES["power_factor"].encode(0.8) == axdr.Long(800)


def test_every_attribute_of_every_object_reads_as_the_utility_association(rig):
    c = rig.client(48)
    session = c.transport.session
    entries = c.object_list()
    assert {e.logical_name for e in entries} == set(rig.index)
    for entry in entries:
        obj = rig.index[entry.logical_name]
        for attr in range(1, len(obj.ATTRIBUTES) + 1):
            try:
                obj.get(attr, None, Context(48, session))  # in-process: only a CosemError may refuse
            except CosemError:
                pass
            if attr == 2 and isinstance(obj, ProfileGeneric) and obj.source.profile_entries() > 1:
                continue  # stored buffers are empty here; the read above covers them
            try:
                c.get(entry.class_id, entry.logical_name, attr)
            except ServiceError:
                pass  # a data-access-result, as the standard prescribes


def test_object_list_entries_carry_the_right_class_ids_and_versions(rig):
    entries = {e.logical_name: e for e in rig.client(32).object_list()}
    for ln, e in entries.items():
        assert CLASSES[e.class_id].VERSION == e.version == rig.index[ln].VERSION, ln
    expected = {
        "0.0.94.91.10.255": (7, 1), "1.0.94.91.3.255": (7, 1), "1.0.94.91.7.255": (7, 1),
        "0.0.15.0.0.255": (22, 0), "0.0.13.0.0.255": (20, 0), "0.0.22.0.0.255": (23, 1),
        "0.0.25.0.0.255": (41, 0), "0.0.41.0.0.255": (17, 0), "0.0.25.9.0.255": (40, 0),
        "0.0.43.1.3.255": (1, 0), "1.0.1.6.0.255": (4, 0), "0.0.0.1.2.255": (3, 0), "1.0.1.29.0.255": (3, 0),
        "1.0.12.27.0.255": (3, 0), "0.0.96.1.4.255": (1, 0), "1.0.0.2.0.255": (1, 0),
    }
    for ln, (cid, version) in expected.items():
        e = entries[Obis.parse(ln)]
        assert (e.class_id, e.version) == (cid, version), ln


def test_name_plate_row_is_the_data_objects_it_captures(rig):
    c = rig.client(32)
    (row,) = c.get(7, catalogue.NAME_PLATE, 2).value
    values = [c.get(1, obis, 2) for obis in catalogue.NAME_PLATE_COLUMNS]
    assert list(row.value) == values
    assert values[0] == axdr.VisibleString("BJL0000001") and values[3] == axdr.Unsigned(5)
    assert values[2] == axdr.OctetString(registers.firmware_version().encode())
    assert values[6] == axdr.LongUnsigned(2024)


def test_billing_date_moves_through_the_single_action_schedule_and_survives_a_restart(tmp_path):
    rig = Rig(tmp_path)
    c = rig.client(48)
    (entry,) = c.get(22, catalogue.BILLING_SCHEDULE, 4).value
    assert entry.value[1] == axdr.OctetString(axdr.CosemDate(None, None, 1, None).encode())

    def when(day, year=None):
        return axdr.Array((axdr.Structure((axdr.OctetString(axdr.CosemTime(0, 0, 0, 0).encode()),
                                           axdr.OctetString(axdr.CosemDate(year, None, day, None).encode()))),))

    c.set(22, catalogue.BILLING_SCHEDULE, 4, when(15))
    assert rig.meter.config.tariff.billing_day == 15
    assert rig.meter.config.tariff.next_billing_time(rig.meter.tariff_state) == datetime(2024, 6, 15)
    for bad in (when(29), when(15, 2025)):
        with pytest.raises(ServiceError):
            c.set(22, catalogue.BILLING_SCHEDULE, 4, bad)
    assert rig.meter.events.events(rig.storage, LogKind.TRANSACTION)[-1].code == 154
    rig.storage.close()
    again = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), START)
    assert again.config.tariff.billing_day == 15


def test_activity_calendar_shows_the_time_of_day_tariff(rig):
    c = rig.client(32)
    assert c.get(20, catalogue.ACTIVITY_CALENDAR, 2) == axdr.OctetString(b"tod")
    days = c.get(20, catalogue.ACTIVITY_CALENDAR, 5).value
    workday = days[0].value[1].value
    assert [a.value[2].value for a in workday] == [1, 2, 3, 1]  # normal, solar, peak, normal
    assert workday[1].value[0] == axdr.OctetString(axdr.CosemTime(9, 0, 0, 0).encode())
    weeks = c.get(20, catalogue.ACTIVITY_CALENDAR, 4).value
    assert [d.value for d in weeks[0].value[1:]] == [1, 1, 1, 1, 1, 2, 2]
    assert c.get(20, catalogue.ACTIVITY_CALENDAR, 6) == axdr.OctetString(b"flat")
    assert c.get(20, catalogue.ACTIVITY_CALENDAR, 9).value != axdr.OctetString(bytes([0xFF] * 12)).value


def test_communication_setup_matches_the_links_the_meter_serves(rig):
    from bijli.tools.node import links

    hdlc = rig.index[catalogue.HDLC_SETUP]
    assert hdlc.value("device_address") == rig.cfg.dlms.hdlc_physical_address
    assert hdlc.value("max_info_field_length_receive") == links.HDLC_MAX_INFO
    assert hdlc.value("window_size_receive") == links.HDLC_WINDOW
    assert rig.index[catalogue.TCP_UDP_SETUP].value("tcp_udp_port") == 4059
    (sap,) = rig.index[catalogue.SAP_ASSIGNMENT].value("sap_assignment_list")
    assert (sap.sap, sap.logical_device_name) == (1, rig.cfg.identity.ldn.encode())


def test_invocation_counter_is_what_the_utility_client_may_use_next(rig):
    c = rig.client(48)
    ours = c.get(1, catalogue.UTILITY_INVOCATION_COUNTER, 2).value
    assert ours == c.session.settings.invocation_counter
    public = rig.client(16)
    assert public.get(1, catalogue.UTILITY_INVOCATION_COUNTER, 2).value == rig.security.counters.expected_rx(b"BJLCLT01")


def test_push_method_queues_and_the_notification_carries_the_live_values(rig):
    c = rig.client(48)
    c.action(40, catalogue.PUSH_SETUP, 1, axdr.Integer(0))
    (request,) = rig.outbox.take()
    note = apdu.decode(rig.outbox.build(request, START))
    assert isinstance(note, apdu.DataNotification) and note.date_time.deviation == -330
    clock, energy, balance, relay = note.body.value
    assert energy == rig.index[catalogue.ACTIVE_IMPORT].get(2, None, None)
    assert balance == axdr.DoubleLong(0) and relay == axdr.Boolean(rig.meter.relay.output_state)
    # the head-end writes another list; an attribute that does not exist is refused
    c.set(40, catalogue.PUSH_SETUP, 2, axdr.Array((CaptureObjectDefinition(1, catalogue.SERIAL_NUMBER, 2).to_data(),)))
    assert apdu.decode(rig.outbox.build(request, START)).body == axdr.Structure((axdr.VisibleString("BJL0000001"),))
    with pytest.raises(ServiceError):
        c.set(40, catalogue.PUSH_SETUP, 2, axdr.Array((CaptureObjectDefinition(3, catalogue.SERIAL_NUMBER, 2).to_data(),)))


def test_push_without_a_destination_is_refused_and_a_ciphered_one_decrypts(tmp_path):
    rig = Rig(tmp_path)
    with pytest.raises(ServiceError):
        rig.client(48).action(40, catalogue.PUSH_SETUP, 1, axdr.Integer(0))
    assert rig.index[catalogue.PUSH_SETUP].value("send_destination_and_method").destination == b""
    rig.outbox.config = rig.cfg.push.__class__(destination="127.0.0.1:1", ciphered=True)
    wire = apdu.decode(rig.outbox.build(rig.outbox.request("test", START), START))
    assert wire.system_title == rig.cfg.identity.system_title
    _, plain = security.decrypt(wire.content, wire.system_title, rig.cfg.dlms.encryption_key,
                                rig.cfg.dlms.authentication_key)
    assert isinstance(apdu.decode(plain), apdu.DataNotification)


def test_push_config_names_the_bad_key():
    from bijli.firmware.errors import ConfigError

    with pytest.raises(ConfigError, match="push.destination"):
        MeterConfig.from_dict({"push": {"destination": "somewhere"}})
    with pytest.raises(ConfigError, match="push.retries"):
        MeterConfig.from_dict({"push": {"retries": -1}})
    with pytest.raises(ConfigError, match="push.wat"):
        MeterConfig.from_dict({"push": {"wat": 1}})


def test_script_tables_run_their_actions_through_the_objects(tmp_path):
    """The disconnect script table opens and re-arms the relay; the billing script
    closes the billing period now (MD reset) and logs it."""
    from bijli.dlms.cosem.base import Context
    from bijli.firmware.events import EventCode, LogKind
    from bijli.firmware.meter import Meter, MeterConfig
    from bijli.firmware.cosem.object_list import build_objects
    from bijli.firmware.storage import Storage

    meter = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), datetime(2024, 6, 15, 12, 0))  # a Saturday
    objects = {o.logical_name: o for o in build_objects(meter, None)}
    disconnect = objects[Obis(0, 0, 10, 0, 106, 255)]
    billing = objects[Obis(0, 0, 10, 0, 1, 255)]
    ctx = Context(48)

    disconnect.invoke(1, axdr.LongUnsigned(1), ctx)
    assert meter.relay.output_state is False and int(meter.relay.control_state) == 0
    disconnect.invoke(1, axdr.LongUnsigned(2), ctx)
    assert int(meter.relay.control_state) == 2  # mode 6: remote reconnect arms, the button closes

    assert meter.profiles.billing.entries_in_use(meter.storage) == 0
    billing.invoke(1, axdr.LongUnsigned(1), ctx)
    assert meter.profiles.billing.entries_in_use(meter.storage) == 1
    assert EventCode.MD_RESET in [e.code for e in meter.events.events(meter.storage, LogKind.TRANSACTION)]

    with pytest.raises(CosemError):
        disconnect.invoke(1, axdr.LongUnsigned(9), ctx)  # no such script


def test_charge_shows_the_tariffs_prices(tmp_path):
    """Charge (113) unit_charge_active is the active tariff: paisa per kWh of active import."""
    meter = Meter(MeterConfig.from_dict({}), Storage.open(tmp_path), datetime(2024, 6, 3, 12, 0))
    charge = {o.logical_name: o for o in object_list.build_objects(meter, None)}[catalogue.CONSUMPTION_CHARGE]
    unit = charge.value("unit_charge_active")
    assert (unit.commodity_scale, unit.price_scale) == (3, -2)
    assert (unit.commodity_class_id, unit.commodity_logical_name) == (3, catalogue.ACTIVE_IMPORT)
    assert [(e.index, e.charge_per_unit) for e in unit.charge_table] == [
        (b"slab1", 450), (b"slab2", 550), (b"slab3", 700), (b"slab4", 800)]  # the demo slabs, INR 4.50 ... 8.00
    assert charge.value("unit_charge_passive").charge_table == ()  # no passive tariff configured


def _commits(storage) -> list[str]:
    """Every COMMIT the storage's sqlite connection issues from now on (sqlite's own trace)."""
    seen: list[str] = []
    storage._db.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def test_a_changed_secret_and_its_event_commit_in_one_transaction(rig):
    """'Every change one transaction': the new LLS password and the event recording it
    are written together, and the next policies carry the new password."""
    from dataclasses import replace

    from bijli.firmware.events import EventCode

    reader = next(p for p in associations.policies(rig.meter) if p.client_sap == catalogue.SAP_READER)
    commits = _commits(rig.storage)
    associations.store_secret(rig.meter, replace(reader, secret=b"new-password"))
    rig.storage._db.set_trace_callback(None)
    assert len(commits) == 1
    assert [e.code for e in rig.meter.recent_events(1)] == [EventCode.LLS_SECRET_CHANGED]
    again = next(p for p in associations.policies(rig.meter) if p.client_sap == catalogue.SAP_READER)
    assert again.secret == b"new-password"


def test_the_wing_writes_storage_only_through_the_meter():
    """No module of firmware/cosem opens a transaction or writes storage itself: it calls
    the Meter's inputs (keep_setting, reset_profile, ...), which own the transaction."""
    import ast
    from pathlib import Path

    from bijli.firmware import cosem

    writes = {"put", "append", "delete", "clear", "transaction"}
    found = []
    for path in Path(cosem.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writes
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "storage"):
                found.append(f"{path.name}:{node.lineno} storage.{node.func.attr}")
    assert found == []


def test_only_the_binding_wing_imports_dlms():
    """firmware/cosem is the only firmware code that speaks COSEM."""
    import ast
    from pathlib import Path

    from bijli import firmware

    root = Path(firmware.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] == "cosem":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [f"{rel}:{node.lineno} {n}" for n in names if n.startswith("bijli.dlms")]
    assert found == []


def test_every_firmware_state_has_its_cosem_value():
    """The wing's translation tables are total: each firmware enum member shows as one
    COSEM value, and different members as different values."""
    from bijli.firmware.cosem import payment, supply, token_gateway
    from bijli.firmware.meter import TokenSource
    from bijli.firmware.prepaid import EmergencyState, PaymentPlan
    from bijli.firmware.relay import RelayState

    for table, domain in ((payment.EMERGENCY_CREDIT_STATUS, EmergencyState), (payment.PAYMENT_MODES, PaymentPlan),
                          (supply.CONTROL_STATES, RelayState)):
        assert set(table) == set(domain) and len(set(table.values())) == len(domain)
    assert set(token_gateway._DELIVERY) == set(TokenSource)


def test_the_lazy_object_list_builds_only_the_parts_an_association_reads_and_is_the_same_list(tmp_path):
    """ObjectList: a second meter of the same configuration sections builds, for a token
    delivery's reads, only the parts holding them; what it serves is what build_objects
    builds, object for object, in the same order, with the same values."""
    cfg = MeterConfig.from_dict({"push": {"destination": "127.0.0.1:4060", "ciphered": False}, "tariff": TOD_PASSIVE})

    def meter(name):
        m = Meter(cfg, Storage.open(tmp_path / name), START)
        sec = associations.security_settings(m)
        return m, sec

    first, sec1 = meter("a")
    whole = object_list.ObjectList(first, None, security=sec1)
    assert [o.logical_name for o in whole.all()] == [
        o.logical_name for o in object_list.build_objects(first, None, security=sec1)]
    second, sec2 = meter("b")
    lazy = object_list.ObjectList(second, None, security=sec2)
    server = Server(lazy, associations.policies(second), security=sec2)
    wanted = [catalogue.CURRENT_ASSOCIATION, catalogue.UTILITY_INVOCATION_COUNTER, Obis.parse("0.0.19.40.0.255"),
              Obis.parse("0.0.94.96.23.255"), Obis.parse("0.0.96.3.10.255")]
    got = [server.objects.get(name) for name in wanted]
    assert all(o is not None and o.logical_name == name for o, name in zip(got, wanted))
    built = sum(1 for part in lazy._built if part is not None)
    assert built <= 6 < len(lazy._built) / 2  # a handful of the parts, not the list
    assert server.objects.get(Obis.parse("9.9.9.9.9.9")) is None  # a name not there: everything built
    assert all(part is not None for part in lazy._built)
    everything = lazy.all()
    assert [o.logical_name for o in everything] == [o.logical_name for o in whole.all()]
    assert all(any(o is x for x in everything) for o in got)  # the objects looked up are the list's own
    ctx = Context(48)
    compared = 0
    for o, w in zip(everything, whole.all()):  # two meters in the same state: the same values
        assert type(o) is type(w)
        if o.CLASS_ID in (1, 3, 4):
            assert o.get(2, None, ctx) == w.get(2, None, ctx)
            compared += 1
    assert compared > 50
