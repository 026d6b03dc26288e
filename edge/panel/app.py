"""``create_app``: the operator's panel as a FastAPI app, with services injected.

Routers per screen live in ``edge/panel/routers``; services sit on ``app.state`` and are read
through the helpers in :mod:`edge.panel.deps`. Everything the browser loads comes from this app
(templates and ``/static``): the panel works with no internet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel import deps
from edge.panel.audit import AuditLog
from edge.panel.config import PanelConfig
from edge.panel.db import PanelDB
from edge.panel.live import LiveFeed
from edge.panel.ratelimit import LoginLimiter
from edge.panel.routers import auth, live, qa, review, status, stock
from edge.panel.security import SAFE_METHODS, SessionMiddleware, enforce
from edge.panel.services import PanelServices
from edge.panel.sessions import SessionStore
from edge.panel.users import UserStore

STATIC = Path(__file__).resolve().parent / "static"

HTTP_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.TOTP_REQUIRED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CSRF_INVALID: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.CODE_INVALID: 422,
    ErrorCode.RATE_LIMITED: 429,
}


def create_app(
    services: PanelServices,
    config: PanelConfig,
    db_path: Path,
    *,
    hasher: PasswordHasher | None = None,
) -> FastAPI:
    """The panel app. ``db_path`` is ``panel.db`` (accounts, sessions, audit).

    ``hasher`` defaults to argon2id with argon2-cffi's recommended cost; tests pass a cheaper
    argon2id so the suite stays fast on two cores.
    """
    db = PanelDB(db_path)
    feed = LiveFeed(services.bus, keep=config.live_cartons)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed.start()
        try:
            yield
        finally:
            feed.close()
            db.close()

    app = FastAPI(
        title="Dockgate panel",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(enforce)],
    )
    app.state.services = services
    app.state.config = config
    app.state.db = db
    app.state.users = UserStore(db, hasher)
    app.state.audit = AuditLog(db)
    app.state.feed = feed
    app.state.sessions = SessionStore(
        db, idle_s=config.session_idle_minutes * 60, absolute_s=config.session_absolute_hours * 3600
    )
    app.state.limiter = LoginLimiter(
        config.login_max_failures, config.login_window_s, config.login_lockout_s
    )
    for router in (auth.router, live.router, review.router, qa.router, stock.router, status.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(DockgateError, _on_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_middleware(
        SessionMiddleware,
        sessions=app.state.sessions,
        tls=config.tls,
        default_lang=config.language,
        max_body=config.max_body_kb * 1024,
    )

    return app


async def _on_error(request: Request, exc: DockgateError) -> Response:
    status = HTTP_STATUS.get(exc.code, 409)
    wants_page = request.method in SAFE_METHODS and "text/html" in request.headers.get("accept", "")
    if exc.code is ErrorCode.UNAUTHENTICATED and wants_page:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    headers = {"X-Error-Code": exc.code.value}
    if exc.code is ErrorCode.RATE_LIMITED:
        headers["Retry-After"] = str(exc.details.get("retry_after", 60))
    if "text/html" in request.headers.get("accept", ""):
        return deps.render(
            request, "error.html", status=status, headers=headers, code=exc.code.value
        )
    body = {"code": exc.code.value, "message": deps.translator(request).error(exc.code.value)}
    from fastapi.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.FORBIDDEN
    if exc.status_code == 405:
        code = ErrorCode.NOT_FOUND
    return await _on_error(request, DockgateError(code, str(exc.detail)))


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every endpoint of the app, including those of included routers (which newer FastAPI
    keeps behind an included-router wrapper); the security tests iterate this."""
    found: list[APIRoute] = []

    def walk(routes: list[BaseRoute]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif (inner := getattr(route, "original_router", None)) is not None:
                walk(list(inner.routes))

    walk(list(app.routes))
    return found
