"""The simulated AGV's side of the order rules (spec figure 8), without a broker."""

from __future__ import annotations

from typing import Any

from edge.agv.messages import State, header
from edge.agv.orders import build_route, instant_body, last_base, order_body
from edge.agv.sim_vehicle import Vehicle
from edge.agv.sitemap import load_sitemap
from tests.agv.helpers import SITEMAP

MAP = load_sitemap(SITEMAP)


def _vehicle(**kw: Any) -> Vehicle:
    node = MAP.nodes["P01"]
    return Vehicle("acme", "agv-01", "dock-a", "P01", node.x, node.y, speed=10, action_s=0.1, **kw)


def _order(order_id: str, route: list[str], start: int, upto: int, update: int) -> dict[str, Any]:
    body = order_body(MAP, route, start, upto, order_id, update, "SSCC", "D1")
    return {**header(1, "acme", "agv-01"), **body}


def _run(v: Vehicle, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        v.step(0.05)


def _kinds(v: Vehicle) -> list[str]:
    return [e["errorType"] for e in v.errors]


def test_drives_base_stops_at_decision_point_and_continues_after_update() -> None:
    v = _vehicle()
    route = build_route(MAP, "P01", "D1", "SA02")
    upto = last_base(len(route), 0, 3)
    v.accept_order(_order("o", route, 0, upto, 0))
    _run(v, 20)
    assert (v.last_node_id, v.last_node_seq) == (route[upto], upto)
    assert v.nodes and not v.driving, "waits at the decision point for the horizon"
    assert State.model_validate(v.state(1)).new_base_request
    v.accept_order(_order("o", route, upto, len(route) - 1, 1))
    _run(v, 30)
    assert v.idle() and v.last_node_id == "SA02"
    assert {a["actionType"]: a["actionStatus"] for a in v.actions.values()} == {
        "pick": "FINISHED",
        "drop": "FINISHED",
    }


def test_rejects_new_order_while_busy_and_unreachable_first_node() -> None:
    v = _vehicle()
    route = build_route(MAP, "P01", "D1", "SA02")
    v.accept_order(_order("o1", route, 0, 2, 0))
    v.accept_order(_order("o2", route, 0, 2, 0))
    assert v.order_id == "o1" and _kinds(v) == ["orderError"]
    idle = _vehicle()
    far = build_route(MAP, "P05", "D1", "SA02")
    idle.accept_order(_order("o3", far, 0, 2, 0))
    assert idle.order_id == "" and _kinds(idle) == ["noRouteError"]


def test_update_rules_lower_equal_and_wrong_stitch() -> None:
    v = _vehicle()
    route = build_route(MAP, "P01", "D1", "SA02")
    v.accept_order(_order("o", route, 0, 4, 0))
    v.accept_order(_order("o", route, 4, 8, 2))
    assert v.order_update_id == 2
    v.accept_order(_order("o", route, 4, 8, 1))
    assert _kinds(v) == ["orderUpdateError"]
    v.accept_order(_order("o", route, 8, 10, 2))  # same orderUpdateId: silently discarded
    assert v.order_update_id == 2 and len(v.errors) == 1
    v.accept_order(_order("o", route, 2, 10, 3))  # does not start at the decision point
    assert v.order_update_id == 2 and _kinds(v)[-1] == "orderUpdateError"


def test_cancel_order_fails_open_actions_and_no_order_to_cancel_warns() -> None:
    v = _vehicle()
    route = build_route(MAP, "P01", "D1", "SA02")
    v.accept_order(_order("o", route, 0, len(route) - 1, 0))
    _run(v, 0.2)
    action_id, body = instant_body("cancelOrder")
    v.instant(body["actions"][0])
    assert v.idle() and v.actions[action_id]["actionStatus"] == "FINISHED"
    assert {a["actionStatus"] for k, a in v.actions.items() if k != action_id} == {"FAILED"}
    again, body = instant_body("cancelOrder")
    v.instant(body["actions"][0])
    assert v.actions[again]["actionStatus"] == "FAILED" and _kinds(v) == ["noOrderToCancel"]


def test_battery_drains_while_driving_and_charges() -> None:
    v = _vehicle(battery=50.0)
    route = build_route(MAP, "P01", "D1", "SA10")
    v.accept_order(_order("o", route, 0, len(route) - 1, 0))
    _run(v, 10)
    drained = v.battery
    assert drained < 50.0
    v.instant(instant_body("startCharging")[1]["actions"][0])
    _run(v, 2)
    assert v.battery > drained and v.state(2)["batteryState"]["charging"] is True
