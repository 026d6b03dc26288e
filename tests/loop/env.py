"""A cloud under test for the learning loop: real app, real database, real device signatures,
samples uploaded the way the edge's sync agent uploads them."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.deps import Services
from cloud.services.ca import init_ca
from edge.contracts.samples import SAMPLES_PATH, SampleReceipt, SampleUpload
from edge.sync.client import CloudClient
from tests.cloud.env import CloudEnv

_ids = itertools.count(1)


def png(seed: int, size: tuple[int, int] = (48, 160)) -> bytes:
    """A small random PNG (height, width); each seed gives other bytes."""
    img = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf)


@dataclass
class LoopCloud(CloudEnv):
    device: CloudClient | None = None
    device_id: str = "edge-01"
    shas: dict[int, str] = field(default_factory=dict)

    def cli_env(self) -> dict[str, str]:
        """The environment a ``dockgate cloud ...`` command needs to act on this cloud."""
        cfg = self.svc.config
        return {
            "DOCKGATE_CLOUD_DATABASE_URL": cfg.database_url,
            "DOCKGATE_CLOUD_TRAINING_QUEUE": cfg.training_queue,
            "DOCKGATE_CLOUD_TRAINING_THREADS": str(cfg.training_threads),
            "DOCKGATE_CLOUD_ISSUING_DIR": str(cfg.issuing_dir),
            "DOCKGATE_CLOUD_BLOB_DIR": str(cfg.blob_dir),
            "DOCKGATE_CLOUD_OTA_DIR": str(cfg.ota_dir),
            "DOCKGATE_CLOUD_JOBS_DIR": str(cfg.jobs_dir),
        }

    def upload(
        self, data: bytes, meta: dict[str, Any] | None = None, confidence: float = 0.4
    ) -> SampleReceipt:
        """One sample, signed by the enrolled device, as the sync agent sends it."""
        if self.device is None:
            self.device = self.client(self.enroll(self.device_id))
        up = SampleUpload(
            device_id=self.device_id,
            sample_id=f"1733480000000-{next(_ids):06d}",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            data=base64.b64encode(data).decode(),
            status="REVIEW",
            confidence=confidence,
            model_version="ocr-test",
            metadata=meta or {"status": "REVIEW", "text": "(01)06901234567892"},
        )
        return SampleReceipt.model_validate_json(
            self.device.post(SAMPLES_PATH, up.model_dump_json().encode())
        )


@contextmanager
def loop_cloud(db_url: str, tmp: Path, **config: Any) -> Iterator[LoopCloud]:
    init_ca(tmp / "ca", "org-01")
    cfg = CloudConfig(
        database_url=db_url,
        issuing_dir=tmp / "ca" / "issuing",
        blob_dir=tmp / "blobs",
        **({"rollout_eval_s": 0.0} | config),  # no background evaluator unless asked for
    )
    svc = Services.from_config(cfg)
    try:
        with TestClient(create_app(svc)) as http:
            yield LoopCloud(svc, http, tmp)
    finally:
        svc.close()
