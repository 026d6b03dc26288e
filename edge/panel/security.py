"""Request guards: session loading, Origin/Fetch-Metadata checks, CSRF and roles.

Every route states who may call it with :func:`allow` (or :data:`PUBLIC`); one app-wide
dependency, :func:`enforce`, reads that from the matched endpoint. A route that forgets to state
it is refused (fail closed), and the security tests build their route x role matrix from the same
attribute, so a new route cannot slip past them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel.sessions import Session, SessionStore, csrf_ok
from edge.panel.users import Role, User, UserStore

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALL_ROLES: frozenset[Role] = frozenset(Role)
PUBLIC = "public"
ROLES_ATTR = "__panel_roles__"

F = TypeVar("F", bound=Callable[..., Any])

SECURITY_HEADERS = (
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
)


def allow(*roles: Role | str) -> Callable[[F], F]:
    """Declare who may call an endpoint: roles, or ``PUBLIC`` for login/language."""

    def mark(fn: F) -> F:
        value: frozenset[Role] | str = (
            PUBLIC if roles == (PUBLIC,) else frozenset(Role(r) for r in roles)
        )
        setattr(fn, ROLES_ATTR, value)
        return fn

    return mark


def cookie_name(tls: bool) -> str:
    # The __Host- prefix makes the browser refuse the cookie unless Secure, host-only, Path=/.
    return "__Host-dg_session" if tls else "dg_session"


def session_cookie(sid: str, *, tls: bool, max_age: int) -> str:
    parts = [f"{cookie_name(tls)}={sid}", "Path=/", "HttpOnly", "SameSite=Strict"]
    parts.append(f"Max-Age={max_age}")
    if tls:
        parts.append("Secure")
    return "; ".join(parts)


class SessionMiddleware:
    """Loads the session (creating an anonymous one) and refuses cross-site or huge requests.

    Pure ASGI (not BaseHTTPMiddleware) so server-sent event streams pass through untouched.
    """

    def __init__(
        self, app: ASGIApp, *, sessions: SessionStore, tls: bool, default_lang: str, max_body: int
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.tls = tls
        self.default_lang = default_lang
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        problem = self._reject(request)
        if problem is not None:
            _audit_refusal(request, problem[1])
            await _send_problem(send, *problem)
            return
        receive = self._limited(request, receive)
        if request.url.path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        sid = request.cookies.get(cookie_name(self.tls))
        session = self.sessions.get(sid)
        fresh = session is None
        if session is None:
            session = self.sessions.create(self.default_lang)
        scope.setdefault("state", {})
        scope["state"]["session"] = session
        scope["state"]["set_cookie"] = session.id if fresh else None

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                new_sid = scope["state"].get("set_cookie")
                if new_sid is not None:
                    max_age = int(self.sessions.absolute_s)
                    headers.append(
                        "set-cookie", session_cookie(new_sid, tls=self.tls, max_age=max_age)
                    )
                if new_sid == "":  # logout: expire the cookie
                    headers.append("set-cookie", session_cookie("", tls=self.tls, max_age=0))
            await send(message)

        started = False

        async def guarded(message: Message) -> None:
            # over the limit mid-body: this middleware answers 413, not the route's parse error
            nonlocal started
            if self._over(scope) and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send_with_cookie(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception:
            if not self._over(scope) or started:
                raise
        if self._over(scope) and not started:
            _audit_refusal(request, ErrorCode.REQUEST_TOO_LARGE)
            await _send_problem(send, 413, ErrorCode.REQUEST_TOO_LARGE, "request body too large")

    @staticmethod
    def _over(scope: Scope) -> bool:
        return bool(scope.get(_OVER_LIMIT))

    def _limited(self, request: Request, receive: Receive) -> Receive:
        """``receive`` that counts body bytes, for bodies sent without Content-Length
        (chunked): past ``max_body`` it marks the request and stops reading."""
        seen = 0
        scope = request.scope

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                scope[_OVER_LIMIT] = True
                raise DockgateError(ErrorCode.REQUEST_TOO_LARGE, "request body too large")
            return message

        return limited

    def _reject(self, request: Request) -> tuple[int, ErrorCode, str] | None:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, ErrorCode.REQUEST_TOO_LARGE, "request body too large"
        if request.method in SAFE_METHODS:
            return None
        # Fetch Metadata and Origin: a state change must come from a page of this panel.
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return 403, ErrorCode.CSRF_INVALID, "cross-site request refused"
        origin = request.headers.get("origin")
        if origin is not None and not _same_origin(origin, request):
            return 403, ErrorCode.CSRF_INVALID, "request from another origin refused"
        return None


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc == host


_OVER_LIMIT = "dockgate.panel_body_over_limit"


def _audit_refusal(request: Request, code: ErrorCode) -> None:
    """Audit a request the middleware refused (oversized body, cross-site or foreign origin)."""
    try:
        request.app.state.audit.record(
            "-", f"{request.method} {request.url.path}", outcome="denied", detail=code.value
        )
    except Exception:
        logging.getLogger(__name__).exception("could not audit a refused request")


async def _send_problem(send: Send, status: int, code: ErrorCode, message: str) -> None:
    import json

    body = json.dumps({"code": code.value, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-error-code", code.value.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def current_session(request: Request) -> Session:
    session = request.scope.get("state", {}).get("session")
    if not isinstance(session, Session):
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "no session")
    return session


async def enforce(request: Request) -> None:
    """App-wide dependency: authentication, CSRF, then role, from the endpoint's declaration."""
    endpoint = request.scope.get("endpoint")
    roles = getattr(endpoint, ROLES_ATTR, None)
    if roles is None:
        if request.url.path.startswith(("/static", "/docs", "/openapi")):
            return
        raise DockgateError(ErrorCode.FORBIDDEN, "this route declares no roles")
    session = current_session(request)
    unsafe = request.method not in SAFE_METHODS
    users: UserStore = request.app.state.users
    user = users.get(session.username) if session.username else None
    if user is not None and not user.disabled:
        request.state.user = user
    if roles == PUBLIC:
        if unsafe:
            await check_csrf(request, session)
        return
    if user is None or user.disabled:
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "please log in")
    if unsafe:
        await check_csrf(request, session)
    if user.role not in roles:
        request.app.state.audit.record(
            user.actor, f"{request.method} {request.url.path}", outcome="denied", detail="role"
        )
        raise DockgateError(ErrorCode.FORBIDDEN, "your role does not allow this")


async def check_csrf(request: Request, session: Session) -> None:
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not csrf_ok(session, token):
        actor = f"user:{session.username}" if session.username else "-"
        request.app.state.audit.record(
            actor, f"{request.method} {request.url.path}", outcome="denied", detail="csrf"
        )
        raise DockgateError(ErrorCode.CSRF_INVALID, "missing or wrong CSRF token")


def current_user(request: Request) -> User:
    user = getattr(request.state, "user", None)
    if not isinstance(user, User):
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "please log in")
    return user


def safe_next(raw: str | None) -> str:
    """A local path to go to after login; anything else (other hosts, ``//x``, ``\\x``) -> /live."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return "/live"
    if any(ch in raw for ch in "\\\r\n\t") or urlsplit(raw).netloc or urlsplit(raw).scheme:
        return "/live"
    return raw
