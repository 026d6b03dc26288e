"""The stock projection: what each event does to stock and batch status, in SQL and in memory.

:func:`edge.contracts.stock.effects` is the single definition of an event's effect (the
cloud's fleet stock uses it too). The append path applies it to the
SQLite tables inside the event's transaction (:func:`apply_sql`); ``verify`` and
``rebuild_projection`` replay the whole log through the same function into a :class:`Replay`,
so a rebuilt table cannot drift from the live one by construction.

Stock rows exist only while their quantity is positive (a ``CHECK`` in the schema backs the
no-negative-stock rule up). A batch's expiry is fixed by its first receipt; a freeze that arrives
before any stock creates the batch row so stock that arrives later is frozen on arrival.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from edge.contracts.stock import Effects, effects

__all__ = ["Effects", "Replay", "apply_sql", "effects"]

Key = tuple[str, str, str]  # sku, lot, location


def apply_sql(conn: sqlite3.Connection, fx: Effects, ts: str) -> None:
    """Apply ``fx`` to the SQLite projection (inside the caller's transaction)."""
    for sku, lot, op, arg in fx.batch:
        if op == "ensure":  # one upsert: the first receipt fixes expiry and first_received
            conn.execute(
                "INSERT INTO batches (sku, lot, expiry, first_received) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sku, lot) DO UPDATE SET expiry = COALESCE(expiry, excluded.expiry), "
                "first_received = COALESCE(first_received, excluded.first_received)",
                (sku, lot, arg, ts),
            )
            if arg is not None:  # stock booked before the batch had an expiry gets it now
                conn.execute(
                    "UPDATE stock SET expiry = ? WHERE sku = ? AND lot = ? AND expiry IS NULL",
                    (arg, sku, lot),
                )
            continue
        conn.execute("INSERT OR IGNORE INTO batches (sku, lot) VALUES (?, ?)", (sku, lot))
        if op == "freeze":
            conn.execute(
                "UPDATE batches SET frozen = 1, freeze_reason = ? WHERE sku = ? AND lot = ?",
                (arg, sku, lot),
            )
        elif op == "release":
            conn.execute(
                "UPDATE batches SET frozen = 0, freeze_reason = NULL WHERE sku = ? AND lot = ?",
                (sku, lot),
            )
        elif op == "block":
            conn.execute(
                "UPDATE batches SET expiry_blocked = 1 WHERE sku = ? AND lot = ?", (sku, lot)
            )
    for sku, lot, loc, delta in fx.moves:
        if delta > 0:
            conn.execute(
                "INSERT INTO stock (sku, lot, location, qty, expiry) VALUES (?, ?, ?, ?, "
                "(SELECT expiry FROM batches WHERE sku = ? AND lot = ?)) "
                "ON CONFLICT (sku, lot, location) DO UPDATE SET qty = qty + excluded.qty",
                (sku, lot, loc, delta, sku, lot),
            )
        else:
            _take(conn, sku, lot, loc, -delta)


def _take(conn: sqlite3.Connection, sku: str, lot: str, loc: str, qty: int) -> None:
    # rules checked availability first; the CHECK (qty > 0) constraint is the last line
    if _held(conn, sku, lot, loc) == qty:
        conn.execute(
            "DELETE FROM stock WHERE sku = ? AND lot = ? AND location = ?", (sku, lot, loc)
        )
    else:
        conn.execute(
            "UPDATE stock SET qty = qty - ? WHERE sku = ? AND lot = ? AND location = ?",
            (qty, sku, lot, loc),
        )


def _held(conn: sqlite3.Connection, sku: str, lot: str, loc: str) -> int:
    row = conn.execute(
        "SELECT qty FROM stock WHERE sku = ? AND lot = ? AND location = ?", (sku, lot, loc)
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass
class Replay:
    """The projection rebuilt in memory from the log."""

    stock: dict[Key, int] = field(default_factory=dict)
    batches: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    negative: list[tuple[int, Key, int]] = field(default_factory=list)  # seq, key, qty

    def apply(self, seq: int, fx: Effects, ts: str) -> None:
        for sku, lot, op, arg in fx.batch:
            b = self.batches.setdefault(
                (sku, lot),
                {
                    "expiry": None,
                    "frozen": 0,
                    "freeze_reason": None,
                    "expiry_blocked": 0,
                    "first_received": None,
                },
            )
            if op == "ensure":
                b["expiry"] = b["expiry"] if b["expiry"] is not None else arg
                b["first_received"] = b["first_received"] or ts
            elif op == "freeze":
                b["frozen"], b["freeze_reason"] = 1, arg
            elif op == "release":
                b["frozen"], b["freeze_reason"] = 0, None
            elif op == "block":
                b["expiry_blocked"] = 1
        for sku, lot, loc, delta in fx.moves:
            key = (sku, lot, loc)
            qty = self.stock.get(key, 0) + delta
            if qty < 0:
                self.negative.append((seq, key, qty))
            if qty > 0:
                self.stock[key] = qty
            else:
                self.stock.pop(key, None)

    def stock_rows(self) -> set[tuple[str, str, str, int, str | None]]:
        """Rows as the ``stock`` table holds them: (sku, lot, location, qty, expiry)."""
        return {
            (sku, lot, loc, qty, self.batches.get((sku, lot), {}).get("expiry"))
            for (sku, lot, loc), qty in self.stock.items()
        }

    def batch_rows(self) -> set[tuple[Any, ...]]:
        """Rows as the ``batches`` table holds them."""
        return {
            (
                sku,
                lot,
                b["expiry"],
                b["frozen"],
                b["freeze_reason"],
                b["expiry_blocked"],
                b["first_received"],
            )
            for (sku, lot), b in self.batches.items()
        }


STOCK_SQL = "SELECT sku, lot, location, qty, expiry FROM stock"
BATCH_SQL = (
    "SELECT sku, lot, expiry, frozen, freeze_reason, expiry_blocked, first_received FROM batches"
)
