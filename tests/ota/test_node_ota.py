"""The node's OTA wiring with the real defect model, the real cloud process and a real rollout.

The node's first start installs the shipped defect model as slot A (verified, self-tested on the
30 committed defect frames). A rollout to B (the same network, other bytes) is then followed by
the agent thread while the inference stage keeps taking cartons: every carton is processed by
one version from start to end, the switch happens between cartons, B is confirmed after its
probation cartons, and the cloud sees the device on B with figures for both versions.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import onnx
import pytest

from edge.config import EdgeConfig
from edge.runtime.ota import NodeOta
from edge.runtime.stages import Inference
from edge.trust.signer import DeviceSigner
from edge.vision.image import read_image
from edge.vision.session import model_entry
from fixtures.fleet import enroll, fleet_cloud
from ota.release import describe_model, sha256_file

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "defects"


def _release(cloud: Any, path: Path, version: str, *, activate: bool) -> None:
    info = describe_model(path, "defect", version, sha256=sha256_file(path), min_dockgate="0")
    cloud.repo.release(path, info, activate=activate)


@pytest.mark.slow
def test_node_follows_a_rollout_between_cartons(tmp_path: Path) -> None:
    entry = model_entry("defect")
    b_path = tmp_path / "b" / "defect.onnx"
    b_path.parent.mkdir()
    model = onnx.load(str(entry.path))
    props = {p.key: p.value for p in model.metadata_props}  # classes, thresholds, version
    onnx.helper.set_model_props(model, {**props, "ota-test": "b"})  # other bytes, same network
    onnx.save(model, str(b_path))
    b_version = "99.0.0"

    with fleet_cloud(tmp_path / "cloud", first_version=None) as cloud:
        _release(cloud, entry.path, entry.version, activate=True)
        _release(cloud, b_path, b_version, activate=False)
        (identity,) = enroll(cloud, ["node-01"])
        config = EdgeConfig.model_validate(
            {
                "device": {"id": "node-01", "data_dir": str(tmp_path / "data")},
                "sync": {"cloud_url": cloud.url},
                "ota": {"enabled": True, "url": cloud.ota_url, "poll_s": 30},
            }
        )
        (tmp_path / "data" / "ota" / "metadata").mkdir(parents=True)
        (tmp_path / "data" / "ota" / "metadata" / "root.json").write_bytes(cloud.root_json())

        ota = NodeOta(config)
        first = ota.restore()
        assert first.version == entry.version  # the shipped model, now slot A
        inference = Inference(reader=None, ota=ota)
        frames = [read_image(p) for p in sorted(SAMPLES.glob("*/*.jpg"))[:6]]
        seen: list[str] = []
        faults: list[BaseException] = []
        stop = threading.Event()

        def line() -> None:  # the inference stage's defect step, one call per carton
            i = 0
            while not stop.is_set():
                try:
                    verdict, action = inference._defect_ota(frames[i % len(frames)], "ACCEPTED")
                    assert action in ("pass", "review", "freeze") and verdict is not None
                except BaseException as exc:  # reported by the assertion below
                    faults.append(exc)
                    return
                seen.append(ota.current().version)
                i += 1

        worker = threading.Thread(target=line, name="test-line")
        worker.start()
        try:
            ota.start_agent(DeviceSigner(identity))
            cloud.start_rollout(
                {
                    "id": "node-b",
                    "model": "defect",
                    "from_version": entry.version,
                    "to_version": b_version,
                    "stages": [{"name": "all", "percent": 100, "min_soak_s": 3600}],
                }
            )
            deadline = time.monotonic() + 90
            while ota.managed.running() != b_version or ota.swapper.store.probation() is not None:
                assert time.monotonic() < deadline, (ota.managed.running(), ota.managed.last_code)
                time.sleep(0.2)
        finally:
            stop.set()
            worker.join(30)
            ota.stop()
        assert faults == []
        assert seen[0] == entry.version and seen[-1] == b_version  # the line never stopped
        reported = cloud.device_models()["node-01"]
        assert reported["running"] == b_version and reported["previous"] == entry.version
        assert reported["last_code"] is None
        assert _figured_versions(cloud, "node-01") == {entry.version, b_version}


def _figured_versions(cloud: Any, device_id: str) -> set[str]:
    from sqlalchemy import create_engine, select

    from cloud.db.models import OtaFigures

    engine = create_engine(cloud.config.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(OtaFigures.version).where(OtaFigures.device_id == device_id)
            ).all()
    finally:
        engine.dispose()
    return {r[0] for r in rows}
