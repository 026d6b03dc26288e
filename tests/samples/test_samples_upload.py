"""Low-confidence samples from the edge's sample store to the cloud's ``/v1/samples``: real
sample store on disk, real device signatures, the real cloud app on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.db.models import Sample
from cloud.deps import Services
from cloud.services.blobs import LocalBlobStore
from cloud.services.ca import init_ca
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.samples import SAMPLES_PATH, SampleUpload
from edge.sync.client import CloudClient
from edge.sync.config import SyncConfig
from edge.sync.samples import STATE_FILE, SampleUploader
from edge.vision.ocr.samples import SampleStore
from tests.cloud.env import CloudEnv, pg_schema


@contextmanager
def samples_cloud(db_url: str, tmp: Path) -> Iterator[CloudEnv]:
    init_ca(tmp / "ca", "org-01")
    config = CloudConfig(
        database_url=db_url, issuing_dir=tmp / "ca" / "issuing", blob_dir=tmp / "blobs"
    )
    svc = Services.from_config(config)
    try:
        with TestClient(create_app(svc)) as http:
            yield CloudEnv(svc, http, tmp)
    finally:
        svc.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CloudEnv]:
    if request.param == "sqlite":
        with samples_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as env:
            yield env
        return
    with pg_schema(request.getfixturevalue("postgres_url")) as url:
        with samples_cloud(url, tmp_path) as env:
            yield env


def crop(seed: int, size: tuple[int, int] = (60, 200)) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)


def read(status: str, confidence: float) -> dict[str, Any]:
    return {"status": status, "confidence": confidence, "gtin": "06901234567892", "lot": "L1",
            "text": "GTIN 06901234567892", "reason": None}  # fmt: skip


def uploader(
    cloud: CloudEnv, store: SampleStore, tmp: Path, client: Any = None, **sync: Any
) -> SampleUploader:
    ident = cloud.enroll("edge-01") if client is None else None
    config = SyncConfig(cloud_url="http://testserver", **sync)
    return SampleUploader(
        store,
        client or cloud.client(ident),  # type: ignore[arg-type]
        "edge-01",
        tmp / STATE_FILE,
        config,
        model_version="ocr-test",
    )


def cloud_rows(cloud: CloudEnv) -> list[Sample]:
    with cloud.svc.sessions() as s:
        return list(s.execute(select(Sample).order_by(Sample.id)).scalars())


def test_low_confidence_samples_reach_the_cloud_once_each(cloud: CloudEnv, tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", 10 * 2**20)
    a = store.keep(crop(1), read("REVIEW", 0.40))
    b = store.keep(crop(2), read("REVIEW", 0.91))  # at/above 0.85: not sent
    c = store.keep(crop(1), read("UNREADABLE", 0.0))  # the same image again (e.g. relabelled)
    up = uploader(cloud, store, tmp_path)
    result = up.upload_round()
    assert (result.uploaded, result.skipped, result.deduplicated) == (2, 1, 1)
    rows = cloud_rows(cloud)
    assert [r.sample_id for r in rows] == [a, c] and b is not None
    assert rows[0].sha256 == rows[1].sha256
    assert rows[0].status == "new" and rows[0].read_status == "REVIEW"
    assert rows[0].confidence == pytest.approx(0.40) and rows[0].model_version == "ocr-test"
    assert rows[0].meta["gtin"] == "06901234567892" and rows[0].org == "org-01"
    # stored once: one blob, the exact bytes the edge kept
    blobs = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    assert blobs[0].read_bytes() == store.load(a)[0]  # type: ignore[arg-type]
    assert stat.S_IMODE(blobs[0].stat().st_mode) == 0o600
    # the second copy went without its image: far fewer bytes on the wire
    assert up.state.bytes_sent < 1.5 * len(store.load(a)[0]) * 4 / 3  # type: ignore[arg-type]
    # nothing new: the next round sends nothing; the store still holds every sample (review)
    again = up.upload_round()
    assert again.uploaded == 0 and len(store.ids()) == 3
    assert stat.S_IMODE((tmp_path / STATE_FILE).stat().st_mode) == 0o600


class CutAfter:
    """A client whose answers are lost after ``n`` successful sample uploads (the cloud stored
    the sample, the device never heard): what a dropped connection does."""

    def __init__(self, inner: CloudClient, n: int) -> None:
        self.inner, self.n = inner, n

    def post(self, path: str, body: bytes, timeout: float | None = None) -> bytes:
        answer = self.inner.post(path, body, timeout)
        if path == SAMPLES_PATH:
            self.n -= 1
            if self.n < 0:
                raise DockgateError(ErrorCode.SYNC_UNREACHABLE, "cloud unreachable (ReadError)")
        return answer


def test_upload_resumes_after_a_cut_and_a_restart(cloud: CloudEnv, tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", 10 * 2**20)
    ids = [store.keep(crop(10 + i), read("REVIEW", 0.2)) for i in range(5)]
    ident = cloud.enroll("edge-01")
    first = uploader(cloud, store, tmp_path, client=CutAfter(cloud.client(ident), 2))
    with pytest.raises(DockgateError) as exc:
        first.upload_round()
    assert exc.value.code is ErrorCode.SYNC_UNREACHABLE
    assert first.state.cursor == ids[1] and first.state.uploaded == 2
    assert len(cloud_rows(cloud)) == 3  # the third was stored; its answer was lost
    # a restarted agent (fresh object, same state file) carries on after the cursor
    second = uploader(cloud, store, tmp_path, client=cloud.client(ident))
    assert second.state.cursor == ids[1]
    result = second.upload_round()
    assert result.uploaded == 3
    rows = cloud_rows(cloud)
    assert [r.sample_id for r in rows] == ids  # the re-sent third one is not stored twice
    assert second.pending() == []


def test_uploads_keep_to_the_bandwidth_cap(cloud: CloudEnv, tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", 10 * 2**20)
    for i in range(4):
        store.keep(crop(30 + i, (120, 160)), read("REVIEW", 0.1))  # ~58 KiB PNG each
    up = uploader(cloud, store, tmp_path, samples_max_kib_s=200.0)
    started = time.monotonic()
    result = up.upload_round()
    elapsed = time.monotonic() - started
    assert result.uploaded == 4
    # the first sample may go at once; the other three must wait for the cap
    first_body = result.bytes_sent / 4
    floor = (result.bytes_sent - first_body) / (200.0 * 1024)
    assert elapsed >= 0.95 * floor, (elapsed, floor)
    assert result.bytes_sent / max(elapsed, 1e-9) <= 1.4 * 200 * 1024 * 4 / 3


def test_refused_samples_are_skipped_not_blocking(cloud: CloudEnv, tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", 10 * 2**20)
    big = store.keep(crop(40), {**read("REVIEW", 0.3), "text": "x" * 20_000})
    ok = store.keep(crop(41), read("REVIEW", 0.3))
    up = uploader(cloud, store, tmp_path)
    result = up.upload_round()
    assert (result.refused, result.uploaded) == (1, 1)
    assert [r.sample_id for r in cloud_rows(cloud)] == [ok] and big is not None
    assert up.state.cursor == ok


def test_cloud_refuses_bad_uploads_with_codes(cloud: CloudEnv, tmp_path: Path) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    png = SampleStore(tmp_path / "s", 2**20)
    sid = png.keep(crop(50), read("REVIEW", 0.3))
    assert sid is not None
    data, _ = png.load(sid)
    sha = hashlib.sha256(data).hexdigest()
    import base64

    def send(**over: Any) -> ErrorCode | None:
        fields: dict[str, Any] = {
            "device_id": "edge-01", "sample_id": sid, "sha256": sha, "size": len(data),
            "data": base64.b64encode(data).decode(), "metadata": {},
        }  # fmt: skip
        fields.update(over)
        body = SampleUpload(**fields).model_dump_json().encode()
        try:
            client.post(SAMPLES_PATH, body)
            return None
        except DockgateError as exc:
            return exc.code

    assert send(sha256="0" * 64) is ErrorCode.SAMPLE_INVALID  # bytes do not match the hash
    jpeg_claim = send(content_type="image/jpeg")
    assert jpeg_claim is ErrorCode.SAMPLE_INVALID  # PNG bytes called JPEG
    assert send(size=len(data) + 1) is ErrorCode.SAMPLE_INVALID
    assert send(data=None) is ErrorCode.SAMPLE_INVALID  # no bytes and the cloud has none
    assert send(device_id="edge-02") is ErrorCode.DEVICE_MISMATCH
    assert send(metadata={"t": "x" * 20_000}) is ErrorCode.SAMPLE_INVALID
    assert send() is None
    assert send(data=None) is None  # now the cloud holds the bytes: metadata alone is enough
    other = crop(51)
    sid2 = png.keep(other, read("REVIEW", 0.3))
    data2, _ = png.load(sid2)  # type: ignore[arg-type]
    assert (
        send(sha256=hashlib.sha256(data2).hexdigest(), size=len(data2),
             data=base64.b64encode(data2).decode())
        is ErrorCode.SAMPLE_INVALID
    )  # fmt: skip  # the same sample id with other bytes
    unsigned = cloud.http.post(SAMPLES_PATH, content=b"{}")
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "UNAUTHENTICATED"
    assert len(cloud_rows(cloud)) == 1


def test_local_blob_store(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(100)
    sha = hashlib.sha256(data).hexdigest()
    assert not store.has(sha) and store.size(sha) is None
    assert store.put(sha, data) is True
    assert store.put(sha, data) is False  # stored once
    assert store.get(sha) == data and store.size(sha) == len(data) and store.has(sha)
    assert stat.S_IMODE((tmp_path / "blobs").stat().st_mode) == 0o700
    with pytest.raises(DockgateError) as exc:
        store.put("0" * 64, data)
    assert exc.value.code is ErrorCode.SAMPLE_INVALID
    with pytest.raises(DockgateError) as exc:
        store.get("../../etc/passwd")
    assert exc.value.code is ErrorCode.SAMPLE_INVALID
    with pytest.raises(DockgateError) as exc:
        store.get("f" * 64)
    assert exc.value.code is ErrorCode.NOT_FOUND
    assert not list((tmp_path / "blobs").rglob(".part-*"))
