"""Key figures from the ledger, computed from the log and the projection.

- stock turnover: base units shipped in the period / average stock on hand, where the average is
  the mean of the stock at the start (rebuilt by undoing the period's net movements) and now;
- count discrepancy rate: share of cycle counts in the period whose count differed from the
  system quantity;
- share of stock older than N days: quantity whose batch was first received more than N days
  ago / all quantity on hand (held, unidentified cartons included);
- SKUs below safety stock: available quantity (inbound, storage, forward zones) below the SKU's
  safety stock.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.contracts.event import EventKind
from edge.ledger import projection
from edge.ledger.rows import format_ts
from edge.ledger.rules import AVAILABLE_ZONES


@dataclass(frozen=True)
class Kpis:
    """The ledger's key figures; a ratio is None when its denominator is zero."""

    period_days: int
    shipped_units: int
    stock_turnover: float | None
    cycle_counts: int
    count_discrepancy_rate: float | None
    old_stock_days: int
    share_old_stock: float | None
    below_safety_stock: tuple[tuple[str, int, int], ...]  # sku, available, safety stock


def compute(
    conn: sqlite3.Connection, now: datetime, *, period_days: int = 365, old_days: int = 90
) -> Kpis:
    since = format_ts(now - timedelta(days=period_days))
    shipped, net, counts, off = 0, 0, 0, 0
    cur = conn.execute("SELECT kind, payload FROM events WHERE ts >= ? ORDER BY seq", (since,))
    for kind, text in cur:
        payload = json.loads(text)
        net += sum(d for _s, _l, _loc, d in projection.effects(kind, payload).moves)
        if kind == EventKind.SHIP:
            shipped += int(payload["qty"])
        elif kind == EventKind.CYCLE_COUNT:
            counts += 1
            off += payload["delta"] != 0
    on_hand = int(conn.execute("SELECT COALESCE(SUM(qty), 0) FROM stock").fetchone()[0])
    average = (on_hand + (on_hand - net)) / 2
    old_cut = format_ts(now - timedelta(days=old_days))
    old = conn.execute(
        "SELECT COALESCE(SUM(s.qty), 0) FROM stock s JOIN batches b USING (sku, lot) "
        "WHERE b.first_received < ?",
        (old_cut,),
    ).fetchone()[0]
    return Kpis(
        period_days=period_days,
        shipped_units=shipped,
        stock_turnover=shipped / average if average > 0 else None,
        cycle_counts=counts,
        count_discrepancy_rate=off / counts if counts else None,
        old_stock_days=old_days,
        share_old_stock=int(old) / on_hand if on_hand else None,
        below_safety_stock=below_safety_stock(conn),
    )


def below_safety_stock(conn: sqlite3.Connection) -> tuple[tuple[str, int, int], ...]:
    """(sku, available, safety stock) for every SKU whose available stock is below its safety
    stock, SKUs with none at all included."""
    rows = conn.execute(
        "SELECT k.sku, COALESCE((SELECT SUM(s.qty) FROM stock s JOIN locations l "  # noqa: S608 - constant SQL fragments only; values are bound
        f"ON l.code = s.location WHERE s.sku = k.sku AND l.zone IN {AVAILABLE_ZONES!r}), 0) AS a, "
        "k.safety_stock FROM skus k WHERE k.safety_stock > 0 ORDER BY k.sku"
    ).fetchall()
    return tuple((str(r[0]), int(r[1]), int(r[2])) for r in rows if r[1] < r[2])
