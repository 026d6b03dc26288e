from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.runtime.health import count_restarts, health_router
from edge.runtime.metrics import Metrics
from edge.runtime.supervisor import Supervisor, Worker


class Flaky(Worker):
    made = 0

    def __init__(self) -> None:
        super().__init__()
        Flaky.made += 1
        self.first = Flaky.made == 1

    def step(self) -> None:
        if self.first:
            raise RuntimeError("camera thread crashed")
        time.sleep(0.01)


def test_health_ready_and_metrics() -> None:
    metrics = Metrics()
    sup = Supervisor(check_interval_s=0.05, on_restart=count_restarts(metrics))
    sup.add("capture", Flaky)
    storage = {"problem": None}
    app = FastAPI()
    app.include_router(health_router(sup, metrics, {"ledger": lambda: storage["problem"]}))
    client = TestClient(app)
    assert client.get("/readyz").status_code == 503  # nothing started yet
    sup.start()
    try:
        deadline = time.monotonic() + 5
        while sup.status()[0].restarts < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["stages"][0]["restarts"] == 1
        text = client.get("/metrics").text
        assert 'dockgate_stage_restarts_total{stage="capture"} 1.0' in text
        storage["problem"] = "STORAGE_FULL: ledger disk full"
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["problems"]["ledger"].startswith("STORAGE_FULL")
    finally:
        sup.stop()
