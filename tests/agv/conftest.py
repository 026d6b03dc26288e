"""AGV fixtures: a wire observer, simulator processes and dispatch services on the test broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.agv.config import AgvConfig
from edge.agv.service import DispatchService
from tests.agv.helpers import SITEMAP, Observer, Sims
from tests.support.mosquitto import Broker


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    obs = Observer(broker.port)
    obs.start()
    yield obs
    obs.stop()


@pytest.fixture
def sims(broker: Broker) -> Iterator[Sims]:
    s = Sims(broker.port)
    yield s
    s.stop_all()


@pytest.fixture
def make_service(
    broker: Broker, tmp_path: Path, vda5050_dir: Path
) -> Iterator[Callable[..., DispatchService]]:
    started: list[DispatchService] = []

    def make(**overrides: Any) -> DispatchService:
        values: dict[str, Any] = {
            "broker_port": broker.port,
            "sitemap": SITEMAP,
            "schemas_dir": vda5050_dir,
            "state_timeout_s": 6.0,  # generous: the shared CI machine can stall a process
            "order_ack_timeout_s": 1.0,
            "tick_s": 0.05,
            **overrides,
        }
        svc = DispatchService(AgvConfig(**values), tmp_path / "data")
        svc.start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()
