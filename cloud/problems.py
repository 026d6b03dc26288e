"""RFC 9457 problem+json answers carrying a stable error code, and the body-size limit."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.contracts.errors import DESCRIPTIONS, DockgateError, ErrorCode

STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.TOTP_REQUIRED: 401,
    ErrorCode.CLOCK_SKEW: 401,
    ErrorCode.REPLAY: 401,
    ErrorCode.SIG_INVALID: 401,
    ErrorCode.ALG_NOT_ALLOWED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.DEVICE_REVOKED: 403,
    ErrorCode.DEVICE_MISMATCH: 403,
    ErrorCode.TOKEN_INVALID: 403,
    ErrorCode.DEVICE_UNKNOWN: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.REQUEST_TOO_LARGE: 413,
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


async def dockgate_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DockgateError)
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
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise DockgateError(ErrorCode.REQUEST_TOO_LARGE, f"body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(ErrorCode.REQUEST_TOO_LARGE, f"body over {self.limit} bytes")
        await response(scope, receive, send)
