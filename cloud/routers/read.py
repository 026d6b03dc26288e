"""Read endpoints for people: devices, events, stock, audit, quarantine, conflicts, trust bundle."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud import auth
from cloud.db.models import Audit, Conflict, Device, DeviceCert, EventRow, Quarantine, Stock
from cloud.deps import AuthHeader, Services, Svc
from edge.contracts.errors import DockgateError, ErrorCode

router = APIRouter(tags=["read"])


def _session(svc: Services, authorization: str | None, role: str) -> tuple[Session, auth.Caller]:
    s = svc.reader()
    try:
        caller = auth.person(s, authorization)
        auth.require_role(caller, role)
    except DockgateError:
        s.close()
        raise
    return s, caller


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


class DeviceOut(BaseModel):
    id: str
    site: str
    org: str
    status: str
    last_seen_at: str | None
    hwm_seq: int
    head_hash: str
    forked: bool
    revoked_through_seq: int | None


@router.get("/v1/devices", response_model=list[DeviceOut])
def devices(*, authorization: AuthHeader, svc: Svc) -> list[DeviceOut]:
    s, _ = _session(svc, authorization, "viewer")
    with s:
        rows = s.execute(select(Device).order_by(Device.id)).scalars().all()
        return [
            DeviceOut(
                id=d.id,
                site=d.site,
                org=d.org,
                status=d.status,
                last_seen_at=_iso(d.last_seen_at),
                hwm_seq=d.hwm_seq,
                head_hash=d.head_hash,
                forked=d.forked,
                revoked_through_seq=d.revoked_through_seq,
            )
            for d in rows
        ]


@router.get("/v1/devices/{device_id}/events")
def events(
    *,
    device_id: str,
    after: int = 0,
    limit: int = Query(100, ge=1, le=1000),
    envelopes: bool = False,
    authorization: AuthHeader,
    svc: Svc,
) -> list[dict[str, Any]]:
    """A device's events in sequence order (``envelopes=true`` adds the signed JWS)."""
    s, _ = _session(svc, authorization, "viewer")
    with s:
        rows = (
            s.execute(
                select(EventRow)
                .where(EventRow.device_id == device_id, EventRow.seq > after)
                .order_by(EventRow.seq)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        return [
            {
                "id": r.id,
                "seq": r.seq,
                "kind": r.kind,
                "actor": r.actor,
                "ts": r.ts,
                "payload": r.payload,
                "hash": r.hash,
                "prev_hash": r.prev_hash,
                "model_version": r.model_version,
                "received_at": _iso(r.received_at),
                **({"envelope": r.envelope} if envelopes else {}),
            }
            for r in rows
        ]


@router.get("/v1/stock")
def stock(
    *,
    site: str | None = None,
    sku: str | None = None,
    lot: str | None = None,
    authorization: AuthHeader,
    svc: Svc,
) -> list[dict[str, Any]]:
    """Fleet stock per site / sku / lot (batch) and location."""
    s, _ = _session(svc, authorization, "viewer")
    query = select(Stock).order_by(Stock.site, Stock.sku, Stock.lot, Stock.location)
    for column, value in ((Stock.site, site), (Stock.sku, sku), (Stock.lot, lot)):
        if value is not None:
            query = query.where(column == value)
    with s:
        return [
            {
                "site": r.site,
                "device_id": r.device_id,
                "location": r.location,
                "sku": r.sku,
                "lot": r.lot,
                "qty": r.qty,
            }
            for r in s.execute(query.limit(10000)).scalars()
        ]


@router.get("/v1/audit")
def audit_log(
    *,
    after: int = 0,
    limit: int = Query(200, ge=1, le=1000),
    authorization: AuthHeader,
    svc: Svc,
) -> list[dict[str, Any]]:
    s, _ = _session(svc, authorization, "admin")
    with s:
        rows = s.execute(select(Audit).where(Audit.id > after).order_by(Audit.id).limit(limit))
        return [
            {
                "id": a.id,
                "at": _iso(a.at),
                "actor": a.actor,
                "action": a.action,
                "code": a.code,
                "detail": a.detail,
            }
            for a in rows.scalars()
        ]


@router.get("/v1/quarantine")
def quarantine(
    *,
    after: int = 0,
    limit: int = Query(200, ge=1, le=1000),
    authorization: AuthHeader,
    svc: Svc,
) -> list[dict[str, Any]]:
    s, _ = _session(svc, authorization, "qa")
    with s:
        rows = s.execute(
            select(Quarantine).where(Quarantine.id > after).order_by(Quarantine.id).limit(limit)
        )
        return [
            {
                "id": q.id,
                "received_at": _iso(q.received_at),
                "device_id": q.device_id,
                "seq": q.seq,
                "event_id": q.event_id,
                "code": q.code,
                "reason": q.reason,
            }
            for q in rows.scalars()
        ]


@router.get("/v1/conflicts")
def conflicts(
    *,
    code: str | None = None,
    authorization: AuthHeader,
    svc: Svc,
) -> list[dict[str, Any]]:
    """What QA must look at: FROZEN_CONFLICT picks and CHAIN_FORK alerts. Never hidden."""
    s, _ = _session(svc, authorization, "qa")
    query = select(Conflict).order_by(Conflict.id)
    if code is not None:
        query = query.where(Conflict.code == code)
    with s:
        return [
            {
                "id": c.id,
                "created_at": _iso(c.created_at),
                "code": c.code,
                "device_id": c.device_id,
                "seq": c.seq,
                "event_id": c.event_id,
                "detail": c.detail,
                "resolved_by": c.resolved_by,
            }
            for c in s.execute(query.limit(1000)).scalars()
        ]


@router.get("/v1/trust-bundle")
def trust_bundle(*, authorization: AuthHeader, svc: Svc) -> dict[str, Any]:
    """CA chain, device certificates and revocations: what ``dockgate verify`` needs offline."""
    s, _ = _session(svc, authorization, "viewer")
    issuer = svc.require_issuer()
    with s:
        certs = [c.cert_pem for c in s.execute(select(DeviceCert)).scalars()]
        revoked = [
            {
                "device_id": d.id,
                "revoked_at": _iso(d.revoked_at),
                "through_seq": d.revoked_through_seq or 0,
            }
            for d in s.execute(select(Device).where(Device.status == "revoked")).scalars()
        ]
    if not certs and issuer is None:
        raise DockgateError(ErrorCode.NOT_FOUND, "no devices")
    return {"version": 1, "chain": issuer.chain_pem(), "devices": certs, "revoked": revoked}
