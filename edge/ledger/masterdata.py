"""Master data: SKUs (with GTIN), unit conversions, suppliers, locations; putaway slotting.

Every change is a ``master-data`` event (chained, signed and synced like a movement, so the cloud
and an auditor see who created which SKU); :func:`apply` validates the payload and writes the
master tables inside that event's transaction. The tables are current state, not a projection:
``rebuild_projection`` leaves them alone.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import codes

ZONES = ("inbound", "storage", "forward", "quarantine", "outbound")


def apply(conn: sqlite3.Connection, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate one master-data change, write it, return the normalised payload to log."""
    entity = raw.get("entity")
    if entity == "sku":
        return _sku(conn, raw)
    if entity == "unit":
        return _unit(conn, raw)
    if entity == "supplier":
        code = codes.normalise("supplier", raw.get("code"))
        name = _name(raw)
        conn.execute(
            "INSERT INTO suppliers (code, name) VALUES (?, ?) "
            "ON CONFLICT (code) DO UPDATE SET name = excluded.name",
            (code, name),
        )
        return {"entity": "supplier", "code": code, "name": name}
    if entity == "location":
        return _location(conn, raw)
    raise DockgateError(
        ErrorCode.EVENT_INVALID, f"master-data entity {entity!r}: sku|unit|supplier|location"
    )


def _sku(conn: sqlite3.Connection, raw: dict[str, Any]) -> dict[str, Any]:
    sku = codes.normalise("sku", raw.get("sku"))
    if sku == codes.UNIDENTIFIED_SKU:
        raise DockgateError(ErrorCode.CODE_INVALID, f"{sku} is reserved for held cartons")
    gtin = None if raw.get("gtin") in (None, "") else codes.normalise_gtin(raw["gtin"])
    if gtin is not None:
        other = conn.execute("SELECT sku FROM skus WHERE gtin = ? AND sku != ?", (gtin, sku))
        row = other.fetchone()
        if row:
            raise DockgateError(ErrorCode.CODE_INVALID, f"GTIN {gtin} already belongs to {row[0]}")
    base = codes.normalise("unit", raw.get("base_unit") or "EA")
    safety = _count(raw.get("safety_stock", 0), "safety_stock")
    name = _name(raw)
    conn.execute(
        "INSERT INTO skus (sku, gtin, name, base_unit, safety_stock) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (sku) DO UPDATE SET gtin = excluded.gtin, name = excluded.name, "
        "base_unit = excluded.base_unit, safety_stock = excluded.safety_stock",
        (sku, gtin, name, base, safety),
    )
    return {
        "entity": "sku",
        "sku": sku,
        "gtin": gtin,
        "name": name,
        "base_unit": base,
        "safety_stock": safety,
    }


def _unit(conn: sqlite3.Connection, raw: dict[str, Any]) -> dict[str, Any]:
    sku = codes.normalise("sku", raw.get("sku"))
    row = conn.execute("SELECT base_unit FROM skus WHERE sku = ?", (sku,)).fetchone()
    if row is None:
        raise DockgateError(ErrorCode.UNKNOWN_SKU, f"no SKU {sku} in the master data")
    unit = codes.normalise("unit", raw.get("unit"))
    if unit == row[0]:
        raise DockgateError(ErrorCode.EVENT_INVALID, f"{unit} is {sku}'s base unit")
    factor = _count(raw.get("factor"), "factor")
    if factor < 1:
        raise DockgateError(ErrorCode.QUANTITY_INVALID, "a unit holds at least one base unit")
    conn.execute(
        "INSERT INTO units (sku, unit, factor) VALUES (?, ?, ?) "
        "ON CONFLICT (sku, unit) DO UPDATE SET factor = excluded.factor",
        (sku, unit, factor),
    )
    return {"entity": "unit", "sku": sku, "unit": unit, "factor": factor}


def _location(conn: sqlite3.Connection, raw: dict[str, Any]) -> dict[str, Any]:
    code = codes.normalise("location", raw.get("code"))
    zone = raw.get("zone")
    if zone not in ZONES:
        raise DockgateError(ErrorCode.EVENT_INVALID, f"zone {zone!r}: one of {', '.join(ZONES)}")
    rank = _count(raw.get("rank", 100), "rank")
    conn.execute(
        "INSERT INTO locations (code, zone, rank) VALUES (?, ?, ?) "
        "ON CONFLICT (code) DO UPDATE SET zone = excluded.zone, rank = excluded.rank",
        (code, zone, rank),
    )
    return {"entity": "location", "code": code, "zone": zone, "rank": rank}


def _name(raw: dict[str, Any]) -> str:
    name = raw.get("name") or ""
    if not isinstance(name, str) or len(name) > 200:
        raise DockgateError(ErrorCode.EVENT_INVALID, "name must be text of at most 200 characters")
    return " ".join(name.split())


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise DockgateError(ErrorCode.QUANTITY_INVALID, f"{name} = {value!r}: a whole number >= 0")
    return value


def sku_by_gtin(conn: sqlite3.Connection, gtin: str) -> str:
    """The SKU code for a scanned or read GTIN (any length); ``UNKNOWN_SKU`` if none."""
    norm = codes.normalise_gtin(gtin)
    row = conn.execute("SELECT sku FROM skus WHERE gtin = ?", (norm,)).fetchone()
    if row is None:
        raise DockgateError(ErrorCode.UNKNOWN_SKU, f"no SKU with GTIN {norm}")
    return str(row[0])


def choose_putaway_slot(
    conn: sqlite3.Connection,
    sku: str,
    lot: str,
    expiry: str | None,
    *,
    today: date,
    warning_days: int,
) -> str:
    """Where a carton of (sku, lot) should go.

    Frozen batches and unidentified cartons go to quarantine. Stock that expires within the
    warning window goes to the ``forward`` zone (next to the outbound dock) if there is one,
    else to the storage slot nearest outbound (lowest rank). Other stock joins a storage slot
    that already holds the same batch, else the nearest empty storage slot, else the nearest.
    """
    frozen = conn.execute(
        "SELECT frozen FROM batches WHERE sku = ? AND lot = ?", (sku, lot)
    ).fetchone()
    if sku == codes.UNIDENTIFIED_SKU or (frozen and frozen[0]):
        return _first(conn, "SELECT code FROM locations WHERE zone = 'quarantine'", ())
    near = expiry is not None and (date.fromisoformat(expiry) - today).days <= warning_days
    if near:
        forward = conn.execute(
            "SELECT code FROM locations WHERE zone = 'forward' ORDER BY rank, code LIMIT 1"
        ).fetchone()
        if forward:
            return str(forward[0])
    else:
        same = conn.execute(
            "SELECT s.location FROM stock s JOIN locations l ON l.code = s.location "
            "WHERE s.sku = ? AND s.lot = ? AND l.zone = 'storage' ORDER BY l.rank, l.code LIMIT 1",
            (sku, lot),
        ).fetchone()
        if same:
            return str(same[0])
        empty = conn.execute(
            "SELECT code FROM locations l WHERE zone = 'storage' AND NOT EXISTS "
            "(SELECT 1 FROM stock s WHERE s.location = l.code) ORDER BY rank, code LIMIT 1"
        ).fetchone()
        if empty:
            return str(empty[0])
    return _first(conn, "SELECT code FROM locations WHERE zone = 'storage' ORDER BY rank, code", ())


def _first(conn: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> str:
    row = conn.execute(sql + " LIMIT 1", args).fetchone()
    if row is None:
        raise DockgateError(ErrorCode.UNKNOWN_LOCATION, "no suitable location in the master data")
    return str(row[0])
