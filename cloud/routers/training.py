"""HTTP API of training jobs (``Authorization: Bearer <session>``; reading needs viewer,
starting and approving need admin)::

    GET  /v1/training/jobs                 jobs, newest first (status, stage, step/total)
    POST /v1/training/jobs                 {"kind", "dataset", "params"} -> the queued job
    GET  /v1/training/jobs/{id}            one job: progress, candidate, the gate's figures
    POST /v1/training/jobs/{id}/approve    start the canary rollout of a released candidate

The service's queue (``training_queue``) is made on first use and stopped with the app (this
router's lifespan): with ``inprocess`` a running job then ends at its next step, marked failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloud import auth
from cloud.deps import AuthHeader, Services, Svc
from cloud.services import publish, training

JobId = Path(ge=1, le=2**31 - 1)


def training_queue(app: Any) -> training.TrainingQueue:
    """The app's training queue, made on first use (one per app)."""
    queue: training.TrainingQueue | None = getattr(app.state, "training_queue", None)
    if queue is None:
        queue = training.queue_for(app.state.services)
        app.state.training_queue = queue
    return queue


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # jobs a killed process left running show as failed from the first page view on
    await run_in_threadpool(training.recover_stale, app.state.services)
    try:
        yield
    finally:
        queue = getattr(app.state, "training_queue", None)
        if queue is not None:
            app.state.training_queue = None
            await run_in_threadpool(queue.close)


router = APIRouter(prefix="/v1/training", tags=["training"], lifespan=_lifespan)


class JobCreate(BaseModel):
    kind: str = Field(..., pattern="^(codes|defect)$", description="codes (CRNN) or defect")
    dataset: str = Field(..., pattern="^[0-9a-f]{12}$", description="dataset snapshot id")
    params: dict[str, str | int | float | bool] = Field(
        {}, max_length=40, description="trainer settings (TrainConfig fields), e.g. epochs"
    )


def start_job(
    svc: Services, app: Any, actor: str, kind: str, dataset: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Queue a job on the app's queue (the console's form uses this too)."""
    job = training.start(svc, training_queue(app), actor, kind, dataset, params)
    with svc.reader() as s:
        return training.as_dict(training.get(s, job.id))


@router.get("/jobs")
def jobs(*, authorization: AuthHeader, svc: Svc) -> list[dict[str, Any]]:
    """Training jobs, newest first (viewer)."""
    with svc.reader() as s:
        auth.require_role(auth.person(s, authorization), "viewer")
        return [training.as_dict(j) for j in training.listing(s)]


@router.post("/jobs", status_code=201)
def create(
    *, body: JobCreate, request: Request, authorization: AuthHeader, svc: Svc
) -> dict[str, Any]:
    """Start a training job on a dataset snapshot (admin; audited)."""
    with svc.reader() as s:
        caller = auth.person(s, authorization)
    auth.require_role(caller, "admin")
    return start_job(svc, request.app, caller.actor, body.kind, body.dataset, body.params)


@router.get("/jobs/{job_id}")
def job(*, job_id: int = JobId, authorization: AuthHeader, svc: Svc) -> dict[str, Any]:
    """One job with its progress, candidate and gate figures (viewer)."""
    with svc.reader() as s:
        auth.require_role(auth.person(s, authorization), "viewer")
        return training.as_dict(training.get(s, job_id))


@router.post("/jobs/{job_id}/approve")
def approve(*, job_id: int = JobId, authorization: AuthHeader, svc: Svc) -> dict[str, Any]:
    """Start the canary rollout of a candidate awaiting approval (admin; audited)."""
    with svc.reader() as s:
        caller = auth.person(s, authorization)
    auth.require_role(caller, "admin")
    row = publish.approve(svc, job_id, caller.actor)
    return training.as_dict(row)
