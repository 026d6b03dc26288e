"""The device's OTA conversation with the cloud: heartbeat reports and assignment polls.

``POST /v1/ota/report`` (an :class:`OtaReport`, answered with the device's
:class:`OtaDirective`) and ``GET /v1/ota/assignments`` with ``If-None-Match`` (``304`` while
nothing changed for this device), both signed like every device request
(``Authorization: Dockgate-Sig <JWS>`` over method, bare path, body hash, time and nonce; see
``edge/contracts/ota.py``). Errors are :class:`DockgateError`: ``SYNC_UNREACHABLE`` for the
network or a 5xx, else the code of the cloud's problem answer.
"""

from __future__ import annotations

import json
import ssl
from typing import Protocol

import httpx

from edge.contracts.clock import wall_time
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.ota import ASSIGNMENTS_PATH, REPORT_PATH, OtaDirective, OtaReport
from edge.contracts.sync import AUTH_SCHEME


class RequestSigner(Protocol):
    """What signs a device's HTTP requests (``edge.trust.signer.DeviceSigner`` is one)."""

    @property
    def device_id(self) -> str: ...

    clock_offset: float

    def sign_request(self, method: str, path: str, body: bytes) -> str: ...


class CloudLink:
    """Signed OTA requests of one device to one cloud base URL."""

    def __init__(
        self,
        base_url: str,
        signer: RequestSigner,
        *,
        timeout_s: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        limits = httpx.Limits(max_connections=2, keepalive_expiry=2.0)
        self._http = http or httpx.Client(timeout=timeout_s, verify=verify, limits=limits)
        self._owned = http is None
        self.etag: str | None = None  # of the last directive received

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def report(self, report: OtaReport) -> OtaDirective:
        """Send one heartbeat; the answer is the directive computed after applying it."""
        response = self._send("POST", REPORT_PATH, report.model_dump_json().encode())
        directive = parse_directive(response.content)
        self.etag = directive.etag
        return directive

    def assignments(self) -> OtaDirective | None:
        """The directive, or ``None`` when it did not change since the last one (304)."""
        headers = {"If-None-Match": f'"{self.etag}"'} if self.etag else {}
        response = self._send("GET", ASSIGNMENTS_PATH, b"", headers)
        if response.status_code == 304:
            return None
        directive = parse_directive(response.content)
        self.etag = directive.etag
        return directive

    def _send(
        self, method: str, path: str, body: bytes, extra: dict[str, str] | None = None
    ) -> httpx.Response:
        for attempt in (1, 2):
            headers = {
                "Authorization": f"{AUTH_SCHEME} {self.signer.sign_request(method, path, body)}",
                **(extra or {}),
            }
            if body:
                headers["Content-Type"] = "application/json"
            try:
                response = self._http.request(
                    method, self.base_url + path, content=body or None, headers=headers
                )
            except httpx.HTTPError as exc:
                raise DockgateError(
                    ErrorCode.SYNC_UNREACHABLE, f"cloud unreachable ({type(exc).__name__})"
                ) from None
            if response.status_code in (200, 304):
                return response
            error, server_time = _problem(response)
            if error.code is ErrorCode.CLOCK_SKEW and server_time is not None and attempt == 1:
                self.signer.clock_offset = server_time - wall_time()  # no RTC battery: learn
                continue
            raise error
        raise AssertionError("unreachable")


def parse_directive(content: bytes) -> OtaDirective:
    """The cloud's directive; ``SYNC_REJECTED`` (not a pydantic error) when it is unreadable."""
    try:
        return OtaDirective.model_validate_json(content)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise DockgateError(
            ErrorCode.SYNC_REJECTED, f"the cloud answered an unreadable OTA directive: {exc}"[:300]
        ) from None


def _problem(response: httpx.Response) -> tuple[DockgateError, float | None]:
    """An RFC 9457 answer as a DockgateError (and the server's time, when it sent one)."""
    try:
        problem = json.loads(response.content)
        server_time = problem.get("server_time")
        when = float(server_time) if isinstance(server_time, int | float) else None
        code = ErrorCode(problem["code"])
        return DockgateError(code, str(problem.get("detail") or problem.get("title"))), when
    except (ValueError, KeyError, TypeError, AttributeError):
        if response.status_code >= 500 or response.status_code in (408, 429):
            code = ErrorCode.SYNC_UNREACHABLE
        else:
            code = ErrorCode.SYNC_REJECTED
        return DockgateError(code, f"cloud answered HTTP {response.status_code}"), None
