"""QA: frozen batches with their evidence; release with a reason (qa role only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel import deps
from edge.panel.security import ALL_ROLES, allow
from edge.panel.users import Role

router = APIRouter()
EVIDENCE_KINDS = ("qa-freeze", "defect-verdict", "carton-read", "hold", "receipt")
MAX_REASON = 200


@router.get("/qa", response_class=HTMLResponse)
@allow(*ALL_ROLES)
def qa_page(request: Request, released: str = "") -> Response:
    led = deps.services(request).ledger
    batches = []
    if led is not None:
        feed = deps.feed(request)
        crops = [c.event for c in feed.recent() if c.event.crop is not None]
        for b in led.frozen_batches():
            history = [e for e in led.history(lot=b.lot) if e.kind in EVIDENCE_KINDS]
            frames = [c for c in crops if c.fields.get("lot") == b.lot][:4]
            batches.append({"batch": b, "history": history[-6:], "frames": frames})
    return deps.render(
        request, "qa.html", batches=batches if led is not None else None, released=released[:40]
    )


@router.post("/qa/release")
@allow(Role.QA)
async def release(request: Request) -> Response:
    data = await deps.form(request)
    sku, lot = data.get("sku", "")[:64], data.get("lot", "")[:64]
    reason = " ".join(data.get("reason", "").split())[:MAX_REASON]
    user = deps.user(request)
    assert user is not None
    if not reason:
        deps.audit(request).record(user.actor, "qa.release", f"{sku}/{lot}", "refused", "reason")
        raise DockgateError(ErrorCode.OVERRIDE_REASON_REQUIRED, "a release needs a reason")
    try:
        deps.ledger(request).release(sku, lot, reason=reason, actor=user.actor)
    except DockgateError as exc:
        deps.audit(request).record(
            user.actor, "qa.release", f"{sku}/{lot}", "refused", exc.code.value
        )
        raise
    deps.audit(request).record(user.actor, "qa.release", f"{sku}/{lot}", detail=reason)
    return RedirectResponse(f"/qa?released={lot}", status_code=303)
