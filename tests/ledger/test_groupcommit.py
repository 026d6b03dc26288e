"""Many threads appending at once: one commit serves many callers, none is lost or mixed up."""

from __future__ import annotations

import threading

from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import AppendResult, Ledger
from tests.ledger.helpers import ACTOR


def test_concurrent_appends_share_commits_and_keep_order(ledger: Ledger) -> None:
    ledger.receive("SKU-B", "L1", 40, location="A-01", actor=ACTOR)
    results: list[AppendResult] = []
    errors: list[DockgateError] = []
    lock = threading.Lock()
    commits_before = ledger.group.batches

    def worker(n: int) -> None:
        for i in range(25):
            try:
                if i % 5 == 0:  # 8 threads x 5 picks of 1 = exactly the stock
                    r = ledger.pick("SKU-B", "L1", 1, from_location="A-01", actor=ACTOR)
                elif i % 5 == 1:  # always refused: one bad request must not sink its batch
                    r = ledger.ship("SKU-B", "L1", 10**6, from_location="A-01", actor=ACTOR)
                else:
                    r = ledger.record_read({"t": n, "i": i}, actor="device:edge-01")
            except DockgateError as exc:
                with lock:
                    errors.append(exc)
                continue
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {e.code for e in errors} == {ErrorCode.NEGATIVE_STOCK} and len(errors) == 40
    # safety-stock alert (SKU-B: 10) is raised once, by the pick that crossed it
    alerts = [a for r in results for a in r.alerts]
    assert len(alerts) == 1
    assert len(results) == 160
    commits = ledger.group.batches - commits_before
    assert commits < 200  # some commits carried several callers (8 threads, 200 calls)
    seqs = sorted([r.event.seq for r in results] + [a.seq for a in alerts])
    first = seqs[0]
    assert seqs == list(range(first, first + 161))
    assert [(s.location, s.qty) for s in ledger.stock(sku="SKU-B")] == [("OUTBOUND", 40)]
    assert ledger.verify().ok


def test_verify_reads_a_snapshot_while_appends_go_on(ledger: Ledger) -> None:
    ledger.receive("SKU-A", "L1", 500, location="A-01", actor=ACTOR)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            ledger.transfer("SKU-A", "L1", 1, from_location="A-01", to="A-02", actor=ACTOR)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        reports = [ledger.verify() for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    assert all(r.ok for r in reports), [r.summary() for r in reports]
    assert ledger.stock(location="A-02")  # the writer really ran alongside
    assert ledger.verify().ok
