"""How an event row is stored and read back, and the ledger's timestamp format."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from edge.contracts.event import Event


def format_ts(moment: datetime) -> str:
    """UTC RFC 3339 with milliseconds, e.g. ``2026-11-22T05:10:14.123Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def row_to_event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    """An ``events`` row (seq, id, device_id, ts, kind, actor, payload, prev_hash, hash)."""
    seq, eid, device, ts, kind, actor, payload, prev, digest = row
    return Event(eid, device, seq, ts, kind, actor, json.loads(payload), prev, digest)


EVENT_COLUMNS = "seq, id, device_id, ts, kind, actor, payload, prev_hash, hash"
_ROW_ORDER = ("seq", "id", "device_id", "ts", "kind", "actor")
