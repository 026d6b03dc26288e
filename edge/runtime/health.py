"""``/healthz``, ``/readyz`` and ``/metrics`` for the edge node (mounted on the panel's server).

``/healthz`` answers whether the process is alive and serving (a container runtime restarts it
when not); ``/readyz`` whether the node can take cartons: every stage running, none degraded, the
ledger writable. Neither needs a login: they reveal no stock or identity, only states and codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from edge.runtime.metrics import Metrics
from edge.runtime.supervisor import Supervisor


def count_restarts(metrics: Metrics) -> Callable[[str, str], None]:
    """The supervisor hook that exports each stage restart as a Prometheus counter."""

    def hook(stage: str, reason: str) -> None:
        metrics.restarts.labels(stage).inc()

    return hook


def health_router(
    supervisor: Supervisor,
    metrics: Metrics,
    checks: dict[str, Callable[[], str | None]] | None = None,
) -> APIRouter:
    """``checks`` map a name to a function returning ``None`` when fine, else an error code and
    sentence (e.g. ``"STORAGE_FULL: ledger disk full"``); any failing check makes /readyz 503."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        stages = [asdict(s) for s in supervisor.status()]
        problems: dict[str, Any] = {
            s["name"]: s["last_error"] or "not running"
            for s in stages
            if s["degraded"] or not s["alive"]
        }
        for name, check in (checks or {}).items():
            problem = check()
            if problem:
                problems[name] = problem
        body = {"ready": not problems, "problems": problems, "stages": stages}
        return JSONResponse(body, status_code=200 if not problems else 503)

    @router.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        # stage restarts are counted by the supervisor's on_restart hook (see count_restarts)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
