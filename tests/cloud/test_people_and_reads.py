"""People auth (401/403, admin TOTP, lockout), read endpoints, /docs, body limit, stock mirror."""

from __future__ import annotations

import pyotp
import pytest

from cloud.auth import add_user
from cloud.services.stock import moves
from tests.cloud.env import PASSWORD, CloudEnv
from tests.trust.pki import make_events, signed

READS = [
    "/v1/devices",
    "/v1/devices/edge-01/events",
    "/v1/stock",
    "/v1/audit",
    "/v1/quarantine",
    "/v1/conflicts",
    "/v1/trust-bundle",
]


def test_unauthenticated_is_401_problem_json(cloud: CloudEnv) -> None:
    for path in READS:
        r = cloud.http.get(path)
        assert r.status_code == 401, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "UNAUTHENTICATED"
    r = cloud.http.get("/v1/devices", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401
    r = cloud.http.post("/v1/tokens", json={"org": "org-01", "site": "site-01"})
    assert r.status_code == 401
    r = cloud.http.post("/v1/ingest", json={"device_id": "edge-01", "envelopes": []})
    assert r.status_code == 401


def test_wrong_role_is_403(cloud: CloudEnv) -> None:
    viewer, qa = cloud.login("viewer"), cloud.login("qa")
    assert cloud.http.get("/v1/devices", headers=viewer).status_code == 200
    assert cloud.http.get("/v1/conflicts", headers=viewer).status_code == 403
    assert cloud.http.get("/v1/conflicts", headers=qa).status_code == 200
    assert cloud.http.get("/v1/audit", headers=qa).json()["code"] == "FORBIDDEN"
    r = cloud.http.post("/v1/tokens", json={"org": "org-01", "site": "site-01"}, headers=qa)
    assert r.status_code == 403
    r = cloud.http.post("/v1/devices/edge-01/revoke", headers=cloud.login("operator"))
    assert r.status_code == 403
    admin = cloud.login("admin")
    r = cloud.http.post("/v1/tokens", json={"org": "org-01", "site": "site-01"}, headers=admin)
    assert r.status_code == 200 and r.json()["token"].startswith("dgt_")
    assert cloud.http.get("/v1/audit", headers=admin).status_code == 200


def test_admin_needs_totp_once(cloud: CloudEnv) -> None:
    with cloud.svc.sessions.begin() as s:
        secret = add_user(s, "test", "boss", "admin", PASSWORD)
    assert secret
    r = cloud.http.post("/v1/auth/login", json={"username": "boss", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["code"] == "TOTP_REQUIRED"
    code = pyotp.TOTP(secret).now()
    body = {"username": "boss", "password": PASSWORD, "totp": code}
    assert cloud.http.post("/v1/auth/login", json=body).status_code == 200
    again = cloud.http.post("/v1/auth/login", json=body)  # same code twice: refused
    assert again.status_code == 401 and again.json()["code"] == "TOTP_REQUIRED"


def test_failed_logins_rate_limited(cloud: CloudEnv) -> None:
    with cloud.svc.sessions.begin() as s:
        add_user(s, "test", "lin", "viewer", PASSWORD)
    for _ in range(5):
        r = cloud.http.post("/v1/auth/login", json={"username": "lin", "password": "wrong-pass"})
        assert r.status_code == 401
    r = cloud.http.post("/v1/auth/login", json={"username": "lin", "password": PASSWORD})
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMITED"


def test_logout_invalidates_session(cloud: CloudEnv) -> None:
    headers = cloud.login("viewer")
    assert cloud.http.post("/v1/auth/logout", headers=headers).status_code == 204
    assert cloud.http.get("/v1/devices", headers=headers).status_code == 401


def test_read_endpoints_and_docs(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    cloud.client(ident).push(signed(ident, make_events("edge-01", 3)), None)
    viewer = cloud.login("viewer")
    devices = cloud.http.get("/v1/devices", headers=viewer).json()
    assert devices[0]["id"] == "edge-01" and devices[0]["last_seen_at"]
    events = cloud.http.get(
        "/v1/devices/edge-01/events?after=1&envelopes=true", headers=viewer
    ).json()
    assert [e["seq"] for e in events] == [2, 3] and events[0]["envelope"].count(".") == 2
    assert cloud.http.get("/docs").status_code == 200
    spec = cloud.http.get("/openapi.json").json()
    assert "/v1/ingest" in spec["paths"] and "/v1/stock" in spec["paths"]
    audit = cloud.http.get("/v1/audit", headers=cloud.login("admin")).json()
    assert {"device.enroll", "token.create"} <= {a["action"] for a in audit}


def test_body_limit(cloud: CloudEnv) -> None:
    big = b"x" * (cloud.svc.config.max_body_bytes + 1)
    r = cloud.http.post("/v1/ingest", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"


@pytest.mark.parametrize(
    "kind,payload",
    [
        ("receipt", {"sku": "A", "lot": "L", "qty": 5, "location": "X"}),
        ("putaway", {"sku": "A", "lot": "L", "qty": 2, "from": "X", "to": "Y"}),
        ("pick", {"sku": "A", "lot": "L", "qty": 1, "from": "Y", "to": "OUT"}),
        ("ship", {"sku": "A", "lot": "L", "qty": 1, "from": "OUT"}),
        ("return-to-supplier", {"sku": "A", "lot": "L", "qty": 1, "from": "X"}),
        ("adjustment", {"sku": "A", "lot": "L", "delta": -1, "location": "X"}),
        ("cycle-count", {"sku": "A", "lot": "L", "delta": 0, "location": "X"}),
        (
            "identify",
            {
                "sku": "A",
                "lot": "L",
                "qty": 1,
                "from": "H",
                "to": "X",
                "hold_sku": "UNIDENTIFIED",
                "hold": "H1",
            },
        ),
        ("qa-freeze", {"sku": "A", "lot": "L"}),
        ("carton-read", {"code": "x"}),
    ],
)
def test_stock_mirror_matches_ledger_projection(kind: str, payload: dict) -> None:  # type: ignore[type-arg]
    """The cloud's copy of the stock rules must move stock exactly like the edge ledger."""
    from edge.ledger.projection import effects

    edge = [(loc, sku, lot, d) for sku, lot, loc, d in effects(kind, payload).moves]
    assert moves(kind, payload) == edge


def test_cloud_user_add_cli(tmp_path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from edge.cli import cli

    env = {
        "DOCKGATE_CLOUD_DATABASE_URL": db_url,
        "DOCKGATE_CLOUD_ISSUING_DIR": str(tmp_path / "none"),
        "DOCKGATE_CLOUD_PASSWORD": PASSWORD,
    }
    runner = CliRunner()
    out = runner.invoke(cli, ["cloud", "migrate"], env=env)
    assert out.exit_code == 0 and "database at head" in out.output, out.output
    out = runner.invoke(cli, ["cloud", "user", "add", "ops", "--role", "admin"], env=env)
    assert out.exit_code == 0, out.output
    assert "TOTP secret (shown once)" in out.output and "otpauth://totp/" in out.output
    out = runner.invoke(cli, ["cloud", "user", "add", "ops2", "--role", "root"], env=env)
    assert out.exit_code != 0
    out = runner.invoke(
        cli, ["cloud", "token", "create", "--org", "org-01", "--site", "s"], env=env
    )
    assert out.exit_code != 0 and "bad name" in out.output
