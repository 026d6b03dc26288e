"""HTTP API of rollouts: the device endpoints of ``edge.contracts.ota`` and the people's API.

Devices (request signature, as ``/v1/ingest``)::

    POST /v1/ota/report        OtaReport -> OtaDirective
    GET  /v1/ota/assignments   -> OtaDirective, ETag; If-None-Match -> 304

People (``Authorization: Bearer <session>``; reading needs viewer, changing needs admin)::

    GET  /v1/ota/releases                  signed releases with their model-card metrics
    GET  /v1/rollouts                      every rollout, newest first
    POST /v1/rollouts                      RolloutSpec (+ start_at) -> the stored rollout
    GET  /v1/rollouts/{id}                 state, stage, gates now, decisions, refusals
    POST /v1/rollouts/{id}/{action}        pause | resume | promote | abort, {"reason": ...}

The evaluator (:func:`run_evaluator`) runs in the app's lifespan every ``rollout_eval_s``
seconds; several workers may run it at once (each rollout is evaluated under its row lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from cloud import auth
from cloud.db.models import OtaRelease, RolloutDecision, RolloutRefusal, RolloutRow, utcnow
from cloud.deps import AuthHeader, Services, Svc
from cloud.rollouts import service
from cloud.rollouts.gates import evaluate
from cloud.rollouts.plan import RolloutSpec
from cloud.rollouts.router import repository_dir
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.ota import ASSIGNMENTS_PATH, REPORT_PATH, OtaDirective, OtaReport

log = logging.getLogger(__name__)
router = APIRouter(tags=["ota"])


# -- devices ---------------------------------------------------------------------------------
def _device(svc: Services, authorization: str | None, method: str, path: str, body: bytes) -> str:
    with svc.sessions.begin() as s:
        dev = auth.authenticate_device(
            s, svc.keys, authorization, method, path, body, svc.config.clock_skew_s
        )
        if dev.status == "revoked":
            raise DockgateError(ErrorCode.DEVICE_REVOKED, f"device {dev.id} is revoked")
        return dev.id


def _report(svc: Services, authorization: str | None, body: bytes, repo: Any) -> OtaDirective:
    """Authenticate, apply and answer in ONE transaction: one commit (one fsync on SQLite) per
    heartbeat. A request that fails after the signature check rolls its nonce back with it; a
    replay of it fails the same way, so nothing is gained by replaying it."""
    try:
        report: OtaReport | None = OtaReport.model_validate_json(body)
        problem = ""
    except ValidationError as exc:
        report, problem = None, f"bad OTA report: {exc}"[:300]
    with svc.sessions.begin() as s:
        dev = auth.authenticate_device(
            s, svc.keys, authorization, "POST", REPORT_PATH, body, svc.config.clock_skew_s
        )
        if dev.status == "revoked":
            raise DockgateError(ErrorCode.DEVICE_REVOKED, f"device {dev.id} is revoked")
        if report is None:
            raise DockgateError(ErrorCode.EVENT_INVALID, problem)
        service.apply_report(s, dev.id, report, utcnow(), svc.config.ota_window_s)
        s.flush()
        return service.directive(
            s, dev.id, repo, svc.config.ota_poll_s, svc.config.ota_poll_active_s
        )


@router.post(REPORT_PATH, response_model=OtaDirective)
async def report(*, request: Request, svc: Svc) -> OtaDirective:
    """A device's model report (heartbeat); answers what it should run now."""
    body = await request.body()
    authorization = request.headers.get("authorization")
    repo = repository_dir(request)
    return await run_in_threadpool(_report, svc, authorization, body, repo)


def _assignments(svc: Services, authorization: str | None, repo: Any) -> OtaDirective:
    device_id = _device(svc, authorization, "GET", ASSIGNMENTS_PATH, b"")
    with svc.reader() as s:
        return service.directive(
            s, device_id, repo, svc.config.ota_poll_s, svc.config.ota_poll_active_s
        )


