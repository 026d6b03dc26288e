"""The edge stock ledger: the dock's offline-first system of record.

An append-only, hash-chained event log in SQLite (WAL, ``synchronous=FULL``) with a stock
projection kept in step in the same transaction, master data, the warehouse rules (no negative
stock, QA freeze, FEFO, expiry windows, safety stock) and an outbox for the sync agent.

Start with :class:`Ledger` (``Ledger.open(path, device_id)``); ``dockgate ledger --help`` is the
operator's way in. The API at a glance (all thread-safe, all codes from ``edge.contracts.errors``):

- write: ``append(kind, payload, *, actor, event_id=None, model_version=None) -> AppendResult``
  and one typed method per kind: ``receive putaway transfer pick ship return_to_supplier adjust
  cycle_count freeze release expiry_block hold_unidentified identify record_read
  record_verdict``, master data ``add_sku add_unit add_supplier add_location``, the daily
  ``block_expiring``. A repeated ``event_id`` returns the original result (``duplicate=True``).
  ``with ledger.transaction():`` makes several appends one all-or-nothing transaction.
- read: ``stock batches frozen_batches history events head held_locations sku_by_gtin
  choose_putaway_slot kpis``.
- sync agent: ``outbox_pending(limit) outbox_ack(up_to_seq) outbox_stats() sign_pending(signer)``.
- integrity: ``verify() -> VerifyReport``, ``rebuild_projection()``, ``backup(dest)``.

Actors are ``user:<name>``, ``device:<id>`` or ``cloud:<origin-device>`` (a freeze fanned out
from the cloud). Quantities are whole base units unless ``unit`` names a conversion.
"""

from edge.ledger.api import Ledger
from edge.ledger.ledger import AppendResult
from edge.ledger.queries import BatchInfo, OutboxStats, StockRow
from edge.ledger.verify import VerifyReport

__all__ = ["AppendResult", "BatchInfo", "Ledger", "OutboxStats", "StockRow", "VerifyReport"]
