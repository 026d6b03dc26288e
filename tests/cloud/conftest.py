"""Every cloud test runs twice: on a SQLite file and on a fresh PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud.env import CloudEnv, cloud_env, pg_schema


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
