"""The console's training page: jobs with their progress, a start form, the approval button.

Admin only (starting a job spends the box's CPU and can end in a signed release). Like the rest
of the console it is server-rendered without script: while a job is queued or running the page
refreshes itself every 5 s (``<meta http-equiv="refresh">``, which the console's CSP allows).
Every POST needs the session's CSRF token and a same-site Origin (``pages._check_post``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from cloud.console.pages import (
    Who,
    _check_post,
    _error,
    _iso,
    _page,
    _viewer,
)
from cloud.problems import STATUS
from cloud.routers.training import JobId, start_job
from cloud.services import datasets, publish, training
from edge.contracts.errors import DockgateError, ErrorCode

router = APIRouter(prefix="/console", include_in_schema=False)


def _not_admin(request: Request, who: Who) -> HTMLResponse | None:
    if who[0].role != "admin":
        return _error(request, ErrorCode.FORBIDDEN, "needs role admin", who)
    return None


def _render(
    request: Request, who: Who, message: str = "", status: int = 200, params_text: str = ""
) -> HTMLResponse:
    svc = request.app.state.services
    with svc.reader() as s:
        jobs = [training.as_dict(j) for j in training.listing(s)]
        sets = [
            {
                "id": d.id,
                "created": _iso(d.created_at),
                "codes": sum((d.counts or {}).get("code", {}).values()),
                "defects": sum((d.counts or {}).get("defect", {}).values()),
            }
            for d in datasets.listing(s)[:50]
        ]
    for j in jobs:
        j["created_at"] = (j["created_at"] or "")[:19].replace("T", " ")
    context: dict[str, Any] = {
        "jobs": jobs,
        "datasets": sets,
        "active": any(j["status"] in training.ACTIVE for j in jobs),
        "auto_rollout": svc.config.auto_rollout,
        "message": message,
        "params_text": params_text,
    }
    return _page(request, "training.html", context, who, status)


@router.get("/training", response_class=HTMLResponse)
def training_page(request: Request) -> Response:
    who = _viewer(request, "admin")
    return _render(request, who) if isinstance(who, tuple) else who


@router.post("/training", response_class=HTMLResponse)
async def start(request: Request) -> Response:
    """Start a job from the form (kind, dataset, trainer settings)."""
    who, form, refusal = await _check_post(request)
    if refusal is not None:
        return refusal
    assert who is not None
    if (denied := _not_admin(request, who)) is not None:
        return denied
    text = str(form.get("params", ""))[:2000]
    try:
        params = training.parse_params(text)
    except ValueError as exc:
        return _render(request, who, f"EVENT_INVALID: {exc}", 422)
    kind, dataset = str(form.get("kind", "")), str(form.get("dataset", ""))
    svc = request.app.state.services
    try:
        await run_in_threadpool(start_job, svc, request.app, who[0].actor, kind, dataset, params)
    except DockgateError as exc:
        message = f"{exc.code.value}: {exc.message}"
        return _render(request, who, message, STATUS.get(exc.code, 400), text)
    return RedirectResponse("/console/training", status_code=303)


@router.post("/training/{job_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, job_id: int = JobId) -> Response:
    """An admin's approval click: the candidate's canary rollout starts."""
    who, _form, refusal = await _check_post(request)
    if refusal is not None:
        return refusal
    assert who is not None
    if (denied := _not_admin(request, who)) is not None:
        return denied
    svc = request.app.state.services
    try:
        job = await run_in_threadpool(publish.approve, svc, job_id, who[0].actor)
    except DockgateError as exc:
        return _render(request, who, f"{exc.code.value}: {exc.message}", STATUS.get(exc.code, 400))
    return RedirectResponse(f"/console/rollouts/{job.rollout_id}", status_code=303)
