"""The blob store contract, run against the local directory AND an S3-compatible store (moto's
standalone server over real HTTP), plus the samples upload endpoint storing into S3."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.config import CloudConfig
from cloud.deps import Services
from cloud.services.blobs import BlobStore, LocalBlobStore, S3BlobStore, blob_store_for
from cloud.services.ca import init_ca
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.samples import SAMPLES_HAVE_PATH, SAMPLES_PATH, SampleUpload
from tests.cloud.env import CloudEnv
from tests.loop.conftest import S3Server

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, aws_env: None, s3_server: S3Server
) -> BlobStore:
    # s3_server is asked for by both variants: a module-scoped server started before the first
    # test's leak snapshot is not taken for a leak of that test
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return S3BlobStore(s3_server.new_bucket(), "samples/", endpoint_url=s3_server.endpoint_url)


# -- the contract, both stores -----------------------------------------------------------------
def test_put_stores_once_and_reads_back(store: BlobStore) -> None:
    h = sha(PNG)
    assert not store.has(h) and store.size(h) is None
    assert store.put(h, PNG) is True
    assert store.put(h, PNG) is False  # already there: stored once
    assert store.has(h) and store.size(h) == len(PNG)
    assert store.get(h) == PNG


def test_bytes_must_match_their_hash(store: BlobStore) -> None:
    with pytest.raises(DockgateError) as err:
        store.put(sha(b"other bytes"), PNG)
    assert err.value.code is ErrorCode.SAMPLE_INVALID
    assert not store.has(sha(b"other bytes")) and not store.has(sha(PNG))


@pytest.mark.parametrize("name", ["ABC", "../../etc/passwd", "a" * 64 + "/", "0" * 63, ""])
def test_names_that_are_not_a_sha256_are_refused(store: BlobStore, name: str) -> None:
    for call in (lambda: store.has(name), lambda: store.get(name), lambda: store.size(name)):
        with pytest.raises(DockgateError) as err:
            call()
        assert err.value.code is ErrorCode.SAMPLE_INVALID
    with pytest.raises(DockgateError):
        store.put(name, PNG)


def test_unknown_blob_is_not_found(store: BlobStore) -> None:
    with pytest.raises(DockgateError) as err:
        store.get("0" * 64)
    assert err.value.code is ErrorCode.NOT_FOUND


def test_distinct_bytes_are_distinct_blobs(store: BlobStore) -> None:
    blobs = [PNG + bytes([i]) for i in range(5)]
    assert all(store.put(sha(b), b) for b in blobs)
    assert [store.get(sha(b)) for b in blobs] == blobs


def test_concurrent_puts_of_the_same_bytes_all_succeed(store: BlobStore) -> None:
    h, errors, answers = sha(PNG), [], []

    def put() -> None:
        try:
            answers.append(store.put(h, PNG))
        except Exception as exc:  # pragma: no cover - what the test looks for
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(answers) == 4 and True in answers
    assert store.get(h) == PNG


# -- S3 specifics ----------------------------------------------------------------------------------
def test_s3_layout_prefix_and_md5(aws_env: None, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = S3BlobStore(bucket, "fleet/samples", endpoint_url=s3_server.endpoint_url)
    h = sha(PNG)
    store.put(h, PNG)
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"fleet/samples/{h[:2]}/{h[2:4]}/{h}"]
    head = s3_server.client().head_object(Bucket=bucket, Key=keys[0])
    assert head["ETag"].strip('"') == hashlib.md5(PNG, usedforsecurity=False).hexdigest()
    # no credentials in what a log line would print
    assert "testing" not in repr(store) and bucket in repr(store)


def test_s3_store_failures_are_not_mistaken_for_missing_blobs(
    aws_env: None, s3_server: S3Server
) -> None:
    store = S3BlobStore("no-such-bucket-dg", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(Exception) as err:
        store.get(sha(PNG))
    assert not isinstance(err.value, DockgateError)  # a 5xx for the device: it retries later
    with pytest.raises(Exception) as err2:
        store.put(sha(PNG), PNG)
    assert not isinstance(err2.value, DockgateError)


def test_config_selects_the_store(aws_env: None, s3_server: S3Server, tmp_path: Path) -> None:
    local = blob_store_for(CloudConfig(blob_dir=tmp_path / "b"))
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "b"
    cfg = CloudConfig(
        blob_store="s3", s3_bucket="bkt", s3_prefix="p/", s3_endpoint_url=s3_server.endpoint_url
    )
    s3 = blob_store_for(cfg)
    assert isinstance(s3, S3BlobStore) and (s3.bucket, s3.prefix) == ("bkt", "p/")
    assert blob_store_for(cfg) is s3  # one client (and connection pool) per setting
    with pytest.raises(ValueError, match="needs a bucket"):
        CloudConfig(blob_store="s3")


# -- the samples endpoint on S3 -------------------------------------------------------------------
@pytest.fixture
def s3_cloud(aws_env: None, s3_server: S3Server, tmp_path: Path) -> Iterator[tuple[CloudEnv, str]]:
    bucket = s3_server.new_bucket()
    init_ca(tmp_path / "ca", "org-01")
    config = CloudConfig(
        database_url=f"sqlite:///{tmp_path}/cloud.db",
        issuing_dir=tmp_path / "ca" / "issuing",
        blob_dir=tmp_path / "blobs",
        blob_store="s3",
        s3_bucket=bucket,
        s3_endpoint_url=s3_server.endpoint_url,
    )
    svc = Services.from_config(config)
    try:
        with TestClient(create_app(svc)) as http:
            yield CloudEnv(svc, http, tmp_path), bucket
    finally:
        svc.close()


def test_samples_upload_stores_into_s3(s3_cloud: tuple[CloudEnv, str], s3_server: S3Server) -> None:
    cloud, bucket = s3_cloud
    client = cloud.client(cloud.enroll("edge-01"))
    h = sha(PNG)
    up = SampleUpload(
        device_id="edge-01",
        sample_id="1733480000000-0001",
        sha256=h,
        size=len(PNG),
        data=base64.b64encode(PNG).decode(),
        status="REVIEW",
        confidence=0.4,
    )
    receipt = client.post(SAMPLES_PATH, up.model_dump_json().encode())
    assert b'"blob_new":true' in receipt.replace(b" ", b"")
    obj = s3_server.client().get_object(Bucket=bucket, Key=f"samples/{h[:2]}/{h[2:4]}/{h}")
    assert obj["Body"].read() == PNG
    assert not (cloud.tmp / "blobs").exists()  # nothing went to the local directory
    have = client.post(SAMPLES_HAVE_PATH, f'{{"device_id":"edge-01","sha256":["{h}"]}}'.encode())
    assert h in have.decode()
    # a second sample with the same bytes goes without them: the cloud finds them in S3
    again = up.model_copy(update={"sample_id": "1733480000000-0002", "data": None})
    assert b'"blob_new":false' in client.post(SAMPLES_PATH, again.model_dump_json().encode())


def test_dataset_export_reads_its_images_from_s3(
    aws_env: None, s3_server: S3Server, tmp_path: Path
) -> None:
    """The whole cloud side on S3: upload, label, snapshot, export."""
    from cloud.services import datasets
    from tests.loop.env import loop_cloud, png

    bucket = s3_server.new_bucket()
    with loop_cloud(
        f"sqlite:///{tmp_path}/cloud.db", tmp_path, blob_store="s3", s3_bucket=bucket,
        s3_endpoint_url=s3_server.endpoint_url,
    ) as cloud:  # fmt: skip
        image = png(21)
        sample = cloud.upload(image).id
        r = cloud.http.post(
            f"/v1/samples/{sample}/labels",
            json={"kind": "code", "text": "(10)S3LOT1"},
            headers=cloud.login("labeler"),
        )
        assert r.status_code == 200, r.text
        shown = cloud.http.get(f"/v1/samples/{sample}/image", headers=cloud.login("labeler"))
        assert shown.content == image
        with cloud.svc.sessions.begin() as s:
            ds, _ = datasets.create(s, "test")
            ds_id = ds.id
        with cloud.svc.sessions() as s:
            manifest = datasets.export(s, ds_id, blob_store_for(cloud.svc.config), tmp_path / "out")
    (member,) = manifest["members"]
    assert (tmp_path / "out" / member["file"]).read_bytes() == image
    assert not (tmp_path / "blobs").exists()
