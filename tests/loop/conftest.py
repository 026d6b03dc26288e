"""The learning loop's cloud side: moto's standalone S3 server (real HTTP on a free port) and a
cloud service on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.env import pg_schema
from tests.loop.env import LoopCloud, loop_cloud
from tests.support.net import free_port, wait_for_port

# moto accepts any credentials; these only keep boto3 from looking further (~/.aws, IMDS)
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy, not a secret
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1"
        )

    def new_bucket(self) -> str:
        name = "dg-" + uuid.uuid4().hex[:16]
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """``moto_server`` in its own process, as an S3-compatible store a deployment would run."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FAKE_AWS},
        )
    try:
        wait_for_port(port, timeout=60)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LoopCloud]:
    """The cloud app (local blob store under tmp_path) on a SQLite file or a fresh PostgreSQL
    schema, with one enrolled device ``edge-01``."""
    if request.param == "sqlite":
        with loop_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as env:
            yield env
        return
    with pg_schema(request.getfixturevalue("postgres_url")) as url:
        with loop_cloud(url, tmp_path) as env:
            yield env
