"""The operator panel under attack: SQL injection in every query and path parameter, path
traversal in ids that name files, oversized bodies with and without Content-Length: refused (or
harmless), never a 5xx, and refusals audited. (Roles x routes, CSRF and login limits are in
tests/panel/test_security.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from edge.panel.app import api_routes
from tests.panel.conftest import login
from tests.panel.support import PanelEnv
from tests.security.test_cloud_security import SQLI, TRAVERSAL


def _get_routes(env: PanelEnv) -> list[tuple[str, list[str], list[str]]]:
    out = []
    for route in api_routes(env.app):
        if "GET" not in (route.methods or set()):
            continue
        query = [p.name for p in route.dependant.query_params]
        path = [p.name for p in route.dependant.path_params]
        if query or path:
            out.append((route.path, query, path))
    return out


def _url(path: str, path_params: list[str], value: str, target: str | None) -> str:
    for name in path_params:
        filler = value if name == target else "00000000000000000001-000001"
        path = path.replace("{" + name + "}", quote(filler, safe=""))
    return path


def _state(env: PanelEnv) -> tuple[int, int]:
    head = env.ledger.head()[0]
    users = len(env.app.state.users.list()) if hasattr(env.app.state.users, "list") else 0
    return head, users


def _rows(html: str) -> int:
    return len(re.findall(r"<tr\b", html))


def test_sql_injection_and_traversal_in_every_panel_parameter(
    panel: TestClient, panel_env: PanelEnv
) -> None:
    client, env = panel, panel_env
    login(client, "root", env)
    before = _state(env)
    routes = _get_routes(env)
    assert len(routes) >= 4, routes
    tried = 0
    for path, query, path_params in routes:
        if path.endswith("/stream"):
            continue  # a server-sent event stream never ends; its one parameter is an int
        for name in query:
            base = client.get(_url(path, path_params, "", None), params={name: "zz-nothing-zz"})
            for payload in SQLI + TRAVERSAL:
                r = client.get(_url(path, path_params, "", None), params={name: payload},
                               follow_redirects=False)  # fmt: skip
                tried += 1
                assert r.status_code < 500, (path, name, payload, r.status_code)
                if r.status_code >= 400:
                    assert r.headers.get("x-error-code"), (path, name, payload)
                elif base.status_code == 200 and payload in SQLI:
                    assert _rows(r.text) <= _rows(base.text), (path, name, payload)
                assert "root:x:" not in r.text
        for name in path_params:
            for payload in SQLI + TRAVERSAL:
                if "\x00" in payload:
                    continue  # the HTTP client refuses to send it
                r = client.get(_url(path, path_params, payload, name), follow_redirects=False)
                tried += 1
                assert r.status_code in (400, 403, 404, 422), (path, name, payload, r.status_code)
                assert "root:x:" not in r.text and b"PRIVATE KEY" not in r.content
    assert _state(env) == before
    print(f"\npanel: {tried} injection/traversal requests over {len(routes)} routes, no 5xx")


def test_oversized_bodies_refused_with_and_without_length_and_audited(
    panel: TestClient, panel_env: PanelEnv
) -> None:
    client, env = panel, panel_env
    token = login(client, "qa", env)
    limit = env.config.max_body_kb * 1024
    denied_before = _denied(env, "REQUEST_TOO_LARGE")
    form = {"content-type": "application/x-www-form-urlencoded", "x-csrf-token": token}
    big = b"csrf_token=" + token.encode() + b"&note=" + b"x" * (limit + 10)
    r = client.post("/qa/release", content=big, headers=form)
    assert r.status_code == 413 and r.headers["x-error-code"] == "REQUEST_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # Transfer-Encoding: chunked, no Content-Length
        yield b"csrf_token=" + token.encode() + b"&note="
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    r = client.post("/qa/release", content=chunks(), headers=form)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert r.headers["x-error-code"] == "REQUEST_TOO_LARGE"
    assert _denied(env, "REQUEST_TOO_LARGE") - denied_before == 2


def _denied(env: PanelEnv, code: str) -> int:
    entries: list[Any] = env.app.state.audit.recent(1000)
    return sum(1 for e in entries if e.outcome == "denied" and e.detail == code)
