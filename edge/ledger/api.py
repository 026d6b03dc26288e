"""``Ledger``: the public face of the edge stock ledger (see the package docstring)."""

from __future__ import annotations

import sqlite3
from datetime import UTC
from functools import partial
from pathlib import Path

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import Event, EventKind
from edge.contracts.signing import Signer
from edge.ledger import codes, db, kpis, masterdata, migrations, queries, verify
from edge.ledger.bookings import Bookings
from edge.ledger.ledger import AppendResult, Clock, LedgerCore
from edge.ledger.queries import BatchInfo, OutboxStats, StockRow
from edge.ledger.rows import EVENT_COLUMNS, row_to_event
from edge.ledger.rules import sellable
from edge.ledger.verify import VerifyReport


class Ledger(Bookings, LedgerCore):
    """The offline-first, hash-chained stock ledger of one edge device.

    Thread-safe: one SQLite connection, serialised; concurrent ``append`` calls share commits.
    """

    @classmethod
    def open(
        cls,
        path: Path | str,
        device_id: str,
        *,
        signer: Signer | None = None,
        expiry_warning_days: int = 30,
        expiry_block_days: int = 7,
        synchronous: str = "FULL",
        clock: Clock | None = None,
        max_size_mb: int = 0,
        utc_offset_minutes: int = 0,
    ) -> Ledger:
        """Open (creating and migrating if needed) the ledger file of ``device_id``.

        ``clock`` (returning an aware datetime) is for tests; ``utc_offset_minutes`` makes the
        expiry windows count the warehouse's local days.
        """
        database = cls._open_db(Path(path), device_id, synchronous, max_size_mb)
        return cls(
            database,
            device_id,
            signer=signer,
            expiry_warning_days=expiry_warning_days,
            expiry_block_days=expiry_block_days,
            clock=clock,
            utc_offset_minutes=utc_offset_minutes,
        )

    def __enter__(self) -> Ledger:
        return self

    # queries ---------------------------------------------------------------------------
    def stock(
        self, *, sku: str | None = None, lot: str | None = None, location: str | None = None
    ) -> list[StockRow]:
        """Stock positions, optionally filtered (codes are normalised like on the way in)."""
        with self.lock:
            return queries.stock(self.conn, sku=sku, lot=lot, location=location)

    def batches(self, sku: str | None = None) -> list[BatchInfo]:
        """Batches of ``sku`` (or all) in FEFO order, with totals on hand."""
        with self.lock:
            return queries.batches(self.conn, sku)

    def frozen_batches(self) -> list[BatchInfo]:
        with self.lock:
            return queries.batches(self.conn, frozen_only=True)

    def history(
        self, *, lot: str | None = None, sku: str | None = None, event_id: str | None = None
    ) -> list[Event]:
        """Every event about a lot, a SKU or one event id, oldest first."""
        with self.lock:
            return queries.history(self.conn, lot=lot, sku=sku, event_id=event_id)

    def events(self, after_seq: int = 0, limit: int = 1000) -> list[Event]:
        """Events with seq > ``after_seq``, in order (what a replica or the panel tails)."""
        with self.lock:
            return queries.events(self.conn, after_seq, limit)

    def head(self) -> tuple[int, str]:
        """(last seq, last hash): what a signed checkpoint covers."""
        with self.lock:
            h = self._head()
            return h.seq, h.hash

    def held_locations(self, hold: str) -> list[tuple[str, int]]:
        """Where a held (unidentified) carton is, with quantity."""
        rows = self.stock(sku=codes.UNIDENTIFIED_SKU, lot=hold)
        return [(r.location, r.qty) for r in rows]

    def sku_by_gtin(self, gtin: str) -> str:
        with self.lock:
            return masterdata.sku_by_gtin(self.conn, gtin)

    def choose_putaway_slot(self, sku: str, lot: str, expiry: str | None = None) -> str:
        """The location a carton of (sku, lot) should go to (see ``masterdata``)."""
        sku, lot = codes.clean(sku), codes.clean(lot)
        expiry = codes.normalise_expiry(expiry)
        with self.lock:
            if expiry is None:
                row = self.conn.execute(
                    "SELECT expiry FROM batches WHERE sku = ? AND lot = ?", (sku, lot)
                ).fetchone()
                expiry = row[0] if row else None
            ctx = self.context()
            return masterdata.choose_putaway_slot(
                self.conn, sku, lot, expiry, today=ctx.today, warning_days=ctx.warning_days
            )

    # expiry sweep ----------------------------------------------------------------------
    def block_expiring(self, *, actor: str) -> list[AppendResult]:
        """Record an expiry-block for every batch with stock inside the block window."""
        ctx = self.context()
        due = [
            b
            for b in self.batches()
            if b.qty > 0 and not b.expiry_blocked and not sellable(b.expiry, ctx)
        ]
        reason = f"expires within {ctx.block_days} days"
        return [self.expiry_block(b.sku, b.lot, reason=reason, actor=actor) for b in due]

    def sign_pending(self, signer: Signer, batch: int = 500) -> int:
        """Sign outbox rows written before enrollment, in seq order; returns how many."""
        done = 0
        while True:
            with self.lock:
                rows = self.conn.execute(
                    f"SELECT {', '.join('e.' + c.strip() for c in EVENT_COLUMNS.split(','))}, "  # noqa: S608 - constant SQL fragments only; values are bound
                    "o.model_version FROM outbox o JOIN events e USING (seq) "
                    "WHERE o.envelope IS NULL ORDER BY o.seq LIMIT ?",
                    (batch,),
                ).fetchall()
                if not rows:
                    return done
                envelopes = [
                    (signer.sign_event(row_to_event(r[:9]).to_dict(), model_version=r[9]), r[0])
                    for r in rows
                ]
                self._write_txn(
                    partial(
                        self.conn.executemany,
                        "UPDATE outbox SET envelope = ? WHERE seq = ?",
                        envelopes,
                    )
                )
                done += len(rows)

    # outbox for the sync agent ---------------------------------------------------------
    def outbox_pending(self, limit: int = 500) -> list[tuple[int, str, str]]:
        """(seq, event id, envelope) of signed, unacknowledged rows in seq order; stops before
        the first unsigned row so the cloud never sees a gap."""
        with self.lock:
            return queries.outbox_pending(self.conn, limit)

    def outbox_ack(self, up_to_seq: int) -> int:
        """The cloud durably holds every event up to ``up_to_seq``: drop those outbox rows.

        Idempotent; the events themselves are never deleted. Returns rows removed. Raises
        ``CHAIN_FORK`` when the cloud acknowledges more than this ledger holds: local events
        were lost (an old backup restored, a hot WAL removed) and appending now would fork
        the device's chain.
        """
        removed = 0

        def work() -> None:
            nonlocal removed
            head = self._head().seq
            if up_to_seq > head:
                raise DockgateError(
                    ErrorCode.CHAIN_FORK,
                    f"the cloud holds events up to seq {up_to_seq} but this ledger ends at "
                    f"{head}: local events were lost; restore the ledger before booking more",
                    head=head,
                    acked=up_to_seq,
                )
            removed = self.conn.execute("DELETE FROM outbox WHERE seq <= ?", (up_to_seq,)).rowcount
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('outbox_acked_seq', ?) ON CONFLICT (key) "
                "DO UPDATE SET value = "
                "MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (up_to_seq,),
            )

        self._write_txn(work)
        return removed

    def outbox_stats(self) -> OutboxStats:
        """(pending rows, timestamp of the oldest, of which unsigned)."""
        with self.lock:
            return queries.outbox_stats(self.conn)

    # integrity -------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Walk the whole chain and compare the projection with a replay of the log.

        Runs on its own read-only connection inside one read transaction: a consistent
        snapshot of log and tables, while appends go on (WAL readers never block writers).
        """
        with self.lock:
            path = str(self.conn.execute("PRAGMA database_list").fetchone()[2])
        reader = sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True)
        try:
            reader.execute("BEGIN")
            return verify.verify(reader, self.device_id)
        finally:
            reader.close()

    def backup(self, dest: Path | str) -> Path:
        """A consistent copy of the live ledger (SQLite backup API, mode 0600); never copy the
        file itself while the node runs."""
        dest = Path(dest)
        if dest.exists():
            raise DockgateError(ErrorCode.LEDGER_WRITE_FAILED, f"{dest} exists; not overwritten")
        with self.lock:
            try:
                return migrations.backup(self.db, dest)
            except (sqlite3.Error, OSError) as exc:
                dest.unlink(missing_ok=True)
                db.raise_storage_error(exc, f"backup to {dest}")

    def rebuild_projection(self) -> int:
        """Recompute ``stock`` and ``batches`` from the log; returns the number of stock rows."""
        with self.lock:
            replay = verify.replay_log(self.conn)
            rows = sorted(replay.stock_rows())

            def work() -> None:
                self.conn.execute("DELETE FROM stock")
                self.conn.execute("DELETE FROM batches")
                self.conn.executemany(
                    "INSERT INTO batches (sku, lot, expiry, frozen, freeze_reason, "
                    "expiry_blocked, first_received) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    sorted(replay.batch_rows(), key=repr),
                )
                self.conn.executemany(
                    "INSERT INTO stock (sku, lot, location, qty, expiry) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )

            self._write_txn(work)
            return len(rows)

    def kpis(self, *, period_days: int = 365, old_days: int = 90) -> kpis.Kpis:
        """Stock turnover, count discrepancy rate, share of old stock, SKUs below safety."""
        with self.lock:
            now = self.clock().astimezone(UTC)
            return kpis.compute(self.conn, now, period_days=period_days, old_days=old_days)


__all__ = ["AppendResult", "EventKind", "Ledger"]
