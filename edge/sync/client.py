"""HTTP client of the cloud sync API: signs every request with the device key.

Errors come back as :class:`DockgateError`: ``SYNC_UNREACHABLE`` for anything on the network
(connect refused, reset, timeout, a cut response), otherwise the code of the cloud's problem
answer. A ``CLOCK_SKEW`` answer teaches the signer the server's clock, and the request is
retried once: cheap edge boxes often have no RTC battery.
"""

from __future__ import annotations

import json
import ssl

import httpx

from edge.contracts.clock import wall_time
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.sync import (
    AUTH_SCHEME,
    FREEZES_PATH,
    INGEST_PATH,
    FreezeFeed,
    SyncBatch,
    SyncResult,
)
from edge.trust.signer import DeviceSigner


class CloudClient:
    """Talks to one cloud base URL. ``http`` may be injected (tests, a shared pool)."""

    def __init__(
        self,
        base_url: str,
        signer: DeviceSigner,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
        verify_tls: bool | ssl.SSLContext = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self._http = http or httpx.Client(timeout=timeout, verify=verify_tls)
        self._owned = http is None

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def push(self, envelopes: list[str], checkpoint: str | None) -> SyncResult:
        batch = SyncBatch(
            device_id=self.signer.device_id, envelopes=envelopes, checkpoint=checkpoint
        )
        body = batch.model_dump_json().encode()
        response = self._send("POST", INGEST_PATH, body)
        return SyncResult.model_validate_json(response.content)

    def freezes(self, since: int, wait: float) -> FreezeFeed:
        response = self._send(
            "GET", FREEZES_PATH, b"", params={"since": since, "wait": wait}, timeout=wait + 15
        )
        return FreezeFeed.model_validate_json(response.content)

    def post(self, path: str, body: bytes, timeout: float | None = None) -> bytes:
        """A signed POST of ``body`` to another device API (samples); the answer's bytes."""
        return self._send("POST", path, body, timeout=timeout).content

    def _send(
        self,
        method: str,
        path: str,
        body: bytes,
        params: dict[str, float] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        for attempt in (1, 2):
            headers = {
                "Authorization": f"{AUTH_SCHEME} {self.signer.sign_request(method, path, body)}",
                "Content-Type": "application/json",
            }
            try:
                response = self._http.request(
                    method,
                    self.base_url + path,
                    content=body or None,
                    headers=headers,
                    params=params,
                    # a per-request timeout only on our own client (an injected one has its own)
                    timeout=timeout if timeout and self._owned else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as exc:
                raise DockgateError(
                    ErrorCode.SYNC_UNREACHABLE, f"cloud unreachable ({type(exc).__name__})"
                ) from None
            if response.status_code == 200:
                return response
            error = problem_error(response)
            server_time = _server_time(response)
            if error.code is ErrorCode.CLOCK_SKEW and server_time is not None and attempt == 1:
                self.signer.clock_offset = server_time - wall_time()
                continue
            raise error
        raise AssertionError("unreachable")


def _server_time(response: httpx.Response) -> float | None:
    try:
        value = json.loads(response.content).get("server_time")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def problem_error(response: httpx.Response) -> DockgateError:
    """An RFC 9457 answer as a DockgateError (SYNC_REJECTED when it carries no known code)."""
    try:
        problem = json.loads(response.content)
        code = ErrorCode(problem["code"])
        return DockgateError(code, str(problem.get("detail") or problem.get("title")))
    except (ValueError, KeyError, TypeError):
        if response.status_code >= 500 or response.status_code in (408, 429):
            return DockgateError(
                ErrorCode.SYNC_UNREACHABLE, f"cloud answered HTTP {response.status_code}"
            )
        return DockgateError(ErrorCode.SYNC_REJECTED, f"cloud answered HTTP {response.status_code}")
