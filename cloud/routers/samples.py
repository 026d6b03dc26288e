"""Device endpoints for training samples: ``POST /v1/samples`` and ``POST /v1/samples/have``.

Both are signed by the device like ingest (the signature covers the body, image included). The
image goes to the content-addressed blob store (stored once per distinct bytes); the row in
``samples`` is the sample inbox's entry, unique per (device, sample id), so a re-sent sample
(a retry after a cut connection, a restarted agent) is answered as a duplicate, never stored
twice. Revoked devices may not upload. A sample that arrives already labeled (an operator's
correction in the edge panel: ``metadata.label``) gets that label, with the device as its author
(``cloud.services.labels.label_from_device``), in the same transaction as its row.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.auth import authenticate_device
from cloud.db.models import Device, Sample
from cloud.deps import Services, Svc
from cloud.problems import check_file_name
from cloud.services.blobs import BlobStore, blob_store_for
from cloud.services.labels import label_from_device
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.samples import (
    MAX_METADATA_BYTES,
    SAMPLES_HAVE_PATH,
    SAMPLES_PATH,
    HaveRequest,
    HaveResponse,
    SampleReceipt,
    SampleUpload,
)

router = APIRouter(tags=["devices"])

MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def blob_store(svc: Services) -> BlobStore:
    """The configured store: the local directory by default, S3 when ``blob_store = "s3"``."""
    return blob_store_for(svc.config)


def _device(svc: Services, auth: str | None, path: str, body: bytes) -> tuple[str, str, str]:
    with svc.sessions.begin() as s:
        dev: Device = authenticate_device(
            s, svc.keys, auth, "POST", path, body, svc.config.clock_skew_s
        )
        if dev.status == "revoked":
            raise DockgateError(ErrorCode.DEVICE_REVOKED, f"device {dev.id} is revoked")
        return dev.id, dev.org, dev.site


def _have(svc: Services, auth: str | None, body: bytes) -> HaveResponse:
    device_id, _, _ = _device(svc, auth, SAMPLES_HAVE_PATH, body)
    try:
        req = HaveRequest.model_validate_json(body)
    except ValidationError as exc:
        raise DockgateError(ErrorCode.SAMPLE_INVALID, f"bad request: {exc}"[:300]) from None
    if req.device_id != device_id:
        raise DockgateError(ErrorCode.DEVICE_MISMATCH, "request of another device")
    blobs = blob_store(svc)
    return HaveResponse(have=[h for h in dict.fromkeys(req.sha256) if blobs.has(h)])


def _image(up: SampleUpload, blobs: BlobStore) -> bool:
    """Checks and stores the bytes; True if the blob is new."""
    if up.data is None:
        if blobs.size(up.sha256) != up.size:
            raise DockgateError(
                ErrorCode.SAMPLE_INVALID, "no data and the cloud does not hold these bytes"
            )
        return False
    try:
        data = base64.b64decode(up.data, validate=True)
    except (binascii.Error, ValueError):
        raise DockgateError(ErrorCode.SAMPLE_INVALID, "data is not base64") from None
    if len(data) != up.size:
        raise DockgateError(ErrorCode.SAMPLE_INVALID, f"{len(data)} bytes, size says {up.size}")
    if not data.startswith(MAGIC[up.content_type]):
        raise DockgateError(ErrorCode.SAMPLE_INVALID, f"the bytes are not {up.content_type}")
    return blobs.put(up.sha256, data)  # checks the hash


def _traversal_check(body: bytes) -> None:
    try:
        sample_id = json.loads(body).get("sample_id")
    except (ValueError, AttributeError):
        return
    if isinstance(sample_id, str):
        check_file_name(sample_id, "sample id")


def _upload(svc: Services, auth: str | None, body: bytes) -> SampleReceipt:
    device_id, org, site = _device(svc, auth, SAMPLES_PATH, body)
    try:
        up = SampleUpload.model_validate_json(body)
    except ValidationError as exc:
        _traversal_check(body)  # a sample id that tries to leave the store: PATH_INVALID, audited
        raise DockgateError(ErrorCode.SAMPLE_INVALID, f"bad sample: {exc}"[:300]) from None
    if up.device_id != device_id:
        raise DockgateError(ErrorCode.DEVICE_MISMATCH, "sample of another device")
    meta_bytes = len(json.dumps(up.metadata, ensure_ascii=False).encode())
    if meta_bytes > MAX_METADATA_BYTES:
        raise DockgateError(
            ErrorCode.SAMPLE_INVALID,
            f"metadata of {meta_bytes} bytes, at most {MAX_METADATA_BYTES} allowed",
        )
    blob_new = _image(up, blob_store(svc))
    captured = (
        dt.datetime.fromtimestamp(up.captured_at, dt.UTC) if up.captured_at is not None else None
    )
    for attempt in (1, 2):
        try:
            with svc.sessions.begin() as s:
                return _store_row(s, up, device_id, org, site, captured, blob_new)
        except IntegrityError:
            # the same sample from two requests at once: the retry sees the winner's row
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _store_row(
    s: Session,
    up: SampleUpload,
    device_id: str,
    org: str,
    site: str,
    captured: dt.datetime | None,
    blob_new: bool,
) -> SampleReceipt:
    old = s.execute(
        select(Sample).where(Sample.device_id == device_id, Sample.sample_id == up.sample_id)
    ).scalar_one_or_none()
    if old is not None:
        if old.sha256 != up.sha256:
            raise DockgateError(
                ErrorCode.SAMPLE_INVALID,
                f"sample {up.sample_id} was uploaded before with other bytes",
            )
        return SampleReceipt(
            sample_id=up.sample_id, sha256=up.sha256, id=old.id, duplicate=True, blob_new=blob_new
        )
    row = Sample(
        device_id=device_id,
        org=org,
        site=site,
        sample_id=up.sample_id,
        sha256=up.sha256,
        size=up.size,
        content_type=up.content_type,
        status="new",
        read_status=up.status,
        confidence=up.confidence,
        model_version=up.model_version,
        captured_at=captured,
        meta=up.metadata,
    )
    s.add(row)
    s.flush()
    label_from_device(s, row, device_id)
    return SampleReceipt(
        sample_id=up.sample_id, sha256=up.sha256, id=row.id, duplicate=False, blob_new=blob_new
    )


@router.post(SAMPLES_HAVE_PATH, response_model=HaveResponse)
async def samples_have(*, request: Request, svc: Svc) -> HaveResponse:
    """Which of these image hashes the cloud already stores (the device then sends only
    their metadata)."""
    body = await request.body()
    return await run_in_threadpool(_have, svc, request.headers.get("authorization"), body)


@router.post(SAMPLES_PATH, response_model=SampleReceipt)
async def upload_sample(*, request: Request, svc: Svc) -> SampleReceipt:
    """Store one training sample (image by content hash, metadata as an inbox row)."""
    body = await request.body()
    return await run_in_threadpool(_upload, svc, request.headers.get("authorization"), body)
