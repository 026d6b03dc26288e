"""Shared fixtures: free ports, a real Mosquitto broker, PostgreSQL, the VDA 5050 schemas."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import leaks
from tests.support.mosquitto import Broker
from tests.support.net import free_port

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres-url",
        default=os.environ.get(
            "DOCKGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL URL for the cloud tests that run on PostgreSQL",
    )


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads or child processes running after its teardown.

    Module/session-scoped fixtures that own long-lived peers opt out with
    ``@pytest.mark.allow_leaks``.
    """
    before = leaks.snapshot()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    found = leaks.leftovers(before)
    if found:
        pytest.fail("test left running after teardown: " + ", ".join(found), pytrace=False)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh Mosquitto on a free port, for this test only."""
    b = Broker(workdir=tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL URL; skips with the reason when no server answers (CI always has one)."""
    url = str(request.config.getoption("--postgres-url"))
    try:
        import psycopg

        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            pass
    except Exception as exc:  # any failure means "no usable server"
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc}")
    return url


@pytest.fixture(scope="session")
def vda5050_dir() -> Path:
    """The official VDA 5050 2.1.0 schemas, found through DOCKGATE_VDA5050_SCHEMAS."""
    path = Path(os.environ.get("DOCKGATE_VDA5050_SCHEMAS", REPO.parent / "shared" / "vda5050"))
    if not (path / "order.schema").exists():
        pytest.skip(f"VDA 5050 schemas not found at {path} (set DOCKGATE_VDA5050_SCHEMAS)")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep screenshots and reports (ignored by git, kept by CI)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
