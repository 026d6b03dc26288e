"""People: log in and out; admins create enrollment tokens and revoke devices."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cloud import auth
from cloud.db.models import Conflict
from cloud.deps import AuthHeader, Svc
from cloud.services import registry
from cloud.services.audit import audit
from edge.contracts.errors import DockgateError, ErrorCode

router = APIRouter(tags=["people"])


class LoginRequest(BaseModel):
    username: str = Field(..., min_length=1, max_length=63)
    password: str = Field(..., min_length=1, max_length=256)
    totp: str | None = Field(None, max_length=10, description="one-time code (admins)")


class LoginResponse(BaseModel):
    token: str
    role: str
    expires_in_s: int


@router.post("/v1/auth/login", response_model=LoginResponse)
def login(*, body: LoginRequest, svc: Svc) -> LoginResponse:
    cfg = svc.config
    try:
        with svc.sessions.begin() as s:
            token, user = auth.login(
                s, body.username, body.password, body.totp, cfg.session_minutes
            )
            role = user.role
    except DockgateError as exc:
        if exc.code in (ErrorCode.UNAUTHENTICATED, ErrorCode.TOTP_REQUIRED):
            with svc.sessions.begin() as s:
                auth.record_failure(
                    s, body.username, exc.code, cfg.login_max_failures, cfg.login_lock_s
                )
        raise
    return LoginResponse(token=token, role=role, expires_in_s=cfg.session_minutes * 60)


@router.post("/v1/auth/logout", status_code=204)
def logout(*, authorization: AuthHeader, svc: Svc) -> None:
    with svc.sessions.begin() as s:
        auth.logout(s, authorization)


class TokenRequest(BaseModel):
    org: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    site: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    device_id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    ttl_hours: float = Field(24.0, gt=0, le=24 * 30)


class TokenResponse(BaseModel):
    token: str = Field(..., description="shown once; only its hash is stored")
    expires_in_s: int


@router.post("/v1/tokens", response_model=TokenResponse)
def create_token(
    *,
    body: TokenRequest,
    authorization: AuthHeader,
    svc: Svc,
) -> TokenResponse:
    """Admin: a one-time enrollment token for a device of ``site``."""
    with svc.sessions.begin() as s:
        caller = auth.person(s, authorization)
        auth.require_role(caller, "admin")
        token = registry.create_token(
            s, caller.actor, body.org, body.site, body.device_id, dt.timedelta(hours=body.ttl_hours)
        )
    return TokenResponse(token=token, expires_in_s=int(body.ttl_hours * 3600))


class RevokeResponse(BaseModel):
    device_id: str
    status: str
    revoked_through_seq: int | None


@router.post("/v1/devices/{device_id}/revoke", response_model=RevokeResponse)
def revoke(*, device_id: str, authorization: AuthHeader, svc: Svc) -> RevokeResponse:
    """Admin: refuse this device's new submissions; what it sent before stays valid."""
    with svc.sessions.begin() as s:
        caller = auth.person(s, authorization)
        auth.require_role(caller, "admin")
        dev = registry.revoke(s, caller.actor, device_id)
        return RevokeResponse(
            device_id=dev.id, status=dev.status, revoked_through_seq=dev.revoked_through_seq
        )


class ResolveRequest(BaseModel):
    note: str = Field(..., min_length=3, max_length=500, description="what QA decided and why")


@router.post("/v1/conflicts/{conflict_id}/resolve", status_code=204)
def resolve_conflict(
    *, conflict_id: int, body: ResolveRequest, authorization: AuthHeader, svc: Svc
) -> None:
    """QA: mark a FROZEN_CONFLICT or CHAIN_FORK as handled. It stays listed, with who and why;
    the events themselves are never changed."""
    with svc.sessions.begin() as s:
        caller = auth.person(s, authorization)
        auth.require_role(caller, "qa")
        row = s.get(Conflict, conflict_id, with_for_update=True)
        if row is None:
            raise DockgateError(ErrorCode.NOT_FOUND, f"no conflict {conflict_id}")
        row.resolved_by = caller.name
        audit(
            s,
            caller.actor,
            "conflict.resolve",
            ErrorCode(row.code),
            conflict=conflict_id,
            note=body.note,
        )
