"""What each ledger event does to stock: the one definition, shared by the edge ledger's
projection and the cloud's fleet stock (which may import only ``edge.contracts``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.contracts.event import EventKind


@dataclass
class Effects:
    """Stock deltas and batch-status changes caused by one event."""

    moves: list[tuple[str, str, str, int]] = field(default_factory=list)
    batch: list[tuple[str, str, str, Any]] = field(default_factory=list)  # sku, lot, op, arg


_NO_EFFECT = frozenset(
    k.value
    for k in (
        EventKind.CARTON_READ,
        EventKind.DEFECT_VERDICT,
        EventKind.SCAN_READ,
        EventKind.ALERT,
        EventKind.MASTER_DATA,
    )
)


def effects(kind: str, p: dict[str, Any]) -> Effects:
    """What an event of ``kind`` with payload ``p`` does to the projection."""
    out = Effects()
    if kind in _NO_EFFECT:  # observations: most of the log, so answer them first
        return out
    if kind in (EventKind.RECEIPT, EventKind.HOLD):
        out.batch.append((p["sku"], p["lot"], "ensure", p.get("expiry")))
        out.moves.append((p["sku"], p["lot"], p["location"], p["qty"]))
    elif kind in (EventKind.PUTAWAY, EventKind.TRANSFER, EventKind.PICK):
        out.moves.append((p["sku"], p["lot"], p["from"], -p["qty"]))
        out.moves.append((p["sku"], p["lot"], p["to"], p["qty"]))
    elif kind in (EventKind.SHIP, EventKind.RETURN_TO_SUPPLIER):
        out.moves.append((p["sku"], p["lot"], p["from"], -p["qty"]))
    elif kind in (EventKind.ADJUSTMENT, EventKind.CYCLE_COUNT):
        if p["delta"] > 0:  # found stock of a batch never received still gets a batch row
            out.batch.append((p["sku"], p["lot"], "ensure", None))
        if p["delta"]:
            out.moves.append((p["sku"], p["lot"], p["location"], p["delta"]))
    elif kind == EventKind.IDENTIFY:
        out.batch.append((p["sku"], p["lot"], "ensure", p.get("expiry")))
        out.moves.append((p["hold_sku"], p["hold"], p["from"], -p["qty"]))
        out.moves.append((p["sku"], p["lot"], p["to"], p["qty"]))
    elif kind == EventKind.QA_FREEZE:
        out.batch.append((p["sku"], p["lot"], "freeze", p.get("reason", "")))
    elif kind == EventKind.QA_RELEASE:
        out.batch.append((p["sku"], p["lot"], "release", None))
    elif kind == EventKind.EXPIRY_BLOCK:
        out.batch.append((p["sku"], p["lot"], "block", None))
    return out
