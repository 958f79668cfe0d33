"""A whole meter as ``bijli meter`` builds it, for tests that walk its object list.

The MeterNode (firmware, the object list with the security setup, the DLMS server)
plus the upgrade objects ``bijli meter`` adds, on a real state directory, and our
own DLMS client talking to its server in-process (each request APDU straight into
``Server.handle``, the path every link shell takes).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bijli.dlms.client import Client, ClientSettings
from bijli.firmware.cosem.upgrade import upgrade_objects
from bijli.firmware.upgrade.store import ImageStore
from bijli.hal.clock import SimClock
from bijli.tools.node import config as config_mod
from bijli.tools.node.meter_node import MeterNode
from tests.peers.direct import Direct

START = datetime(2024, 6, 10, 10, 0)  # a Monday


def whole_meter(state: Path, start: datetime = START) -> MeterNode:
    cfg = config_mod.load(None)
    clock = SimClock(start, rate=0)
    holder: dict = {}
    images = ImageStore(state, cfg.upgrade, now=lambda: holder["node"].meter.now)
    node = MeterNode(cfg, state, clock, extra_objects=upgrade_objects(images))
    holder["node"] = node
    return node


def client(node: MeterNode, sap: int) -> Client:
    ic = node.security.counters.expected_rx(b"BJLCLT01") if sap == 48 else 0
    c = Client(Direct(node.server, sap), ClientSettings.for_association(sap, invocation_counter=ic))
    c.associate()
    return c
