"""OCR-vs-scanner agreement: pairing, rates per model version, signed ledger observations."""

from __future__ import annotations

import time
from typing import Any

from edge.ledger import Ledger
from edge.runtime.agreement import AgreementTracker, AgreementWorker, ledger_recorder
from edge.runtime.bus import Bus
from edge.runtime.carton import CARTON_TOPIC, CartonEvent
from edge.runtime.supervisor import Supervisor
from firmware_bridge.ports import Scan

GS1 = "01069012345678921727083110A24B117"  # (01)(17)(10) as a GS1-128 scanner sends it


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def read(
    carton: str, lot: str = "A24B117", status: str = "ACCEPTED", model: str = "ocr-1"
) -> CartonEvent:
    fields = {"gtin": "06901234567892", "lot": lot, "expiry": "2027-08-31"}
    return CartonEvent(carton, "2026-11-22T06:00:00Z", status, 0.97, fields, ocr_model=model)  # type: ignore[arg-type]


def tracker() -> tuple[AgreementTracker, list[dict[str, Any]], Clock]:
    out: list[dict[str, Any]] = []
    clock = Clock()
    return AgreementTracker(out.append, window_s=3.0, clock=clock), out, clock


def test_scan_then_matching_read_agrees_and_counts_for_the_model() -> None:
    t, out, clock = tracker()
    t.on_scan("]C1", GS1)
    clock.t += 0.4
    t.on_read(read("c1"))
    assert out == [out[0]] and out[0]["agree"] is True and out[0]["carton_id"] == "c1"
    assert out[0]["scan"]["lot"] == "A24B117" and out[0]["scan"]["expiry"] == "2027-08-31"
    assert t.rates()["ocr-1"].rate == 1.0


def test_misread_lot_is_a_disagreement() -> None:
    t, out, clock = tracker()
    t.on_read(read("c1", lot="A24B111", model="ocr-2"))
    t.on_scan("]C1", GS1)
    assert out == []  # a misread shows only when the scan's window closes
    clock.t += 3.5
    t.expire()
    assert out[0]["agree"] is False and out[0]["carton_id"] == "c1"
    assert t.rates()["ocr-2"].both_read == 1 and t.rates()["ocr-2"].rate == 0.0


def test_two_cartons_in_one_window_pair_by_code() -> None:
    t, out, clock = tracker()
    other = "01069012345678921727083110B99X001"
    t.on_scan("]C1", GS1)
    clock.t += 0.5
    t.on_scan("]C1", other)
    clock.t += 0.3
    t.on_read(read("second", lot="B99X001"))
    t.on_read(read("first"))
    pairs = {o["carton_id"]: o["agree"] for o in out}
    assert pairs == {"first": True, "second": True}


def test_unpaired_scan_is_recorded_after_the_window_and_not_counted() -> None:
    t, out, clock = tracker()
    t.on_scan("]C1", GS1)
    clock.t += 5
    t.expire()
    assert out[0]["carton_id"] is None and out[0]["agree"] is None
    assert t.rates() == {}


def test_review_read_is_not_counted_as_wrong() -> None:
    t, out, clock = tracker()
    t.on_scan("]C1", GS1)
    t.on_read(read("c1", status="REVIEW", lot=""))
    clock.t += 3.5
    t.expire()
    assert out[0]["ocr_status"] == "REVIEW" and out[0]["agree"] is None
    assert t.rates() == {}


def test_garbled_scan_is_recorded_with_its_errors() -> None:
    t, out, clock = tracker()
    t.on_scan("]C1", "0106901234567893")  # bad check digit
    t.on_read(read("c1"))
    clock.t += 3.5
    t.expire()
    assert out[0]["scan_errors"] and out[0]["agree"] is None


def test_worker_records_signed_chain_observations_in_the_ledger(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bus = Bus()
    with Ledger.open(tmp_path / "l.db", "agree-01") as ledger:
        pairs: list[tuple[str, bool]] = []
        tracker = AgreementTracker(
            ledger_recorder(ledger), on_pair=lambda m, a: pairs.append((m, a))
        )
        worker: list[AgreementWorker] = []

        def make() -> AgreementWorker:
            worker.append(AgreementWorker(bus, tracker))
            return worker[-1]

        sup = Supervisor(check_interval_s=0.05)
        sup.add("agreement", make)
        sup.start()
        try:
            while not worker:
                time.sleep(0.01)
            bus.publish("scan", Scan("scanner-1", 1, "]C1", GS1.encode()))
            bus.publish(CARTON_TOPIC, read("c9"))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                events = [e for e in ledger.events() if e.kind == "scan-read"]
                if events:
                    break
                time.sleep(0.05)
        finally:
            sup.stop()
        assert events and events[0].payload["agree"] is True
        assert tracker.rates()["ocr-1"].rate == 1.0 and pairs == [("ocr-1", True)]
        assert ledger.verify().ok
