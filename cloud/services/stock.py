"""What a ledger event does to fleet stock, mirrored from the edge ledger's projection.

The cloud may import only ``edge.contracts``, so this is a second statement of the stock moves of
``edge.ledger.projection.effects``; ``tests/cloud/test_stock_mirror.py`` replays the same events
through both and fails on any drift.
"""

from __future__ import annotations

from typing import Any

Move = tuple[str, str, str, int]  # location, sku, lot, delta
OUTBOUND_KINDS = {"pick", "ship"}  # what a QA freeze forbids on another node


def moves(kind: str, p: dict[str, Any]) -> list[Move]:
    """Stock deltas of one event; unknown or observation kinds move nothing."""
    try:
        if kind in ("receipt", "hold"):
            return [(p["location"], p["sku"], p["lot"], int(p["qty"]))]
        if kind in ("putaway", "transfer", "pick"):
            q = int(p["qty"])
            return [(p["from"], p["sku"], p["lot"], -q), (p["to"], p["sku"], p["lot"], q)]
        if kind in ("ship", "return-to-supplier"):
            return [(p["from"], p["sku"], p["lot"], -int(p["qty"]))]
        if kind in ("adjustment", "cycle-count"):
            d = int(p["delta"])
            return [(p["location"], p["sku"], p["lot"], d)] if d else []
        if kind == "identify":
            q = int(p["qty"])
            return [(p["from"], p["hold_sku"], p["hold"], -q), (p["to"], p["sku"], p["lot"], q)]
    except (KeyError, TypeError, ValueError):
        return []
    return []


def takes_from_batch(kind: str, p: dict[str, Any]) -> tuple[str, str] | None:
    """(sku, lot) when the event takes a batch's stock out (what a QA freeze forbids)."""
    if kind in OUTBOUND_KINDS and isinstance(p.get("sku"), str) and isinstance(p.get("lot"), str):
        return p["sku"], p["lot"]
    return None
