"""One round of the learning loop on generated data, through the cloud's own API and services.

1. **collected**: an enrolled device uploads low-confidence samples, signed, as the edge's sync
   agent does (``POST /v1/samples``): code-line crops from the CRNN's HOLDOUT renderer
   (settings its synthetic training never sees) and carton/bottle frames from the damage
   generator's HOLDOUT domain;
2. **labeled**: a labeler labels each through ``POST /v1/samples/{id}/labels`` (the generator's
   truth stands in for the person's keystrokes; the code grammar checks every text);
3. a **dataset** snapshot (``cloud.services.datasets``), then one **training job** per model
   (``codes``: the CRNN; ``defect``: the defect CNN) on the in-process queue, started through
   ``POST /v1/training/jobs``;
4. the **gate** scores candidate and production (the models shipped in ``models/``, signed into
   a fresh release repository as the fleet default) on the dataset's validation and regression
   splits; a better candidate is **signed** and its canary rollout created.

Printed: samples collected and labeled, training time per job, validation (and regression)
figures before (production) and after (candidate), for both recognisers (CRNN before/after,
PP-OCR on the same crops) and the defect model, and the released model's size (or why it was
rejected).

    .venv/bin/python bench/loop.py --size small   # the smallest round (about a minute of CPU)
    .venv/bin/python bench/loop.py                # full: hundreds of samples, real training
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import pyotp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402

from cloud.app import create_app  # noqa: E402
from cloud.auth import add_user  # noqa: E402
from cloud.config import CloudConfig  # noqa: E402
from cloud.deps import Services  # noqa: E402
from cloud.services import datasets  # noqa: E402
from cloud.services.ca import init_ca  # noqa: E402
from cloud.services.registry import create_token  # noqa: E402
from edge.contracts.samples import SAMPLES_PATH, SampleReceipt, SampleUpload  # noqa: E402
from edge.sync.client import CloudClient  # noqa: E402
from edge.trust.enroll import build_csr  # noqa: E402
from edge.trust.keys import Identity, generate_key  # noqa: E402
from edge.trust.signer import DeviceSigner  # noqa: E402

PASSWORD = "loop bench password"
SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "codes": 24,
        "defects_per_class": 10,
        "codes_params": {"lines": 48, "val_lines": 8, "holdout_lines": 8, "epochs": 1,
                         "batch": 16, "compare_production": False},
        "defect_params": {"per_class": 6, "face_per_class": 3, "holdout_per_class": 2,
                          "holdout_face_per_class": 1, "epochs": 12, "batch": 16},
    },
    "full": {
        "codes": 400,
        "defects_per_class": 80,
        "codes_params": {"lines": 6000, "val_lines": 300, "holdout_lines": 200, "epochs": 4,
                         "compare_production": False},
        "defect_params": {"per_class": 150, "face_per_class": 80, "holdout_per_class": 40,
                          "holdout_face_per_class": 20, "epochs": 10},
    },
}  # fmt: skip


class Round:
    """A fresh cloud (SQLite, local blobs, its own CA and release repository) in ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        from ota.release import describe_model, sha256_file
        from ota.repo import Repository

        init_ca(tmp / "ca", "org-01")
        repo = Repository.init(tmp / "ota", tmp / "offline" / "root.key")
        manifest = json.loads((REPO / "models" / "manifest.json").read_text())["models"]
        for name in ("defect", "ocr.crnn"):  # production = what ships, as signed releases
            entry = manifest[name]
            model = REPO / "models" / entry["file"]
            info = describe_model(
                model, name, entry["version"], sha256=sha256_file(model), min_dockgate="0.1.0"
            )
            repo.release(model, info, activate=True)
        cfg = CloudConfig(
            database_url=f"sqlite:///{tmp}/cloud.db",
            issuing_dir=tmp / "ca" / "issuing",
            blob_dir=tmp / "blobs",
            ota_dir=repo.dir,
            jobs_dir=tmp / "jobs",
            rollout_eval_s=0.0,
            auto_rollout={"defect": True, "ocr.crnn": True},
        )
        self.svc = Services.from_config(cfg)
        self.http = TestClient(create_app(self.svc))
        self.http.__enter__()
        self.device = CloudClient("http://testserver", DeviceSigner(self._enroll()), http=self.http)
        self.labeler = self._login("lena", "labeler")
        self.admin = self._login("ada", "admin")
        self.n = 0

    def _enroll(self) -> Identity:
        import datetime as dt

        from cryptography import x509

        with self.svc.sessions.begin() as s:
            token = create_token(s, "bench", "org-01", "site-01", None, dt.timedelta(hours=1))
        key = generate_key()
        body = {"token": token, "device_id": "edge-01", "csr": build_csr(key, "edge-01")}
        r = self.http.post("/v1/enroll", json=body)
        r.raise_for_status()
        cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
        chain = x509.load_pem_x509_certificates(r.json()["chain"].encode())
        return Identity(key, cert, chain)

    def _login(self, name: str, role: str) -> dict[str, str]:
        with self.svc.sessions.begin() as s:
            secret = add_user(s, "bench", name, role, PASSWORD)
        body = {"username": name, "password": PASSWORD}
        if secret:
            body["totp"] = pyotp.TOTP(secret).now()
        r = self.http.post("/v1/auth/login", json=body)
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def collect(self, png: bytes, meta: dict[str, Any]) -> int:
        self.n += 1
        up = SampleUpload(
            device_id="edge-01",
            sample_id=f"1733480000000-{self.n:06d}",
            sha256=hashlib.sha256(png).hexdigest(),
            size=len(png),
            data=base64.b64encode(png).decode(),
            status="REVIEW",
            confidence=0.4,
            model_version="bench",
            metadata=meta,
        )
        got = SampleReceipt.model_validate_json(
            self.device.post(SAMPLES_PATH, up.model_dump_json().encode())
        )
        return got.id

    def label(self, sample: int, body: dict[str, Any]) -> bool:
        r = self.http.post(f"/v1/samples/{sample}/labels", json=body, headers=self.labeler)
        return bool(r.status_code == 200)

    def train(self, kind: str, dataset: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"kind": kind, "dataset": dataset, "params": params}
        r = self.http.post("/v1/training/jobs", json=body, headers=self.admin)
        r.raise_for_status()
        job_id = r.json()["id"]
        while True:
            job = dict(self.http.get(f"/v1/training/jobs/{job_id}", headers=self.admin).json())
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(0.5)

    def close(self) -> None:
        self.http.__exit__(None, None, None)
        self.svc.close()


