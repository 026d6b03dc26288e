"""The audit log: who did what, when (UTC) and with what outcome, for every state change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from edge.panel.db import PanelDB


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: str
    actor: str
    action: str
    target: str
    outcome: str
    detail: str


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Append-only audit table in ``panel.db``."""

    def __init__(self, db: PanelDB) -> None:
        self._db = db

    def record(
        self, actor: str, action: str, target: str = "", outcome: str = "ok", detail: str = ""
    ) -> None:
        """Write one entry. ``detail`` must never hold a secret (passwords, codes, tokens)."""
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO audit (ts, actor, action, target, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (utc_now(), actor or "-", action, target[:200], outcome, detail[:500]),
            )

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        rows = self._db.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditEntry(**dict(r)) for r in rows]
