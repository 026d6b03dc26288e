"""Device registry: enrollment tokens, enrollment, revocation and certificate look-up."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import Device, DeviceCert, EnrollmentToken, utcnow
from cloud.services.audit import audit
from cloud.services.ca import NAME_PATTERN, Issuer, issue_device_cert
from edge.contracts.envelope import DeviceKey
from edge.contracts.errors import DockgateError, ErrorCode


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    s: Session, actor: str, org: str, site: str, device_id: str | None, ttl: dt.timedelta
) -> str:
    """A one-time enrollment token (shown once; only its hash is stored)."""
    for value in (org, site, *([device_id] if device_id else [])):
        if not NAME_PATTERN.match(value):
            raise DockgateError(ErrorCode.EVENT_INVALID, f"bad name {value!r} (2-63 of a-z0-9-)")
    token = "dgt_" + secrets.token_urlsafe(24)
    s.add(
        EnrollmentToken(
            token_hash=_hash(token),
            org=org,
            site=site,
            device_id=device_id,
            expires_at=utcnow() + ttl,
            created_by=actor,
        )
    )
    audit(s, actor, "token.create", None, org=org, site=site, device_id=device_id)
    return token


@dataclass(frozen=True)
class Enrolled:
    device_id: str
    site: str
    org: str
    certificate: str
    chain: str


def enroll(s: Session, issuer: Issuer, token: str, device_id: str, csr: str, days: int) -> Enrolled:
    """Consume ``token`` and certify the CSR; the token row is locked so it is used once."""
    row = s.execute(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == _hash(token)).with_for_update()
    ).scalar_one_or_none()
    now = utcnow()
    reason = None
    if row is None:
        reason = "unknown enrollment token"
    elif row.used_at is not None:
        reason = "enrollment token already used"
    elif _aware(row.expires_at) < now:
        reason = "enrollment token expired"
    elif row.device_id is not None and row.device_id != device_id:
        reason = f"token is for device {row.device_id}"
    if reason is not None or row is None:
        raise DockgateError(ErrorCode.TOKEN_INVALID, reason or "invalid token")
    existing = s.get(Device, device_id, with_for_update=True)
    if existing is not None and existing.status == "revoked":
        raise DockgateError(ErrorCode.DEVICE_REVOKED, f"device {device_id} is revoked")
    cert = issue_device_cert(issuer, csr, device_id, row.site, row.org, days)
    row.used_at, row.used_by = now, device_id
    if existing is None:
        s.add(Device(id=device_id, site=row.site, org=row.org))
    elif (existing.site, existing.org) != (row.site, row.org):
        raise DockgateError(ErrorCode.DEVICE_MISMATCH, f"{device_id} belongs to another site")
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key = DeviceKey.from_cert(cert)
    s.add(
        DeviceCert(
            fingerprint=key.fingerprint,
            device_id=device_id,
            cert_pem=pem,
            not_after=cert.not_valid_after_utc,
        )
    )
    audit(
        s,
        f"device:{device_id}",
        "device.enroll",
        None,
        fingerprint=key.fingerprint,
        site=row.site,
        org=row.org,
    )
    return Enrolled(device_id, row.site, row.org, pem, issuer.chain_pem())


def revoke(s: Session, actor: str, device_id: str) -> Device:
    """Refuse the device's new submissions from now on; what it sent stays valid."""
    dev = s.get(Device, device_id, with_for_update=True, populate_existing=True)
    if dev is None:
        raise DockgateError(ErrorCode.DEVICE_UNKNOWN, f"no device {device_id}")
    if dev.status != "revoked":
        dev.status, dev.revoked_at, dev.revoked_through_seq = "revoked", utcnow(), dev.hwm_seq
        audit(
            s,
            actor,
            "device.revoke",
            ErrorCode.DEVICE_REVOKED,
            device_id=device_id,
            through_seq=dev.hwm_seq,
        )
    return dev


class KeyCache:
    """Certificates by fingerprint. A certificate never changes, so caching it is safe across
    workers; revocation is a device status and is always read from the database."""

    def __init__(self) -> None:
        self._keys: dict[str, DeviceKey] = {}

    def get(self, s: Session, fingerprint: object) -> DeviceKey | None:
        if not isinstance(fingerprint, str):
            return None
        key = self._keys.get(fingerprint)
        if key is None:
            row = s.get(DeviceCert, fingerprint)
            if row is None:
                return None
            key = DeviceKey.from_cert(x509.load_pem_x509_certificate(row.cert_pem.encode()))
            if len(self._keys) > 100_000:
                self._keys.clear()
            self._keys[fingerprint] = key
        return key


def device_count(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(Device)) or 0)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes even for timezone columns; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
