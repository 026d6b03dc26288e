"""Review queue: a person confirms or types the code of a REVIEW / UNREADABLE carton.

The confirmed code is checked by the code grammar (check digits, lot pattern, date), recorded
as a signed ledger event (``carton-read`` with ``source=review``; a held unreadable carton is
also identified into its real batch), labeled in the sample store for the cloud, and audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel import deps
from edge.panel.providers import GtinLotValidator
from edge.panel.security import allow
from edge.panel.services import ReviewQueue
from edge.panel.users import Role

router = APIRouter()
REVIEWERS = (Role.OPERATOR, Role.QA, Role.SUPERVISOR)


def _queue(request: Request) -> ReviewQueue:
    queue = deps.services(request).review
    if queue is None:
        raise DockgateError(ErrorCode.NOT_FOUND, "the review queue is not configured")
    return queue


@router.get("/review", response_class=HTMLResponse)
@allow(*REVIEWERS, Role.ADMIN)
def review_page(request: Request, done: str = "") -> Response:
    return _render(request, done=done[:64])


def _render(
    request: Request,
    *,
    done: str = "",
    status: int = 200,
    error_item: str | None = None,
    error: str | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    queue = deps.services(request).review
    return deps.render(
        request,
        "review.html",
        status=status,
        items=queue.pending() if queue is not None else None,
        done=done,
        error_item=error_item,
        error=error,
        typed=typed or {},
    )


@router.get("/review/{item_id}/image")
@allow(*REVIEWERS, Role.ADMIN)
def review_image(request: Request, item_id: str) -> Response:
    found = _queue(request).image(item_id)
    if found is None:
        raise DockgateError(ErrorCode.NOT_FOUND, "no image for that item")
    return Response(found[0], media_type=found[1])


@router.post("/review/{item_id}", response_class=HTMLResponse)
@allow(*REVIEWERS)
async def resolve(request: Request, item_id: str) -> Response:
    queue = _queue(request)
    item = queue.get(item_id)
    if item is None:
        raise DockgateError(ErrorCode.NOT_FOUND, "no such review item")
    data = await deps.form(request)
    typed = {k: data.get(k, "")[:64] for k in ("gtin", "lot", "expiry")}
    user = deps.user(request)
    assert user is not None
    log = deps.audit(request)
    validator = deps.services(request).codes or GtinLotValidator()
    try:
        fields = validator.validate(typed)
        led = deps.ledger(request)
        sku = led.sku_by_gtin(fields["gtin"])
        read = {"source": "review", "sample": item.id, "status": "ACCEPTED", "was": item.status}
        led.record_read({**read, **fields, "sku": sku}, actor=user.actor)
        if item.hold_id:
            led.identify(
                item.hold_id,
                sku=sku,
                lot=fields["lot"],
                expiry=fields.get("expiry"),
                actor=user.actor,
            )
    except DockgateError as exc:
        if exc.code not in (ErrorCode.CODE_INVALID, ErrorCode.UNKNOWN_SKU):
            raise
        log.record(user.actor, "review.resolve", item.id, "refused", exc.code.value)
        return _render(request, status=422, error_item=item.id, error=exc.code.value, typed=typed)
    queue.label(item.id, fields, user.actor)
    log.record(user.actor, "review.resolve", item.id, detail=f"{fields['gtin']} {fields['lot']}")
    return RedirectResponse(f"/review?done={item.id}", status_code=303)
