"""Local panel accounts: roles, argon2 password hashes and TOTP second factors.

There is no default account and no default password: the first admin is created on the console
with ``dockgate edge user add --role admin``. Admin accounts must enrol TOTP
(``dockgate edge user totp``) before they can log in; a TOTP code is accepted once per time step.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel.audit import utc_now
from edge.panel.db import PanelDB

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
TOTP_STEP_S = 30


class Role(StrEnum):
    OPERATOR = "operator"
    QA = "qa"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    totp_enabled: bool
    disabled: bool
    created: str

    @property
    def actor(self) -> str:
        """The ledger actor string for this person."""
        return f"user:{self.username}"


class UserStore:
    """Accounts in ``panel.db``."""

    def __init__(self, db: PanelDB, hasher: PasswordHasher | None = None) -> None:
        self._db = db
        self._hasher = hasher or PasswordHasher()
        # Each argon2 verification takes ~64 MiB and a core for about half a second on the
        # edge box: at most two at a time, so a burst of logins cannot exhaust its memory.
        self._slots = threading.BoundedSemaphore(2)
        # Verifying against this when the name is unknown keeps the timing of "no such user"
        # equal to "wrong password", so logins cannot probe which accounts exist.
        self._dummy = self._hasher.hash("dockgate-dummy-password")

    # administration (console) ----------------------------------------------------------
    def add(self, username: str, role: Role, password: str) -> User:
        name = check_username(username)
        check_password(password)
        with self._db.tx() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (name,)).fetchone():
                raise DockgateError(ErrorCode.CONFIG_INVALID, f"user {name!r} already exists")
            conn.execute(
                "INSERT INTO users (username, role, pw_hash, created) VALUES (?, ?, ?, ?)",
                (name, role.value, self._hasher.hash(password), utc_now()),
            )
        return self.get_required(name)

    def set_password(self, username: str, password: str) -> None:
        check_password(password)
        user = self.get_required(username)
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE users SET pw_hash = ? WHERE username = ?",
                (self._hasher.hash(password), user.username),
            )
            # A new password ends every session of that account.
            conn.execute("DELETE FROM sessions WHERE username = ?", (user.username,))

    def enable_totp(self, username: str) -> str:
        """Give ``username`` a fresh TOTP secret and return it (shown once on the console)."""
        user = self.get_required(username)
        secret = pyotp.random_base32()
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE users SET totp_secret = ?, totp_last_step = 0 WHERE username = ?",
                (secret, user.username),
            )
        return secret

    def set_disabled(self, username: str, disabled: bool) -> None:
        user = self.get_required(username)
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), user.username)
            )
            if disabled:
                conn.execute("DELETE FROM sessions WHERE username = ?", (user.username,))

    # queries ---------------------------------------------------------------------------
    def get(self, username: str) -> User | None:
        rows = self._db.query("SELECT * FROM users WHERE username = ?", (username,))
        return _user(rows[0]) if rows else None

    def get_required(self, username: str) -> User:
        user = self.get(username)
        if user is None:
            raise DockgateError(ErrorCode.NOT_FOUND, f"no user {username!r}")
        return user

    def all(self) -> list[User]:
        return [_user(r) for r in self._db.query("SELECT * FROM users ORDER BY username")]

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) AS n FROM users")[0]["n"])

    # login -----------------------------------------------------------------------------
    def authenticate(
        self, username: str, password: str, totp_code: str = "", now: float | None = None
    ) -> User:
        """The user whose password (and, for admins, TOTP code) is right.

        Raises ``UNAUTHENTICATED`` for a wrong name, password or disabled account (one message
        for all, so nothing leaks), and ``TOTP_REQUIRED`` when the second factor is missing,
        wrong, already used in this time step, or not enrolled for an admin.
        """
        rows = self._db.query("SELECT * FROM users WHERE username = ?", (username.strip(),))
        stored = rows[0]["pw_hash"] if rows else self._dummy
        ok = self._verify(stored, password[:MAX_PASSWORD])
        if not rows or not ok or rows[0]["disabled"]:
            raise DockgateError(ErrorCode.UNAUTHENTICATED, "wrong user name or password")
        row = rows[0]
        if row["role"] == Role.ADMIN.value or row["totp_secret"]:
            self._check_totp(row["username"], row["totp_secret"], totp_code, now)
        if self._hasher.check_needs_rehash(stored):
            with self._db.tx() as conn:
                conn.execute(
                    "UPDATE users SET pw_hash = ? WHERE username = ?",
                    (self._hasher.hash(password), row["username"]),
                )
        return _user(row)

    def _verify(self, stored: str, password: str) -> bool:
        with self._slots:
            try:
                return bool(self._hasher.verify(stored, password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def _check_totp(self, username: str, secret: str | None, code: str, now: float | None) -> None:
        if not secret:
            raise DockgateError(
                ErrorCode.TOTP_REQUIRED,
                "admin accounts need two-factor: run 'dockgate edge user totp' on the console",
            )
        code = code.strip().replace(" ", "")
        moment = time.time() if now is None else now
        step = _matching_step(secret, code, moment)
        if step is None:
            raise DockgateError(ErrorCode.TOTP_REQUIRED, "one-time code missing or wrong")
        with self._db.tx() as conn:
            # Compare-and-set in one transaction: the same code cannot log in twice.
            updated = conn.execute(
                "UPDATE users SET totp_last_step = ? WHERE username = ? AND totp_last_step < ?",
                (step, username, step),
            ).rowcount
        if updated != 1:
            raise DockgateError(ErrorCode.TOTP_REQUIRED, "this one-time code was already used")


def _matching_step(secret: str, code: str, moment: float) -> int | None:
    """The time step (within one step of clock drift) whose code equals ``code``."""
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_S)
    current = int(moment // TOTP_STEP_S)
    for step in (current, current - 1, current + 1):
        if pyotp.utils.strings_equal(totp.at(step * TOTP_STEP_S), code):
            return step
    return None


def check_username(raw: str) -> str:
    name = raw.strip().lower()
    if not USERNAME.fullmatch(name):
        raise DockgateError(
            ErrorCode.CONFIG_INVALID,
            f"user name {raw!r}: 2-32 characters, lowercase letters, digits, . _ -",
        )
    return name


def check_password(password: str) -> None:
    if not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise DockgateError(
            ErrorCode.CONFIG_INVALID,
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
        )


def _user(row: object) -> User:
    r = dict(row)  # type: ignore[call-overload]
    return User(
        username=r["username"],
        role=Role(r["role"]),
        totp_enabled=bool(r["totp_secret"]),
        disabled=bool(r["disabled"]),
        created=r["created"],
    )
