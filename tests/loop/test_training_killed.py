"""A training job whose process is SIGKILLed mid-training is failed as soon as anything looks
(the service starting, `dockgate cloud train list`), not 30 minutes later by the stale timer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cloud.db.models import TrainingJob
from cloud.deps import Services
from cloud.services import training
from tests.loop.test_training import TINY_DEFECT, snapshot, training_cloud, upload_defects

# the tests' tiny generated set, and far more epochs than the test lets it run
PARAMS = TINY_DEFECT | {"epochs": 400}
DOCKGATE = [str(Path(sys.executable).parent / "dockgate")]


def _job(svc: Services, job_id: int) -> TrainingJob | None:
    with svc.reader() as s:
        return s.get(TrainingJob, job_id)


def test_a_job_killed_mid_training_is_failed_at_once_with_its_pid(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/cloud.db"
    with training_cloud(db_url, tmp_path) as cloud:
        upload_defects(cloud, 2)
        ds = snapshot(cloud)
        # the operator's foreground run, long enough to be killed in the middle of training
        proc = subprocess.Popen(
            [*DOCKGATE, "cloud", "train", "start", "defect", ds]
            + [f"--param={k}={v}" for k, v in PARAMS.items()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=os.environ | cloud.cli_env() | {"OMP_NUM_THREADS": "1"},
        )
        try:
            deadline = time.monotonic() + 240
            while True:
                job = _job(cloud.svc, 1)
                if job is not None and job.stage not in ("queued", "export") and job.step > 0:
                    break
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the job never reached training"
                time.sleep(0.2)
            assert job.worker is not None and str(proc.pid) in job.worker
            assert not training.worker_gone(job.worker)  # alive: left alone
            assert training.recover_stale(cloud.svc) == []
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        job = _job(cloud.svc, 1)
        assert job is not None and job.status == "running"  # as the killed process left it
        listed = subprocess.run(
            [*DOCKGATE, "cloud", "train", "list", "--json"],
            env=os.environ | cloud.cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        row = json.loads(listed.stdout.splitlines()[0])
        assert row["id"] == 1 and row["status"] == "failed"
        assert f"pid {proc.pid} on this host" in row["reason"]
        audited = cloud.http.get("/v1/audit?limit=1000", headers=cloud.login("admin"))
        assert audited.status_code == 200, audited.text
        assert any(
            e["action"] == "training.failed"
            and e["code"] == "TRAINING_FAILED"
            and f"pid {proc.pid}" in e["detail"]["reason"]
            for e in audited.json()
        )


def test_workers_of_other_hosts_or_without_proc_are_never_judged_gone() -> None:
    me = training.worker_id()
    assert not training.worker_gone(me)
    host, boot, pid, start = me.split()
    assert training.worker_gone(f"{host} {boot} {pid} {int(start) + 1}")  # pid reused since
    assert training.worker_gone(f"{host} other-boot {pid} {start}")  # rebooted since
    assert not training.worker_gone(f"elsewhere {boot} 1 1")  # another host: stale timer
    assert not training.worker_gone(f"{host} - {pid} -")
    assert not training.worker_gone("garbage")


def test_migration_0007_matches_the_model(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cloud.db.models import Base

    with training_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as cloud:
        with cloud.svc.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "training_jobs" in repr(d)] == []
