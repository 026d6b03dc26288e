"""Fuzzing the cloud's HTTP API from its own OpenAPI document with schemathesis.

In-process against the ASGI app (no server, no network) on a fresh SQLite database with a real
CA, once without credentials and once as an admin (so generated requests get past
authentication into the handlers). Criterion: no 5xx, and every 4xx is problem+json carrying a
stable code from ``edge.contracts.errors``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyotp
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from cloud.app import create_app
from cloud.auth import add_user
from cloud.config import CloudConfig
from cloud.deps import Services
from cloud.services.ca import init_ca
from edge.contracts.errors import ErrorCode
from tests.fuzz.budget import SCALE

PASSWORD = "correct horse battery"
CODES = {c.value for c in ErrorCode}


def _app() -> tuple[Any, dict[str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="dockgate-api-fuzz-"))
    init_ca(tmp / "ca", "org-01")
    config = CloudConfig(
        database_url=f"sqlite:///{tmp}/cloud.db", issuing_dir=tmp / "ca" / "issuing"
    )
    svc = Services.from_config(config)
    app = create_app(svc)
    with svc.sessions.begin() as s:
        secret = add_user(s, "test", "fuzz-admin", "admin", PASSWORD)
    assert secret is not None
    body = {"username": "fuzz-admin", "password": PASSWORD, "totp": pyotp.TOTP(secret).now()}
    r = TestClient(app).post("/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    return app, {"Authorization": f"Bearer {r.json()['token']}"}


APP, ADMIN = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

FAULTS: list[str] = []


def _check(case: Any, response: Any) -> None:
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:300]}"
    body = response.json() if response.content else None
    if isinstance(body, dict) and set(body) == {"detail"} and isinstance(body["detail"], str):
        raise AssertionError(f"{where}: an answer without a stable code: {response.text[:300]}")
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and body.get("code") in CODES, (
            f"{where}: {response.text[:300]}"
        )


FUZZ = settings(
    max_examples=15 * SCALE,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("TRACE", "/v1/enroll", None),
        ("GET", "/v1/nowhere", None),
        ("GET", "/ota/metadata/0", None),
    ],
)
def test_starlette_errors_have_a_code(method: str, path: str, body: bytes | None) -> None:
    """Found by schemathesis: Starlette's own 404/405/400 answered {'detail'} with no code."""
    headers = {"content-type": "application/json"}
    r = TestClient(APP).request(method, path, content=body, headers=headers)
    assert 400 <= r.status_code < 500
    assert r.json().get("code") in CODES, r.text


# The app's services (database engines, pools) live for the module, like a running server.
@pytest.mark.allow_leaks
@schema.parametrize()
@FUZZ
def test_api_anonymous(case: Any) -> None:
    _check(case, case.call())


@pytest.mark.allow_leaks
@schema.parametrize()
@FUZZ
def test_api_as_admin(case: Any) -> None:
    _check(case, case.call(headers=ADMIN))
