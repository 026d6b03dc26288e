"""The ledger's rules: turn a requested event into a checked, normalised payload, or refuse it.

Runs inside the append transaction against the live projection, so what it checks is exactly
what the event will change. Each refusal is a :class:`DockgateError` with a stable code.
Replay never re-runs these rules: the stored payload alone determines the effect.

Dates: "today" is the UTC date of the ledger clock; an expiry date is the last sellable day.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import EventKind
from edge.ledger import codes, masterdata
from edge.ledger.projection import Effects, effects

OBSERVATIONS = frozenset(
    {
        EventKind.CARTON_READ,
        EventKind.DEFECT_VERDICT,
        EventKind.SCAN_READ,
        EventKind.ALERT,
        EventKind.MASTER_DATA,
    }
)
_MOVE_KINDS = frozenset({EventKind.PUTAWAY, EventKind.TRANSFER, EventKind.PICK})
_OUT_KINDS = frozenset({EventKind.SHIP, EventKind.RETURN_TO_SUPPLIER})
_BATCH_KINDS = frozenset({EventKind.QA_FREEZE, EventKind.QA_RELEASE, EventKind.EXPIRY_BLOCK})
#: zones whose stock counts as available (safety stock, KPIs): received and not blocked
AVAILABLE_ZONES = ("inbound", "storage", "forward")
#: zones a picker picks from; FEFO compares batches there (inbound stock is not put away yet)
PICKABLE_ZONES = ("storage", "forward")


_MOVE = {"sku", "lot", "qty", "unit", "from", "to"}
#: what a caller may put in each stock event; anything else is EVENT_INVALID, so nothing
#: half-understood is ever hashed into the log. ``ref`` is a free order / ASN reference.
INPUT_KEYS: dict[str, frozenset[str]] = {
    k: frozenset(v | {"ref"})
    for k, v in {
        EventKind.RECEIPT: {"sku", "lot", "qty", "unit", "expiry", "location", "supplier"},
        EventKind.PUTAWAY: _MOVE,
        EventKind.TRANSFER: _MOVE,
        EventKind.PICK: _MOVE | {"override_reason", "supervisor"},
        EventKind.SHIP: _MOVE - {"to"},
        EventKind.RETURN_TO_SUPPLIER: (_MOVE - {"to"}) | {"supplier", "reason"},
        EventKind.ADJUSTMENT: {"sku", "lot", "location", "delta", "reason"},
        EventKind.CYCLE_COUNT: {"sku", "lot", "location", "counted"},
        EventKind.QA_FREEZE: {"sku", "lot", "reason"},
        EventKind.QA_RELEASE: {"sku", "lot", "reason"},
        EventKind.EXPIRY_BLOCK: {"sku", "lot", "reason"},
        EventKind.HOLD: {"lot", "qty", "location", "raw", "reason"},
        EventKind.IDENTIFY: {"hold", "sku", "lot", "expiry", "qty", "from", "to"},
    }.items()
}


@dataclass(frozen=True)
class Context:
    """What the rules need besides the database."""

    today: date
    warning_days: int
    block_days: int


@dataclass
class Prepared:
    """A checked event: the payload to store, warnings for the caller, its stock effects."""

    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    effects: Effects = field(default_factory=Effects)


def fail(code: ErrorCode, message: str, **details: object) -> DockgateError:
    return DockgateError(code, message, **details)


def prepare(conn: sqlite3.Connection, ctx: Context, kind: str, raw: dict[str, Any]) -> Prepared:
    """Check and normalise one event request; raises with a stable code when refused."""
    if not isinstance(raw, dict):
        raise fail(ErrorCode.EVENT_INVALID, "payload must be an object")
    try:
        kind = EventKind(kind)
    except ValueError:
        raise fail(ErrorCode.EVENT_INVALID, f"unknown event kind {kind!r}") from None
    if kind == EventKind.MASTER_DATA:
        return Prepared(masterdata.apply(conn, raw))
    if kind in OBSERVATIONS:
        return Prepared(dict(raw))
    unexpected = sorted(set(raw) - INPUT_KEYS[kind])
    if unexpected:
        raise fail(ErrorCode.EVENT_INVALID, f"{kind}: unexpected field(s) {', '.join(unexpected)}")
    p = dict(raw)
    if "ref" in p and (not isinstance(p["ref"], str) or not 0 < len(p["ref"]) <= 100):
        raise fail(ErrorCode.EVENT_INVALID, "ref must be text of 1-100 characters")
    if kind == EventKind.HOLD:
        for key in ("raw", "reason"):
            if p.get(key) is not None and (not isinstance(p[key], str) or len(p[key]) > 500):
                raise fail(ErrorCode.EVENT_INVALID, f"{key} must be text of at most 500 characters")
    p["sku"] = codes.UNIDENTIFIED_SKU if kind == EventKind.HOLD else _sku(conn, p.get("sku"))
    p["lot"] = codes.normalise("lot", _need(p, "lot"))
    if p["sku"] == codes.UNIDENTIFIED_SKU and kind in (EventKind.RECEIPT, EventKind.IDENTIFY):
        raise fail(ErrorCode.CODE_INVALID, f"{p['sku']} is only for held cartons ('hold')")
    out = Prepared(p)
    if kind in _BATCH_KINDS:
        _batch_event(conn, kind, p)
    else:
        _stock_event(conn, ctx, kind, p, out)
    out.effects = effects(kind, p)
    _check_negative(conn, out.effects)
    return out


def _stock_event(
    conn: sqlite3.Connection, ctx: Context, kind: str, p: dict[str, Any], out: Prepared
) -> None:
    if kind in (EventKind.ADJUSTMENT, EventKind.CYCLE_COUNT):
        p["location"] = _location(conn, _need(p, "location"))[0]
        have = held(conn, p["sku"], p["lot"], p["location"])
        if kind == EventKind.ADJUSTMENT:
            p["delta"] = _int(p.get("delta"), "delta", allow_negative=True)
            p["reason"] = _text(p, "reason")
        else:
            p["counted"] = _int(p.get("counted"), "counted", allow_zero=True)
            p["system_qty"] = have
            p["delta"] = p["counted"] - have
        return
    _quantity(conn, p)
    if kind in (EventKind.RECEIPT, EventKind.HOLD):
        p["expiry"] = codes.normalise_expiry(p.get("expiry"))
        p["location"] = _location(conn, _need(p, "location"))[0]
        if kind == EventKind.RECEIPT:
            _check_expiry_matches(conn, p["sku"], p["lot"], p["expiry"])
            if p.get("supplier") is not None:
                p["supplier"] = _supplier(conn, p["supplier"])
        return
    if kind == EventKind.IDENTIFY:
        _identify(conn, p)
        return
    p["from"] = _location(conn, _need(p, "from"))[0]
    batch = batch_row(conn, p["sku"], p["lot"])
    if kind in _MOVE_KINDS:
        p["to"], to_zone = _location(conn, _need(p, "to"))
        if _blocked_by_freeze(batch, p["sku"]) and to_zone != "quarantine":
            raise fail(
                ErrorCode.BATCH_FROZEN,
                f"batch {p['sku']}/{p['lot']} is frozen: it may only move into quarantine",
            )
        if p["to"] == p["from"]:
            raise fail(ErrorCode.EVENT_INVALID, f"from and to are both {p['to']}")
        if kind == EventKind.PICK and to_zone != "outbound":
            raise fail(
                ErrorCode.EVENT_INVALID, f"a pick goes to an outbound location, not {p['to']}"
            )
    if kind == EventKind.RETURN_TO_SUPPLIER:
        p["supplier"] = _supplier(conn, _need(p, "supplier"))
        p["reason"] = _text(p, "reason")
        return
    if kind in (EventKind.PICK, EventKind.SHIP):
        _check_sellable(ctx, p, batch, out)
    if kind == EventKind.PICK:
        _check_fefo(conn, ctx, p, batch)


def _batch_event(conn: sqlite3.Connection, kind: str, p: dict[str, Any]) -> None:
    p["reason"] = _text(p, "reason")
    batch = batch_row(conn, p["sku"], p["lot"])
    if kind == EventKind.QA_RELEASE and not (batch and batch["frozen"]):
        raise fail(ErrorCode.EVENT_INVALID, f"batch {p['sku']}/{p['lot']} is not frozen")
    if kind == EventKind.EXPIRY_BLOCK and batch is None:
        raise fail(ErrorCode.EVENT_INVALID, f"no batch {p['sku']}/{p['lot']}")


def _identify(conn: sqlite3.Connection, p: dict[str, Any]) -> None:
    p["hold_sku"] = codes.UNIDENTIFIED_SKU
    p["hold"] = codes.normalise("lot", _need(p, "hold"))
    p["from"] = _location(conn, _need(p, "from"))[0]
    p["to"] = _location(conn, p.get("to") or p["from"])[0]
    p["expiry"] = codes.normalise_expiry(p.get("expiry"))
    _check_expiry_matches(conn, p["sku"], p["lot"], p["expiry"])


def _check_sellable(
    ctx: Context, p: dict[str, Any], batch: dict[str, Any] | None, out: Prepared
) -> None:
    if _blocked_by_freeze(batch, p["sku"]):
        raise fail(ErrorCode.BATCH_FROZEN, f"batch {p['sku']}/{p['lot']} is under QA freeze")
    if batch is None:
        return
    if batch["expiry_blocked"]:
        raise fail(ErrorCode.EXPIRY_BLOCKED, f"batch {p['sku']}/{p['lot']} is expiry-blocked")
    left = days_left(batch["expiry"], ctx.today)
    if left is not None and left <= ctx.block_days:
        raise fail(
            ErrorCode.EXPIRY_BLOCKED,
            f"batch {p['sku']}/{p['lot']} expires {batch['expiry']} ({left} days): "
            f"within the {ctx.block_days}-day block window",
        )
    if left is not None and left <= ctx.warning_days:
        warning = f"{ErrorCode.EXPIRY_WARNING.value}: {p['sku']}/{p['lot']} expires in {left} days"
        out.warnings.append(warning)
        p["warnings"] = [*p.get("warnings", []), warning]


def _check_fefo(
    conn: sqlite3.Connection, ctx: Context, p: dict[str, Any], batch: dict[str, Any] | None
) -> None:
    reason, supervisor = p.pop("override_reason", None), p.pop("supervisor", None)
    mine = fefo_key(batch)
    older = [
        b
        for b in available_batches(conn, p["sku"], ctx)
        if b["lot"] != p["lot"] and fefo_key(b) < mine
    ]
    if not older:
        return
    if reason is None:
        raise fail(
            ErrorCode.FEFO_VIOLATION,
            f"{p['sku']}: lot {older[0]['lot']} (expiry {older[0]['expiry']}) must go before "
            f"lot {p['lot']}; pick it or have a supervisor override with a reason",
            older_lot=older[0]["lot"],
        )
    if not isinstance(reason, str) or not reason.strip():
        raise fail(ErrorCode.OVERRIDE_REASON_REQUIRED, "a FEFO override needs a written reason")
    if supervisor is None:
        raise fail(ErrorCode.OVERRIDE_REASON_REQUIRED, "a FEFO override needs a supervisor")
    p["fefo_override"] = {
        "reason": reason.strip(),
        "supervisor": codes.check_actor(supervisor),
        "older_lot": older[0]["lot"],
    }


def _check_negative(conn: sqlite3.Connection, fx: Effects) -> None:
    totals: dict[tuple[str, str, str], int] = {}
    for sku, lot, loc, delta in fx.moves:
        key = (sku, lot, loc)
        totals[key] = totals.get(key, held(conn, sku, lot, loc)) + delta
        if totals[key] < 0:
            raise fail(
                ErrorCode.NEGATIVE_STOCK,
                f"{sku}/{lot} at {loc}: only {totals[key] - delta} on hand, {-delta} requested",
                available=totals[key] - delta,
            )


def _check_expiry_matches(conn: sqlite3.Connection, sku: str, lot: str, expiry: str | None) -> None:
    batch = batch_row(conn, sku, lot)
    if batch and batch["expiry"] and expiry and batch["expiry"] != expiry:
        raise fail(
            ErrorCode.EVENT_INVALID,
            f"batch {sku}/{lot} already has expiry {batch['expiry']}, not {expiry}",
        )


def _quantity(conn: sqlite3.Connection, p: dict[str, Any]) -> None:
    """``qty`` in ``unit`` (default the SKU's base unit) -> base units, recording both."""
    qty = _int(p.get("qty"), "qty")
    unit = p.get("unit")
    if unit is None or p["sku"] == codes.UNIDENTIFIED_SKU:
        p["qty"] = qty
        return
    unit = codes.normalise("unit", unit)
    row = conn.execute(
        "SELECT base_unit, (SELECT factor FROM units WHERE sku = ? AND unit = ?) FROM skus "
        "WHERE sku = ?",
        (p["sku"], unit, p["sku"]),
    ).fetchone()
    factor = 1 if row[0] == unit else row[1]
    if factor is None:
        raise fail(ErrorCode.UNKNOWN_UNIT, f"{p['sku']} has no conversion for unit {unit}")
    p.update(unit=unit, unit_qty=qty, qty=qty * int(factor))


def _sku(conn: sqlite3.Connection, raw: object) -> str:
    sku = codes.normalise("sku", raw)
    if sku == codes.UNIDENTIFIED_SKU:  # held cartons move, are counted, adjusted like any stock
        return sku
    if not conn.execute("SELECT 1 FROM skus WHERE sku = ?", (sku,)).fetchone():
        raise fail(ErrorCode.UNKNOWN_SKU, f"no SKU {sku} in the master data")
    return sku


def _location(conn: sqlite3.Connection, raw: object) -> tuple[str, str]:
    code = codes.normalise("location", raw)
    row = conn.execute("SELECT zone FROM locations WHERE code = ?", (code,)).fetchone()
    if row is None:
        raise fail(ErrorCode.UNKNOWN_LOCATION, f"no location {code}")
    return code, str(row[0])


def _supplier(conn: sqlite3.Connection, raw: object) -> str:
    code = codes.normalise("supplier", raw)
    if not conn.execute("SELECT 1 FROM suppliers WHERE code = ?", (code,)).fetchone():
        raise fail(ErrorCode.UNKNOWN_SUPPLIER, f"no supplier {code}")
    return code


def _need(p: dict[str, Any], key: str) -> Any:
    if p.get(key) in (None, ""):
        raise fail(ErrorCode.EVENT_INVALID, f"missing field {key!r}")
    return p[key]


def _text(p: dict[str, Any], key: str) -> str:
    value = _need(p, key)
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise fail(ErrorCode.EVENT_INVALID, f"{key} must be text of 1-500 characters")
    return value.strip()


def _int(
    value: object, name: str, *, allow_zero: bool = False, allow_negative: bool = False
) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        allowed = value > 0 or (value == 0 and allow_zero) or (value < 0 and allow_negative)
        if allowed:
            return value
    raise fail(ErrorCode.QUANTITY_INVALID, f"{name} = {value!r} is not an allowed whole number")


def _blocked_by_freeze(batch: dict[str, Any] | None, sku: str) -> bool:
    return sku == codes.UNIDENTIFIED_SKU or bool(batch and batch["frozen"])


def held(conn: sqlite3.Connection, sku: str, lot: str, location: str) -> int:
    row = conn.execute(
        "SELECT qty FROM stock WHERE sku = ? AND lot = ? AND location = ?", (sku, lot, location)
    ).fetchone()
    return int(row[0]) if row else 0


def batch_row(conn: sqlite3.Connection, sku: str, lot: str) -> dict[str, Any] | None:
    cur = conn.execute("SELECT * FROM batches WHERE sku = ? AND lot = ?", (sku, lot))
    row = cur.fetchone()
    return dict(zip([c[0] for c in cur.description], row, strict=True)) if row else None


def days_left(expiry: str | None, today: date) -> int | None:
    return None if expiry is None else (date.fromisoformat(expiry) - today).days


def fefo_key(batch: dict[str, Any] | None) -> tuple[str, str]:
    """Earlier expiry first (no expiry = last), then first received (FIFO)."""
    if batch is None:
        return ("9999-12-31", "9999")
    return (batch["expiry"] or "9999-12-31", batch["first_received"] or "9999")


def available_batches(conn: sqlite3.Connection, sku: str, ctx: Context) -> list[dict[str, Any]]:
    """Batches of ``sku`` that could be picked now (stock in a pickable zone, not frozen,
    not expiry-blocked), in FEFO order."""
    cur = conn.execute(
        "SELECT b.*, SUM(s.qty) AS qty FROM batches b JOIN stock s USING (sku, lot) "  # noqa: S608 - constant SQL fragments only; values are bound
        "JOIN locations l ON l.code = s.location "
        f"WHERE b.sku = ? AND b.frozen = 0 AND b.expiry_blocked = 0 "
        f"AND l.zone IN {PICKABLE_ZONES!r} GROUP BY b.sku, b.lot",
        (sku,),
    )
    names = [c[0] for c in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return sorted((r for r in rows if sellable(r["expiry"], ctx)), key=fefo_key)


def sellable(expiry: str | None, ctx: Context) -> bool:
    """Outside the block window (or no expiry at all)."""
    left = days_left(expiry, ctx.today)
    return left is None or left > ctx.block_days


def available(conn: sqlite3.Connection, sku: str) -> int:
    """Base units of ``sku`` in the available zones (what safety stock is compared with)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(s.qty), 0) FROM stock s JOIN locations l ON l.code = s.location "  # noqa: S608 - constant SQL fragments only; values are bound
        f"WHERE s.sku = ? AND l.zone IN {AVAILABLE_ZONES!r}",
        (sku,),
    ).fetchone()
    return int(row[0])


def safety_alert(
    conn: sqlite3.Connection, sku: str, was: int, cause_id: str
) -> dict[str, Any] | None:
    """The alert payload when a movement took ``sku`` from at/above its safety stock to below
    it (once per crossing, not for every later pick), else None."""
    row = conn.execute("SELECT safety_stock FROM skus WHERE sku = ?", (sku,)).fetchone()
    safety = int(row[0]) if row else 0
    now = available(conn, sku)
    if not (safety and was >= safety > now):
        return None
    return {
        "code": ErrorCode.BELOW_SAFETY_STOCK.value,
        "sku": sku,
        "available": now,
        "safety_stock": safety,
        "cause": cause_id,
    }
