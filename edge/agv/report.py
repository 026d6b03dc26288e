"""What the operator sees of dispatch: the waiting queue and the fleet, as plain dicts."""

from __future__ import annotations

import time
from typing import Any

from edge.agv.fleet import AgvView, Counters
from edge.agv.store import TaskRow


def queue(rows: list[TaskRow]) -> list[dict[str, Any]]:
    """Waiting tasks, oldest first, each with its error code and reason (AGV_UNAVAILABLE, ...)."""
    now = time.time()
    return [
        {
            "task_id": r.task_id,
            "carton_id": r.carton_id,
            "to_location": r.to_location,
            "waiting_s": round(now - r.created_at, 1),
            "redispatched": bool(r.redispatched),
            "code": r.code,
            "reason": r.reason,
        }
        for r in rows
    ]


def status(
    link_up: bool,
    validator: str,
    tasks: dict[str, int],
    agvs: dict[str, AgvView],
    busy: dict[str, str],
    counters: Counters,
) -> dict[str, Any]:
    return {
        "link_up": link_up,
        "validator": validator,
        "tasks": tasks,
        "agvs": {
            key: {
                "connection": view.connection,
                "busy_with": busy.get(key),
                "battery": view.state.battery_state.battery_charge if view.state else None,
                "charging": view.state.battery_state.charging if view.state else None,
                "last_node": view.state.last_node_id if view.state else None,
                "operating_mode": view.state.operating_mode if view.state else None,
                "errors": [e.error_type for e in view.state.errors] if view.state else [],
            }
            for key, view in sorted(agvs.items())
        },
        "invalid_messages": counters.invalid_messages,
        "last_invalid": list(counters.last_invalid),
        "orders_sent": counters.orders_sent,
        "resends": counters.resends,
        "redispatches": counters.redispatches,
    }
