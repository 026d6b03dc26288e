"""Batch ingest: verify, order by sequence, check chain continuity, store once, flag conflicts.

One request carries one device's envelopes. :func:`check_batch` verifies them without any lock
(the CPU-heavy part, so workers run it in parallel); :func:`ingest` then locks the device row
(``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) for the chain step, so two
workers receiving batches of the same device at once apply them one after the other; the unique
``(device_id, seq)`` and event-id keys are the last line behind that lock.

Every refusal is a quarantine row plus an audit entry in the same transaction, and is reported
back to the device with its code; nothing is dropped silently. A gap is not a refusal: the
device is told where to resend from.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from cloud.db.models import Conflict, Device, EventRow, Freeze, Quarantine, Stock, utcnow
from cloud.db.session import upsert_insert
from cloud.services.audit import audit
from cloud.services.clock import flag_clock_skew
from cloud.services.registry import KeyCache
from cloud.services.stock import moves, takes_from_batch
from edge.contracts.envelope import (
    TYP_CHECKPOINT,
    DeviceKey,
    VerifiedEnvelope,
    read_header,
    verify_envelope,
    verify_jws,
)
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.sync import Rejection, SyncBatch, SyncResult

log = logging.getLogger("dockgate.cloud.ingest")


@dataclass
class _Run:
    s: Session
    dev: Device
    keys: KeyCache
    accepted: list[dict[str, Any]] = field(default_factory=list)
    batch_hashes: dict[int, str] = field(default_factory=dict)
    batch_ids: set[str] = field(default_factory=set)
    held: dict[int, str] = field(default_factory=dict)
    known_ids: set[str] = field(default_factory=set)
    rejected: list[Rejection] = field(default_factory=list)
    conflicts: list[Rejection] = field(default_factory=list)
    duplicates: int = 0
    resend_from: int | None = None
    received_at: dt.datetime = field(default_factory=utcnow)
    hwm: int = 0  # the chain head while the batch is applied (the device row's, at the start)
    head: str = ""

    def refuse(
        self, code: ErrorCode, message: str, token: str, seq: Any = None, eid: Any = None
    ) -> None:
        seq = seq if isinstance(seq, int) else None
        eid = eid if isinstance(eid, str) else None
        self.s.add(
            Quarantine(
                device_id=self.dev.id,
                seq=seq,
                event_id=eid,
                code=code.value,
                reason=message,
                envelope=token[:65536],
            )
        )
        audit(
            self.s,
            f"device:{self.dev.id}",
            "ingest.refuse",
            code,
            seq=seq,
            event_id=eid,
            reason=message,
        )
        self.rejected.append(Rejection(seq=seq, event_id=eid, code=code.value, message=message))

    def conflict(
        self, code: ErrorCode, message: str, seq: int, eid: str | None, **detail: Any
    ) -> None:
        self.s.add(
            Conflict(
                code=code.value,
                device_id=self.dev.id,
                seq=seq,
                event_id=eid,
                detail={"message": message, **detail},
            )
        )
        log.warning("ALERT %s device %s seq %s: %s", code.value, self.dev.id, seq, message)
        audit(
            self.s,
            f"device:{self.dev.id}",
            "ingest.alert",
            code,
            seq=seq,
            event_id=eid,
            reason=message,
        )


@dataclass(frozen=True)
class Checked:
    """Signatures and identities of one batch, checked without holding any lock."""

    verified: list[VerifiedEnvelope]
    refused: list[tuple[ErrorCode, str, str]]  # code, message, envelope


def check_batch(s: Session, keys: KeyCache, batch: SyncBatch) -> Checked:
    """Phase 1 (CPU only, plus certificate look-ups): verify every envelope of the batch.

    Kept out of the write transaction so two workers verify two batches at once, even of the
    same device; only the short chain step of :func:`ingest` is serialised per device. Every
    envelope goes through :func:`verify_envelope` in full; only the certificate look-up is
    shared by the envelopes of a batch that carry the same protected header (it names the
    certificate), since a device's envelopes all do.
    """
    verified: list[VerifiedEnvelope] = []
    refused: list[tuple[ErrorCode, str, str]] = []
    now = utcnow()  # server receive time: a device clock is not trusted for validity
    by_header: dict[str, DeviceKey] = {}
    for token in batch.envelopes:
        try:
            head = token.partition(".")[0]
            key = by_header.get(head)
            if key is None:
                key = _key_for(s, keys, token, batch.device_id, now)
                by_header[head] = key  # only a certificate that passed every check is shared
            verified.append(verify_envelope(token, key))
        except DockgateError as exc:
            refused.append((exc.code, exc.message, token))
    return Checked(verified, refused)


def _key_for(s: Session, keys: KeyCache, token: str, device_id: str, now: dt.datetime) -> DeviceKey:
    """The certificate an envelope names, if it is this fleet's, of the sending device and
    valid now; the reason as a :class:`DockgateError` otherwise."""
    key = keys.get(s, read_header(token).get("x5t#S256"))
    if key is None:
        raise DockgateError(ErrorCode.DEVICE_UNKNOWN, "certificate not issued by this fleet")
    if key.device_id != device_id:
        raise DockgateError(
            ErrorCode.DEVICE_MISMATCH, f"envelope of {key.device_id} sent by {device_id}"
        )
    key.check_valid_at(now)
    return key


def ingest(
    s: Session, keys: KeyCache, batch: SyncBatch, checked: Checked | None = None
) -> SyncResult:
    """Phase 2: apply one device's batch inside the caller's transaction, under the device lock."""
    if checked is None:
        checked = check_batch(s, keys, batch)
    # populate_existing: request auth already loaded this row without the lock; re-read it under
    # the lock, or a batch applied meanwhile by another worker would be invisible here.
    dev = s.get(Device, batch.device_id, with_for_update=True, populate_existing=True)
    if dev is None:
        raise DockgateError(ErrorCode.DEVICE_UNKNOWN, f"no enrolled device {batch.device_id}")
    dev.last_seen_at = utcnow()
    run = _Run(s, dev, keys, hwm=dev.hwm_seq, head=dev.head_hash)
    for code, message, token in checked.refused:
        seq, eid = _peek(token)
        run.refuse(code, message, token, seq, eid)
    verified = sorted(checked.verified, key=lambda v: v.seq)
    if dev.status == "revoked":
        for v in verified:
            run.refuse(
                ErrorCode.DEVICE_REVOKED,
                f"device {dev.id} is revoked",
                v.token,
                v.seq,
                v.event["id"],
            )
        verified = []
    _prefetch(run, verified)
    hwm_before = dev.hwm_seq
    for v in verified:
        if not _apply(run, v):
            break
    if run.hwm != dev.hwm_seq:
        dev.hwm_seq, dev.head_hash = run.hwm, run.head
    flag_clock_skew(s, dev.id, hwm_before, run.accepted)  # kept, flagged CLOCK_SKEW if implausible
    if batch.checkpoint is not None and dev.status == "active":
        _checkpoint(run, batch.checkpoint)
    _flush(run)
    return SyncResult(
        device_id=dev.id,
        hwm=dev.hwm_seq,
        head_hash=dev.head_hash,
        accepted=len(run.accepted),
        duplicates=run.duplicates,
        resend_from=run.resend_from,
        rejected=run.rejected,
        conflicts=run.conflicts,
    )


def _peek(token: str) -> tuple[Any, Any]:
    """Unverified (seq, event id) of a refused envelope, for the quarantine row only."""
    import base64
    import json

    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return claims.get("seq"), (claims.get("event") or {}).get("id")
    except (ValueError, IndexError, AttributeError):
        return None, None


def _prefetch(run: _Run, verified: list[VerifiedEnvelope]) -> None:
    """Two queries per batch instead of two per event: held hashes of the sequences at or
    below the high-water mark (duplicates or forks) and which event ids are already held."""
    dev, s = run.dev, run.s
    old = [v.seq for v in verified if v.seq <= dev.hwm_seq]
    for i in range(0, len(old), 500):
        rows = s.execute(
            select(EventRow.seq, EventRow.hash).where(
                EventRow.device_id == dev.id, EventRow.seq.in_(old[i : i + 500])
            )
        )
        run.held.update({int(seq): str(h) for seq, h in rows})
    new = [str(v.event["id"]) for v in verified if v.seq > dev.hwm_seq]
    if new:
        # the ids travel as one JSON array parameter: rendering an IN list of 500 bound
        # parameters cost ten times the CPU of the query itself
        query = _KNOWN_IDS_PG if s.get_bind().dialect.name == "postgresql" else _KNOWN_IDS_SQLITE
        run.known_ids.update(str(x) for x in s.scalars(query, {"ids": json.dumps(new)}))


_KNOWN_IDS_PG = text(
    "SELECT id FROM events WHERE id IN (SELECT json_array_elements_text(CAST(:ids AS json)))"
)
_KNOWN_IDS_SQLITE = text("SELECT id FROM events WHERE id IN (SELECT value FROM json_each(:ids))")


def _stored_hash(run: _Run, seq: int) -> tuple[str, str] | None:
    if seq in run.batch_hashes:
        return run.batch_hashes[seq], ""
    if seq in run.held:
        return run.held[seq], ""
    row = run.s.execute(
        select(EventRow.hash, EventRow.id).where(
            EventRow.device_id == run.dev.id, EventRow.seq == seq
        )
    ).one_or_none()
    return (row[0], row[1]) if row else None


def _apply(run: _Run, v: VerifiedEnvelope) -> bool:
    """Store ``v`` if it is the next link; False when the chain cannot go further this batch."""
    dev, event = run.dev, v.event
    if v.seq <= run.hwm:
        stored = _stored_hash(run, v.seq)
        if stored is not None and stored[0] == event["hash"]:
            run.duplicates += 1
        else:
            msg = f"a different event is already held at sequence {v.seq}"
            run.refuse(ErrorCode.CHAIN_FORK, msg, v.token, v.seq, event["id"])
            run.conflict(
                ErrorCode.CHAIN_FORK,
                msg,
                v.seq,
                event["id"],
                held=stored and stored[0],
                sent=event["hash"],
            )
            dev.forked = True
        return True
    if v.seq > run.hwm + 1:
        run.resend_from = run.hwm + 1
        return False
    reason = None
    if event["prev_hash"] != run.head:
        reason = f"sequence {v.seq} does not extend the chain head the cloud holds"
    elif dev.ckpt_hash is not None and dev.ckpt_seq == v.seq and dev.ckpt_hash != event["hash"]:
        reason = f"sequence {v.seq} differs from the device's signed checkpoint"
    if reason is not None:
        run.refuse(ErrorCode.CHAIN_FORK, reason, v.token, v.seq, event["id"])
        run.conflict(ErrorCode.CHAIN_FORK, reason, v.seq, event["id"])
        dev.forked = True
        run.resend_from = run.hwm + 1
        return False
    if event["id"] in run.batch_ids or event["id"] in run.known_ids:
        run.refuse(
            ErrorCode.REPLAY,
            f"event id {event['id']} is already held at another position",
            v.token,
            v.seq,
            event["id"],
        )
        run.resend_from = run.hwm + 1
        return False
    run.accepted.append(
        {
            "id": event["id"],
            "device_id": dev.id,
            "seq": v.seq,
            "kind": str(event["kind"])[:32],
            "actor": str(event["actor"])[:80],
            "ts": str(event["ts"])[:40],
            "hash": event["hash"],
            "prev_hash": event["prev_hash"],
            "model_version": v.model_version,
            "payload": event.get("payload") or {},
            "envelope": v.token,
            "received_at": run.received_at,
        }
    )
    run.batch_hashes[v.seq] = event["hash"]
    run.batch_ids.add(event["id"])
    run.hwm, run.head = v.seq, event["hash"]  # written to the device row once, after the loop
    return True


def _checkpoint(run: _Run, token: str) -> None:
    dev = run.dev
    try:
        key = run.keys.get(run.s, read_header(token).get("x5t#S256"))
        if key is None or key.device_id != dev.id:
            raise DockgateError(ErrorCode.DEVICE_MISMATCH, "checkpoint signed by another device")
        claims = verify_jws(token, key, TYP_CHECKPOINT)
        seq, head = claims.get("seq"), claims.get("head")
        if not isinstance(seq, int) or not isinstance(head, str) or seq < 0:
            raise DockgateError(ErrorCode.EVENT_INVALID, "checkpoint without seq/head")
    except DockgateError as exc:
        run.refuse(exc.code, f"checkpoint: {exc.message}", token)
        return
    if seq <= dev.hwm_seq:
        stored = _stored_hash(run, seq) if seq else None
        if seq and (stored is None or stored[0] != head):
            msg = f"signed checkpoint at {seq} contradicts the chain the cloud holds"
            run.refuse(ErrorCode.CHAIN_FORK, msg, token, seq)
            run.conflict(ErrorCode.CHAIN_FORK, msg, seq, None, claimed=head)
            dev.forked = True
            return
    if seq >= dev.ckpt_seq:
        dev.ckpt_seq, dev.ckpt_hash = seq, head


def _flush(run: _Run) -> None:
    if not run.accepted:
        return
    s, dev = run.s, run.dev
    _insert_events(s, dev.id, run.received_at, run.accepted)
    deltas: dict[tuple[str, str, str], int] = {}
    for row in run.accepted:
        for loc, sku, lot, d in moves(row["kind"], row["payload"]):
            deltas[(loc, sku, lot)] = deltas.get((loc, sku, lot), 0) + d
    _upsert_stock(s, dev, deltas)
    _freezes_and_conflicts(run)


# One statement, one parameter and one round trip per batch on PostgreSQL: the rows travel as
# one JSON array that the server expands (executemany would send one INSERT per row).
_PG_INSERT_EVENTS = text(
    "INSERT INTO events (device_id, received_at, id, seq, kind, actor, ts, hash, prev_hash,"
    " model_version, payload, envelope)"
    " SELECT :device_id, :received_at, r.id, r.seq, r.kind, r.actor, r.ts, r.hash, r.prev_hash,"
    " r.model_version, r.payload, r.envelope"
    " FROM json_to_recordset(CAST(:rows AS json)) AS r(id varchar, seq bigint, kind varchar,"
    " actor varchar, ts varchar, hash varchar, prev_hash varchar, model_version varchar,"
    " payload json, envelope text)"
)
_ROW_FIELDS = (
    "id",
    "seq",
    "kind",
    "actor",
    "ts",
    "hash",
    "prev_hash",
    "model_version",
    "payload",
    "envelope",
)


def _insert_events(
    s: Session, device_id: str, received_at: dt.datetime, rows: list[dict[str, Any]]
) -> None:
    """Insert a batch's accepted events (unique keys still checked by the database)."""
    if s.get_bind().dialect.name != "postgresql":
        s.connection().execute(insert(EventRow), rows)  # Core executemany, no ORM
        return
    doc = json.dumps([{k: row[k] for k in _ROW_FIELDS} for row in rows])
    s.execute(_PG_INSERT_EVENTS, {"device_id": device_id, "received_at": received_at, "rows": doc})


