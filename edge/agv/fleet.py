"""What master control knows about the fleet, and the small interfaces the dispatcher uses."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from edge.agv.messages import FINAL_ACTION, REJECTION_ERRORS, Factsheet, State

CONTROLLABLE = ("AUTOMATIC", "SEMIAUTOMATIC")


class Link(Protocol):
    """What the dispatcher needs from the broker connection."""

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool: ...


@dataclass(frozen=True)
class DispatchTask:
    """A carton to move: from where it was read to the location the ledger chose."""

    task_id: str
    carton_id: str
    from_node: str
    to_location: str


@dataclass
class AgvView:
    """What master control knows about one AGV."""

    manufacturer: str
    serial: str
    connection: str | None = None
    state: State | None = None
    factsheet: Factsheet | None = None
    last_seen: float = 0.0
    orphan_cancel: str | None = None  # actionId of our cancelOrder for an order we do not track
    orphan_sent: float = 0.0
    charge_sent: float = -1e18  # when we last sent start/stopCharging


@dataclass
class Counters:
    invalid_messages: int = 0
    orders_sent: int = 0
    resends: int = 0
    redispatches: int = 0
    last_invalid: deque[str] = field(default_factory=lambda: deque(maxlen=20))


def action_final(st: State, action_id: str) -> bool:
    return any(
        a.action_id == action_id and a.action_status in FINAL_ACTION for a in st.action_states
    )


def action_status(st: State, action_id: str) -> str | None:
    for a in st.action_states:
        if a.action_id == action_id:
            return a.action_status
    return None


def rejection(st: State, order_id: str) -> str | None:
    for err in st.errors:
        if err.error_type in REJECTION_ERRORS and any(
            r.reference_key == "orderId" and r.reference_value == order_id
            for r in err.error_references or []
        ):
            return f"{err.error_type}: {err.error_description or ''}".strip()
    return None
