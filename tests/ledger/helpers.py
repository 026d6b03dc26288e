"""Shared test helpers: a settable clock and a small, realistic master-data set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.ledger import Ledger

ACTOR = "user:anna"
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand (the ledger reads it for timestamps and "today")."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def seed(led: Ledger) -> None:
    """SKU-A (case of 12), SKU-B (safety stock 10), storage, forward and quarantine slots."""
    led.add_sku("SKU-A", gtin="4006381333931", name="Tea 500 g", case_qty=12, actor=ACTOR)
    led.add_sku("SKU-B", gtin="9506000134352", safety_stock=10, actor=ACTOR)
    led.add_location("A-01", "storage", rank=10, actor=ACTOR)
    led.add_location("A-02", "storage", rank=50, actor=ACTOR)
    led.add_location("F-01", "forward", rank=1, actor=ACTOR)
    led.add_location("Q-02", "quarantine", rank=5, actor=ACTOR)
    led.add_supplier("SUP-1", name="Shanghai Tea Co", actor=ACTOR)
