"""The audit log: who did what, and every refusal, in the same transaction as the change."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cloud.db.models import Audit
from edge.contracts.errors import ErrorCode


def audit(s: Session, actor: str, action: str, code: ErrorCode | None, **detail: object) -> None:
    s.add(Audit(actor=actor, action=action, code=code.value if code else None, detail=detail))
