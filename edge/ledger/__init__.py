"""The edge stock ledger: the dock's offline-first system of record.

An append-only, hash-chained event log in SQLite (WAL, ``synchronous=FULL``) with a stock
projection kept in step in the same transaction, master data, the warehouse rules (no negative
stock, QA freeze, FEFO, expiry windows, safety stock) and an outbox for the sync agent.

Start with :class:`Ledger` (``Ledger.open(path, device_id)``); ``dockgate ledger --help`` is the
operator's way in.
"""

from edge.ledger.api import Ledger
from edge.ledger.ledger import AppendResult
from edge.ledger.queries import BatchInfo, OutboxStats, StockRow
from edge.ledger.verify import VerifyReport

__all__ = ["AppendResult", "BatchInfo", "Ledger", "OutboxStats", "StockRow", "VerifyReport"]
