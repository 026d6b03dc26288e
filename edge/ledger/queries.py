"""Read-side queries over the projection and the log (no writes here)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from edge.contracts.event import Event
from edge.ledger import codes
from edge.ledger.rows import EVENT_COLUMNS, row_to_event
from edge.ledger.rules import fefo_key


@dataclass(frozen=True)
class StockRow:
    """One stock position: (sku, lot, location) with quantity in base units."""

    sku: str
    lot: str
    location: str
    zone: str
    qty: int
    expiry: str | None
    frozen: bool


@dataclass(frozen=True)
class BatchInfo:
    """One batch (sku, lot) with its status and total quantity on hand."""

    sku: str
    lot: str
    expiry: str | None
    frozen: bool
    freeze_reason: str | None
    expiry_blocked: bool
    first_received: str | None
    qty: int


@dataclass(frozen=True)
class OutboxStats:
    """Rows not yet acknowledged by the cloud, and the timestamp of the oldest."""

    pending: int
    oldest_ts: str | None
    unsigned: int


def stock(
    conn: sqlite3.Connection,
    *,
    sku: str | None = None,
    lot: str | None = None,
    location: str | None = None,
) -> list[StockRow]:
    where, args = _filters(("s.sku", sku), ("s.lot", lot), ("s.location", location))
    rows = conn.execute(
        "SELECT s.sku, s.lot, s.location, COALESCE(l.zone, '?'), s.qty, s.expiry, "  # noqa: S608 - constant SQL fragments only; values are bound
        "COALESCE(b.frozen, 0) FROM stock s LEFT JOIN locations l ON l.code = s.location "
        "LEFT JOIN batches b USING (sku, lot)" + where + " ORDER BY s.sku, s.lot, s.location",
        args,
    ).fetchall()
    return [StockRow(r[0], r[1], r[2], r[3], int(r[4]), r[5], bool(r[6])) for r in rows]


def batches(
    conn: sqlite3.Connection, sku: str | None = None, *, frozen_only: bool = False
) -> list[BatchInfo]:
    """Batches (of ``sku``, or all) in FEFO order: earliest expiry, then first received."""
    where, args = _filters(("b.sku", sku))
    if frozen_only:
        where += (" AND" if where else " WHERE") + " b.frozen = 1"
    rows = conn.execute(
        "SELECT b.sku, b.lot, b.expiry, b.frozen, b.freeze_reason, b.expiry_blocked, "  # noqa: S608 - constant SQL fragments only; values are bound
        "b.first_received, COALESCE((SELECT SUM(qty) FROM stock s WHERE s.sku = b.sku "
        "AND s.lot = b.lot), 0) FROM batches b" + where,
        args,
    ).fetchall()
    out = [BatchInfo(r[0], r[1], r[2], bool(r[3]), r[4], bool(r[5]), r[6], int(r[7])) for r in rows]
    return sorted(out, key=lambda b: (b.sku, *fefo_key(_as_dict(b)), b.lot))


def _as_dict(b: BatchInfo) -> dict[str, Any]:
    return {"expiry": b.expiry, "first_received": b.first_received}


def history(
    conn: sqlite3.Connection,
    *,
    lot: str | None = None,
    sku: str | None = None,
    event_id: str | None = None,
) -> list[Event]:
    """Events touching a lot / SKU (including identify events naming the held lot), or one id."""
    clauses, args = [], []
    if event_id is not None:
        clauses.append("id = ?")
        args.append(event_id)
    if lot is not None:
        clauses.append(
            "(json_extract(payload, '$.lot') = ? OR json_extract(payload, '$.hold') = ?)"
        )
        args += [codes.clean(lot)] * 2
    if sku is not None:
        clauses.append("json_extract(payload, '$.sku') = ?")
        args.append(codes.clean(sku))
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events{where} ORDER BY seq", args)  # noqa: S608 - constant SQL fragments only; values are bound
    return [row_to_event(r) for r in rows.fetchall()]


def events(conn: sqlite3.Connection, after_seq: int = 0, limit: int = 1000) -> list[Event]:
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608 - constant SQL fragments only; values are bound
        (after_seq, limit),
    )
    return [row_to_event(r) for r in rows.fetchall()]


def outbox_pending(conn: sqlite3.Connection, limit: int) -> list[tuple[int, str, str]]:
    """Signed rows in seq order, stopping before the first unsigned one (no gaps upstream)."""
    rows = conn.execute(
        "SELECT seq, event_id, envelope FROM outbox ORDER BY seq LIMIT ?", (limit,)
    ).fetchall()
    out = []
    for seq, event_id, envelope in rows:
        if envelope is None:
            break
        out.append((int(seq), str(event_id), str(envelope)))
    return out


def outbox_stats(conn: sqlite3.Connection) -> OutboxStats:
    row = conn.execute(
        "SELECT COUNT(*), MIN(e.ts), SUM(o.envelope IS NULL) FROM outbox o "
        "JOIN events e USING (seq)"
    ).fetchone()
    return OutboxStats(int(row[0]), row[1], int(row[2] or 0))


def _filters(*pairs: tuple[str, str | None]) -> tuple[str, list[str]]:
    clauses, args = [], []
    for column, value in pairs:
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(codes.clean(value))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args
