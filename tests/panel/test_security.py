"""Security of the panel: roles x routes, CSRF, sessions, redirects, rate limits, TOTP, XSS."""

from __future__ import annotations

import os
import re
import time

import pytest
from fastapi.testclient import TestClient

from edge.panel.app import api_routes
from edge.panel.security import PUBLIC, ROLES_ATTR, SAFE_METHODS, safe_next, session_cookie
from edge.panel.services import CARTON_TOPIC
from edge.panel.sessions import SessionStore
from edge.panel.users import Role
from tests.panel.conftest import csrf_of, login
from tests.panel.support import (
    PASSWORD,
    USERS,
    XSS,
    PanelEnv,
    carton,
    labels,
    make_env,
    totp_now,
)

NAME_OF_ROLE = {role: name for name, role in USERS.items()}


def _routes(env: PanelEnv) -> list[tuple[str, str, object]]:
    out = []
    for route in api_routes(env.app):
        path = re.sub(r"\{[^}]+\}", "00000000000000000001-000001", route.path)
        for method in sorted(route.methods):
            out.append((method, path, getattr(route.endpoint, ROLES_ATTR, None)))
    return out


def test_every_route_declares_who_may_call_it(env: PanelEnv) -> None:
    routes = _routes(env)
    assert len(routes) >= 12
    missing = [(m, p) for m, p, roles in routes if roles is None]
    assert not missing, f"routes without @allow(...): {missing}"
    unsafe = [(m, p) for m, p, _ in routes if m not in SAFE_METHODS]
    assert {
        ("POST", "/qa/release"),
        ("POST", "/review/00000000000000000001-000001"),
        ("POST", "/login"),
    } <= set(unsafe)


def test_state_changing_routes_refuse_missing_or_wrong_csrf(
    client: TestClient, env: PanelEnv
) -> None:
    for method, path, roles in _routes(env):
        if method in SAFE_METHODS:
            continue
        if roles != PUBLIC:
            assert isinstance(roles, frozenset)
            login(client, NAME_OF_ROLE[sorted(roles)[0]], env)
        for token in (None, "", "forged-token-" + "x" * 30):
            data = {} if token is None else {"csrf_token": token}
            r = client.request(method, path, data=data, follow_redirects=False)
            assert r.status_code == 403, (method, path, token, r.status_code)
            assert r.headers["x-error-code"] == "CSRF_INVALID", (method, path)
        client.cookies.clear()
    denied = [e for e in env.app.state.audit.recent(500) if e.detail == "csrf"]
    assert len(denied) >= 3 and all(e.outcome == "denied" for e in denied)


@pytest.mark.parametrize("role", list(Role))
def test_routes_refuse_roles_they_do_not_allow(
    client: TestClient, env: PanelEnv, role: Role
) -> None:
    token = login(client, NAME_OF_ROLE[role], env)
    checked = 0
    for method, path, roles in _routes(env):
        if roles == PUBLIC or role in roles:  # type: ignore[operator]
            continue
        r = client.request(
            method,
            path,
            data={"csrf_token": token},
            headers={"accept": "text/html"},
            follow_redirects=False,
        )
        assert r.status_code == 403, (role, method, path, r.status_code)
        assert r.headers["x-error-code"] == "FORBIDDEN"
        checked += 1
    if role is not Role.QA:
        assert checked >= 1  # at least the QA release is refused
    # refusals are audited
    if checked:
        assert any(e.outcome == "denied" for e in env.app.state.audit.recent())


