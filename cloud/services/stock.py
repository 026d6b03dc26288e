"""What a ledger event does to fleet stock, from the shared definition in
``edge.contracts.stock`` (the edge ledger's projection uses the same function)."""

from __future__ import annotations

from typing import Any

from edge.contracts.stock import effects

Move = tuple[str, str, str, int]  # location, sku, lot, delta
OUTBOUND_KINDS = {"pick", "ship"}  # what a QA freeze forbids on another node


def moves(kind: str, p: dict[str, Any]) -> list[Move]:
    """Stock deltas of one event; unknown or observation kinds move nothing, and neither does a
    payload the edge could not have written (it was verified, but the cloud never trusts shape)."""
    try:
        return [(loc, sku, lot, int(delta)) for sku, lot, loc, delta in effects(kind, p).moves]
    except (KeyError, TypeError, ValueError):
        return []


def takes_from_batch(kind: str, p: dict[str, Any]) -> tuple[str, str] | None:
    """(sku, lot) when the event takes a batch's stock out (what a QA freeze forbids)."""
    if kind in OUTBOUND_KINDS and isinstance(p.get("sku"), str) and isinstance(p.get("lot"), str):
        return p["sku"], p["lot"]
    return None
