"""Walking the hash chain and comparing the projection with a replay of the log.

Every row is checked on its own first (its stored payload is canonical JSON and its hash matches
its content) and then as a link (seq contiguous from 1, prev_hash equals the previous hash). A
row that fails on its own is reported before any link failure, so a single changed byte points
at the row it was changed in, not at its innocent successor.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from edge.contracts.event import GENESIS_HASH, canonical_json, event_hash
from edge.ledger import projection
from edge.ledger.hashing import proves_intact

_FETCH = 2000


@dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`verify`. ``ok`` is True when chain and projection are both intact."""

    ok: bool
    count: int
    problem: str = ""  # "chain" | "projection" | "storage" (SQLite pages) | ""
    event_id: str | None = None
    seq: int | None = None
    expected_hash: str | None = None
    found_hash: str | None = None
    detail: str = ""

    def summary(self) -> str:
        """The line ``dockgate ledger verify`` prints."""
        if self.ok:
            return f"OK {self.count} events"
        if self.problem == "chain":
            return (
                f"BROKEN at seq {self.seq} event {self.event_id}: expected hash "
                f"{self.expected_hash}, found {self.found_hash} ({self.detail})"
            )
        if self.problem == "storage":
            return f"DATABASE DAMAGED: {self.detail}"
        return f"PROJECTION MISMATCH after {self.count} events: {self.detail}"


@dataclass
class _Break:
    seq: int
    event_id: str
    expected: str
    found: str
    detail: str


def _self_check(row: tuple[object, ...]) -> tuple[Any, _Break | None]:
    """(parsed payload or None, the row's own defect or None)."""
    seq, eid, device, ts, kind, actor, payload_text, prev, digest = row
    try:
        text = str(payload_text)
        payload = json.loads(text)
        if proves_intact(row, text, str(digest)):
            return payload, None
        body = {
            "id": str(eid),
            "device_id": str(device),
            "seq": int(str(seq)),
            "ts": str(ts),
            "kind": str(kind),
            "actor": str(actor),
            "payload": payload,
            "prev_hash": str(prev),
        }
        expected = event_hash(body)
        canonical = canonical_json(payload).decode() == text
    except (ValueError, TypeError) as exc:
        return None, _Break(_as_int(seq), str(eid), "?", str(digest), f"row unreadable: {exc}")
    if expected != digest:
        return payload, _Break(body["seq"], body["id"], expected, str(digest), "content altered")
    if not canonical:
        return payload, _Break(body["seq"], body["id"], expected, str(digest), "not canonical")
    return payload, None


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else -1


def verify(
    conn: sqlite3.Connection, device_id: str, *, projection_check: bool = True
) -> VerifyReport:
    """Check the file's pages, every event, and (optionally) the projection against a replay."""
    damaged = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)")]
    if damaged != ["ok"]:
        return VerifyReport(False, 0, "storage", detail="; ".join(damaged))
    cur = conn.execute(
        "SELECT seq, id, device_id, ts, kind, actor, payload, prev_hash, hash FROM events "
        "ORDER BY seq"
    )
    replay = projection.Replay()
    prev_hash, expected_seq, count = GENESIS_HASH, 1, 0
    own: _Break | None = None
    link: _Break | None = None
    while rows := cur.fetchmany(_FETCH):
        for row in rows:
            count += 1
            payload, bad = _self_check(row)
            own = own or bad
            seq, eid, device, prev, digest = row[0], row[1], row[2], row[7], row[8]
            if link is None:
                if seq != expected_seq:
                    link = _Break(seq, eid, f"seq {expected_seq}", f"seq {seq}", "sequence gap")
                elif prev != prev_hash:
                    link = _Break(seq, eid, prev_hash, prev, "prev_hash does not link")
                elif device != device_id:
                    link = _Break(seq, eid, device_id, device, "foreign device id")
            prev_hash, expected_seq = digest, seq + 1
            if own is None:
                try:
                    fx = projection.effects(str(row[4]), payload)
                except (KeyError, TypeError) as exc:
                    own = _Break(seq, eid, digest, digest, f"bad payload {exc}")
                    continue
                replay.apply(seq, fx, str(row[3]))
    broken = own or link
    if broken is not None:
        return VerifyReport(
            False,
            count,
            "chain",
            broken.event_id,
            broken.seq,
            broken.expected,
            broken.found,
            broken.detail,
        )
    if projection_check:
        detail = compare(conn, replay)
        if detail:
            return VerifyReport(False, count, "projection", detail=detail)
    return VerifyReport(True, count)


def compare(conn: sqlite3.Connection, replay: projection.Replay) -> str:
    """Empty when the tables equal the replay, else the first difference in words."""
    if replay.negative:
        seq, key, qty = replay.negative[0]
        return f"replay goes negative at seq {seq}: {'/'.join(key)} = {qty}"
    for name, sql, want in (
        ("stock", projection.STOCK_SQL, replay.stock_rows()),
        ("batches", projection.BATCH_SQL, replay.batch_rows()),
    ):
        have = {tuple(r) for r in conn.execute(sql)}
        if have != want:
            extra = sorted(have - want, key=repr)[:1]
            missing = sorted(want - have, key=repr)[:1]
            return f"{name}: table has {extra or 'no extra row'}, replay has {missing or '-'}"
    return ""


def replay_log(conn: sqlite3.Connection) -> projection.Replay:
    """The projection rebuilt from the log (no chain checks)."""
    replay = projection.Replay()
    cur = conn.execute("SELECT seq, kind, payload, ts FROM events ORDER BY seq")
    while rows := cur.fetchmany(_FETCH):
        for seq, kind, payload, ts in rows:
            replay.apply(seq, projection.effects(kind, json.loads(payload)), ts)
    return replay
