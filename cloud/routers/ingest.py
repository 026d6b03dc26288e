"""Device endpoints: enrollment, batch ingest, the freeze long poll."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from cloud.auth import authenticate_device
from cloud.db.models import Freeze
from cloud.deps import Services, Svc
from cloud.services.ingest import check_batch
from cloud.services.ingest import ingest as apply_batch
from cloud.services.registry import enroll as enroll_device
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.sync import (
    FREEZES_PATH,
    INGEST_PATH,
    FreezeFeed,
    FreezeNotice,
    SyncBatch,
    SyncResult,
)

router = APIRouter(tags=["devices"])


class EnrollRequest(BaseModel):
    token: str = Field(..., min_length=8, max_length=200)
    device_id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    csr: str = Field(..., max_length=8192)


class EnrollResponse(BaseModel):
    device_id: str
    site: str
    org: str
    certificate: str
    chain: str


@router.post("/v1/enroll", response_model=EnrollResponse)
def enroll(*, body: EnrollRequest, svc: Svc) -> EnrollResponse:
    """Exchange a one-time token and a CSR for a device certificate (key stays on device)."""
    issuer = svc.require_issuer()
    with svc.sessions.begin() as s:
        done = enroll_device(s, issuer, body.token, body.device_id, body.csr, svc.config.cert_days)
    return EnrollResponse(**done.__dict__)


def _ingest(svc: Services, authorization: str | None, body: bytes) -> SyncResult:
    # 1. who is it (the nonce is spent even if what follows fails: the device re-signs)
    with svc.sessions.begin() as s:
        dev = authenticate_device(
            s, svc.keys, authorization, "POST", INGEST_PATH, body, svc.config.clock_skew_s
        )
        device_id = dev.id
    try:
        batch = SyncBatch.model_validate_json(body)
    except ValidationError as exc:
        raise DockgateError(ErrorCode.EVENT_INVALID, f"bad batch: {exc}"[:300]) from None
    if batch.device_id != device_id:
        raise DockgateError(ErrorCode.DEVICE_MISMATCH, "batch of another device")
    # 2. verify every envelope, holding no lock; 3. the chain step under the device row lock
    with svc.reader() as s:
        checked = check_batch(s, svc.keys, batch)
    for attempt in range(3):
        try:
            with svc.sessions.begin() as s:
                return apply_batch(s, svc.keys, batch, checked)
        except IntegrityError:
            # Only a race on a unique key can get here (the device row lock prevents the rest);
            # the retry sees the winner's rows and answers duplicate/REPLAY accordingly.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@router.post(INGEST_PATH, response_model=SyncResult)
async def ingest(*, request: Request, svc: Svc) -> SyncResult:
    """Store a device's signed envelopes once each; answers the high-water mark."""
    body = await request.body()
    auth = request.headers.get("authorization")
    return await run_in_threadpool(_ingest, svc, auth, body)


def _device_for_poll(svc: Services, auth: str | None, path: str) -> tuple[str, str]:
    with svc.sessions.begin() as s:
        dev = authenticate_device(s, svc.keys, auth, "GET", path, b"", svc.config.clock_skew_s)
        if dev.status == "revoked":
            raise DockgateError(ErrorCode.DEVICE_REVOKED, f"device {dev.id} is revoked")
        return dev.id, dev.org


def _freezes_since(svc: Services, device_id: str, org: str, since: int) -> FreezeFeed:
    with svc.reader() as s:
        rows = (
            s.execute(
                select(Freeze)
                .where(Freeze.org == org, Freeze.origin_device != device_id, Freeze.id > since)
                .order_by(Freeze.id)
                .limit(200)
            )
            .scalars()
            .all()
        )
    notices = [
        FreezeNotice(
            cursor=r.id,
            sku=r.sku,
            lot=r.lot,
            reason=r.reason,
            origin_device=r.origin_device,
            event_id=r.event_id,
            frozen_at=r.frozen_at,
        )
        for r in rows
    ]
    return FreezeFeed(cursor=max([since, *[n.cursor for n in notices]]), freezes=notices)


@router.get(FREEZES_PATH, response_model=FreezeFeed)
async def freezes(*, request: Request, since: int = 0, wait: float = 25.0, svc: Svc) -> FreezeFeed:
    """Long poll: QA freezes of this device's organisation made by other devices, after ``since``.

    The database is polled every ``freeze_poll_s``, so any worker can answer; no in-process state.
    The signature covers the path only, so ``since``/``wait`` are not secrets, just a cursor.
    """
    auth = request.headers.get("authorization")
    device_id, org = await run_in_threadpool(_device_for_poll, svc, auth, FREEZES_PATH)
    deadline = time.monotonic() + max(0.0, min(wait, 55.0))
    while True:
        feed = await run_in_threadpool(_freezes_since, svc, device_id, org, since)
        if feed.freezes or time.monotonic() >= deadline or await request.is_disconnected():
            return feed
        await asyncio.sleep(svc.config.freeze_poll_s)
