"""The dispatcher and the simulated vehicle in one loop, without a broker (deterministic).

The link is an in-memory implementation of the dispatcher's ``Link`` port that hands each
published message to a real :class:`Vehicle`; states go back through ``on_message`` with the
same validation as from MQTT.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.agv.config import AgvConfig
from edge.agv.dispatcher import Dispatcher, DispatchTask
from edge.agv.messages import header, split_topic
from edge.agv.sim import factsheet
from edge.agv.sim_vehicle import Vehicle
from edge.agv.sitemap import load_sitemap
from edge.agv.store import TaskStore
from edge.agv.validation import MessageValidator
from tests.agv.helpers import SITEMAP
from tests.agv.wire import validators

MAP = load_sitemap(SITEMAP)


class LoopLink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        self.sent.append((topic, json.loads(payload)))
        return True


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _setup(
    tmp_path: Path, schemas: Path | None, **cfg: Any
) -> tuple[Dispatcher, LoopLink, Vehicle, Clock]:
    link, clock = LoopLink(), Clock()
    store = TaskStore(tmp_path / "dispatch.db")
    d = Dispatcher(AgvConfig(**cfg), MAP, store, link, MessageValidator(schemas), clock)
    node = MAP.nodes["P03"]
    v = Vehicle("acme", "agv-01", MAP.map_id, "P03", node.x, node.y, speed=5, action_s=0.2)
    d.on_link(True)
    online = {**header(0, "acme", "agv-01"), "connectionState": "ONLINE"}
    d.on_message("uagv/v2/acme/agv-01/connection", json.dumps(online).encode())
    return d, link, v, clock


def _run(
    d: Dispatcher,
    link: LoopLink,
    v: Vehicle,
    clock: Clock,
    seconds: float,
    until: Callable[[], bool] = lambda: False,
) -> None:
    delivered, hid = 0, 0
    while clock.now < seconds and not until():
        for topic, msg in link.sent[delivered:]:
            parts = split_topic(topic)
            assert parts is not None
            if parts[3] == "order":
                v.accept_order(msg)
            else:
                for action in msg["actions"]:
                    v.instant(action)
        delivered = len(link.sent)
        v.step(0.1)
        clock.now += 0.1
        hid += 1
        d.on_message("uagv/v2/acme/agv-01/state", json.dumps(v.state(hid)).encode())
        d.tick()


def test_factsheet_limit_cuts_the_horizon_and_the_order_still_completes(
    tmp_path: Path, vda5050_dir: Path
) -> None:
    d, link, v, clock = _setup(tmp_path, vda5050_dir, base_nodes=5)
    sheet = factsheet(v)
    sheet["protocolLimits"]["maxArrayLens"]["order.nodes"] = 3
    d.on_message("uagv/v2/acme/agv-01/factsheet", json.dumps(sheet).encode())
    d.on_message("uagv/v2/acme/agv-01/state", json.dumps(v.state(0)).encode())
    d.submit(DispatchTask("t1", "SSCC", "D1", "B-03"))
    _run(d, link, v, clock, 60)
    row = d.store.get("t1")
    assert row is not None and row.status == "DONE", d.store.history("t1")
    orders = [m for t, m in link.sent if t.endswith("/order")]
    assert len(orders) >= 5 and all(len(o["nodes"]) <= 3 for o in orders)
    assert [o["orderUpdateId"] for o in orders] == list(range(len(orders)))
    check = validators(vda5050_dir)["order"]
    assert all(check.is_valid(o) for o in orders)
    d.store.close()


def test_without_schemas_the_loop_runs_on_our_models(tmp_path: Path) -> None:
    d, link, v, clock = _setup(tmp_path, None)
    d.on_message("uagv/v2/acme/agv-01/state", json.dumps(v.state(0)).encode())
    d.submit(DispatchTask("t1", "SSCC", "D2", "quarantine"))
    _run(d, link, v, clock, 60)
    row = d.store.get("t1")
    assert row is not None and row.status == "DONE" and row.route[-1] == "SQ1"
    d.on_message("uagv/v2/acme/agv-01/state", b'{"headerId": "x"}')
    assert d.counters.invalid_messages == 1
    d.store.close()


def test_ack_timeout_resends_same_ids_then_gives_up(tmp_path: Path) -> None:
    d, link, v, clock = _setup(tmp_path, None, order_ack_timeout_s=1.0, max_order_resends=2)
    d.on_message("uagv/v2/acme/agv-01/state", json.dumps(v.state(0)).encode())
    d.submit(DispatchTask("t1", "SSCC", "D1", "A-01"))
    for _ in range(50):  # the AGV keeps reporting but never takes the order (e.g. lost QoS 0)
        clock.now += 0.1
        d.on_message("uagv/v2/acme/agv-01/state", json.dumps(v.state(1)).encode())
        d.tick()
    orders = [m for t, m in link.sent if t.endswith("/order")]
    assert len(orders) == 3
    assert {(o["orderId"], o["orderUpdateId"]) for o in orders} == {("t1.1", 0)}
    assert [o["headerId"] for o in orders] == [0, 1, 2]
    row = d.store.get("t1")
    assert row is not None and row.redispatched == 1 and row.status == "QUEUED"
    assert row.code == "AGV_UNAVAILABLE"  # the only AGV failed it: the task waits, visibly
    redispatch = [h for h in d.store.history("t1") if h["event"] == "redispatch"]
    assert redispatch[0]["code"] == "AGV_ORDER_FAILED"
    assert "never acknowledged" in redispatch[0]["detail"]
    d.store.close()


def test_failure_after_the_pick_is_not_redispatched(tmp_path: Path) -> None:
    d, link, v, clock = _setup(tmp_path, None)
    d.on_message("uagv/v2/acme/agv-01/state", json.dumps(v.state(0)).encode())
    d.submit(DispatchTask("t1", "SSCC-77", "D1", "B-06"))

    def picked() -> bool:
        row = d.store.get("t1")
        return row is not None and row.picked

    _run(d, link, v, clock, 60, until=picked)
    broken = {**header(1, "acme", "agv-01"), "connectionState": "CONNECTIONBROKEN"}
    d.on_message("uagv/v2/acme/agv-01/connection", json.dumps(broken).encode())
    row = d.store.get("t1")
    assert row is not None and row.status == "FAILED" and row.redispatched == 0
    assert "SSCC-77 is on acme/agv-01" in (row.reason or "")
    d.store.close()
