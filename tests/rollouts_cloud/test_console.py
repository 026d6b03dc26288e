"""The rollout console: login (TOTP for admins), roles, CSRF and Origin checks, the pages."""

from __future__ import annotations

import re

import pyotp
from fastapi.testclient import TestClient

from cloud.auth import add_user
from tests.cloud.env import PASSWORD
from tests.rollouts_cloud.env import A, B, RolloutEnv, good

STAGES = [
    {"name": "canary", "percent": 10, "devices": ["edge-000"], "min_soak_s": 600},
    {"name": "all", "percent": 100, "min_soak_s": 600},
]


def person(env: RolloutEnv, name: str, role: str) -> str | None:
    with env.svc.sessions.begin() as s:
        return add_user(s, "test", name, role, PASSWORD)


def browser_login(http: TestClient, name: str, secret: str | None = None) -> str:
    """Log in through the form; returns the CSRF token of the session."""
    form = {"username": name, "password": PASSWORD, "next": "/console/rollouts/defect-b"}
    if secret:
        form["totp"] = pyotp.TOTP(secret).now()
    r = http.post("/console/login", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/rollouts/defect-b"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = http.get("/console/rollouts/defect-b")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match
    return match.group(1)


def test_console_pages_roles_and_csrf(env: RolloutEnv) -> None:
    admin_api = env.cloud.login("admin")
    devices = env.add_devices(6)
    env.create(admin_api, stages=STAGES)
    env.evaluate()
    for d in devices:
        d.running = d.acting() or A
        d.report({d.running: good(60)})
    http = env.cloud.http
    # not logged in: every page sends to the login form, and posts are refused
    r = http.get("/console/fleet", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=/console/fleet"
    r = http.post("/console/rollouts/defect-b/pause", data={"csrf_token": "x"})
    assert r.status_code == 401 and "UNAUTHENTICATED" in r.text
    # wrong password, missing one-time code for an admin
    person(env, "olga", "operator")
    secret = person(env, "ada", "admin")
    assert secret
    r = http.post("/console/login", data={"username": "olga", "password": "wrong password!"})
    assert r.status_code == 401 and "UNAUTHENTICATED" in r.text
    r = http.post("/console/login", data={"username": "ada", "password": PASSWORD})
    assert r.status_code == 401 and "TOTP_REQUIRED" in r.text
    # a login posted from another site is refused
    r = http.post(
        "/console/login",
        data={"username": "olga", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "CSRF_INVALID" in r.text

    # an operator sees everything but has no buttons, and a forged post is refused
    csrf = browser_login(http, "olga")
    page = http.get("/console/rollouts/defect-b")
    assert 'id="no-actions"' in page.text and 'id="btn-pause"' not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-content-type-options"] == "nosniff"
    r = http.post("/console/rollouts/defect-b/pause", data={"csrf_token": csrf})
    assert r.status_code == 403 and "FORBIDDEN" in r.text
    fleet = http.get("/console/fleet").text
    assert all(d.id in fleet for d in devices) and "online" in fleet
    assert f"defect <b>{B}</b>" in fleet  # the canary reported B
    releases = http.get("/console/releases").text
    assert all(v in releases for v in (A, B)) and "default" in releases
    listing = http.get("/console/rollouts").text
    assert "defect-b" in listing and "canary" in listing
    http.post("/console/logout", data={"csrf_token": csrf})
    assert http.get("/console/fleet", follow_redirects=False).status_code == 303

    # the admin: buttons; CSRF token and same-site Origin required; the action is audited
    csrf = browser_login(http, "ada", secret)
    page = http.get("/console/rollouts/defect-b").text
    assert 'id="btn-pause"' in page and 'id="btn-promote"' in page and 'id="btn-abort"' in page
    assert page.count("<svg") >= 6 and "ocr_scanner_agreement" in page
    r = http.post("/console/rollouts/defect-b/pause", data={"reason": "x"})
    assert r.status_code == 403 and "CSRF_INVALID" in r.text
    r = http.post("/console/rollouts/defect-b/pause", data={"csrf_token": "0" * 64})
    assert r.status_code == 403 and "CSRF_INVALID" in r.text
    r = http.post(
        "/console/rollouts/defect-b/pause",
        data={"csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert env.detail(admin_api)["state"] == "running"
    r = http.post(
        "/console/rollouts/defect-b/pause",
        data={"csrf_token": csrf, "reason": "checking a <script> shift"},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = http.get("/console/rollouts/defect-b").text
    assert "paused" in page and "checking a &lt;script&gt; shift" in page
    assert "<script>" not in page
    r = http.post("/console/rollouts/defect-b/pause", data={"csrf_token": csrf})
    assert r.status_code == 409 and "ROLLOUT_CONFLICT" in r.text
    entry = next(e for e in env.audit(admin_api) if e["action"] == "rollout.pause")
    assert (
        entry["actor"] == "person:ada" and entry["detail"]["reason"] == "checking a <script> shift"
    )
    assert entry["detail"]["figures"]["candidate"]["observations"] > 0
    # open redirects are not followed after login
    r = http.post(
        "/console/login",
        data={"username": "olga", "password": PASSWORD, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/console/fleet"
    r = http.get("/console/rollouts/nope")
    assert r.status_code == 404 and "NOT_FOUND" in r.text


def test_console_creates_a_rollout(env: RolloutEnv) -> None:
    secret = person(env, "ada", "admin")
    person(env, "olga", "operator")
    http = env.cloud.http
    # an operator may look but not create
    form = {"username": "olga", "password": PASSWORD}
    assert http.post("/console/login", data=form, follow_redirects=False).status_code == 303
    r = http.get("/console/rollouts/new")
    assert r.status_code == 403 and "FORBIDDEN" in r.text
    assert 'id="new-rollout-link"' not in http.get("/console/rollouts").text
    # the admin
    form = {"username": "ada", "password": PASSWORD, "totp": pyotp.TOTP(secret or "").now()}
    assert http.post("/console/login", data=form, follow_redirects=False).status_code == 303
    page = http.get("/console/rollouts/new")
    assert page.status_code == 200 and 'value="canary"' in page.text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert csrf
    fields = {
        "csrf_token": csrf.group(1),
        "id": "defect-b",
        "model": "defect",
        "from_version": A,
        "to_version": B,
        "stage0_name": "canary",
        "stage0_percent": "10",
        "stage0_devices": "edge-000, edge-001",
        "stage0_min_soak_s": "600",
        "stage0_min_observations": "200",
        "stage1_name": "all",
        "stage1_percent": "90",  # the last stage must reach 100 %
        "stage1_min_soak_s": "600",
        "stage1_min_observations": "200",
        "shadow": "on",
    }
    r = http.post("/console/rollouts/new", data=fields)
    assert r.status_code == 422 and "100 percent" in r.text
    assert 'value="edge-000, edge-001"' in r.text  # the form keeps what was typed
    fields["stage1_percent"] = "100"
    r = http.post("/console/rollouts/new", data={**fields, "csrf_token": "f" * 64})
    assert r.status_code == 403 and "CSRF_INVALID" in r.text
    r = http.post("/console/rollouts/new", data=fields, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/rollouts/defect-b"
    detail = env.detail(env.cloud.login("viewer"))
    assert detail["state"] == "pending" and detail["created_by"] == "person:ada"
    assert detail["shadow"] is True and detail["auto_promote"] is False
    assert detail["spec"]["stages"][0]["devices"] == ["edge-000", "edge-001"]
    r = http.post("/console/rollouts/new", data={**fields, "to_version": "9.9"})
    assert r.status_code == 404 and "not a signed release" in r.text
