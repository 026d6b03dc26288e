"""The disk fills up: the node stops accepting new work with a clear ``STORAGE_FULL`` state, keeps
the line moving (cartons go to the manual lane, nothing is booked half-way), and recovers by
itself when space returns, with the ledger intact.

The full disk is SQLite's ``max_page_count`` (``ledger.max_size_mb``), the same limit the node
enforces in production; the probe (:meth:`Ledger.storage_problem`) also watches the real disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import Ledger
from edge.runtime.bus import Bus
from edge.runtime.carton import Decision
from edge.runtime.gate import Gate
from edge.runtime.health import health_router
from edge.runtime.metrics import Metrics
from edge.runtime.settings import GateConfig
from edge.runtime.supervisor import Supervisor
from tests.runtime.conftest import sample_truth, seed_master_data
from tests.runtime.test_gate import RecordingSorter, RecordingTasks, carton, read, result, verdict


def _fill(led: Ledger) -> int:
    """Book padded carton reads until the ledger refuses new work; returns how many."""
    pad = "x" * 3000
    n = 0
    while led.storage_problem() is None:
        try:
            led.record_read({"n": n, "pad": pad}, actor="device:gate-test-01")
        except DockgateError as exc:  # the commit itself hit the limit first: also full
            assert exc.code is ErrorCode.STORAGE_FULL
            break
        n += 1
        assert n < 5000, "the size limit never took effect"
    return n


def test_storage_full_stops_new_work_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    led = Ledger.open(path, "gate-test-01", max_size_mb=1)
    try:
        seed_master_data(led, [t["gtin"] for t in sample_truth().values()] + ["06901234567892"])
        bus, sorter, tasks = Bus(), RecordingSorter(), RecordingTasks()
        gate = Gate(led, GateConfig(), bus, sorter=sorter, tasks=tasks, ocr_version="ocr-t")
        ok = gate.book(result(read(), verdict(0.01)))
        assert ok.decision is Decision.RECEIVED
        filled = _fill(led)
        problem = led.storage_problem()
        assert problem is not None and problem.startswith("STORAGE_FULL: "), problem
        head = led.head()
        sup = Supervisor()
        app = FastAPI()
        app.include_router(health_router(sup, Metrics(), {"ledger": led.storage_problem}))
        client = TestClient(app)
        sup.start()
        try:
            # the operator's view: /readyz names the code
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["problems"]["ledger"].startswith("STORAGE_FULL")
            # new work is refused, visibly: manual lane, no AGV task, nothing booked
            sorter.sorted.clear()
            tasks.tasks.clear()
            refused = gate.book(result(read(lot="FULL1"), verdict(0.01)))
            assert refused.decision is Decision.ERROR
            assert (refused.reason or "").startswith("STORAGE_FULL"), refused.reason
            assert sorter.sorted == [(refused.carton_id, 7, 0)]
            assert tasks.tasks == []
            # a back-pressure divert under a full disk is refused the same way, not raised
            diverted = gate.divert(carton(), "booking queue full")
            assert diverted.decision is Decision.ERROR, diverted
            assert (diverted.reason or "").startswith("STORAGE_FULL"), diverted.reason
            assert led.head() == head
            # space returns (the operator raises ledger.max_size_mb; a real disk is cleaned up)
            with led.lock:
                led.conn.execute("PRAGMA max_page_count = 1073741823")
            assert led.storage_problem() is None
            assert client.get("/readyz").status_code == 200
            again = gate.book(result(read(lot="BACK1"), verdict(0.01)))
            assert again.decision is Decision.RECEIVED, again.reason
            assert led.head()[0] == head[0] + len(again.seqs)
        finally:
            sup.stop()
        report = led.verify()
        assert report.ok, report
        assert led.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        print(f"\nstorage full after {filled} padded reads; refused, then recovered")
    finally:
        led.close()


@pytest.mark.parametrize("reserve", [1 << 62])
def test_disk_probe_reports_a_full_disk(tmp_path: Path, reserve: int) -> None:
    """The disk half of the probe, on the real file system: a reserve larger than any disk."""
    with Ledger.open(tmp_path / "ledger.db", "gate-test-01") as led:
        assert led.storage_problem() is None
        led.RESERVE_BYTES = reserve
        problem = led.storage_problem()
        assert problem is not None and "left on the ledger's disk" in problem
        with pytest.raises(DockgateError) as exc:
            with led.transaction():
                led.record_read({"n": 1}, actor="device:gate-test-01")
        assert exc.value.code is ErrorCode.STORAGE_FULL
        assert led.head()[0] == 0 or led.verify().ok
