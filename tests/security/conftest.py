"""The security suite: the cloud on a SQLite file and on a fresh PostgreSQL schema; the panel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.cloud.env import CloudEnv, cloud_env, pg_schema
from tests.panel.support import PanelEnv, make_env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/cloud.db"
        return
    with pg_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def cloud(db_url: str, tmp_path: Path) -> Iterator[CloudEnv]:
    with cloud_env(db_url, tmp_path) as env:
        yield env


@pytest.fixture
def panel_env(tmp_path: Path) -> Iterator[PanelEnv]:
    e = make_env(tmp_path)
    yield e
    e.app.state.feed.close()
    e.app.state.db.close()
    e.ledger.close()


@pytest.fixture
def panel(panel_env: PanelEnv) -> Iterator[TestClient]:
    with TestClient(panel_env.app, base_url="http://testserver") as c:
        yield c
