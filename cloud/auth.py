"""Who is calling: devices by a signature over each request, people by session and role.

Devices sign ``(method, path, sha256(body), time, nonce)`` with their certificate key (the
``dockgate-request+jws`` of ``edge.contracts.envelope``); a nonce is accepted once within the
clock-skew window, so a captured request cannot be replayed. People log in with a password
(argon2id) plus, for admins, a TOTP code usable once; they get a random bearer session token of
which only the SHA-256 is stored. Roles are ordered viewer < operator < qa < admin; ``labeler``
stands below them all: it may only label training samples (:data:`LABELERS`), nothing else.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import time
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.db.models import Device, RequestNonce, SessionRow, User, utcnow
from cloud.services.audit import audit
from cloud.services.registry import KeyCache
from edge.contracts.envelope import TYP_REQUEST, read_header, verify_jws
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.sync import AUTH_SCHEME

ROLES = ("labeler", "viewer", "operator", "qa", "admin")
LABELERS = ("labeler", "qa", "admin")  # who may label samples (cloud/routers/labels.py)
_hasher = PasswordHasher()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Caller:
    kind: str  # "device" | "person"
    name: str
    role: str
    org: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"


def authenticate_device(
    s: Session,
    keys: KeyCache,
    authorization: str | None,
    method: str,
    path: str,
    body: bytes,
    skew_s: int,
) -> Device:
    """Check a device request signature; returns the device row (revoked ones too)."""
    if not authorization or not authorization.startswith(AUTH_SCHEME + " "):
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "device request signature required")
    token = authorization[len(AUTH_SCHEME) + 1 :].strip()
    key = keys.get(s, read_header(token).get("x5t#S256"))
    if key is None:
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "certificate not issued by this fleet")
    key.check_valid_at(utcnow())
    claims = verify_jws(token, key, TYP_REQUEST)
    if claims.get("m") != method or claims.get("p") != path:
        raise DockgateError(ErrorCode.SIG_INVALID, "signature is for another request")
    if claims.get("body") != hashlib.sha256(body).hexdigest():
        raise DockgateError(ErrorCode.SIG_INVALID, "body does not match its signature")
    ts = claims.get("ts")
    now = time.time()
    if not isinstance(ts, int) or abs(now - ts) > skew_s:
        raise DockgateError(
            ErrorCode.CLOCK_SKEW, f"device clock off by more than {skew_s} s", server_time=int(now)
        )
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64:
        raise DockgateError(ErrorCode.SIG_INVALID, "request signature without a nonce")
    try:
        with s.begin_nested():
            s.add(RequestNonce(device_id=key.device_id, nonce=nonce))
    except IntegrityError:
        raise DockgateError(ErrorCode.REPLAY, "this signed request was already used") from None
    # Forget nonces older than the window: a replay that old fails the time check anyway.
    cutoff = utcnow() - dt.timedelta(seconds=2 * skew_s)
    if secrets.randbelow(200) == 0:
        s.execute(delete(RequestNonce).where(RequestNonce.at < cutoff))
    dev = s.get(Device, key.device_id)
    if dev is None:
        raise DockgateError(ErrorCode.UNAUTHENTICATED, f"no device {key.device_id}")
    return dev


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise DockgateError(ErrorCode.CONFIG_INVALID, "passwords need at least 10 characters")
    return _hasher.hash(password)


def add_user(s: Session, actor: str, username: str, role: str, password: str) -> str | None:
    """Create a person; returns the TOTP secret for admins (shown once), else None."""
    if role not in ROLES:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"role must be one of {', '.join(ROLES)}")
    secret = pyotp.random_base32() if role == "admin" else None
    s.add(
        User(
            username=username, role=role, password_hash=hash_password(password), totp_secret=secret
        )
    )
    audit(s, actor, "user.add", None, username=username, role=role)
    return secret


def login(
    s: Session,
    username: str,
    password: str,
    totp: str | None,
    minutes: int,
) -> tuple[str, User]:
    """Password (+ TOTP for admins) -> new session token. Failures count toward a short lock."""
    user = s.get(User, username, with_for_update=True)
    now = utcnow()
    if user is not None and user.locked_until and _aware(user.locked_until) > now:
        raise DockgateError(ErrorCode.RATE_LIMITED, "too many failed logins; wait and retry")
    ok = False
    try:
        # an unknown name costs the same argon2 work, so timing does not reveal accounts
        ok = _hasher.verify(user.password_hash if user else _dummy_hash(), password) and bool(user)
    except (VerificationError, InvalidHashError):
        ok = False
    if user is None or not ok:
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "wrong username or password")
    if user.totp_secret:
        step = _totp_step(user.totp_secret, totp)
        if step is None or step <= user.totp_last_step:
            raise DockgateError(ErrorCode.TOTP_REQUIRED, "a valid, unused one-time code is needed")
        user.totp_last_step = step
    user.failed_logins = 0
    token = secrets.token_urlsafe(32)
    s.add(
        SessionRow(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            username=username,
            expires_at=now + dt.timedelta(minutes=minutes),
        )
    )
    audit(s, f"person:{username}", "login", None)
    return token, user


def record_failure(s: Session, username: str, code: ErrorCode, max_fail: int, lock_s: int) -> None:
    """Count a failed login (in its own transaction: the login's was rolled back) and audit it.

    After ``max_fail`` failures the account waits ``lock_s`` seconds: a short wait slows
    guessing without letting an attacker lock a person out for long.
    """
    user = s.get(User, username, with_for_update=True)
    if user is not None:
        user.failed_logins += 1
        if user.failed_logins >= max_fail:
            user.failed_logins = 0
            user.locked_until = utcnow() + dt.timedelta(seconds=lock_s)
    audit(s, f"person:{username}", "login.fail", code)


def _totp_step(secret: str, code: str | None) -> int | None:
    """The 30 s time step ``code`` is valid for (±1 step), or None."""
    if not code or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time())
    for offset in (0, -30, 30):
        if secrets.compare_digest(totp.at(now + offset), code):
            return (now + offset) // 30
    return None


def person(s: Session, authorization: str | None) -> Caller:
    if not authorization or not authorization.startswith("Bearer "):
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "log in first (Bearer session token)")
    digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
    row = s.get(SessionRow, digest)
    if row is None or _aware(row.expires_at) < utcnow():
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "session unknown or expired")
    user = s.get(User, row.username)
    if user is None:
        raise DockgateError(ErrorCode.UNAUTHENTICATED, "account removed")
    return Caller("person", user.username, user.role)


def logout(s: Session, authorization: str | None) -> None:
    if authorization and authorization.startswith("Bearer "):
        digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
        s.execute(delete(SessionRow).where(SessionRow.token_hash == digest))


def require_role(caller: Caller, role: str) -> None:
    if ROLES.index(caller.role) < ROLES.index(role):
        raise DockgateError(ErrorCode.FORBIDDEN, f"needs role {role}, you are {caller.role}")


def require_any(caller: Caller, roles: tuple[str, ...]) -> None:
    """For a task outside the viewer < ... < admin line (labeling): one of ``roles``."""
    if caller.role not in roles:
        raise DockgateError(
            ErrorCode.FORBIDDEN, f"needs role {' or '.join(roles)}, you are {caller.role}"
        )
