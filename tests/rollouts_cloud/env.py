"""A cloud service with a signed release repository (versions A, B and a bad one) and devices."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.db.models import utcnow
from cloud.deps import Services
from cloud.rollouts import service
from cloud.services.ca import init_ca
from edge.contracts.ota import (
    ASSIGNMENTS_PATH,
    REPORT_PATH,
    ModelFigures,
    ModelReport,
    OtaDirective,
    OtaReport,
    RefusedRelease,
)
from edge.contracts.sync import AUTH_SCHEME
from edge.trust.keys import Identity
from edge.trust.signer import DeviceSigner
from tests.cloud.env import CloudEnv

MODEL = "defect"
A, B, BAD = "1.0.0", "1.1.0", "1.2.0"


def build_repository(where: Path) -> Path:
    """A TUF repository with ``defect`` A (active), B and BAD (released, not active)."""
    from ota.release import describe_model, sha256_file
    from ota.repo import Repository
    from tests.ota.models import make_model

    repo = Repository.init(where / "repo", where / "offline" / "root.key")
    for version, tag in ((A, 1.0), (B, 2.0), (BAD, 3.0)):
        model = make_model(where / "build" / version / "defect.onnx", tag)
        info = describe_model(
            model, MODEL, version, sha256=sha256_file(model), min_dockgate="0.1.0"
        )
        repo.release(model, info, activate=version == A)
    return repo.dir


def good(n: int = 100, agree: float = 0.97) -> ModelFigures:
    pairs = n // 2
    return ModelFigures(
        observations=n,
        errors=0,
        latency_p95_ms=40.0,
        mean_confidence=0.93,
        review_or_unreadable=n // 20,
        defects=n // 20,
        agreement_pairs=pairs,
        agreements=round(pairs * agree),
    )


@dataclass
class Device:
    id: str
    signer: DeviceSigner
    http: httpx.Client | TestClient
    seq: int = 0
    running: str = A
    refused: list[RefusedRelease] = field(default_factory=list)

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        token = self.signer.sign_request(method, path, body)
        return {"Authorization": f"{AUTH_SCHEME} {token}", "Content-Type": "application/json"}

    def report(self, figures: dict[str, ModelFigures] | None = None) -> OtaDirective:
        self.seq += 1
        rep = OtaReport(
            device_id=self.id,
            report_seq=self.seq,
            models=[
                ModelReport(
                    name=MODEL, running=self.running, refused=self.refused, figures=figures or {}
                )
            ],
        )
        r = self.send_report(rep)
        assert r.status_code == 200, r.text
        return OtaDirective.model_validate_json(r.content)

    def send_report(self, rep: OtaReport) -> httpx.Response:
        body = rep.model_dump_json().encode()
        return self.http.post(
            REPORT_PATH, content=body, headers=self.headers("POST", REPORT_PATH, body)
        )

    def poll(self, etag: str | None = None) -> httpx.Response:
        headers = self.headers("GET", ASSIGNMENTS_PATH, b"")
        if etag:
            headers["If-None-Match"] = f'"{etag}"'
        return self.http.get(ASSIGNMENTS_PATH, headers=headers)

    def directive(self) -> OtaDirective:
        r = self.poll()
        assert r.status_code == 200, r.text
        return OtaDirective.model_validate_json(r.content)

    def acting(self) -> str | None:
        """The version this device is told to run and act on."""
        versions = [a.version for a in self.directive().assignments if not a.shadow]
        return versions[0] if versions else None


@dataclass
class RolloutEnv:
    cloud: CloudEnv
    repo: Path
    devices: list[Device] = field(default_factory=list)

    @property
    def svc(self) -> Services:
        return self.cloud.svc

    def add_devices(self, n: int, prefix: str = "edge") -> list[Device]:
        new = [
            self.device(f"{prefix}-{i:03d}")
            for i in range(len(self.devices), len(self.devices) + n)
        ]
        self.devices.extend(new)
        return new

    def device(self, device_id: str) -> Device:
        identity: Identity = self.cloud.enroll(device_id)
        return Device(device_id, DeviceSigner(identity), self.cloud.http)

    def create(self, admin: dict[str, str], **spec: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "defect-b",
            "model": MODEL,
            "from_version": A,
            "to_version": B,
            "stages": [
                {"name": "canary", "percent": 10, "min_soak_s": 60, "min_observations": 100},
                {"name": "half", "percent": 50, "min_soak_s": 60, "min_observations": 100},
                {"name": "all", "percent": 100, "min_soak_s": 60, "min_observations": 100},
            ],
            "gates": {"min_observations": 50, "min_agreement_pairs": 20},
        }
        body.update(spec)
        r = self.cloud.http.post("/v1/rollouts", json={"spec": body}, headers=admin)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def evaluate(self, after_s: float = 0.0) -> None:
        now = utcnow() + dt.timedelta(seconds=after_s)
        service.evaluate_all(self.svc.sessions, self.repo, now)

    def detail(self, headers: dict[str, str], rollout_id: str = "defect-b") -> dict[str, Any]:
        r = self.cloud.http.get(f"/v1/rollouts/{rollout_id}", headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def audit(self, admin: dict[str, str]) -> list[dict[str, Any]]:
        r = self.cloud.http.get("/v1/audit", headers=admin, params={"limit": 500})
        assert r.status_code == 200, r.text
        return list(r.json())


@contextmanager
def rollout_env(
    db_url: str, tmp: Path, repo_template: Path, eval_s: float = 0.0
) -> Iterator[RolloutEnv]:
    init_ca(tmp / "ca", "org-01")
    repo = tmp / "ota"
    shutil.copytree(repo_template, repo)
    config = CloudConfig(
        database_url=db_url,
        issuing_dir=tmp / "ca" / "issuing",
        ota_dir=repo,
        rollout_eval_s=eval_s,
        ota_poll_s=2.0,
        ota_poll_active_s=0.5,
    )
    svc = Services.from_config(config)
    try:
        with TestClient(create_app(svc)) as http:
            yield RolloutEnv(CloudEnv(svc, http, tmp), repo)
    finally:
        svc.close()


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)
