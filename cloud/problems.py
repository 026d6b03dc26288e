"""RFC 9457 problem+json answers carrying a stable error code, and the body-size limit."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.contracts.errors import DESCRIPTIONS, DockgateError, ErrorCode

log = logging.getLogger("dockgate.cloud.audit")

# refusals that say someone tried what they may not: each one is audited (who, where, code)
AUDITED_REFUSALS = frozenset(
    {
        ErrorCode.UNAUTHENTICATED,
        ErrorCode.TOTP_REQUIRED,
        ErrorCode.CLOCK_SKEW,
        ErrorCode.REPLAY,
        ErrorCode.SIG_INVALID,
        ErrorCode.ALG_NOT_ALLOWED,
        ErrorCode.FORBIDDEN,
        ErrorCode.CSRF_INVALID,
        ErrorCode.DEVICE_REVOKED,
        ErrorCode.DEVICE_MISMATCH,
        ErrorCode.DEVICE_UNKNOWN,
        ErrorCode.TOKEN_INVALID,
        ErrorCode.CERT_EXPIRED,
        ErrorCode.CERT_CHAIN_INVALID,
        ErrorCode.REQUEST_TOO_LARGE,
        ErrorCode.RATE_LIMITED,
        ErrorCode.PATH_INVALID,
    }
)
# these answers are audited where they happen already (login.fail with the user name)
_AUDITED_ELSEWHERE = ("/v1/auth/login",)
_LOGIN_CODES = (ErrorCode.UNAUTHENTICATED, ErrorCode.TOTP_REQUIRED, ErrorCode.RATE_LIMITED)
_REFUSED_HERE = "dockgate.body_limit_refused"  # scope key: BodyLimit answers and audits itself

STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.TOTP_REQUIRED: 401,
    ErrorCode.CLOCK_SKEW: 401,
    ErrorCode.REPLAY: 401,
    ErrorCode.SIG_INVALID: 401,
    ErrorCode.ALG_NOT_ALLOWED: 401,
    ErrorCode.CERT_EXPIRED: 401,  # an expired credential, like an expired session
    ErrorCode.CERT_CHAIN_INVALID: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CSRF_INVALID: 403,
    ErrorCode.DEVICE_REVOKED: 403,
    ErrorCode.DEVICE_MISMATCH: 403,
    ErrorCode.TOKEN_INVALID: 403,
    ErrorCode.DEVICE_UNKNOWN: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ROLLOUT_CONFLICT: 409,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.PATH_INVALID: 400,
    ErrorCode.EVENT_INVALID: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONFIG_INVALID: 503,
}


def problem(code: ErrorCode, detail: str, status: int | None = None, **extra: Any) -> JSONResponse:
    status = status or STATUS.get(code, 400)
    body = {
        "type": f"urn:dockgate:error:{code.value}",
        "title": DESCRIPTIONS[code],
        "status": status,
        "detail": detail,
        "code": code.value,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def check_file_name(name: str, what: str = "file name") -> None:
    """Raise ``PATH_INVALID`` when ``name`` (or a segment of a relative path) tries to leave its
    directory: ``..``, an absolute path, a backslash, a NUL or another control character."""
    parts = name.split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or any(ord(c) < 32 for c in name)
        or any(p == ".." for p in parts)
        or "%2f" in name.lower()
        or "%2e%2e" in name.lower()
    ):
        raise DockgateError(ErrorCode.PATH_INVALID, f"{what} {name[:80]!r} leaves its directory")


async def audit_refusal(
    scope: Scope, code: ErrorCode, detail: str, *, from_limit: bool = False
) -> None:
    """One audit entry for a refused request (``request.refused``): the code, method, path and
    client address, in its own transaction (the request's own work was rolled back). Never
    raises: a refusal must not become a 500 because the audit store is unwell (that is logged).
    """
    path = str(scope.get("path", ""))
    if code not in AUDITED_REFUSALS or (path in _AUDITED_ELSEWHERE and code in _LOGIN_CODES):
        return
    if code is ErrorCode.REQUEST_TOO_LARGE and scope.get(_REFUSED_HERE) and not from_limit:
        return  # BodyLimit answers this one itself, and audits it then
    app = scope.get("app")
    svc = getattr(getattr(app, "state", None), "services", None)
    if svc is None:
        return
    client = scope.get("client")
    host = str(client[0]) if client else "?"

    def write() -> None:
        from cloud.services.audit import audit

        with svc.sessions.begin() as s:
            audit(s, f"request:{host}", "request.refused", code, method=scope.get("method"),
                  path=path[:200], detail=detail[:200])  # fmt: skip

    try:
        await run_in_threadpool(write)
    except Exception:
        log.exception("could not audit a refused request (%s %s)", code.value, path)


async def dockgate_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DockgateError)
    await audit_refusal(request.scope, exc.code, exc.message)
    extra: dict[str, Any] = {
        k: v for k, v in exc.details.items() if isinstance(v, str | int | float | None)
    }
    return problem(exc.code, exc.message, None, **extra)


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, exceeded, started = 0, False, False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                exceeded = True
                scope[_REFUSED_HERE] = True  # the error handler must not audit it a second time
                raise DockgateError(ErrorCode.REQUEST_TOO_LARGE, f"body over {self.limit} bytes")
            return message

        async def guarded(message: Message) -> None:
            # once the limit is crossed, this middleware answers (413), whatever the route made
            # of the interrupted body (FastAPI turns it into a 400 "error parsing the body")
            nonlocal started
            if exceeded and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"body over {self.limit} bytes"
        await audit_refusal(scope, ErrorCode.REQUEST_TOO_LARGE, detail, from_limit=True)
        response = problem(ErrorCode.REQUEST_TOO_LARGE, detail)
        await response(scope, receive, send)
