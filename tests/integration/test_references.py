"""Every logical-name reference in the meter's object list resolves (issue 11 item 13).

A head-end follows references: a schedule's script, a calendar action's script
table, a script's target object, the limiter's monitored value and actions, a
profile's and the push setup's capture objects, the TCP-UDP setup's IP setup, an
association's security setup, the Account's credit and charge lists, the Charge's
commodity. The meter is built the way ``bijli meter`` builds it (security setup and
upgrade objects included) and read over DLMS as the utility association; each
reference must name an object of the list, of the class it says, with the attribute,
method or script it names.
"""

from __future__ import annotations

from bijli.dlms import axdr
from bijli.dlms.obis import Obis
from tests.integration.whole_meter import client, whole_meter


def _obis(v: axdr.Data) -> Obis | None:
    raw = v.value
    return None if raw == b"" else Obis(*raw)


def _script(v: axdr.Data) -> tuple:  # structure {script_logical_name, script_selector}
    ln, sel = v.value
    return ("script", _obis(ln), sel.value)


def _value_definition(v: axdr.Data) -> tuple:  # structure {class_id, logical_name, attribute_index, ...}
    f = v.value
    return ("attribute", f[0].value, _obis(f[1]), f[2].value)


def _day_profiles(v):
    return [_script(axdr.Structure(a.value[1:])) for day in v.value for a in day.value[1].value]


def _scripts(v):
    out = []
    for sc in v.value:
        for action in sc.value[1].value:
            service, cls, ln, index = (x.value for x in action.value[:4])
            out.append(("attribute" if service == 1 else "method", cls, Obis(*ln), index))
    return out


def _unit_charge(v):
    commodity = v.value[1].value
    return [("attribute", commodity[0].value, _obis(commodity[1]), commodity[2].value)]


# (class_id, attribute) -> the references its value holds
REFERENCES = {
    (7, 3): lambda v: [_value_definition(c) for c in v.value],
    (9, 2): _scripts,
    (15, 9): lambda v: [("object", None, _obis(v))],
    (20, 5): _day_profiles,
    (20, 9): _day_profiles,
    (22, 2): lambda v: [_script(v)],
    (40, 2): lambda v: [_value_definition(c) for c in v.value],
    (41, 3): lambda v: [("object", None, _obis(v))],
    (71, 2): lambda v: [_value_definition(v)],
    (71, 11): lambda v: [_script(v.value[0]), _script(v.value[1])],
    (111, 9): lambda v: [("object", 112, _obis(x)) for x in v.value],
    (111, 10): lambda v: [("object", 113, _obis(x)) for x in v.value],
    (111, 11): lambda v: [r for x in v.value for r in (("object", 112, _obis(x.value[0])),
                                                        ("object", 113, _obis(x.value[1])))],
    (111, 12): lambda v: [("object", 112, _obis(x.value[0])) for x in v.value],
    (113, 5): _unit_charge,
    (113, 6): _unit_charge,
}


def test_every_logical_name_reference_in_the_object_list_resolves(tmp_path):
    node = whole_meter(tmp_path)
    c = client(node, 48)
    index = {o.logical_name: o for o in node.objects}
    entries = c.object_list()
    listed = {e.logical_name for e in entries}
    checked, dangling = 0, []
    for e in entries:
        for (cls, attr), extract in REFERENCES.items():
            if e.class_id != cls or not e.attribute_access[attr - 1] & 1:
                continue
            for ref in extract(c.get(cls, e.logical_name, attr)):
                kind, *rest = ref
                where = f"{e.logical_name} attribute {attr}"
                if kind == "script":
                    table_ln, selector = rest
                    table = index.get(table_ln)
                    ids = [s.value[0].value for s in c.get(9, table_ln, 2).value] if table_ln in listed else []
                    if table is None or table.CLASS_ID != 9 or selector not in ids:
                        dangling.append(f"{where}: script {selector} of {table_ln}")
                elif kind == "object":
                    want, ln = rest
                    if ln is None:
                        continue  # an empty reference names nothing (documented where it is empty)
                    target = index.get(ln)
                    if ln not in listed or (want is not None and target.CLASS_ID != want):
                        dangling.append(f"{where}: {ln} (class {want})")
                else:
                    cls_id, ln, member = rest
                    target = index.get(ln)
                    names = () if target is None else (target.ATTRIBUTES if kind == "attribute" else target.METHODS)
                    if ln not in listed or target.CLASS_ID != cls_id or not 1 <= member <= len(names):
                        dangling.append(f"{where}: {kind} {member} of class {cls_id} {ln}")
                checked += 1
    assert not dangling, "\n".join(dangling)
    assert checked > 50
