"""The whole node in one process: folder camera -> real models -> ledger, panel, health."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from edge.camera.settings import CameraConfig, DirectorySource
from edge.config import DeviceConfig, EdgeConfig
from edge.runtime.node import EdgeNode
from edge.runtime.settings import PipelineConfig
from tests.runtime.conftest import SAMPLES


def test_node_runs_the_gate_and_serves_health(tmp_path: Path, port: int) -> None:
    config = EdgeConfig(
        device=DeviceConfig(id="node-test-01", data_dir=tmp_path / "edge"),
        camera=CameraConfig(source=DirectorySource(path=SAMPLES / "frames")),
        pipeline=PipelineConfig(trigger="file"),
    )
    node = EdgeNode(config, panel_port=port)
    node.start()
    try:
        deadline = time.monotonic() + 240
        while not node.pipeline.idle() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node.pipeline.idle()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        metrics = httpx.get(f"{base}/metrics").text
        n = len(list((SAMPLES / "frames").glob("*.jpg")))
        assert f'dockgate_frames_total{{source="gate"}} {float(n)}' in metrics
        assert "dockgate_model_info" in metrics
        assert httpx.get(f"{base}/login").status_code == 200  # the operator panel itself
        assert len(node.pipeline.outcomes) == n
        assert "cartons" in node.status_line()
        assert node.ledger.verify().ok
    finally:
        node.stop()
