"""An AGV that restarts mid-order without its Last Will reaching master control (the broker was
restarted too, so the retained CONNECTIONBROKEN was lost) comes back ONLINE, idle, holding no
order. Found by the long chaos run: the task stayed RUNNING forever and the AGV was never used
again. The dispatcher must fail the task with a clear reason (the carton may be on the AGV)."""

from __future__ import annotations

import json
from pathlib import Path

from edge.agv.fleet import DispatchTask
from edge.agv.messages import header
from edge.agv.sim_vehicle import Vehicle
from tests.agv.test_dispatcher_loop import MAP, _run, _setup


def test_an_agv_restarted_mid_order_fails_the_task_and_is_used_again(tmp_path: Path) -> None:
    d, link, v, clock = _setup(tmp_path, None)
    d.on_message("uagv/v2/acme/agv-01/state", json.dumps(v.state(0)).encode())
    d.submit(DispatchTask("t1", "SSCC-77", "D1", "B-06"))

    def picked() -> bool:
        row = d.store.get("t1")
        return row is not None and row.picked

    _run(d, link, v, clock, 60, until=picked)
    assert d.store.get("t1").status == "RUNNING"  # type: ignore[union-attr]
    # the vehicle reboots where it stands: a fresh controller with no order, ONLINE again
    node = MAP.nodes["P03"]
    fresh = Vehicle("acme", "agv-01", MAP.map_id, "P03", node.x, node.y, speed=5, action_s=0.2)
    online = {**header(5, "acme", "agv-01"), "connectionState": "ONLINE"}
    d.on_message("uagv/v2/acme/agv-01/connection", json.dumps(online).encode())
    d.on_message("uagv/v2/acme/agv-01/state", json.dumps(fresh.state(1000)).encode())
    d.tick()
    row = d.store.get("t1")
    assert row is not None and row.status == "FAILED", row
    assert "no longer holds order" in (row.reason or "") and "SSCC-77" in (row.reason or "")
    # the AGV takes the next task
    sent = len(link.sent)
    d.submit(DispatchTask("t2", "SSCC-78", "D1", "B-05"))
    d.on_message("uagv/v2/acme/agv-01/state", json.dumps(fresh.state(1001)).encode())
    d.tick()
    assert d.store.get("t2").status in ("ASSIGNED", "RUNNING")  # type: ignore[union-attr]
    assert len(link.sent) > sent
    d.store.close()
