"""The ledger core: opening the file and appending events, one transaction per commit group.

``Ledger.append`` is the only write path for events. In ONE SQLite transaction it checks the
rules, writes the event row (UUIDv7 id, per-device seq, UTC ms timestamp, prev_hash, hash),
updates the stock projection, writes the outbox row (signed if a signer is set) and any alert
event the movement caused. Concurrent callers share a transaction through
:class:`~edge.ledger.groupcommit.GroupCommit`; each rule refusal is rolled back to its own
savepoint, so one bad request never sinks its neighbours.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils
import uuid_utils

from edge.contracts.clock import utc_now
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import Event, EventKind, canonical_json, event_hash
from edge.contracts.signing import Signer
from edge.ledger import codes, db, migrations, projection, rules
from edge.ledger.groupcommit import GroupCommit, Pending
from edge.ledger.hashing import proves_intact
from edge.ledger.rows import _ROW_ORDER, EVENT_COLUMNS, format_ts, row_to_event

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
GENESIS = "0" * 64


@dataclass(frozen=True)
class AppendResult:
    """What ``append`` did: the stored event, warnings for the operator, alert events it
    raised, and whether the event id was already known (then nothing new was written)."""

    event: Event
    warnings: tuple[str, ...] = ()
    duplicate: bool = False
    alerts: tuple[Event, ...] = ()


@dataclass(frozen=True)
class _Request:
    kind: str
    payload: dict[str, Any]
    actor: str
    event_id: str | None
    model_version: str | None


@dataclass
class _Head:
    seq: int
    hash: str


@dataclass
class _Block:
    """An open ``transaction()``: its thread, the chain head inside it, a storage failure."""

    owner: int
    head: _Head
    failure: DockgateError | None = None


class LedgerCore:
    """Connection, migrations, the append path and the outbox. See :class:`Ledger`."""

    def __init__(
        self,
        database: sqlite_utils.Database,
        device_id: str,
        *,
        signer: Signer | None,
        expiry_warning_days: int,
        expiry_block_days: int,
        clock: Clock | None,
        utc_offset_minutes: int = 0,
    ) -> None:
        self.db = database
        self.conn: sqlite3.Connection = database.conn
        self.device_id = device_id
        self.signer = signer
        self.expiry_warning_days = expiry_warning_days
        self.expiry_block_days = expiry_block_days
        self.clock: Clock = clock or utc_now  # the device clock (edge.contracts.clock seam)
        # expiry dates are the warehouse's local days (timestamps stay UTC)
        self.local_tz = timezone(timedelta(minutes=utc_offset_minutes))
        self.lock = threading.RLock()  # one connection: every use is serialised
        self.group: GroupCommit[AppendResult] = GroupCommit(self._run_batch)
        self._block: _Block | None = None  # an open transaction() block, if any

    @staticmethod
    def _open_db(
        path: Path, device_id: str, synchronous: str, max_size_mb: int
    ) -> sqlite_utils.Database:
        database = db.connect(path, synchronous=synchronous, max_size_mb=max_size_mb)
        try:
            migrations.apply(database, path)
            db.bind_device(database, device_id)
        except sqlite3.Error as exc:
            database.conn.close()
            db.raise_storage_error(exc, f"open {path}")
        except BaseException:
            database.conn.close()
            raise
        return database

    # context manager -------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (pending WAL content stays durable on disk)."""
        with self.lock:
            self.conn.close()

    def __enter__(self) -> LedgerCore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # storage --------------------------------------------------------------------------
    RESERVE_PAGES = 32  # room a carton's transaction (read, verdict, receipt, putaway) needs
    RESERVE_BYTES = 4 * 1024 * 1024  # free disk kept for the WAL and its checkpoints

    def storage_problem(self) -> str | None:
        """``"STORAGE_FULL: ..."`` while the ledger cannot take new work (its ``max_size_mb``
        budget or the disk nearly exhausted), else None. :meth:`transaction` refuses new work
        with it, /readyz reports it, and it clears by itself when space returns (a larger
        budget, a disk cleaned up). Writes that free space (outbox acknowledgements) go on."""
        with self.lock:
            used = self.conn.execute("PRAGMA page_count").fetchone()[0]
            free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
            limit = self.conn.execute("PRAGMA max_page_count").fetchone()[0]
            page = self.conn.execute("PRAGMA page_size").fetchone()[0]
            path = str(self.conn.execute("PRAGMA database_list").fetchone()[2])
        if used - free + self.RESERVE_PAGES > limit:
            return (
                f"{ErrorCode.STORAGE_FULL.value}: the ledger reached its size limit "
                f"({limit * page // 2**20} MB, ledger.max_size_mb); no new work is accepted"
            )
        if path:
            disk = os.statvfs(Path(path).parent)
            avail = disk.f_bavail * disk.f_frsize
            if avail < self.RESERVE_BYTES:
                return (
                    f"{ErrorCode.STORAGE_FULL.value}: {avail // 1024} KB left on the ledger's "
                    "disk; no new work is accepted"
                )
        return None

    # the write path --------------------------------------------------------------------
    def append(
        self,
        kind: str | EventKind,
        payload: dict[str, Any],
        *,
        actor: str,
        event_id: str | None = None,
        model_version: str | None = None,
    ) -> AppendResult:
        """Check, record and project one event; returns only once it is durable.

        A known ``event_id`` is a no-op returning the original result (``duplicate=True``).
        Raises :class:`DockgateError` with the rule's code when refused, ``STORAGE_FULL`` or
        ``LEDGER_WRITE_FAILED`` when SQLite cannot commit; nothing is written then.
        """
        request = _Request(str(kind), payload, actor, event_id, model_version)
        block = self._block
        if block is not None and block.owner == threading.get_ident():
            return self._append_in_block(block, request)
        return self.group.submit(request)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several appends as ONE transaction (e.g. a carton's read, verdict and receipt).

        Appends inside the block return at once; they become durable together when the block
        exits, and an exception leaving the block rolls all of them back. A refused append
        inside raises as usual and is undone alone. Other threads' appends wait for the block;
        a nested block joins the outer one. Keep blocks short: they hold the writer.
        """
        me = threading.get_ident()
        if self._block is not None and self._block.owner == me:
            yield
            return
        with self.lock:
            problem = self.storage_problem()
            if problem is not None:
                raise DockgateError(ErrorCode.STORAGE_FULL, problem.split(": ", 1)[1])
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                block = _Block(me, self._head())
            except (sqlite3.Error, OSError) as exc:
                db.raise_storage_error(exc, "begin")
            self._block = block
            try:
                yield
                if block.failure is not None:  # swallowed by the caller: still no half-writes
                    raise block.failure
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error | OSError):
                    db.raise_storage_error(exc, "commit")
                raise
            finally:
                self._block = None

    def _append_in_block(self, block: _Block, req: _Request) -> AppendResult:
        if block.failure is not None:
            raise block.failure
        head, saved = block.head, (block.head.seq, block.head.hash)
        self.conn.execute("SAVEPOINT one")
        try:
            result = self._append_one(req, head)
        except BaseException as exc:
            head.seq, head.hash = saved
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO one")
                self.conn.execute("RELEASE one")
            if isinstance(exc, sqlite3.Error | OSError):
                try:
                    db.raise_storage_error(exc, "append")
                except DockgateError as err:
                    block.failure = err
                    raise
            raise
        self.conn.execute("RELEASE one")
        return result

    def context(self) -> rules.Context:
        today: date = self.clock().astimezone(self.local_tz).date()
        return rules.Context(today, self.expiry_warning_days, self.expiry_block_days)

    def _run_batch(self, batch: list[Pending[AppendResult]]) -> None:
        with self.lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                head = self._head()
                if len(batch) == 1:  # alone: the transaction itself is the savepoint
                    results = [self._one(batch[0], head)]
                    conn.execute("COMMIT" if isinstance(results[0], AppendResult) else "ROLLBACK")
                else:
                    results = [self._one_savepoint(p, head) for p in batch]
                    conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                db.raise_storage_error(exc, "append")
            except BaseException:  # a bug or an interrupt: leave no transaction open
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        for p, result in zip(batch, results, strict=True):
            if isinstance(result, AppendResult):
                p.resolve(result)
            else:
                p.reject(result)

    def _head(self) -> _Head:
        row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return _Head(0, GENESIS) if row is None else _Head(int(row[0]), str(row[1]))

    def _one(self, p: Pending[AppendResult], head: _Head) -> AppendResult | DockgateError:
        req = p.request
        assert isinstance(req, _Request)
        try:
            return self._append_one(req, head)
        except DockgateError as exc:
            return exc

    def _one_savepoint(self, p: Pending[AppendResult], head: _Head) -> AppendResult | DockgateError:
        req = p.request
        assert isinstance(req, _Request)
        saved = (head.seq, head.hash)
        self.conn.execute("SAVEPOINT one")
        try:
            result = self._append_one(req, head)
        except DockgateError as exc:
            self.conn.execute("ROLLBACK TO one")
            self.conn.execute("RELEASE one")
            head.seq, head.hash = saved
            return exc
        self.conn.execute("RELEASE one")
        return result

    def _append_one(self, req: _Request, head: _Head) -> AppendResult:
        event_id = _check_event_id(req.event_id) if req.event_id else None
        if event_id is not None:
            original = self._original(event_id, req.kind)
            if original is not None:
                return original
        actor = codes.check_actor(req.actor)
        try:
            prepared = rules.prepare(self.conn, self.context(), req.kind, req.payload)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # odd payload shapes
            raise DockgateError(ErrorCode.EVENT_INVALID, f"malformed payload: {exc!r}") from None
        if req.model_version is not None:
            prepared.payload["model_version"] = str(req.model_version)
        watched = _skus_taken(prepared.effects)
        before = {sku: rules.available(self.conn, sku) for sku in watched}
        event = self._write(head, req.kind, prepared.payload, actor, event_id, req.model_version)
        projection.apply_sql(self.conn, prepared.effects, event.ts)
        alerts = tuple(self._safety_alerts(head, event, before))
        return AppendResult(event, tuple(prepared.warnings), False, alerts)

    def _write(
        self,
        head: _Head,
        kind: str,
        payload: dict[str, Any],
        actor: str,
        event_id: str | None,
        model_version: str | None,
    ) -> Event:
        try:
            # json.dumps is RFC 8785 for most payloads and ~10x faster; proves_intact checks
            # that against event_hash (the authority) and the exact encoder takes over if not
            fast = json.dumps(
                payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
            body: dict[str, Any] = {
                "id": event_id or str(uuid_utils.uuid7()),
                "device_id": self.device_id,
                "seq": head.seq + 1,
                "ts": format_ts(self.clock()),
                "kind": str(kind),
                "actor": actor,
                "payload": json.loads(fast),
                "prev_hash": head.hash,
            }
            digest = event_hash(body)
            row = (*(body[c] for c in _ROW_ORDER), fast, head.hash, digest)
            if proves_intact(row, fast, digest):
                text = fast
            else:  # floats, keys beyond the BMP...: the exact encoder decides the bytes
                text = canonical_json(body["payload"]).decode()
                body["payload"] = json.loads(text)
                digest = event_hash(body)  # and what is stored must hash again when read
            # == Event(**body).sealed(), without dataclasses.asdict's deep copies
            event = Event(**body, hash=digest)
        except (TypeError, ValueError, OverflowError) as exc:  # not canonical-JSON-able
            raise DockgateError(
                ErrorCode.EVENT_INVALID, f"payload cannot be hashed: {exc}"
            ) from None
        self.conn.execute(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant SQL fragments only; values are bound
            (
                event.seq,
                event.id,
                event.device_id,
                event.ts,
                event.kind,
                event.actor,
                text,
                event.prev_hash,
                event.hash,
            ),
        )
        self.conn.execute(
            "INSERT INTO outbox (seq, event_id, model_version, envelope) VALUES (?, ?, ?, ?)",
            (event.seq, event.id, model_version, self._sign(event, model_version)),
        )
        head.seq, head.hash = event.seq, event.hash
        return event

    def _sign(self, event: Event, model_version: str | None) -> str | None:
        if self.signer is None:
            return None
        try:
            return self.signer.sign_event(event.to_dict(), model_version=model_version)
        except Exception as exc:  # signing must never stop the dock; sign_pending retries
            log.warning("signing event %s deferred: %s", event.seq, type(exc).__name__)
            return None

    def _original(self, event_id: str, kind: str) -> AppendResult | None:
        row = self.conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?",  # noqa: S608 - constant
            (event_id,),
        ).fetchone()
        if row is None:
            return None
        event = row_to_event(row)
        if event.kind != kind:
            raise DockgateError(
                ErrorCode.EVENT_INVALID, f"event id {event_id} was already used for a {event.kind}"
            )
        alerts = self.conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE kind = 'alert' AND seq > ? "  # noqa: S608 - constant SQL fragments only; values are bound
            "AND json_extract(payload, '$.cause') = ? ORDER BY seq",
            (event.seq, event_id),
        ).fetchall()
        found = event.payload.get("warnings") if event.kind not in rules.OBSERVATIONS else None
        warnings = tuple(w for w in found if isinstance(w, str)) if isinstance(found, list) else ()
        return AppendResult(event, warnings, True, tuple(row_to_event(a) for a in alerts))

    def _safety_alerts(self, head: _Head, cause: Event, before: dict[str, int]) -> list[Event]:
        device = f"device:{self.device_id}"
        return [
            self._write(head, EventKind.ALERT, payload, device, None, None)
            for sku, was in before.items()
            if (payload := rules.safety_alert(self.conn, sku, was, cause.id)) is not None
        ]

    def _write_txn(self, work: Callable[[], object]) -> None:
        with self.lock:
            problem = self.storage_problem()
            if problem is not None:
                raise DockgateError(ErrorCode.STORAGE_FULL, problem.split(": ", 1)[1])
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                work()
                self.conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                db.raise_storage_error(exc, "ledger write")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise


def _skus_taken(fx: projection.Effects) -> set[str]:
    return {sku for sku, _lot, _loc, delta in fx.moves if delta < 0}


def _check_event_id(raw: str) -> str:
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise DockgateError(ErrorCode.EVENT_INVALID, f"event id {raw!r} is not a UUID") from None
