"""Master control against a real Mosquitto and the AGV simulator as a separate process."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.agv.dispatcher import Dispatcher, DispatchTask
from edge.agv.service import DispatchService
from edge.agv.store import TaskRow
from tests.agv.helpers import Observer, Sims, online, wait_for
from tests.agv.wire import assert_conformant, assert_order_rules
from tests.support.mosquitto import Broker

Make = Callable[..., DispatchService]


def task(d: Dispatcher, task_id: str) -> TaskRow:
    row = d.store.get(task_id)
    assert row is not None, task_id
    return row


def _done(svc: DispatchService, n: int) -> Callable[[], bool]:
    return lambda: svc.dispatcher.status()["tasks"].get("DONE", 0) >= n


def test_dispatch_end_to_end_every_message_conforms(
    make_service: Make, sims: Sims, observer: Observer, vda5050_dir: Path
) -> None:
    sims.start(count=2)
    svc = make_service(base_nodes=2)
    wait_for(online(svc, 2), what="2 AGVs online")
    d = svc.dispatcher
    d.submit(DispatchTask("t1", "SSCC-1", "D1", "A-03"))
    d.submit(DispatchTask("t2", "SSCC-2", "D2", "quarantine"))
    d.submit(DispatchTask("t3", "SSCC-3", "D1", "B-02"))
    wait_for(_done(svc, 3), timeout=30, what="3 tasks done")
    for task_id, node in (("t1", "SA03"), ("t2", "SQ1"), ("t3", "SB02")):
        row = d.store.get(task_id)
        assert row is not None and row.status == "DONE" and row.route[-1] == node
    # The same task id again is a resubmission, not a new task.
    assert d.submit(DispatchTask("t1", "SSCC-1", "D1", "A-03")).status == "DONE"
    seen = assert_conformant(observer, vda5050_dir)
    assert {"order", "state", "connection", "factsheet"} <= set(seen)
    assert assert_order_rules(observer) >= 3, "long routes are released in several updates"
    assert d.counters.invalid_messages == 0


def test_operator_cancel_sends_cancel_order_and_waits_for_it(
    make_service: Make, sims: Sims, observer: Observer, vda5050_dir: Path
) -> None:
    sims.start(count=1, speed=0.5)
    svc = make_service()
    wait_for(online(svc, 1))
    d = svc.dispatcher
    d.submit(DispatchTask("c1", "SSCC-9", "D2", "quarantine"))
    wait_for(lambda: task(d, "c1").status == "RUNNING", what="order acknowledged")
    assert d.cancel("c1").status == "CANCELLING"
    wait_for(lambda: task(d, "c1").status == "CANCELLED", what="cancel reported")
    actions = [a for m in observer.of("instantActions") for a in m.json()["actions"]]
    assert [a["actionType"] for a in actions] == ["cancelOrder"]
    assert "instantActions" in assert_conformant(observer, vda5050_dir)
    # The AGV is free again: a new order (new orderId) goes to it.
    d.submit(DispatchTask("c2", "SSCC-10", "D2", "A-01"))
    wait_for(lambda: task(d, "c2").status in ("RUNNING", "DONE"))


def test_last_will_of_a_killed_simulator_is_retained(broker: Broker, sims: Sims) -> None:
    proc = sims.start(count=1)
    early = Observer(broker.port)
    early.start()
    try:
        wait_for(lambda: any(b"ONLINE" in m.payload for m in early.of("connection")))
        proc.kill()
        proc.wait()
        wait_for(lambda: any(b"CONNECTIONBROKEN" in m.payload for m in early.of("connection")))
    finally:
        early.stop()
    late = Observer(broker.port)  # subscribes after the fact: gets the retained will
    late.start()
    try:
        msgs = wait_for(lambda: late.of("connection"), what="retained connection")
        assert msgs[-1].json()["connectionState"] == "CONNECTIONBROKEN"
        assert msgs[-1].retain and msgs[-1].qos == 1
        assert late.of("factsheet")[-1].retain
    finally:
        late.stop()


def test_graceful_stop_of_the_simulator_leaves_retained_offline(broker: Broker, sims: Sims) -> None:
    proc = sims.start(count=2)
    early = Observer(broker.port)
    early.start()
    try:
        wait_for(lambda: len([m for m in early.of("connection") if b"ONLINE" in m.payload]) >= 2)
    finally:
        early.stop()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    late = Observer(broker.port)
    late.start()
    try:
        msgs = wait_for(lambda: len(late.of("connection")) >= 2 and late.of("connection"))
        assert {m.json()["connectionState"] for m in msgs} == {"OFFLINE"}
        assert all(m.retain for m in msgs)
    finally:
        late.stop()


def test_broken_connection_redispatches_once_to_another_agv(
    make_service: Make, sims: Sims, observer: Observer
) -> None:
    procs = {"a-": sims.start(count=1, prefix="a-", speed=0.5)}
    svc = make_service()
    wait_for(online(svc, 1))
    d = svc.dispatcher
    d.submit(DispatchTask("r1", "SSCC-7", "D2", "A-08"))
    wait_for(lambda: task(d, "r1").status == "RUNNING")
    procs["b-"] = sims.start(count=1, prefix="b-", speed=20)
    wait_for(online(svc, 2))
    procs["a-"].kill()  # SIGKILL: the broker publishes the will
    procs["a-"].wait()
    wait_for(lambda: task(d, "r1").status == "DONE", timeout=30, what="re-dispatched task")
    row = d.store.get("r1")
    assert row is not None
    assert row.agv == "dockgate-sim/b-01" and row.failed_agvs == ["dockgate-sim/a-01"]
    assert row.redispatched == 1 and row.attempt == 2
    failed = [h for h in d.store.history("r1") if h["event"] == "redispatch"]
    assert failed[0]["code"] == "AGV_ORDER_FAILED"
    assert "CONNECTIONBROKEN" in failed[0]["detail"]


@pytest.mark.slow
def test_broker_killed_and_restarted_loses_no_task(
    make_service: Make, sims: Sims, broker: Broker
) -> None:
    sims.start(count=3, speed=4)
    svc = make_service()
    wait_for(online(svc, 3))
    d = svc.dispatcher
    d.submit(DispatchTask("k1", "S1", "D1", "A-05"))
    d.submit(DispatchTask("k2", "S2", "D2", "B-01"))
    broker.stop(kill=True)
    wait_for(lambda: not d.link_up, what="link down")
    d.submit(DispatchTask("k3", "S3", "D1", "A-02"))  # read while the broker is down
    broker.start()
    wait_for(_done(svc, 3), timeout=40, what="all tasks done after broker restart")
    assert d.store.counts() == {"DONE": 3}


def test_tasks_survive_a_restart_of_master_control(
    make_service: Make, sims: Sims, broker: Broker
) -> None:
    svc = make_service()
    d = svc.dispatcher
    d.submit(DispatchTask("p1", "S1", "D1", "A-05"))  # no AGV yet: waits in the queue
    assert [q["code"] for q in d.queue()] == ["AGV_UNAVAILABLE"]
    headers = d.sender.headers
    svc.stop()
    sims.start(count=1)
    svc2 = make_service()
    assert svc2.dispatcher.queue()[0]["task_id"] == "p1"
    wait_for(_done(svc2, 1), timeout=30)
    assert all(svc2.dispatcher.sender.headers[k] >= v for k, v in headers.items())


@pytest.mark.slow
def test_running_order_survives_a_restart_of_master_control(make_service: Make, sims: Sims) -> None:
    sims.start(count=1, speed=4)
    svc = make_service()
    wait_for(online(svc, 1))
    svc.dispatcher.submit(DispatchTask("m1", "S1", "D2", "A-06"))
    wait_for(lambda: task(svc.dispatcher, "m1").status == "RUNNING")
    svc.stop()
    svc2 = make_service()
    wait_for(_done(svc2, 1), timeout=40, what="order finished under the new master control")
    row = task(svc2.dispatcher, "m1")
    assert row.attempt == 1 and row.redispatched == 0 and row.order_update_id >= 2


def test_invalid_messages_are_counted_and_never_acted_on(
    make_service: Make, sims: Sims, observer: Observer
) -> None:
    sims.start(count=1)
    svc = make_service()
    wait_for(online(svc, 1))
    d = svc.dispatcher
    before = d.agvs["dockgate-sim/agv-01"].state
    state_topic = "uagv/v2/dockgate-sim/agv-01/state"
    observer.publish(state_topic, b"{not json")
    observer.publish("dockgate-sim/dockgate-sim/agv-01/control", {"cmd": "garbage"})
    bad = before.wire() if before else {}
    observer.publish(state_topic, {**bad, "batteryState": {"batteryCharge": "full"}})
    observer.publish(state_topic, {**bad, "serialNumber": "agv-99"})  # header/topic mismatch
    observer.publish("uagv/v2/dockgate-sim/agv-01/connection", {"connectionState": "GONE"})
    wait_for(lambda: d.counters.invalid_messages >= 5, what="5 invalid messages counted")
    view = d.agvs["dockgate-sim/agv-01"]
    assert view.connection == "ONLINE"
    assert view.state is not None and view.state.battery_state.battery_charge > 0
    assert any("batteryState" in r for r in d.counters.last_invalid)
    d.submit(DispatchTask("v1", "S1", "D1", "A-01"))  # still dispatches normally
    wait_for(_done(svc, 1))


def test_fatal_error_redispatches_once_then_fails(
    make_service: Make, sims: Sims, observer: Observer
) -> None:
    sims.start(count=2, speed=0.5)
    svc = make_service()
    wait_for(online(svc, 2))
    d = svc.dispatcher
    d.submit(DispatchTask("f1", "S1", "D1", "A-09"))
    for attempt in (1, 2):
        wait_for(lambda n=attempt: task(d, "f1").attempt == n and task(d, "f1").status == "RUNNING")
        row = d.store.get("f1")
        assert row is not None and row.agv
        serial = row.agv.split("/")[1]
        fatal = {"cmd": "error", "errorType": "laserBlocked", "errorLevel": "FATAL"}
        observer.publish(f"dockgate-sim/dockgate-sim/{serial}/control", fatal)
    wait_for(lambda: task(d, "f1").status == "FAILED")
    row = d.store.get("f1")
    assert (
        row is not None and row.code == "AGV_ORDER_FAILED" and "laserBlocked" in (row.reason or "")
    )
    assert len(set(row.failed_agvs)) == 2
    cancels = [a for m in observer.of("instantActions") for a in m.json()["actions"]]
    assert {a["actionType"] for a in cancels} == {"cancelOrder"}


def test_agv_taken_into_manual_mode_hands_its_task_on(
    make_service: Make, sims: Sims, observer: Observer
) -> None:
    sims.start(count=2, speed=0.5)
    svc = make_service()
    wait_for(online(svc, 2))
    d = svc.dispatcher
    d.submit(DispatchTask("h1", "S1", "D1", "A-04"))
    wait_for(lambda: task(d, "h1").status == "RUNNING")
    first = task(d, "h1").agv
    observer.publish(f"dockgate-sim/{first}/control", {"cmd": "mode", "operatingMode": "MANUAL"})
    wait_for(lambda: task(d, "h1").attempt == 2, what="re-dispatch")
    assert task(d, "h1").agv != first
    assert any("MANUAL" in (h["detail"] or "") for h in d.store.history("h1"))


def test_silent_agv_counts_as_failed(make_service: Make, sims: Sims, observer: Observer) -> None:
    sims.start(count=2, speed=0.5)
    svc = make_service(state_timeout_s=1.5)
    wait_for(online(svc, 2))
    d = svc.dispatcher
    d.submit(DispatchTask("s1", "S1", "D1", "A-04"))
    wait_for(lambda: task(d, "s1").status == "RUNNING")
    first = task(d, "s1").agv
    assert first
    observer.publish(f"dockgate-sim/{first}/control", {"cmd": "silence", "seconds": 30})
    wait_for(lambda: task(d, "s1").attempt == 2, what="re-dispatch")
    assert "no state" in (d.store.history("s1")[-2]["detail"] or "") or any(
        "no state" in (h["detail"] or "") for h in d.store.history("s1")
    )


def test_low_battery_task_waits_while_master_control_charges_the_agv(
    make_service: Make, sims: Sims, observer: Observer
) -> None:
    sims.start(count=1, battery=20, charge_rate=25)
    svc = make_service(battery_threshold=30, charge_until=60)
    wait_for(online(svc, 1))
    d = svc.dispatcher
    d.submit(DispatchTask("w1", "S1", "D1", "A-01"))
    queue = d.queue()
    assert queue[0]["task_id"] == "w1" and queue[0]["code"] == "AGV_UNAVAILABLE"
    wait_for(_done(svc, 1), what="task dispatched once the battery is charged")
    assert d.queue() == []
    kinds = [a["actionType"] for m in observer.of("instantActions") for a in m.json()["actions"]]
    assert kinds[:2] == ["startCharging", "stopCharging"]
    charged = [m.json()["batteryState"]["batteryCharge"] for m in observer.of("state")]
    assert max(charged) >= 60


def test_agv_with_a_foreign_order_gets_cancel_order_first(
    make_service: Make, sims: Sims, observer: Observer
) -> None:
    sims.start(count=1)
    wait_for(lambda: observer.of("state"))
    # Another master control (or our previous life) left an order on the AGV; its horizon is
    # never released, so the AGV waits at P01 for an update that does not come.
    foreign = {
        "headerId": 0, "timestamp": "2026-01-01T00:00:00.000Z", "version": "2.1.0",
        "manufacturer": "dockgate-sim", "serialNumber": "agv-01", "orderId": "foreign-1",
        "orderUpdateId": 0,
        "nodes": [
            {"nodeId": "P01", "sequenceId": 0, "released": True, "actions": [],
             "nodePosition": {"x": 1.0, "y": 2.0, "mapId": "dock-a"}},
            {"nodeId": "C00", "sequenceId": 2, "released": False, "actions": [],
             "nodePosition": {"x": 0.0, "y": 0.0, "mapId": "dock-a"}},
        ],
        "edges": [{"edgeId": "C00-P01", "sequenceId": 1, "released": False,
                   "startNodeId": "P01", "endNodeId": "C00", "actions": []}],
    }  # fmt: skip
    observer.publish("uagv/v2/dockgate-sim/agv-01/order", foreign)
    wait_for(lambda: any(m.json()["orderId"] == "foreign-1" for m in observer.of("state")))
    svc = make_service()
    d = svc.dispatcher
    d.submit(DispatchTask("o1", "S1", "D1", "A-01"))
    wait_for(_done(svc, 1), timeout=30)
    kinds = [
        ("cancel" if m.topic.endswith("instantActions") else "order")
        for m in observer.messages
        if m.topic.endswith(("instantActions", "/order")) and b"foreign-1" not in m.payload
    ]
    assert kinds[0] == "cancel", kinds


def test_simulator_disconnect_command_fires_the_will_then_comes_back(
    sims: Sims, observer: Observer
) -> None:
    sims.start(count=1)
    wait_for(lambda: any(b"ONLINE" in m.payload for m in observer.of("connection")))
    observer.publish(
        "dockgate-sim/dockgate-sim/agv-01/control", {"cmd": "disconnect", "seconds": 1}
    )
    states = lambda: [m.json()["connectionState"] for m in observer.of("connection")]  # noqa: E731
    wait_for(lambda: states()[-2:] == ["CONNECTIONBROKEN", "ONLINE"], what="will, then ONLINE")


def test_clean_shutdown_leaves_no_threads(make_service: Make, sims: Sims) -> None:
    before = {t.ident for t in threading.enumerate()}
    sims.start(count=1)
    svc = make_service()
    wait_for(online(svc, 1))
    svc.stop()
    svc.stop()
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []
