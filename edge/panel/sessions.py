"""Server-side sessions: random ids, rotated at login, ended at logout, idle and absolute timeouts.

The cookie carries only a random 256-bit id; the database keeps its SHA-256, so a copy of
``panel.db`` does not hand out live sessions. Every visitor gets an anonymous session (it carries
the CSRF token of the login form); logging in deletes it and issues a new id, so an id planted
before login (session fixation) is worthless afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.panel.db import PanelDB

#: Anonymous sessions live briefly and are capped, so a flood of visits cannot fill the disk.
ANON_IDLE_S = 30 * 60
MAX_ANON = 5000


@dataclass(frozen=True)
class Session:
    id: str  # the raw id (only known for the request that presented it)
    username: str | None
    csrf: str
    lang: str
    created: float
    last_seen: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(
        self,
        db: PanelDB,
        *,
        idle_s: float,
        absolute_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._clock = clock

    def create(self, lang: str, username: str | None = None) -> Session:
        now = self._clock()
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO sessions (id_hash, username, csrf, lang, created, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_hash(sid), username, csrf, lang, now, now),
            )
        self._prune()
        return Session(sid, username, csrf, lang, now, now)

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value, touching its idle timer; None if expired."""
        if not session_id or len(session_id) > 100:
            return None
        rows = self._db.query("SELECT * FROM sessions WHERE id_hash = ?", (_hash(session_id),))
        if not rows:
            return None
        row, now = rows[0], self._clock()
        idle = self.idle_s if row["username"] else ANON_IDLE_S
        if now - row["last_seen"] > idle or now - row["created"] > self.absolute_s:
            self.delete(session_id)
            return None
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, _hash(session_id))
            )
        return Session(session_id, row["username"], row["csrf"], row["lang"], row["created"], now)

    def login(self, old: Session | None, username: str, lang: str) -> Session:
        """Rotate: drop the pre-login session and issue a brand-new id and CSRF token."""
        if old is not None:
            self.delete(old.id)
        return self.create(lang, username)

    def set_lang(self, session: Session, lang: str) -> None:
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE sessions SET lang = ? WHERE id_hash = ?", (lang, _hash(session.id))
            )

    def delete(self, session_id: str) -> None:
        with self._db.tx() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(session_id),))

    def _prune(self) -> None:
        now = self._clock()
        with self._db.tx() as conn:
            conn.execute(
                "DELETE FROM sessions WHERE created < ? OR (username IS NULL AND last_seen < ?) "
                "OR (username IS NOT NULL AND last_seen < ?)",
                (now - self.absolute_s, now - ANON_IDLE_S, now - self.idle_s),
            )
            conn.execute(
                "DELETE FROM sessions WHERE username IS NULL AND id_hash NOT IN (SELECT id_hash "
                "FROM sessions WHERE username IS NULL ORDER BY last_seen DESC LIMIT ?)",
                (MAX_ANON,),
            )


def csrf_ok(session: Session | None, token: str | None) -> bool:
    """Constant-time check of a submitted CSRF token against the session's."""
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())