@router.get(
    ASSIGNMENTS_PATH,
    response_model=OtaDirective,
    responses={304: {"description": "nothing changed since the ETag given in If-None-Match"}},
)
async def assignments(*, request: Request, svc: Svc) -> Response:
    """What this device should run, per model name (ETag; If-None-Match answers 304)."""
    authorization = request.headers.get("authorization")
    repo = repository_dir(request)
    directive = await run_in_threadpool(_assignments, svc, authorization, repo)
    etag = f'"{directive.etag}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    seen = request.headers.get("if-none-match", "")
    if etag in [t.strip().removeprefix("W/") for t in seen.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(directive.model_dump_json(), media_type="application/json", headers=headers)


# -- people ----------------------------------------------------------------------------------
class ReleaseOut(BaseModel):
    name: str
    version: str
    target: str
    sha256: str
    length: int
    min_dockgate: str | None
    metrics: dict[str, Any]
    registered_at: str


class RolloutCreate(BaseModel):
    spec: RolloutSpec
    start_at: dt.datetime | None = Field(None, description="default: now")


class ActionBody(BaseModel):
    reason: str = Field("", max_length=500)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def release_out(r: OtaRelease) -> ReleaseOut:
    return ReleaseOut(
        name=r.name,
        version=r.version,
        target=r.target,
        sha256=r.sha256,
        length=r.length,
        min_dockgate=r.custom.get("min_dockgate"),
        metrics=r.custom.get("metrics", {}),
        registered_at=_iso(r.registered_at) or "",
    )


def rollout_summary(row: RolloutRow) -> dict[str, Any]:
    stages = row.spec["stages"]
    return {
        "id": row.id,
        "model": row.model,
        "from_version": row.from_version,
        "to_version": row.to_version,
        "state": row.state,
        "stage_index": row.stage_index,
        "stage": stages[row.stage_index]["name"],
        "phase": phase(row),
        "created_at": _iso(row.created_at),
        "created_by": row.created_by,
        "start_at": _iso(row.start_at),
        "stage_started_at": _iso(row.stage_started_at),
        "ended_at": _iso(row.ended_at),
        "reason": row.reason,
        "auto_promote": row.spec.get("auto_promote", True),
        "shadow": row.spec.get("shadow", False),
    }


def phase(row: RolloutRow) -> str:
    """pending, canary, wave N, paused, waiting_for_operator, completed, rolled_back, aborted."""
    if row.state != "running":
        return row.state
    return "canary" if row.stage_index == 0 else f"wave {row.stage_index}"


def rollout_detail(s: Any, row: RolloutRow) -> dict[str, Any]:
    out = rollout_summary(row)
    out["spec"] = row.spec
    if row.state not in ("pending",):
        ro = service.load_plan(s, row)
        cand, base = service.window_figures(s, row, ro, utcnow())
        out["figures"] = {"candidate": cand.to_dict(), "baseline": base.to_dict()}
        out["gates"] = [
            {
                "gate": g.gate,
                "verdict": g.verdict.value,
                "candidate": g.candidate,
                "baseline": g.baseline,
                "limit": g.limit,
            }
            for g in evaluate(cand, base, ro.spec.gates)
        ]
    out["decisions"] = [
        {
            "at": _iso(d.at),
            "actor": d.actor,
            "action": d.action,
            "stage": d.stage,
            "reason": d.reason,
            "figures": d.figures,
        }
        for d in s.execute(
            select(RolloutDecision)
            .where(RolloutDecision.rollout_id == row.id)
            .order_by(RolloutDecision.id)
        ).scalars()
    ]
    out["refusals"] = [
        {"device_id": r.device_id, "at": _iso(r.at), "reason": r.reason}
        for r in s.execute(
            select(RolloutRefusal)
            .where(RolloutRefusal.rollout_id == row.id)
            .order_by(RolloutRefusal.at)
        ).scalars()
    ]
    return out


@router.get("/v1/ota/releases", response_model=list[ReleaseOut], tags=["rollouts"])
def releases(*, request: Request, authorization: AuthHeader, svc: Svc) -> list[ReleaseOut]:
    """Signed model releases (viewer)."""
    with svc.sessions.begin() as s:
        auth.require_role(auth.person(s, authorization), "viewer")
        service.sync_releases(s, repository_dir(request))
        rows = s.execute(select(OtaRelease).order_by(OtaRelease.name, OtaRelease.registered_at))
        return [release_out(r) for r in rows.scalars()]


@router.get("/v1/rollouts", tags=["rollouts"])
def rollouts(*, authorization: AuthHeader, svc: Svc) -> list[dict[str, Any]]:
    """Every rollout, newest first (viewer)."""
    with svc.reader() as s:
        auth.require_role(auth.person(s, authorization), "viewer")
        rows = s.execute(select(RolloutRow).order_by(RolloutRow.created_at.desc())).scalars()
        return [rollout_summary(r) for r in rows]


@router.post("/v1/rollouts", status_code=201, tags=["rollouts"])
def create(
    *, body: RolloutCreate, request: Request, authorization: AuthHeader, svc: Svc
) -> dict[str, Any]:
    """Create a rollout (admin); it starts at ``start_at`` (the evaluator starts it)."""
    with svc.sessions.begin() as s:
        caller = auth.person(s, authorization)
        auth.require_role(caller, "admin")
        row = service.create_rollout(
            s, caller.actor, body.spec, body.start_at, repository_dir(request)
        )
        return rollout_summary(row)


@router.get("/v1/rollouts/{rollout_id}", tags=["rollouts"])
def rollout(*, rollout_id: str, authorization: AuthHeader, svc: Svc) -> dict[str, Any]:
    """One rollout: state, gates on the current window, decisions, device refusals (viewer)."""
    with svc.reader() as s:
        auth.require_role(auth.person(s, authorization), "viewer")
        row = s.get(RolloutRow, rollout_id)
        if row is None:
            raise DockgateError(ErrorCode.NOT_FOUND, f"no rollout {rollout_id}")
        return rollout_detail(s, row)


@router.post("/v1/rollouts/{rollout_id}/{action}", tags=["rollouts"])
def act(
    *, rollout_id: str, action: str, body: ActionBody, authorization: AuthHeader, svc: Svc
) -> dict[str, Any]:
    """pause, resume, promote or abort (admin; audited with the figures of the moment)."""
    with svc.sessions.begin() as s:
        caller = auth.person(s, authorization)
        auth.require_role(caller, "admin")
        row = service.operator_action(s, rollout_id, action, caller.actor, body.reason)
        return rollout_summary(row)


# -- the evaluator ---------------------------------------------------------------------------
PRUNE_EVERY_S = 3600.0


def _prune(svc: Services) -> int:
    with svc.sessions.begin() as s:
        return service.prune_figures(s, dt.timedelta(days=svc.config.ota_figures_days))


async def run_evaluator(svc: Services, app: FastAPI, period_s: float) -> None:
    """Evaluate every unfinished rollout every ``period_s`` until cancelled; never dies.
    Once an hour it also forgets figure windows older than ``ota_figures_days``."""
    pruned_at = time.monotonic()
    while True:
        await asyncio.sleep(period_s)
        repo = getattr(app.state, "ota_dir", None) or svc.config.ota_dir
        try:
            # the loop's own executor, not the request threadpool: a backlog of device
            # requests (anyio's 40 tokens) must not delay a rollback decision
            now = utcnow()
            await asyncio.to_thread(service.evaluate_all, svc.sessions, repo, now, svc.readers)
            if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                pruned_at = time.monotonic()
                await asyncio.to_thread(_prune, svc)
        except Exception:  # a database hiccup must not end the evaluator
            log.exception("rollout evaluation failed; retrying next period")


@contextlib.asynccontextmanager
async def evaluator_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan: the background evaluator when ``rollout_eval_s`` > 0."""
    svc: Services = app.state.services
    period = svc.config.rollout_eval_s
    task = asyncio.create_task(run_evaluator(svc, app, period)) if period > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
