"""Equipment, device and audit screens (read-only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from edge.panel import deps
from edge.panel.security import ALL_ROLES, allow
from edge.panel.services import EQUIPMENT_KINDS, EquipmentStatus
from edge.panel.users import Role

router = APIRouter()


@router.get("/equipment", response_class=HTMLResponse)
@allow(*ALL_ROLES)
def equipment_page(request: Request) -> Response:
    by_kind: dict[str, list[EquipmentStatus] | None] = dict.fromkeys(EQUIPMENT_KINDS)
    for provider in deps.services(request).equipment:
        by_kind[provider.kind] = [*(by_kind[provider.kind] or []), *provider.status()]
    return deps.render(request, "equipment.html", by_kind=by_kind)


@router.get("/device", response_class=HTMLResponse)
@allow(*ALL_ROLES)
def device_page(request: Request) -> Response:
    svc = deps.services(request)
    review = svc.review
    return deps.render(
        request,
        "device.html",
        facts=svc.device.facts(),
        latency=deps.feed(request).latency(),
        sample_bytes=review.disk_usage() if review is not None else None,
        dropped=svc.bus.stats()["dropped"],
    )


@router.get("/audit", response_class=HTMLResponse)
@allow(Role.SUPERVISOR, Role.ADMIN)
def audit_page(request: Request) -> Response:
    return deps.render(request, "audit.html", entries=deps.audit(request).recent(200))
