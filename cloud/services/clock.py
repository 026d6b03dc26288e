"""Device clocks the cloud does not believe: events are kept, and the skew is flagged.

An edge node orders its events by sequence number, never by its wall clock, so a clock that
jumps (NTP step, flat RTC battery, a wrong manual setting) changes no order and loses nothing.
But the timestamps an operator reads would be wrong, so ingest flags them:

- ``ahead``: the event's device time is later than the server's receive time by more than the
  allowed skew (an event cannot be booked in the future);
- ``backwards``: the device time is earlier than the previous event's (by sequence) by more
  than the allowed skew (the clock was set back).

Each flag is an audit entry with the code ``CLOCK_SKEW`` holding both times (the event row
keeps the device's ``ts`` and the server's ``received_at`` too). Only the first event of a run
is flagged: a clock that stays ahead for a thousand events is one finding, not a thousand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import EventRow
from cloud.services.audit import audit
from edge.contracts.errors import ErrorCode

SKEW_S = 900.0  # the same default window as request signatures (CloudConfig.clock_skew_s)


def parse_ts(value: str) -> dt.datetime | None:
    """An event ``ts`` (RFC 3339 UTC) as an aware datetime; None when unparsable."""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def skew_flags(
    rows: Sequence[dict[str, Any]], prev_ts: str | None, skew_s: float = SKEW_S
) -> list[dict[str, Any]]:
    """The flags for ``rows`` (accepted events in sequence order, each with ``ts`` and a naive
    or aware UTC ``received_at``), given the device time of the event before the first."""
    limit = dt.timedelta(seconds=skew_s)
    prev = parse_ts(prev_ts) if prev_ts else None
    was_ahead = False
    flags: list[dict[str, Any]] = []
    for row in rows:
        at = parse_ts(str(row["ts"]))
        received = row["received_at"]
        if received.tzinfo is None:
            received = received.replace(tzinfo=dt.UTC)
        if at is None:
            continue
        ahead = at > received + limit
        kind, reference = None, received
        if ahead and not was_ahead:
            kind = "ahead"
        elif prev is not None and at < prev - limit:
            kind, reference = "backwards", prev
        if kind is not None:
            flags.append(
                {
                    "seq": row["seq"],
                    "kind": kind,
                    "device_ts": str(row["ts"]),
                    "server_ts": received.isoformat(),
                    "previous_ts": prev.isoformat() if prev else None,
                    "skew_s": round((at - reference).total_seconds()),
                }
            )
        was_ahead, prev = ahead, at
    return flags


def flag_clock_skew(
    s: Session, device_id: str, hwm_before: int, rows: Sequence[dict[str, Any]]
) -> int:
    """Audit ``CLOCK_SKEW`` for the accepted ``rows`` of one batch; returns how many flags.
    Called by ingest before the rows are flushed (one indexed lookup per batch)."""
    if not rows:
        return 0
    prev_ts = None
    if hwm_before > 0:
        prev_ts = s.execute(
            select(EventRow.ts).where(EventRow.device_id == device_id, EventRow.seq == hwm_before)
        ).scalar_one_or_none()
    flags = skew_flags(rows, prev_ts)
    for flag in flags:
        audit(s, f"device:{device_id}", "clock.skew", ErrorCode.CLOCK_SKEW, **flag)
    return len(flags)
