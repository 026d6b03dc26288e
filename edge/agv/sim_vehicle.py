"""The AGV side of VDA 5050, without MQTT: accepts orders, drives, runs actions, reports state.

Pure and deterministic (time comes in through :meth:`Vehicle.step`), so the order acceptance
rules of spec figure 8 are tested directly; ``edge/agv/sim.py`` puts it on the broker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edge.agv.messages import FINAL_ACTION, header

ARRIVE_EPS = 1e-6


@dataclass
class Vehicle:
    manufacturer: str
    serial: str
    map_id: str
    last_node_id: str
    x: float
    y: float
    theta: float = 0.0
    speed: float = 1.0  # m/s
    action_s: float = 1.0  # seconds a pick or drop takes
    battery: float = 100.0
    drain_per_m: float = 0.05  # % per metre driven
    drain_per_s: float = 0.002  # % per second alive
    charge_per_s: float = 1.0  # % per second while charging
    order_id: str = ""
    order_update_id: int = 0
    last_node_seq: int = 0
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: list[list[Any]] = field(default_factory=list)  # [actionId, seconds left]
    errors: list[dict[str, Any]] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    driving: bool = False
    paused: bool = False
    charging: bool = False
    operating_mode: str = "AUTOMATIC"
    distance_since: float = 0.0
    changed: bool = True

    # ------------------------------------------------------------------ queries
    def idle(self) -> bool:
        return (
            not self.nodes
            and not self.edges
            and all(a["actionStatus"] in FINAL_ACTION for a in self.actions.values())
        )

    def decision_point(self) -> tuple[str, int]:
        """The last released node still ahead, or where the AGV stands when none is."""
        released = [n for n in self.nodes if n["released"]]
        if released:
            return released[-1]["nodeId"], released[-1]["sequenceId"]
        return self.last_node_id, self.last_node_seq

    # ------------------------------------------------------------------ orders
    def accept_order(self, order: dict[str, Any]) -> None:
        """Apply an order or an update, or reject it with a WARNING error (spec figure 8)."""
        nodes, edges = order["nodes"], order["edges"]
        if not nodes or len(edges) != len(nodes) - 1:
            return self._reject(order, "validationError", "need n nodes and n-1 edges")
        first = nodes[0]
        if order["orderId"] != self.order_id:
            if not self.idle():
                return self._reject(order, "orderError", f"still executing {self.order_id}")
            if not self._reachable(first):
                return self._reject(order, "noRouteError", f"not at {first['nodeId']}")
            self.order_id, self.order_update_id = order["orderId"], order["orderUpdateId"]
            self.actions, self.running = {}, []
            self.errors = [e for e in self.errors if e["errorLevel"] == "FATAL"]
            self.nodes, self.edges = [], []
            self._append(nodes, edges)
            self._arrive(self.nodes.pop(0))
            return None
        if order["orderUpdateId"] < self.order_update_id:
            return self._reject(order, "orderUpdateError", "orderUpdateId went backwards")
        if order["orderUpdateId"] == self.order_update_id:
            return None  # a resend of what we have: silently discarded (figure 8, step 6)
        if (first["nodeId"], first["sequenceId"]) != self.decision_point():
            return self._reject(
                order, "orderUpdateError", "update does not start at decision point"
            )
        self.nodes = [n for n in self.nodes if n["released"]]
        self.edges = [e for e in self.edges if e["released"]]
        self.order_update_id = order["orderUpdateId"]
        self.errors = [e for e in self.errors if e["errorLevel"] == "FATAL"]
        self._append(nodes[1:], edges)
        self.changed = True
        return None

    def _reachable(self, node: dict[str, Any]) -> bool:
        if node["nodeId"] == self.last_node_id:
            return True
        pos = node.get("nodePosition")
        if pos is None:
            return False
        return bool(
            math.dist((pos["x"], pos["y"]), (self.x, self.y)) <= pos.get("allowedDeviationXY", 0.0)
        )

    def _append(self, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
        self.nodes += nodes
        self.edges += edges
        for item in [*nodes, *edges]:
            for a in item["actions"]:
                self.actions.setdefault(
                    a["actionId"],
                    {"actionId": a["actionId"], "actionType": a["actionType"],
                     "actionStatus": "WAITING"},
                )  # fmt: skip

    def _reject(self, order: dict[str, Any], kind: str, why: str) -> None:
        refs = [
            {"referenceKey": "orderId", "referenceValue": str(order.get("orderId", ""))},
            {"referenceKey": "orderUpdateId", "referenceValue": str(order.get("orderUpdateId"))},
        ]
        self.errors.append(
            {"errorType": kind, "errorLevel": "WARNING", "errorDescription": why,
             "errorReferences": refs}
        )  # fmt: skip
        self.changed = True

    # ------------------------------------------------------------------ instant actions
    def instant(self, action: dict[str, Any]) -> bool:
        """Run one instant action. Returns True when the factsheet was requested."""
        aid, kind = action["actionId"], action["actionType"]
        params = {p["key"]: p["value"] for p in action.get("actionParameters") or []}
        status = "FINISHED"
        if kind == "cancelOrder":
            status = self._cancel(aid)
        elif kind in ("startPause", "stopPause"):
            self.paused = kind == "startPause"
        elif kind in ("startCharging", "stopCharging"):
            self.charging = kind == "startCharging"
        elif kind == "initPosition":
            self.x, self.y = float(params["x"]), float(params["y"])
            self.theta = float(params.get("theta", 0.0))
            self.last_node_id = str(params.get("lastNodeId", ""))
        elif kind not in ("stateRequest", "factsheetRequest"):
            status = "FAILED"
        self.actions[aid] = {"actionId": aid, "actionType": kind, "actionStatus": status}
        self.changed = True
        return bool(kind == "factsheetRequest")

    def _cancel(self, action_id: str) -> str:
        if self.idle():
            self.errors.append(
                {"errorType": "noOrderToCancel", "errorLevel": "WARNING",
                 "errorReferences": [{"referenceKey": "actionId", "referenceValue": action_id}]}
            )  # fmt: skip
            return "FAILED"
        # This AGV stops at once, so cancelOrder finishes in the same step.
        self.nodes, self.edges, self.running, self.driving = [], [], [], False
        for a in self.actions.values():
            if a["actionStatus"] not in FINAL_ACTION:
                a["actionStatus"] = "FAILED"
        return "FINISHED"

    # ------------------------------------------------------------------ motion
    def step(self, dt: float) -> None:
        self.battery = max(0.0, self.battery - self.drain_per_s * dt)
        if self.charging:
            self.battery = min(100.0, self.battery + self.charge_per_s * dt)
        blocked = (
            self.paused
            or self.charging
            or self.operating_mode not in ("AUTOMATIC", "SEMIAUTOMATIC")
            or any(e["errorLevel"] == "FATAL" for e in self.errors)
            or self.battery <= 0.0
        )
        if blocked:
            return self._set_driving(False)
        if self.running:
            return self._run_action(dt)
        if not self.nodes or not self.nodes[0]["released"]:
            return self._set_driving(False)
        self._drive(dt)

    def _run_action(self, dt: float) -> None:
        self._set_driving(False)
        current = self.running[0]
        state = self.actions[current[0]]
        if state["actionStatus"] == "WAITING":
            state["actionStatus"] = "RUNNING"
            self.changed = True
        current[1] -= dt
        if current[1] <= 0:
            state["actionStatus"] = "FINISHED"
            if state["actionType"] == "pick":
                self.loads = [{"loadId": current[0]}]
            elif state["actionType"] == "drop":
                self.loads = []
            self.running.pop(0)
            self.changed = True

    def _drive(self, dt: float) -> None:
        target = self.nodes[0]
        pos = target["nodePosition"]
        gap = math.dist((self.x, self.y), (pos["x"], pos["y"]))
        step = min(gap, self.speed * dt)
        if gap > ARRIVE_EPS:
            self.theta = math.atan2(pos["y"] - self.y, pos["x"] - self.x)
            self.x += (pos["x"] - self.x) * step / gap
            self.y += (pos["y"] - self.y) * step / gap
            self.battery = max(0.0, self.battery - self.drain_per_m * step)
            self.distance_since += step
        self._set_driving(True)
        if gap - step <= ARRIVE_EPS:
            self.x, self.y = pos["x"], pos["y"]
            if self.edges:
                self.edges.pop(0)
            self._arrive(self.nodes.pop(0))

    def _arrive(self, node: dict[str, Any]) -> None:
        self.last_node_id, self.last_node_seq = node["nodeId"], node["sequenceId"]
        self.distance_since = 0.0
        for a in node["actions"]:
            self.running.append([a["actionId"], self.action_s])
        if not self.nodes:
            self._set_driving(False)
        self.changed = True

    def _set_driving(self, value: bool) -> None:
        if value != self.driving:
            self.driving, self.changed = value, True

    # ------------------------------------------------------------------ reporting
    def state(self, header_id: int) -> dict[str, Any]:
        released_left = [n for n in self.nodes if n["released"]]
        return {
            **header(header_id, self.manufacturer, self.serial),
            "orderId": self.order_id,
            "orderUpdateId": self.order_update_id,
            "lastNodeId": self.last_node_id,
            "lastNodeSequenceId": self.last_node_seq,
            "driving": self.driving,
            "paused": self.paused,
            "newBaseRequest": bool(self.nodes) and len(released_left) <= 1,
            "distanceSinceLastNode": round(self.distance_since, 3),
            "operatingMode": self.operating_mode,
            "nodeStates": [
                {k: n[k] for k in ("nodeId", "sequenceId", "released", "nodePosition") if k in n}
                for n in self.nodes
            ],
            "edgeStates": [
                {"edgeId": e["edgeId"], "sequenceId": e["sequenceId"], "released": e["released"]}
                for e in self.edges
            ],
            "agvPosition": {
                "x": round(self.x, 3),
                "y": round(self.y, 3),
                "theta": round(self.theta, 4),
                "mapId": self.map_id,
                "positionInitialized": True,
            },
            "loads": self.loads,
            "actionStates": list(self.actions.values()),
            "batteryState": {"batteryCharge": round(self.battery, 2), "charging": self.charging},
            "errors": self.errors,
            "safetyState": {"eStop": "NONE", "fieldViolation": False},
        }