def _png(img: Any) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf)


def collect_codes(rnd: Round, n: int) -> tuple[int, int]:
    from edge.vision.ocr.crnn.data import build_lines, holdout_specs

    lines = build_lines(holdout_specs(n), workers=1)
    labeled = 0
    for img, text in zip(lines.images, lines.texts, strict=True):
        sid = rnd.collect(_png(img), {"status": "REVIEW", "text": text})
        labeled += rnd.label(sid, {"kind": "code", "text": text})
    return n, labeled


def collect_defects(rnd: Round, per_class: int) -> tuple[int, int]:
    from fixtures.defects.dataset import generate
    from fixtures.defects.domains import HOLDOUT

    collected = labeled = 0
    for sample in generate(11, per_class, HOLDOUT):
        bgr = cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)
        sid = rnd.collect(_png(bgr), {"kind": "defect", "status": "REVIEW"})
        collected += 1
        box = None
        if sample.box is not None and sample.label != "ok":
            x0, y0, x1, y1 = sample.box
            box = [x0, y0, max(1, x1 - x0), max(1, y1 - y0)]
        labeled += rnd.label(sid, {"kind": "defect", "class": sample.label, "box": box})
    return collected, labeled


def _fig(kind: str, f: dict[str, Any] | None) -> str:
    if not f or not f.get("count"):
        return "n/a"
    if kind == "codes":
        return f"exact {f['exact']:.3f}  CER {f['cer']:.3f}  ({f['count']} lines)"
    return (
        f"accuracy {f['accuracy']:.3f}  recall {f['recall']}  false freeze "
        f"{f['false_freeze']}  ({f['count']} frames)"
    )


def report(kind: str, job: dict[str, Any]) -> None:
    cand = job.get("candidate") or {}
    print(f"\n== {kind} job {job['id']}: {job['status']}")
    print(f"training time: {cand.get('seconds', 'n/a')} s (the trainer, rendering included)")
    for split in ("val", "regression"):
        row = (job.get("evaluation") or {}).get("splits", {}).get(split, {})
        print(f"  {split:<10} before (production {row.get('production', {}).get('version')}): "
              f"{_fig(kind, row.get('production'))}")  # fmt: skip
        print(f"  {split:<10} after  (candidate):  {_fig(kind, row.get('candidate'))}")
        if "ppocr" in row:
            print(f"  {split:<10} PP-OCR (same crops): {_fig(kind, row['ppocr'])}")
    if job["version"]:
        print(f"released: {job['version']}, {cand.get('size')} bytes; rollout {job['rollout_id']}")
    else:
        print(f"not released ({cand.get('size')} bytes candidate): {job['reason']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep it (else a temp)")
    args = ap.parse_args()
    size = SIZES[args.size]
    with tempfile.TemporaryDirectory(prefix="dockgate-loop-") as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        rnd = Round(tmp)
        try:
            t0 = time.perf_counter()
            codes = collect_codes(rnd, size["codes"])
            defects = collect_defects(rnd, size["defects_per_class"])
            print(f"samples collected: {codes[0]} code crops, {defects[0]} defect frames "
                  f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
            print(f"samples labeled:   {codes[1]} code crops, {defects[1]} defect frames")
            with rnd.svc.sessions.begin() as s:
                ds, _ = datasets.create(s, "bench", 20.0, 20.0, "bench/loop.py")
                print(f"dataset {ds.id}: {json.dumps(ds.counts)}")
                dataset = ds.id
            for kind, key in (("codes", "codes_params"), ("defect", "defect_params")):
                started = time.perf_counter()
                job = rnd.train(kind, dataset, size[key])
                report(kind, job)
                print(f"job wall clock: {time.perf_counter() - started:.1f} s")
        finally:
            rnd.close()


if __name__ == "__main__":
    main()
