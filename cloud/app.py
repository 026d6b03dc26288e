"""The cloud service: ``create_app(services)`` wires routers, errors and limits; nothing global.

Run it with ``dockgate cloud serve`` (uvicorn). Several workers on one PostgreSQL are fine: all
state lives in the database.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.requests import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.console.labeling import router as labeling_router
from cloud.console.pages import router as console_router
from cloud.console.training import router as training_console_router
from cloud.deps import Services
from cloud.problems import BodyLimit, dockgate_error_handler, problem
from cloud.rollouts.api import evaluator_lifespan
from cloud.rollouts.api import router as rollouts_router
from cloud.rollouts.router import router as ota_router
from cloud.routers import admin, ingest, labels, read, samples, training
from edge.contracts.errors import DockgateError, ErrorCode


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return problem(ErrorCode.EVENT_INVALID, f"{where}: {first.get('msg', 'invalid request')}")


async def _http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown path, wrong method, unparsable body) as problem+json with
    a stable code, like every other answer."""
    assert isinstance(exc, StarletteHTTPException)
    code = {
        401: ErrorCode.UNAUTHENTICATED,
        403: ErrorCode.FORBIDDEN,
        413: ErrorCode.REQUEST_TOO_LARGE,
        429: ErrorCode.RATE_LIMITED,
    }.get(exc.status_code)
    if code is None:
        code = ErrorCode.NOT_FOUND if exc.status_code in (404, 405) else ErrorCode.EVENT_INVALID
    response = problem(code, str(exc.detail), status=exc.status_code)
    response.headers.update(exc.headers or {})  # e.g. Allow on 405
    return response


def create_app(svc: Services) -> FastAPI:
    app = FastAPI(
        title="Dockgate cloud",
        version="1",
        description="Fleet ingest of signed edge events, device registry, stock and audit.",
        lifespan=evaluator_lifespan,
    )
    app.state.services = svc
    app.add_exception_handler(DockgateError, dockgate_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_middleware(BodyLimit, limit=svc.config.max_body_bytes)
    app.include_router(ingest.router)
    app.include_router(admin.router)
    app.include_router(read.router)
    app.include_router(samples.router)
    app.include_router(labels.router)
    app.include_router(ota_router)
    app.include_router(rollouts_router)
    app.include_router(console_router)
    app.include_router(labeling_router)
    app.include_router(training.router)
    app.include_router(training_console_router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (``--factory``) for multi-worker runs: config file from the environment."""
    import os
    from pathlib import Path

    from cloud.config import load_cloud_config

    path = os.environ.get("DOCKGATE_CLOUD_CONFIG")
    config = load_cloud_config(Path(path) if path else None)
    return create_app(Services.from_config(config, run_migrations=False))
