"""Login, logout and language: the only routes open to a visitor without an account."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel import deps
from edge.panel.i18n import LANGUAGES
from edge.panel.ratelimit import LoginLimiter
from edge.panel.security import ALL_ROLES, PUBLIC, allow, safe_next
from edge.panel.sessions import SessionStore
from edge.panel.users import UserStore

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
@allow(PUBLIC)
def home() -> Response:
    return RedirectResponse("/live", status_code=303)


@router.get("/login", response_class=HTMLResponse)
@allow(PUBLIC)
def login_page(request: Request, next: str = "/live") -> Response:
    return deps.render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
@allow(PUBLIC)
async def login(request: Request) -> Response:
    data = await deps.form(request)
    username = data.get("username", "").strip().lower()[:64]
    target = safe_next(data.get("next"))
    client = request.client.host if request.client else "?"
    limiter: LoginLimiter = request.app.state.limiter
    keys = (f"user:{username}", f"addr:{client}")
    wait = limiter.retry_after(*keys)
    if wait:
        deps.audit(request).record(username, "login", outcome="rate-limited", detail=client)
        code = ErrorCode.RATE_LIMITED.value
        return deps.render(
            request,
            "login.html",
            status=429,
            next=target,
            error=code,
            username=username,
            headers={"X-Error-Code": code, "Retry-After": str(wait)},
        )
    users: UserStore = request.app.state.users
    try:
        user = users.authenticate(username, data.get("password", ""), data.get("totp", ""))
    except DockgateError as exc:
        limiter.failure(*keys)
        deps.audit(request).record(username, "login", outcome="failed", detail=exc.code.value)
        status = 401
        return deps.render(
            request,
            "login.html",
            status=status,
            next=target,
            error=exc.code.value,
            username=username,
            headers={"X-Error-Code": exc.code.value},
        )
    limiter.success(keys[0])
    sessions: SessionStore = request.app.state.sessions
    old = deps.session(request)
    fresh = sessions.login(old, user.username, old.lang)
    request.scope["state"]["set_cookie"] = fresh.id
    deps.audit(request).record(user.actor, "login", detail=client)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
@allow(*ALL_ROLES)
def logout(request: Request) -> Response:
    sessions: SessionStore = request.app.state.sessions
    s = deps.session(request)
    sessions.delete(s.id)
    request.scope["state"]["set_cookie"] = ""
    user = deps.user(request)
    deps.audit(request).record(user.actor if user else "-", "logout")
    return RedirectResponse("/login", status_code=303)


@router.post("/lang")
@allow(PUBLIC)
async def set_language(request: Request) -> Response:
    data = await deps.form(request)
    lang = data.get("lang", "")
    if lang not in LANGUAGES:
        raise DockgateError(ErrorCode.NOT_FOUND, "no such language")
    sessions: SessionStore = request.app.state.sessions
    sessions.set_lang(deps.session(request), lang)
    user = deps.user(request)
    deps.audit(request).record(user.actor if user else "-", "language", target=lang)
    return RedirectResponse(safe_next(data.get("next")), status_code=303)
