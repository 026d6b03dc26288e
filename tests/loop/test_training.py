"""Training jobs: the gate's rules, the trainer parameters, and a worse candidate rejected.

The job runs for real (export, the CRNN trainer at a tiny size, the gate through the CRNN
runtime and PP-OCR) on the in-process queue of the cloud app; the helpers here build what the
end-to-end test (``test_loop_e2e.py``) needs too: a signed release repository, a deliberately
blind production defect model, labeled samples uploaded the way edges and labelers send them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cloud.services import datasets, publish
from edge.vision import learning
from tests.loop.env import LoopCloud, loop_cloud

CLASSES = ("ok", "crack", "crush", "tear", "wet")
TINY_DEFECT = {
    "per_class": 6,
    "face_per_class": 3,
    "holdout_per_class": 2,
    "holdout_face_per_class": 1,
    "epochs": 12,
    "batch": 16,
    # The production model of these tests is a blind stand-in (blind_defect_model), another
    # architecture: the candidate fine-tunes the manifest's shipped model instead, gently, on
    # the site's frames. Trained from scratch for seconds it learnt no damage, and its verdict
    # against blind was a coin flip across machines (2026-12-07: rejected on one, passed on CI).
    "init": "shipped",
    "lr": 3e-4,
}
TINY_CODES = {
    "lines": 48,
    "val_lines": 8,
    "holdout_lines": 8,
    "epochs": 1,
    "batch": 16,
    "compare_production": False,
    "init": "none",  # from scratch: one tiny epoch reads worse than production (rejected)
}


# -- helpers shared with the end-to-end test -------------------------------------------------
def blind_defect_model(path: Path, version: str = "defect-blind-1") -> Path:
    """A valid defect model (the edge's contract: classes, input size, thresholds in its
    metadata) that calls every frame ``ok``: the production model of a node that misses a kind
    of damage entirely."""
    w = np.zeros((3, len(CLASSES)), np.float32)
    b = np.array([8.0, 0.0, 0.0, 0.0, 0.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
            helper.make_node("Identity", ["image"], ["maps"]),
        ],
        "blind-defect",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 144, 192])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(CLASSES)]),
            helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["batch", 3, 144, 192]),
        ],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "classes": '["ok", "crack", "crush", "tear", "wet"]',
        "input_width": "192",
        "input_height": "144",
        "version": version,
        "freeze_threshold": "0.5",
        "review_threshold": "0.2",
    }
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def release_repo(tmp: Path, production_defect: bool = True) -> Path:
    """A TUF release repository (online keys in it, root key apart) whose fleet default
    ``defect`` is the blind model, as 'dockgate ota keys init' and 'ota release' leave it."""
    from ota.release import describe_model, sha256_file
    from ota.repo import Repository

    repo = Repository.init(tmp / "ota", tmp / "offline" / "root.key")
    if production_defect:
        model = blind_defect_model(tmp / "prod" / "defect.onnx")
        info = describe_model(
            model, "defect", "defect-blind-1", sha256=sha256_file(model), min_dockgate="0.1.0"
        )
        repo.release(model, info, activate=True)
    return repo.dir


@contextmanager
def training_cloud(db_url: str, tmp: Path, **config: Any) -> Iterator[LoopCloud]:
    repo = release_repo(tmp)
    settings: dict[str, Any] = {"ota_dir": repo, "jobs_dir": tmp / "jobs", "training_threads": 1}
    with loop_cloud(db_url, tmp, **(settings | config)) as env:
        yield env


def png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf)


def label(cloud: LoopCloud, sample: int, body: dict[str, Any]) -> int:
    r = cloud.http.post(f"/v1/samples/{sample}/labels", json=body, headers=cloud.login("labeler"))
    return int(r.status_code)


def site_domain() -> Any:
    """One site's look for the labelled uploads: the training domain's fixed belts, glass,
    shapes and light (as before its randomised kinds), not its per-frame randomisation. A
    site's photos share one look; a 12-epoch candidate on 80 of them can learn that, not the
    whole randomised domain (it then freezes one of the 3 good validation frames)."""
    import dataclasses

    from fixtures.defects.domains import TRAIN

    return dataclasses.replace(
        TRAIN,
        conveyors=tuple(c for c in TRAIN.conveyors if not c.startswith("random")),
        bottles=tuple(b for b in TRAIN.bottles if "random" not in b),
        bottle_shapes=tuple(b for b in TRAIN.bottle_shapes if "random" not in b),
        gain=(0.85, 1.1),
        warmth=(-0.03, 0.06),
        sensor_noise=(0.004, 0.012),
    )


def upload_defects(cloud: LoopCloud, per_class: int, seed: int = 5) -> int:
    """Frames of the fixtures' damage generator in one site's look (:func:`site_domain`),
    uploaded by the node and labeled through the labels API with their class and box;
    returns how many were labeled."""
    from fixtures.defects.dataset import generate

    done = 0
    for sample in generate(seed, per_class, site_domain()):
        data = png_bytes(cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
        meta = {"kind": "defect", "status": "REVIEW", "defect_score": 0.3}
        sid = cloud.upload(data, meta).id
        box = None
        if sample.box is not None and sample.label != "ok":
            x0, y0, x1, y1 = sample.box
            box = [x0, y0, max(1, x1 - x0), max(1, y1 - y0)]
        done += label(cloud, sid, {"kind": "defect", "class": sample.label, "box": box}) == 200
    return done


def upload_codes(cloud: LoopCloud, n: int) -> int:
    """Code-line crops of the CRNN's held-out renderer, labeled with their text."""
    from edge.vision.ocr.crnn.data import build_lines, holdout_specs

    lines = build_lines(holdout_specs(n), workers=1)
    done = 0
    for img, text in zip(lines.images, lines.texts, strict=True):
        sid = cloud.upload(png_bytes(img), {"status": "REVIEW", "text": text}).id
        done += label(cloud, sid, {"kind": "code", "text": text}) == 200
    return done


