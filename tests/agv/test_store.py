"""Dispatch tasks and headerId counters persist in SQLite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.agv.store import TaskRow, TaskStore


def test_tasks_history_and_header_ids_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.db"
    store = TaskStore(path)
    row = TaskRow("t1", "SSCC", "D1", "A-01", "SA01")
    assert store.insert(row) and not store.insert(row)
    row.status, row.route, row.failed_agvs = "ASSIGNED", ["P01", "e", "D1"], ["x/1"]
    store.save(row, "order", detail="t1.1/0", header=("acme/agv-01", "order", 41))
    store.close()
    store = TaskStore(path)
    try:
        again = store.get("t1")
        assert again is not None and again.status == "ASSIGNED"
        assert again.route == ["P01", "e", "D1"] and again.failed_agvs == ["x/1"]
        assert store.header_ids() == {("acme/agv-01", "order"): 41}
        assert [h["event"] for h in store.history("t1")] == ["submitted", "order"]
        assert store.counts() == {"ASSIGNED": 1}
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
        sync = store._db.execute("PRAGMA synchronous").fetchone()[0]
        assert mode == "wal" and sync == 2  # FULL
    finally:
        store.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