def test_anonymous_requests_are_refused(client: TestClient, env: PanelEnv) -> None:
    token = csrf_of(client)
    for method, path, roles in _routes(env):
        if roles == PUBLIC:
            continue
        r = client.request(method, path, data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["x-error-code"] == "UNAUTHENTICATED"
    # a page asked for by a browser redirects to the login with a local next=
    r = client.get("/stock?q=A1", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fstock%3Fq%3DA1"


def test_cross_site_requests_are_refused_even_with_a_token(
    client: TestClient, env: PanelEnv
) -> None:
    token = login(client, "qa", env)
    data = {"csrf_token": token, "sku": "TEA-500", "lot": "T-0042", "reason": "ok"}
    for headers in (
        {"origin": "http://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://testserver"},
    ):
        r = client.post("/qa/release", data=data, headers=headers, follow_redirects=False)
        assert r.status_code == 403 and r.headers["x-error-code"] == "CSRF_INVALID", headers
    assert env.ledger.frozen_batches(), "nothing may have been released"
    r = client.post(
        "/qa/release",
        data=data,
        headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_session_id_rotates_at_login_and_fixation_fails(client: TestClient, env: PanelEnv) -> None:
    client.get("/login")
    planted = client.cookies["dg_session"]
    assert len(planted) >= 43  # 32 random bytes, url-safe base64 (256 bits)
    login(client, "op", env)
    fresh = client.cookies["dg_session"]
    assert fresh != planted
    # The attacker who planted the pre-login id gets nothing from it.
    r = _fresh(env).get(
        "/stock",
        headers={"accept": "text/html", "cookie": f"dg_session={planted}"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # An id the server never issued is not adopted either: a new one is issued instead.
    r = _fresh(env).get("/login", headers={"cookie": "dg_session=chosen-by-attacker"})
    assert "dg_session=chosen-by-attacker" not in r.headers["set-cookie"]
    assert r.headers["set-cookie"].startswith("dg_session=")


def _fresh(env: PanelEnv) -> TestClient:
    return TestClient(env.app, base_url="http://testserver")


def test_logout_invalidates_the_session(client: TestClient, env: PanelEnv) -> None:
    token = login(client, "op", env)
    sid = client.cookies["dg_session"]
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "Max-Age=0" in r.headers["set-cookie"]
    r = _fresh(env).get(
        "/live",
        headers={"accept": "text/html", "cookie": f"dg_session={sid}"},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_cookie_flags(client: TestClient) -> None:
    r = client.get("/login")
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS see below
    tls = session_cookie("abc", tls=True, max_age=60)
    assert tls.startswith("__Host-dg_session=abc") and "Secure" in tls and "HttpOnly" in tls
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_idle_and_absolute_timeouts(env: PanelEnv) -> None:
    now = [1000.0]
    store = SessionStore(env.app.state.db, idle_s=60, absolute_s=300, clock=lambda: now[0])
    s = store.create("en", "op")
    now[0] += 59
    assert store.get(s.id) is not None
    now[0] += 61
    assert store.get(s.id) is None, "idle timeout"
    s = store.create("en", "op")
    for _ in range(6):
        now[0] += 55
        got = store.get(s.id)
    assert got is None, "absolute timeout even when kept busy"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "\\\\evil.example",
        "/%0d%0aSet-Cookie:x",
        "evil.example",
    ],
)
def test_no_open_redirect_after_login(client: TestClient, env: PanelEnv, target: str) -> None:
    data = {"username": "op", "password": PASSWORD, "csrf_token": csrf_of(client), "next": target}
    r = client.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "evil" not in location or location.startswith("/%0d")


def test_safe_next_keeps_local_paths() -> None:
    assert safe_next("/stock?q=A1") == "/stock?q=A1"
    assert safe_next("/qa") == "/qa"
    assert safe_next(None) == "/live"


def test_login_rate_limit_pauses_then_lets_the_real_user_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = make_env(tmp_path, login_max_failures=3, login_lockout_s=1, login_window_s=60)
    with TestClient(env.app, base_url="http://testserver") as c:
        for _ in range(3):
            r = c.post(
                "/login",
                data={"username": "op", "password": "wrong-password!", "csrf_token": csrf_of(c)},
            )
            assert r.status_code == 401
        r = c.post(
            "/login",
            data={"username": "op", "password": PASSWORD, "csrf_token": csrf_of(c)},
            follow_redirects=False,
        )
        assert r.status_code == 429
        assert r.headers["x-error-code"] == "RATE_LIMITED"
        assert 1 <= int(r.headers["retry-after"]) <= 2
        time.sleep(1.2)
        login(c, "op", env)
        outcomes = [e.outcome for e in env.app.state.audit.recent() if e.action == "login"]
    assert outcomes.count("failed") == 3 and "rate-limited" in outcomes and "ok" in outcomes
    env.ledger.close()


def test_admin_needs_totp_once_per_step(client: TestClient, env: PanelEnv) -> None:
    base = {"username": "root", "password": PASSWORD}
    r = client.post("/login", data={**base, "csrf_token": csrf_of(client)})
    assert r.status_code == 401 and r.headers["x-error-code"] == "TOTP_REQUIRED"
    r = client.post("/login", data={**base, "totp": "000000", "csrf_token": csrf_of(client)})
    assert r.headers["x-error-code"] == "TOTP_REQUIRED"
    code = totp_now(env.totp_secret)
    r = client.post(
        "/login", data={**base, "totp": code, "csrf_token": csrf_of(client)}, follow_redirects=False
    )
    assert r.status_code == 303
    other = _fresh(env)
    r = other.post("/login", data={**base, "totp": code, "csrf_token": csrf_of(other)})
    assert r.status_code == 401 and r.headers["x-error-code"] == "TOTP_REQUIRED", "code replayed"


def test_admin_without_enrolled_totp_cannot_log_in(client: TestClient, env: PanelEnv) -> None:
    env.users.add("root2", Role.ADMIN, PASSWORD)
    r = client.post(
        "/login", data={"username": "root2", "password": PASSWORD, "csrf_token": csrf_of(client)}
    )
    assert r.status_code == 401 and r.headers["x-error-code"] == "TOTP_REQUIRED"


def test_passwords_are_argon2_and_db_is_private(env: PanelEnv) -> None:
    row = env.app.state.db.query("SELECT pw_hash FROM users WHERE username = 'op'")[0]
    assert row["pw_hash"].startswith("$argon2id$") and PASSWORD not in row["pw_hash"]
    path = env.app.state.db.path
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_xss_in_lot_number_is_inert(client: TestClient, env: PanelEnv) -> None:
    login(client, "op", env)
    env.bus.publish(CARTON_TOPIC, carton(7, lot=XSS, agv_task=XSS))
    page = client.get("/live").text
    assert XSS not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_xss_in_typed_code_is_inert(client: TestClient, env: PanelEnv) -> None:
    token = login(client, "op", env)
    r = client.post(
        f"/review/{env.r1}", data={"csrf_token": token, "gtin": "06901234567892", "lot": XSS}
    )
    assert r.status_code == 422 and XSS not in r.text
    assert "&lt;script&gt;" in r.text
    assert labels(env) == []


def test_oversized_body_is_refused(client: TestClient, env: PanelEnv) -> None:
    token = login(client, "op", env)
    r = client.post(f"/review/{env.r1}", data={"csrf_token": token, "lot": "A" * 70000})
    assert r.status_code == 413


def test_every_state_change_is_audited(client: TestClient, env: PanelEnv) -> None:
    token = login(client, "qa", env)
    client.post("/lang", data={"csrf_token": token, "lang": "en"})
    client.post(
        "/qa/release",
        data={
            "csrf_token": token,
            "sku": "TEA-500",
            "lot": "T-0042",
            "reason": "dried and re-inspected",
        },
    )
    client.post(
        f"/review/{env.r1}", data={"csrf_token": token, "gtin": "06901234567892", "lot": "A24B117"}
    )
    client.post("/logout", data={"csrf_token": token})
    entries = {(e.actor, e.action, e.outcome) for e in env.app.state.audit.recent()}
    for action in ("login", "language", "qa.release", "review.resolve", "logout"):
        assert ("user:qa", action, "ok") in entries, action
    assert all(e.ts.endswith("Z") for e in env.app.state.audit.recent())


def test_production_hasher_uses_recommended_cost(env: PanelEnv) -> None:
    from argon2 import PasswordHasher, Type

    from edge.panel.users import UserStore

    store = UserStore(env.app.state.db)
    hasher = store._hasher
    default = PasswordHasher()
    assert hasher.type is Type.ID
    assert (hasher.time_cost, hasher.memory_cost) == (default.time_cost, default.memory_cost)
    assert default.memory_cost >= 65536


def test_fetch_requests_may_send_the_token_in_a_header(client: TestClient, env: PanelEnv) -> None:
    token = login(client, "qa", env)
    data = {"sku": "TEA-500", "lot": "T-0042", "reason": "checked"}
    r = client.post("/qa/release", data=data, headers={"x-csrf-token": "wrong"})
    assert r.status_code == 403 and r.headers["x-error-code"] == "CSRF_INVALID"
    r = client.post(
        "/qa/release",
        data=data,
        headers={"x-csrf-token": token, "accept": "application/json"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and env.ledger.frozen_batches() == []
