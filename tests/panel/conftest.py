"""Panel fixtures: a TestClient app and the same app behind a real uvicorn on a free port."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from edge.panel.server import uvicorn_config
from tests.panel.support import PASSWORD, PanelEnv, make_env, totp_now
from tests.support.net import wait_for_port

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def env(tmp_path: Path) -> Iterator[PanelEnv]:
    e = make_env(tmp_path)
    yield e
    e.app.state.feed.close()
    e.app.state.db.close()
    e.ledger.close()


@pytest.fixture
def client(env: PanelEnv) -> Iterator[TestClient]:
    with TestClient(env.app, base_url="http://testserver") as c:
        yield c


def csrf_of(client: TestClient, path: str = "/login") -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, username: str, env: PanelEnv | None = None) -> str:
    """Log in; returns the CSRF token of the new session."""
    data = {"username": username, "password": PASSWORD, "csrf_token": csrf_of(client)}
    if username == "root":
        assert env is not None
        data["totp"] = totp_now(env.totp_secret)
    r = client.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.headers.get("x-error-code"))
    return csrf_of(client, "/live")


@dataclass
class Served:
    env: PanelEnv
    url: str


@pytest.fixture
def served(tmp_path: Path, port: int) -> Iterator[Served]:
    """The panel on a real uvicorn (lifespan, live thread, SSE) for browser and stream tests."""
    e = make_env(tmp_path)
    server = uvicorn.Server(uvicorn_config(e.app, e.config, port=port))
    thread = threading.Thread(target=server.run, name="panel-uvicorn")
    thread.start()
    try:
        wait_for_port(port)
        yield Served(e, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        e.ledger.close()
