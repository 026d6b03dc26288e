"""Stock by SKU, batch and location, with expiry colouring and search by GTIN, lot or SKU."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edge.contracts.errors import DockgateError
from edge.panel import deps
from edge.panel.security import ALL_ROLES, allow
from edge.panel.services import PanelLedger, StockRowLike

router = APIRouter()
MAX_ROWS = 500


@dataclass(frozen=True)
class ShownRow:
    row: StockRowLike
    days_left: int | None
    expiry_state: str  # ok | warning | blocked | expired | none


def expiry_state(expiry: str | None, today: date, warn: int, block: int) -> tuple[int | None, str]:
    """Days left and the colour class: blocked inside the block window, warning inside the
    warning window (the same windows the ledger enforces)."""
    if not expiry:
        return None, "none"
    try:
        left = (date.fromisoformat(expiry) - today).days
    except ValueError:
        return None, "none"
    if left < 0:
        return left, "expired"
    if left <= block:
        return left, "blocked"
    if left <= warn:
        return left, "warning"
    return left, "ok"


def search(led: PanelLedger, q: str) -> list[StockRowLike]:
    """GTIN (digits) -> its SKU; otherwise a case-insensitive match on SKU, lot or location."""
    q = " ".join(q.split())[:64]
    if not q:
        return list(led.stock())
    if q.isdigit() and len(q) in (8, 12, 13, 14):
        try:
            return list(led.stock(sku=led.sku_by_gtin(q)))
        except DockgateError:
            return []
    needle = q.upper()
    return [
        r
        for r in led.stock()
        if needle in r.sku.upper() or needle in r.lot.upper() or needle in r.location.upper()
    ]


@router.get("/stock", response_class=HTMLResponse)
@allow(*ALL_ROLES)
def stock_page(request: Request, q: str = "") -> Response:
    svc = deps.services(request)
    rows: list[ShownRow] | None = None
    if svc.ledger is not None:
        today = datetime.now(UTC).date()
        found = sorted(search(svc.ledger, q), key=lambda r: (r.sku, r.expiry or "9999", r.lot))
        rows = []
        for r in found[:MAX_ROWS]:
            left, state = expiry_state(
                r.expiry, today, svc.expiry_warning_days, svc.expiry_block_days
            )
            rows.append(ShownRow(r, left, state))
    return deps.render(
        request,
        "stock.html",
        rows=rows,
        q=q[:64],
        warn_days=svc.expiry_warning_days,
        block_days=svc.expiry_block_days,
    )