def _upsert_stock(s: Session, dev: Device, deltas: dict[tuple[str, str, str], int]) -> None:
    rows = [
        {"device_id": dev.id, "location": loc, "sku": sku, "lot": lot, "site": dev.site, "qty": d}
        for (loc, sku, lot), d in deltas.items()
        if d
    ]
    if not rows:
        return
    stmt = upsert_insert(s, Stock).values(rows)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["device_id", "location", "sku", "lot"],
            set_={"qty": Stock.qty + stmt.excluded.qty},
        )
    )
    s.execute(delete(Stock).where(Stock.device_id == dev.id, Stock.qty == 0))


def _freezes_and_conflicts(run: _Run) -> None:
    s, dev = run.s, run.dev
    for row in run.accepted:
        p = row["payload"]
        if row["kind"] == "qa-freeze" and not _is_echo(row):
            others = select(Device.id, Device.hwm_seq).where(
                Device.org == dev.org, Device.id != dev.id
            )
            frontier = {str(i): int(h) for i, h in s.execute(others)}
            s.add(
                Freeze(
                    org=dev.org,
                    sku=str(p.get("sku")),
                    lot=str(p.get("lot")),
                    reason=str(p.get("reason", "")),
                    origin_device=dev.id,
                    event_id=row["id"],
                    origin_seq=row["seq"],
                    frozen_at=row["ts"],
                    frontier=frontier,
                )
            )
            audit(s, f"device:{dev.id}", "freeze.record", None, sku=p.get("sku"), lot=p.get("lot"))
            continue
        batch = takes_from_batch(row["kind"], p)
        if batch is None:
            continue
        freeze = s.execute(
            select(Freeze)
            .where(
                Freeze.org == dev.org,
                Freeze.sku == batch[0],
                Freeze.lot == batch[1],
                Freeze.origin_device != dev.id,
            )
            .order_by(Freeze.id)
            .limit(1)
        ).scalar_one_or_none()
        if freeze is None or row["seq"] <= int(freeze.frontier.get(dev.id, 0)):
            continue
        msg = (
            f"{row['kind']} of {batch[0]}/{batch[1]} at sequence {row['seq']}: batch frozen"
            f" by {freeze.origin_device}"
        )
        run.conflict(
            ErrorCode.FROZEN_CONFLICT,
            msg,
            row["seq"],
            row["id"],
            origin_device=freeze.origin_device,
            sku=batch[0],
            lot=batch[1],
        )
        run.conflicts.append(
            Rejection(
                seq=row["seq"],
                event_id=row["id"],
                code=ErrorCode.FROZEN_CONFLICT.value,
                message=msg,
            )
        )


def _is_echo(row: dict[str, Any]) -> bool:
    """A freeze a node applied because the cloud told it to: recorded, not broadcast again."""
    return str(row["actor"]).startswith("cloud:")