def snapshot(cloud: LoopCloud, **kw: Any) -> str:
    with cloud.svc.sessions.begin() as s:
        ds, _ = datasets.create(s, "test", **kw)
        return ds.id


def wait_job(cloud: LoopCloud, job_id: int, timeout: float = 300.0) -> dict[str, Any]:
    """Poll the job API (as the console does) until the job is no longer queued or running;
    returns the job and every (stage, step, total) seen on the way."""
    seen: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + timeout
    while True:
        r = cloud.http.get(f"/v1/training/jobs/{job_id}", headers=cloud.login("viewer"))
        assert r.status_code == 200, r.text
        job = dict(r.json())
        seen.append((job["stage"], job["step"], job["total"]))
        if job["status"] not in ("queued", "running"):
            job["seen"] = seen
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}: {job}"
        time.sleep(0.2)


def start_job(cloud: LoopCloud, kind: str, dataset: str, params: dict[str, Any]) -> int:
    body = {"kind": kind, "dataset": dataset, "params": params}
    r = cloud.http.post("/v1/training/jobs", json=body, headers=cloud.login("admin"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def audit_actions(cloud: LoopCloud) -> list[dict[str, Any]]:
    r = cloud.http.get("/v1/audit", headers=cloud.login("admin"), params={"limit": 500})
    assert r.status_code == 200, r.text
    return list(r.json())


def releases(cloud: LoopCloud) -> list[tuple[str, str]]:
    r = cloud.http.get("/v1/ota/releases", headers=cloud.login("viewer"))
    assert r.status_code == 200, r.text
    return [(x["name"], x["version"]) for x in r.json()]


# -- the gate's rules ------------------------------------------------------------------------
def fig(**kw: Any) -> dict[str, Any]:
    return {"count": 10, **kw}


def test_gate_rejects_worse_or_equal_and_passes_better() -> None:
    same = fig(exact=0.5, cer=0.1)
    better = fig(exact=0.6, cer=0.1)
    worse_cer = fig(exact=0.5, cer=0.2)
    both = {"regression": {"candidate": better, "production": same}}
    assert publish.decide("codes", both)[0]
    ok, why = publish.decide("codes", {"regression": {"candidate": worse_cer, "production": same}})
    assert not ok and "worse than production on the regression set" in why
    ok, why = publish.decide(
        "codes",
        {
            "regression": {"candidate": better, "production": same},
            "val": {"candidate": worse_cer, "production": same},
        },
    )
    assert not ok and "val" in why  # better on regression but worse on validation: no
    ok, why = publish.decide("codes", {"regression": {"candidate": same, "production": same}})
    assert not ok and "not better" in why  # a tie keeps production
    empty = {"regression": {"candidate": {"count": 0}, "production": {"count": 0}}}
    assert publish.decide("codes", empty) == (
        False,
        "no codes members in the regression or validation set to judge on",
    )
    # defects: recall minus false freezes first, accuracy breaks ties
    prod = fig(recall=0.0, false_freeze=0.0, accuracy=0.2)
    assert publish.decide(
        "defect",
        {
            "regression": {
                "candidate": fig(recall=0.5, false_freeze=0.1, accuracy=0.3),
                "production": prod,
            }
        },
    )[0]
    assert not publish.decide(
        "defect",
        {
            "regression": {
                "candidate": fig(recall=0.5, false_freeze=0.6, accuracy=0.9),
                "production": prod,
            }
        },
    )[0]


def test_trainer_params_are_checked() -> None:
    cfg = learning.config_for("defect", {"epochs": "3", "lr": 0.01}, "v1", 1)
    assert (cfg.epochs, cfg.lr, cfg.version, cfg.threads) == (3, 0.01, "v1", 1)
    assert (
        learning.config_for("codes", {"compare_production": "false"}, "v", 1).compare_production
        is False
    )
    for bad in ({"nope": 1}, {"version": "x"}, {"classes": "ok"}):
        with pytest.raises(ValueError, match="unknown training parameter"):
            learning.config_for("defect", bad, "v", 1)
    with pytest.raises(ValueError, match="no trainer"):
        learning.config_for("ocr", {}, "v", 1)


def test_blind_model_is_a_valid_defect_model(tmp_path: Path) -> None:
    from edge.vision.defects.model import DefectModel
    from ota.release import sha256_file

    path = blind_defect_model(tmp_path / "d.onnx")
    model = DefectModel.load(path, sha256=sha256_file(path))
    verdict = model.predict(np.full((240, 320, 3), 128, np.uint8))
    assert verdict.top_class == "ok" and model.version == "defect-blind-1"


# -- a job on the cloud ----------------------------------------------------------------------
def test_job_api_refusals(tmp_path: Path) -> None:
    with training_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as cloud:
        upload_defects(cloud, 1)
        ds = snapshot(cloud)
        body = {"kind": "codes", "dataset": ds, "params": {}}
        r = cloud.http.post("/v1/training/jobs", json=body, headers=cloud.login("viewer"))
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
        r = cloud.http.post("/v1/training/jobs", json=body, headers=cloud.login("admin"))
        assert r.status_code == 404 and "no codes members" in r.json()["detail"]
        body = {"kind": "defect", "dataset": "0" * 12, "params": {}}
        r = cloud.http.post("/v1/training/jobs", json=body, headers=cloud.login("admin"))
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
        r = cloud.http.post("/v1/training/jobs/7/approve", headers=cloud.login("admin"))
        assert r.status_code == 404
        r = cloud.http.get("/v1/training/jobs/99999999999", headers=cloud.login("viewer"))
        assert r.status_code == 422
        # a bad trainer parameter fails the job (TRAINING_FAILED), nothing is released
        job = wait_job(cloud, start_job(cloud, "defect", ds, {"no_such": 1}))
        assert job["status"] == "failed" and "unknown training parameter" in job["reason"]
        failed = [a for a in audit_actions(cloud) if a["action"] == "training.failed"]
        assert failed and failed[0]["code"] == "TRAINING_FAILED"
        assert releases(cloud) == [("defect", "defect-blind-1")]


@pytest.mark.slow
def test_worse_codes_candidate_is_rejected_and_never_released(tmp_path: Path) -> None:
    """A CRNN trained for one tiny epoch reads worse than the shipped CRNN: rejected, audited,
    not signed; the figures of both (and PP-OCR's) on the same crops are on the job."""
    with training_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as cloud:
        assert upload_codes(cloud, 24) >= 20
        ds = snapshot(cloud, val_percent=25, regression_percent=30)
        job = wait_job(cloud, start_job(cloud, "codes", ds, TINY_CODES))
        assert job["status"] == "rejected", job
        assert "worse than production" in job["reason"]
        assert any(stage.startswith("rendering") for stage, _, _ in job["seen"]) or job["candidate"]
        reg = job["evaluation"]["splits"]["regression"]
        assert reg["candidate"]["count"] == reg["production"]["count"] > 0
        assert reg["candidate"]["cer"] > reg["production"]["cer"]
        assert reg["ppocr"]["count"] == reg["candidate"]["count"]
        assert job["evaluation"]["production_source"] == "shipped"
        assert Path(job["candidate"]["file"]).is_file()  # kept for a look, never signed
        assert job["version"] is None and job["rollout_id"] is None
        assert all(name != "ocr.crnn" for name, _ in releases(cloud))
        rejected = [a for a in audit_actions(cloud) if a["action"] == "training.reject"]
        assert rejected and rejected[0]["code"] == "CANDIDATE_REJECTED"


def test_train_cli(tmp_path: Path) -> None:
    """``dockgate cloud train``: start runs an in-process job in the foreground with its
    progress; list, show, approve and worker answer from the same table."""
    from click.testing import CliRunner

    from edge.cli import cli

    with training_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as cloud:
        upload_defects(cloud, 1)
        ds = snapshot(cloud)
        env = cloud.cli_env()
        runner = CliRunner()
        bad = runner.invoke(cli, ["cloud", "train", "start", "defect", ds, "--param", "x"], env=env)
        assert bad.exit_code != 0 and "KEY=VALUE" in bad.output
        run = runner.invoke(
            cli, ["cloud", "train", "start", "defect", ds, "--param", "no_such=1"], env=env
        )
        assert run.exit_code == 0, run.output
        assert run.output.startswith("job 1: defect on dataset") and "queue inprocess" in run.output
        assert "failed" in run.output and "unknown training parameter 'no_such'" in run.output
        exported = cloud.svc.config.jobs_dir / "1" / "data" / "manifest.json"
        assert exported.is_file()  # exported first
        listed = runner.invoke(cli, ["cloud", "train", "list", "--json"], env=env)
        assert json.loads(listed.output.splitlines()[0])["status"] == "failed"
        shown = runner.invoke(cli, ["cloud", "train", "show", "1"], env=env)
        assert json.loads(shown.output)["dataset"] == ds
        missing = runner.invoke(cli, ["cloud", "train", "show", "9"], env=env)
        assert missing.exit_code != 0 and "no training job 9" in missing.output
        approve = runner.invoke(cli, ["cloud", "train", "approve", "1"], env=env)
        assert approve.exit_code != 0 and "not awaiting approval" in approve.output
        worker = runner.invoke(cli, ["cloud", "train", "worker", "--once"], env=env)
        assert worker.exit_code != 0 and "not 'procrastinate'" in worker.output


def test_console_training_page_is_admin_only(tmp_path: Path) -> None:
    import re

    import pyotp

    from cloud.auth import add_user
    from tests.cloud.env import PASSWORD

    with training_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as cloud:
        http = cloud.http
        r = http.get("/console/training", follow_redirects=False)
        assert r.status_code == 303 and "/console/login" in r.headers["location"]
        with cloud.svc.sessions.begin() as s:
            add_user(s, "test", "vic", "viewer", PASSWORD)
            secret = add_user(s, "test", "ada", "admin", PASSWORD)
        assert secret
        http.post("/console/login", data={"username": "vic", "password": PASSWORD})
        assert http.get("/console/training").status_code == 403
        body = {"username": "ada", "password": PASSWORD, "totp": pyotp.TOTP(secret).now()}
        http.post("/console/login", data=body)
        page = http.get("/console/training")
        assert page.status_code == 200 and "No training jobs yet." in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert csrf
        form = {"csrf_token": csrf.group(1), "kind": "defect", "dataset": "0" * 12}
        bad = http.post("/console/training", data=form | {"params": "epochs"})
        assert bad.status_code == 422 and "use KEY=VALUE" in bad.text
        unknown = http.post("/console/training", data=form | {"params": "epochs=2"})
        assert unknown.status_code == 404 and "no dataset" in unknown.text
        assert "epochs=2" in unknown.text  # the form keeps what was typed
        r = http.post("/console/training/5/approve", data={"csrf_token": csrf.group(1)})
        assert r.status_code == 404 and "no training job 5" in r.text


def test_jobs_of_a_killed_process_are_failed_when_a_queue_starts(tmp_path: Path) -> None:
    import datetime as dt

    from cloud.db.models import TrainingJob, utcnow
    from cloud.services import training

    with training_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as cloud:
        upload_defects(cloud, 1)
        ds = snapshot(cloud)
        old = utcnow() - dt.timedelta(hours=2)
        with cloud.svc.sessions.begin() as s:  # as a killed service leaves them
            for status, beat in (("running", old), ("queued", None), ("running", utcnow())):
                s.add(
                    TrainingJob(
                        kind="defect",
                        model="defect",
                        dataset_id=ds,
                        params={},
                        queue="inprocess",
                        status=status,
                        stage=status,
                        created_by="test",
                        created_at=old,
                        heartbeat_at=beat,
                    )
                )
        assert training.recover_stale(cloud.svc) == [1, 2]
        jobs = {
            j["id"]: j
            for j in cloud.http.get("/v1/training/jobs", headers=cloud.login("viewer")).json()
        }
        assert jobs[1]["status"] == jobs[2]["status"] == "failed"
        assert "no progress for 1800 s" in jobs[1]["reason"]
        assert jobs[3]["status"] == "running"  # it still reports progress: left alone


@pytest.mark.postgres
def test_cli_on_procrastinate_queues_and_a_worker_runs(tmp_path: Path, postgres_url: str) -> None:
    """With training_queue = procrastinate, 'train start' only queues; 'train worker --once'
    (a real procrastinate worker) runs it. The job fails fast here (a bad setting): this is
    about the queue; the loop test trains on it."""
    from click.testing import CliRunner

    from edge.cli import cli
    from tests.cloud.env import pg_schema

    with (
        pg_schema(postgres_url) as url,
        training_cloud(url, tmp_path, training_queue="procrastinate") as cloud,
    ):
        upload_defects(cloud, 1)
        ds = snapshot(cloud)
        env = cloud.cli_env()
        runner = CliRunner()
        run = runner.invoke(
            cli, ["cloud", "train", "start", "defect", ds, "--param", "no_such=1"], env=env
        )
        assert run.exit_code == 0 and "queue procrastinate" in run.output, run.output
        listed = runner.invoke(cli, ["cloud", "train", "list", "--json"], env=env)
        job = json.loads(listed.output.splitlines()[0])
        assert job["status"] == "queued" and isinstance(job["queue_job"], int)  # procrastinate's
        worker = runner.invoke(cli, ["cloud", "train", "worker", "--once"], env=env)
        assert worker.exit_code == 0, worker.output
        shown = json.loads(runner.invoke(cli, ["cloud", "train", "show", "1"], env=env).output)
        assert shown["status"] == "failed" and "no_such" in shown["reason"]
