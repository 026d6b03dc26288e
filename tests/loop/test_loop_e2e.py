"""The learning loop end to end, small: a node whose defect model misses a kind of damage
uploads the frames, labelers label them through the labels API, a dataset is snapshot, a
training job runs on the queue, the gate finds the candidate better than production on the
regression set, the candidate is signed into the TUF repository and its canary rollout is
created: at once (in-process queue, SQLite) or after an admin's click on the console's training
page (procrastinate on PostgreSQL with a real worker). No step outside Dockgate's own API,
pages and services.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyotp
import pytest

from cloud.auth import add_user
from tests.cloud.env import PASSWORD, pg_schema
from tests.loop.env import LoopCloud
from tests.loop.test_training import (
    TINY_DEFECT,
    audit_actions,
    releases,
    snapshot,
    start_job,
    training_cloud,
    upload_defects,
    wait_job,
)

pytestmark = pytest.mark.slow

# The candidate (TINY_DEFECT) fine-tunes the shipped defect model for seconds on the 80 labeled
# site frames plus a few generated ones, seeded. Trained from scratch instead (up to
# 2026-12-07) it learnt no damage in test time, and its verdict against the blind production
# model was a coin flip across machines (rejected on one, passed on CI's).


def _labeled_dataset(cloud: LoopCloud) -> str:
    assert upload_defects(cloud, 16) == 80  # every frame labeled through the labels API
    return snapshot(cloud, val_percent=25, regression_percent=30)


def _check_released(cloud: LoopCloud, job: dict[str, Any], tmp: Path) -> None:
    """Signed into the repository (TUF-verified by a fresh client), metrics from the gate."""
    from ota.repo import Repository

    version = job["version"]
    assert version and version.startswith("defect-") and version.endswith(f"-j{job['id']}")
    assert ("defect", version) in releases(cloud)
    signed = Repository(cloud.svc.config.ota_dir).releases()
    custom = signed[f"defect/{version}/defect.onnx"]
    assert custom["sha256"] == job["candidate"]["sha256"]
    assert "regression set, candidate" in custom["metrics"]  # the gate's figures, signed
    assert "regression set, production" in custom["metrics"]
    reg = job["evaluation"]["splits"]["regression"]
    assert reg["production"]["version"] == "defect-blind-1" and reg["production"]["recall"] == 0
    assert job["evaluation"]["production_source"] == "release"
    actions = [a["action"] for a in audit_actions(cloud)]
    assert "training.start" in actions and "training.release" in actions


def _check_rollout(cloud: LoopCloud, job: dict[str, Any]) -> dict[str, Any]:
    r = cloud.http.get(f"/v1/rollouts/{job['rollout_id']}", headers=cloud.login("viewer"))
    assert r.status_code == 200, r.text
    ro = dict(r.json())
    assert (ro["model"], ro["from_version"], ro["to_version"]) == (
        "defect",
        "defect-blind-1",
        job["version"],
    )
    assert ro["stage"] == "canary" and ro["spec"]["stages"][0]["percent"] == 10.0
    return ro


def test_loop_in_process_auto_rollout(tmp_path: Path) -> None:
    with training_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as cloud:
        ds = _labeled_dataset(cloud)
        job = wait_job(cloud, start_job(cloud, "defect", ds, TINY_DEFECT), timeout=240)
        assert job["status"] == "rolling_out", job
        stages = {stage for stage, _, _ in job["seen"]}
        assert "training" in stages  # progress was visible while it ran
        assert any(total > 0 and 0 < step < total for _, step, total in job["seen"]) or (
            job["total"] > 0
        )
        _check_released(cloud, job, tmp_path)
        _check_rollout(cloud, job)


def _console_admin(cloud: LoopCloud) -> str:
    with cloud.svc.sessions.begin() as s:
        secret = add_user(s, "test", "ada", "admin", PASSWORD)
    assert secret
    body = {"username": "ada", "password": PASSWORD, "totp": pyotp.TOTP(secret).now(),
            "next": "/console/training"}  # fmt: skip
    r = cloud.http.post("/console/login", data=body, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = cloud.http.get("/console/training")
    assert page.status_code == 200 and 'id="new-job"' in page.text
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match
    return match.group(1)


@pytest.mark.postgres
def test_loop_on_procrastinate_with_approval_click(tmp_path: Path, postgres_url: str) -> None:
    with (
        pg_schema(postgres_url) as url,
        training_cloud(
            url, tmp_path, training_queue="procrastinate", auto_rollout={"defect": False}
        ) as cloud,
    ):
        ds = _labeled_dataset(cloud)
        csrf = _console_admin(cloud)
        settings = "\n".join(f"{k}={v}" for k, v in TINY_DEFECT.items())
        # started from the console's form (CSRF), queued in procrastinate's tables
        refused = cloud.http.post("/console/training", data={"kind": "defect", "dataset": ds})
        assert refused.status_code == 403 and "CSRF_INVALID" in refused.text
        r = cloud.http.post(
            "/console/training",
            data={"csrf_token": csrf, "kind": "defect", "dataset": ds, "params": settings},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        jobs = cloud.http.get("/v1/training/jobs", headers=cloud.login("viewer")).json()
        assert jobs[0]["queue"] == "procrastinate" and jobs[0]["status"] == "queued"
        job_id = jobs[0]["id"]
        queue = cloud.http.app.state.training_queue  # type: ignore[attr-defined]
        queue.work(once=True)  # a real procrastinate worker: runs the queued job, returns
        job = wait_job(cloud, job_id, timeout=10)
        assert job["status"] == "awaiting_approval", job
        _check_released(cloud, job, tmp_path)
        page = cloud.http.get("/console/training").text
        assert f'id="approve-{job_id}"' in page
        r = cloud.http.post(
            f"/console/training/{job_id}/approve",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/console/rollouts/")
        job = wait_job(cloud, job_id, timeout=10)
        assert job["status"] == "rolling_out"
        _check_rollout(cloud, job)
        assert "training.approve" in [a["action"] for a in audit_actions(cloud)]
