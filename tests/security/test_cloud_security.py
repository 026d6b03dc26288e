"""The cloud API under attack: every attempt is refused with a stable code AND audited.

Covers SQL injection in every query and path parameter of the OpenAPI document, oversized bodies
on every write route (with and without Content-Length), path traversal in file names (OTA
repository, sample ids), a device certificate used for another device's id, lower roles on admin
routes, and expired, logged-out and revoked credentials. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import func, select, update

from cloud.db.models import Audit, Device, EnrollmentToken, EventRow, SessionRow, User
from cloud.services.registry import create_token, enroll
from edge.contracts.sync import AUTH_SCHEME
from edge.trust.enroll import build_csr
from edge.trust.keys import Identity, generate_key
from edge.trust.signer import DeviceSigner
from tests.cloud.env import PASSWORD, CloudEnv

SQLI = (
    "' OR '1'='1",
    "1 OR 1=1",
    "'; DROP TABLE events; --",
    "%' OR 1=1 --",
    "1) UNION SELECT NULL, NULL --",
    '" OR ""="',
    "\\'; SELECT pg_sleep(5); --",
)
TRAVERSAL = (
    "../../../etc/passwd",
    "..%2F..%2Fkeys%2Froot.json",
    "%2e%2e/%2e%2e/keys/root.json",
    "..\\..\\keys\\root.json",
    "/etc/passwd",
    "a/../../keys",
    "x\x00.json",
)
ADMIN_ROUTES: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("POST", "/v1/tokens", {"org": "org-01", "site": "site-01", "ttl_hours": 1}),
    ("POST", "/v1/devices/edge-01/revoke", None),
    (
        "POST",
        "/v1/rollouts",
        {
            "spec": {
                "id": "r-1",
                "model": "defect",
                "from_version": "1.0.0",
                "to_version": "1.1.0",
                "stages": [{"name": "all", "percent": 100}],
            }
        },
    ),
    ("POST", "/v1/rollouts/1/pause", {}),
)


def refused(cloud: CloudEnv, code: str) -> int:
    """How many ``request.refused`` audit entries carry ``code``."""
    with cloud.svc.sessions() as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(Audit)
                .where(Audit.action == "request.refused", Audit.code == code)
            ).scalar_one()
        )


def counts(cloud: CloudEnv) -> tuple[int, int, int]:
    with cloud.svc.sessions() as s:
        return tuple(  # type: ignore[return-value]
            int(s.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (EventRow, User, Device)
        )


def assert_problem(r: Any, *statuses: int) -> str:
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    body = r.json()
    assert body.get("code"), body
    return str(body["code"])


def _device_headers(signer: DeviceSigner, method: str, path: str, body: bytes) -> dict[str, str]:
    return {
        "Authorization": f"{AUTH_SCHEME} {signer.sign_request(method, path, body)}",
        "Content-Type": "application/json",
    }


@pytest.fixture
def device(cloud: CloudEnv) -> Iterator[Identity]:
    ident = cloud.enroll("edge-01")
    cloud.enroll("edge-02")
    cloud.client(ident).push([], None)
    yield ident


# SQL injection ---------------------------------------------------------------------------------
def _get_routes(cloud: CloudEnv) -> list[tuple[str, list[dict[str, Any]]]]:
    spec = cloud.http.app.openapi()  # type: ignore[attr-defined]
    return [
        (path, op.get("parameters", []))
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method == "get" and op.get("parameters")
    ]


@pytest.mark.slow
def test_sql_injection_in_every_query_and_path_parameter(cloud: CloudEnv, device: Identity) -> None:
    headers = cloud.login("admin")
    before = counts(cloud)
    routes = _get_routes(cloud)
    assert len(routes) >= 6, routes
    tried = 0
    for path, params in routes:
        defaults = {p["name"]: "edge-01" if p["in"] == "path" else None for p in params}
        for param in params:
            baseline_args = {**defaults, param["name"]: "zz-nothing-zz"}
            base = _call(cloud, path, params, baseline_args, headers)
            for payload in SQLI:
                r = _call(cloud, path, params, {**defaults, param["name"]: payload}, headers)
                tried += 1
                assert r.status_code < 500, (path, param["name"], payload, r.text[:300])
                if r.status_code >= 400:
                    assert_problem(r, r.status_code)
                elif base.status_code == 200 and isinstance(base.json(), list):
                    # a literal that matches nothing must not match more when it "injects"
                    assert len(r.json()) <= len(base.json()), (path, param["name"], payload)
    # the login body too: the user name is a bound parameter, not SQL
    for payload in SQLI:
        r = cloud.http.post("/v1/auth/login", json={"username": payload, "password": payload})
        assert_problem(r, 401, 422, 429)
    assert counts(cloud) == before  # nothing dropped, nothing added
    print(f"\nSQL injection: {tried} requests over {len(routes)} routes, no 5xx, no effect")


def _call(
    cloud: CloudEnv,
    path: str,
    params: list[dict[str, Any]],
    values: dict[str, Any],
    headers: dict[str, str],
) -> Any:
    url, query = path, {}
    for p in params:
        value = values.get(p["name"])
        if p["in"] == "path":
            from urllib.parse import quote

            url = url.replace("{" + p["name"] + "}", quote(str(value), safe=""))
        elif value is not None:
            query[p["name"]] = value
    return cloud.http.get(url, params=query, headers=headers)


# oversized bodies ------------------------------------------------------------------------------
def test_oversized_bodies_are_refused_and_audited(cloud: CloudEnv) -> None:
    spec = cloud.http.app.openapi()  # type: ignore[attr-defined]
    writes = [p for p, ops in spec["paths"].items() if "post" in ops and "{" not in p]
    # logout reads no body: a streamed body there is never read, so never buffered either
    streamed = [p for p in writes if p != "/v1/auth/logout"]
    limit = cloud.svc.config.max_body_bytes
    big = b"{" + b" " * (limit + 1) + b"}"
    before = refused(cloud, "REQUEST_TOO_LARGE")
    for path in writes:
        r = cloud.http.post(path, content=big, headers={"Content-Type": "application/json"})
        assert assert_problem(r, 413) == "REQUEST_TOO_LARGE", path
    for path in streamed:

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536

        r = cloud.http.post(path, content=chunks(), headers={"Content-Type": "application/json"})
        assert assert_problem(r, 413) == "REQUEST_TOO_LARGE", path
    assert refused(cloud, "REQUEST_TOO_LARGE") - before == len(writes) + len(streamed)


# path traversal --------------------------------------------------------------------------------
def test_path_traversal_in_file_names_is_refused_and_audited(
    cloud: CloudEnv, device: Identity
) -> None:
    before, audited = counts(cloud), refused(cloud, "PATH_INVALID")
    reached = 0  # requests that reached a route (the client or router may normalise the rest)
    for name in TRAVERSAL:
        if "\x00" in name:  # the HTTP client itself refuses to send a NUL in a URL
            continue
        for url in (f"/ota/targets/{name}", f"/ota/metadata/{name}"):
            r = cloud.http.get(url)
            assert b"root:" not in r.content and b"PRIVATE KEY" not in r.content
            code = assert_problem(r, 400, 404)
            assert code in ("PATH_INVALID", "NOT_FOUND"), (url, code)
            reached += code == "PATH_INVALID"
    assert reached >= 4, reached  # the encoded and backslash forms reach the routes
    signer = DeviceSigner(device)
    data = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    for name in TRAVERSAL:
        body = json.dumps(
            {
                "device_id": "edge-01",
                "sample_id": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "data": base64.b64encode(data).decode(),
            }
        ).encode()
        headers = _device_headers(signer, "POST", "/v1/samples", body)
        r = cloud.http.post("/v1/samples", content=body, headers=headers)
        assert assert_problem(r, 400) == "PATH_INVALID", (name, r.text)
    assert refused(cloud, "PATH_INVALID") - audited == reached + len(TRAVERSAL)
    assert counts(cloud) == before


# identity --------------------------------------------------------------------------------------
def test_a_device_certificate_used_for_another_device_is_refused_and_audited(
    cloud: CloudEnv, device: Identity
) -> None:
    signer = DeviceSigner(device)  # edge-01's key and certificate
    before = refused(cloud, "DEVICE_MISMATCH")
    attempts = [
        ("/v1/ingest", {"device_id": "edge-02", "envelopes": []}),
        (
            "/v1/samples",
            {
                "device_id": "edge-02",
                "sample_id": "1700000000-0001",
                "sha256": "0" * 64,
                "size": 1,
            },
        ),
    ]
    for path, payload in attempts:
        body = json.dumps(payload).encode()
        r = cloud.http.post(path, content=body, headers=_device_headers(signer, "POST", path, body))
        assert assert_problem(r, 403) == "DEVICE_MISMATCH", (path, r.text)
    assert refused(cloud, "DEVICE_MISMATCH") - before == len(attempts)


@pytest.mark.slow
def test_lower_roles_on_admin_routes_are_refused_and_audited(
    cloud: CloudEnv, device: Identity
) -> None:
    before = refused(cloud, "FORBIDDEN")
    n = 0
    for role in ("viewer", "operator", "qa"):
        headers = cloud.login(role)
        for method, path, body in ADMIN_ROUTES:
            r = cloud.http.request(method, path, json=body, headers=headers)
            assert assert_problem(r, 403) == "FORBIDDEN", (role, path, r.text)
            n += 1
    assert refused(cloud, "FORBIDDEN") - before == n
    with cloud.svc.sessions() as s:
        assert s.execute(select(Device.status).where(Device.id == "edge-01")).scalar() == "active"


@pytest.mark.slow
def test_expired_logged_out_and_revoked_credentials_are_refused_and_audited(
    cloud: CloudEnv, device: Identity
) -> None:
    before = refused(cloud, "UNAUTHENTICATED")
    # no credentials at all, on every person route
    for path in ("/v1/devices", "/v1/stock", "/v1/audit", "/v1/quarantine", "/v1/conflicts"):
        assert assert_problem(cloud.http.get(path), 401) == "UNAUTHENTICATED"
    # a logged-out session
    headers = cloud.login("viewer")
    assert cloud.http.get("/v1/devices", headers=headers).status_code == 200
    assert cloud.http.post("/v1/auth/logout", headers=headers).status_code < 300
    assert assert_problem(cloud.http.get("/v1/devices", headers=headers), 401)
    # an expired session
    again = cloud.http.post(
        "/v1/auth/login", json={"username": "viewer-user", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {again.json()['token']}"}
    digest = hashlib.sha256(headers["Authorization"][7:].encode()).hexdigest()
    with cloud.svc.sessions.begin() as s:
        s.execute(
            update(SessionRow)
            .where(SessionRow.token_hash == digest)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    assert assert_problem(cloud.http.get("/v1/devices", headers=headers), 401)
    assert refused(cloud, "UNAUTHENTICATED") - before == 7
    # an expired enrollment token
    token = cloud.token()
    with cloud.svc.sessions.begin() as s:
        s.execute(
            update(EnrollmentToken).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            )
        )
    before_token = refused(cloud, "TOKEN_INVALID")
    key = generate_key()
    r = cloud.http.post(
        "/v1/enroll",
        json={"token": token, "device_id": "edge-09", "csr": build_csr(key, "edge-09")},
    )
    assert assert_problem(r, 403) == "TOKEN_INVALID"
    assert refused(cloud, "TOKEN_INVALID") - before_token == 1
    # an expired device certificate
    with cloud.svc.sessions.begin() as s:
        fresh = create_token(s, "test", "org-01", "site-01", None, dt.timedelta(hours=1))
        done = enroll(s, cloud.svc.require_issuer(), fresh, "edge-05", build_csr(key, "edge-05"),
                      days=0)  # fmt: skip
    expired = DeviceSigner(
        Identity(key, x509.load_pem_x509_certificate(done.certificate.encode()), [])
    )
    import time

    time.sleep(1.1)
    body = json.dumps({"device_id": "edge-05", "envelopes": []}).encode()
    before_cert = refused(cloud, "CERT_EXPIRED")
    r = cloud.http.post(
        "/v1/ingest", content=body, headers=_device_headers(expired, "POST", "/v1/ingest", body)
    )
    assert assert_problem(r, 401) == "CERT_EXPIRED"
    assert refused(cloud, "CERT_EXPIRED") - before_cert == 1
    # a revoked device
    admin = cloud.login("admin")
    assert cloud.http.post("/v1/devices/edge-01/revoke", headers=admin).status_code == 200
    signer = DeviceSigner(device)
    before_rev = refused(cloud, "DEVICE_REVOKED")
    path = "/v1/ota/assignments"
    r = cloud.http.get(path, headers=_device_headers(signer, "GET", path, b""))
    assert assert_problem(r, 403) == "DEVICE_REVOKED", r.text
    path = "/v1/freezes"
    r = cloud.http.get(path, headers=_device_headers(signer, "GET", path, b""))
    assert assert_problem(r, 403) == "DEVICE_REVOKED", r.text
    assert refused(cloud, "DEVICE_REVOKED") - before_rev == 2
