"""Rollout tests run on a SQLite file and on a fresh PostgreSQL schema, like the cloud tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud.env import pg_schema
from tests.rollouts_cloud.env import RolloutEnv, build_repository, rollout_env


@pytest.fixture(scope="session")
def repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("ota-template"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/cloud.db"
        return
    with pg_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def env(db_url: str, tmp_path: Path, repo_template: Path) -> Iterator[RolloutEnv]:
    with rollout_env(db_url, tmp_path, repo_template) as e:
        yield e
