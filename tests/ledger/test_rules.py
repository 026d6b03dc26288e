"""Every ledger rule and its stable error code, on a real SQLite file."""

from __future__ import annotations

import uuid

import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import EventKind
from edge.ledger import Ledger
from tests.ledger.helpers import ACTOR, Clock


def code_of(exc: pytest.ExceptionInfo[DockgateError]) -> ErrorCode:
    return exc.value.code


def refused(code: ErrorCode, led: Ledger, fn: object, *args: object, **kw: object) -> None:
    """The call is refused with ``code`` and leaves the log and the projection untouched."""
    before = (led.head(), led.stock(), led.batches())
    with pytest.raises(DockgateError) as exc:
        fn(*args, **kw)  # type: ignore[operator]
    assert exc.value.code == code, exc.value
    assert (led.head(), led.stock(), led.batches()) == before


def test_receive_converts_cases_and_normalises_codes(ledger: Ledger) -> None:
    r = ledger.receive(
        " ｓｋｕ－ａ ", " lot  7 ".replace(" ", ""), 2, unit="cs", expiry="2027-06-30", actor=ACTOR
    )
    assert r.event.payload["sku"] == "SKU-A"
    assert r.event.payload["qty"] == 24 and r.event.payload["unit_qty"] == 2
    assert [(s.sku, s.lot, s.location, s.qty, s.expiry) for s in ledger.stock()] == [
        ("SKU-A", "LOT7", "INBOUND", 24, "2027-06-30")
    ]


def test_bad_codes_are_rejected_never_stored(ledger: Ledger) -> None:
    refused(ErrorCode.CODE_INVALID, ledger, ledger.receive, "SKU A?", "L1", 1, actor=ACTOR)
    refused(ErrorCode.CODE_INVALID, ledger, ledger.receive, "SKU-A", "L 1", 1, actor=ACTOR)
    refused(
        ErrorCode.CODE_INVALID,
        ledger,
        ledger.receive,
        "SKU-A",
        "L1",
        1,
        expiry="31/12/27",
        actor=ACTOR,
    )
    refused(
        ErrorCode.CODE_INVALID, ledger, ledger.add_sku, "SKU-C", gtin="4006381333932", actor=ACTOR
    )
    refused(
        ErrorCode.CODE_INVALID, ledger, ledger.add_sku, "SKU-C", gtin="9506000134352", actor=ACTOR
    )
    assert ledger.conn.execute("SELECT COUNT(*) FROM skus").fetchone()[0] == 2


def test_unknown_master_data(ledger: Ledger) -> None:
    refused(ErrorCode.UNKNOWN_SKU, ledger, ledger.receive, "NOPE", "L1", 1, actor=ACTOR)
    refused(
        ErrorCode.UNKNOWN_LOCATION,
        ledger,
        ledger.receive,
        "SKU-A",
        "L1",
        1,
        location="Z-9",
        actor=ACTOR,
    )
    refused(
        ErrorCode.UNKNOWN_UNIT, ledger, ledger.receive, "SKU-A", "L1", 1, unit="PAL", actor=ACTOR
    )
    refused(
        ErrorCode.UNKNOWN_SUPPLIER,
        ledger,
        ledger.receive,
        "SKU-A",
        "L1",
        1,
        supplier="X",
        actor=ACTOR,
    )
    assert ledger.sku_by_gtin("4006381333931") == "SKU-A"
    with pytest.raises(DockgateError) as exc:
        ledger.sku_by_gtin("96385074")
    assert exc.value.code == ErrorCode.UNKNOWN_SKU


@pytest.mark.parametrize("qty", [0, -1, 1.5, True, "3"])
def test_quantity_must_be_a_positive_whole_number(ledger: Ledger, qty: object) -> None:
    refused(ErrorCode.QUANTITY_INVALID, ledger, ledger.receive, "SKU-A", "L1", qty, actor=ACTOR)


def test_malformed_events(ledger: Ledger) -> None:
    refused(ErrorCode.EVENT_INVALID, ledger, ledger.append, "teleport", {}, actor=ACTOR)
    refused(
        ErrorCode.EVENT_INVALID, ledger, ledger.append, "receipt", {"sku": "SKU-A"}, actor=ACTOR
    )
    refused(ErrorCode.EVENT_INVALID, ledger, ledger.record_read, {"x": 1}, actor="anna")
    refused(ErrorCode.EVENT_INVALID, ledger, ledger.record_read, {"x": float("nan")}, actor=ACTOR)
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.record_read,
        {"x": 1},
        actor=ACTOR,
        event_id="not-a-uuid",
    )


def test_no_negative_stock(ledger: Ledger) -> None:
    ledger.receive("SKU-A", "L1", 5, actor=ACTOR)
    refused(
        ErrorCode.NEGATIVE_STOCK, ledger, ledger.putaway, "SKU-A", "L1", 6, to="A-01", actor=ACTOR
    )
    refused(
        ErrorCode.NEGATIVE_STOCK,
        ledger,
        ledger.adjust,
        "SKU-A",
        "L1",
        "INBOUND",
        -6,
        reason="damaged",
        actor=ACTOR,
    )
    refused(ErrorCode.NEGATIVE_STOCK, ledger, ledger.ship, "SKU-A", "L1", 1, actor=ACTOR)
    ledger.putaway("SKU-A", "L1", 5, to="A-01", actor=ACTOR)
    assert [(s.location, s.qty) for s in ledger.stock()] == [("A-01", 5)]


def test_freeze_blocks_pick_ship_and_leaving_quarantine(ledger: Ledger) -> None:
    ledger.receive("SKU-A", "L1", 10, expiry="2027-06-30", actor=ACTOR)
    ledger.putaway("SKU-A", "L1", 10, to="A-01", actor=ACTOR)
    ledger.pick("SKU-A", "L1", 2, from_location="A-01", actor=ACTOR)
    ledger.freeze("SKU-A", "L1", reason="mould found", actor="user:qa")
    assert [b.lot for b in ledger.frozen_batches()] == ["L1"]
    refused(
        ErrorCode.BATCH_FROZEN,
        ledger,
        ledger.pick,
        "SKU-A",
        "L1",
        1,
        from_location="A-01",
        actor=ACTOR,
    )
    refused(ErrorCode.BATCH_FROZEN, ledger, ledger.ship, "SKU-A", "L1", 1, actor=ACTOR)
    refused(
        ErrorCode.BATCH_FROZEN,
        ledger,
        ledger.transfer,
        "SKU-A",
        "L1",
        1,
        from_location="A-01",
        to="A-02",
        actor=ACTOR,
    )
    # into quarantine is the one way it may move, and the slot suggestion knows it
    assert ledger.choose_putaway_slot("SKU-A", "L1") == "QUARANTINE"
    ledger.transfer("SKU-A", "L1", 8, from_location="A-01", to="Q-02", actor=ACTOR)
    refused(
        ErrorCode.BATCH_FROZEN,
        ledger,
        ledger.transfer,
        "SKU-A",
        "L1",
        8,
        from_location="Q-02",
        to="A-01",
        actor=ACTOR,
    )
    # returning a frozen batch to its supplier is allowed
    ledger.return_to_supplier(
        "SKU-A", "L1", 3, from_location="Q-02", supplier="sup-1", reason="mould", actor=ACTOR
    )
    ledger.release("SKU-A", "L1", reason="lab test negative", actor="user:qa")
    ledger.transfer("SKU-A", "L1", 5, from_location="Q-02", to="A-01", actor=ACTOR)
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.release,
        "SKU-A",
        "L1",
        reason="again",
        actor="user:qa",
    )


def test_cloud_freeze_before_any_stock_is_idempotent(ledger: Ledger) -> None:
    cloud_id = str(uuid.uuid4())
    first = ledger.freeze("SKU-A", "L9", reason="recall", actor="cloud:edge-07", event_id=cloud_id)
    again = ledger.freeze("SKU-A", "L9", reason="recall", actor="cloud:edge-07", event_id=cloud_id)
    assert again.duplicate and again.event == first.event
    assert ledger.head()[0] == first.event.seq
    ledger.receive("SKU-A", "L9", 4, actor=ACTOR)  # stock arriving later is frozen on arrival
    refused(
        ErrorCode.BATCH_FROZEN,
        ledger,
        ledger.ship,
        "SKU-A",
        "L9",
        1,
        from_location="INBOUND",
        actor=ACTOR,
    )


def _two_batches(led: Ledger) -> None:
    led.receive("SKU-A", "OLD", 10, expiry="2027-01-31", actor=ACTOR)
    led.receive("SKU-A", "NEW", 10, expiry="2027-06-30", actor=ACTOR)
    led.putaway("SKU-A", "OLD", 10, to="A-01", actor=ACTOR)
    led.putaway("SKU-A", "NEW", 10, to="A-02", actor=ACTOR)


def test_fefo_refuses_newer_batch_unless_supervisor_overrides(ledger: Ledger) -> None:
    _two_batches(ledger)
    assert [b.lot for b in ledger.batches("SKU-A")] == ["OLD", "NEW"]
    refused(
        ErrorCode.FEFO_VIOLATION,
        ledger,
        ledger.pick,
        "SKU-A",
        "NEW",
        1,
        from_location="A-02",
        actor=ACTOR,
    )
    refused(
        ErrorCode.OVERRIDE_REASON_REQUIRED,
        ledger,
        ledger.pick,
        "SKU-A",
        "NEW",
        1,
        from_location="A-02",
        override_reason="  ",
        supervisor="user:lee",
        actor=ACTOR,
    )
    refused(
        ErrorCode.OVERRIDE_REASON_REQUIRED,
        ledger,
        ledger.pick,
        "SKU-A",
        "NEW",
        1,
        from_location="A-02",
        override_reason="customer asks",
        actor=ACTOR,
    )
    r = ledger.pick(
        "SKU-A",
        "NEW",
        1,
        from_location="A-02",
        override_reason="customer asks",
        supervisor="user:lee",
        actor=ACTOR,
    )
    assert r.event.payload["fefo_override"] == {
        "reason": "customer asks",
        "supervisor": "user:lee",
        "older_lot": "OLD",
    }
    ledger.pick("SKU-A", "OLD", 10, from_location="A-01", actor=ACTOR)  # oldest: no override
    ledger.pick("SKU-A", "NEW", 1, from_location="A-02", actor=ACTOR)  # OLD is gone now


def test_fefo_ignores_frozen_and_blocked_older_batches(ledger: Ledger) -> None:
    _two_batches(ledger)
    ledger.freeze("SKU-A", "OLD", reason="qa", actor="user:qa")
    ledger.pick("SKU-A", "NEW", 1, from_location="A-02", actor=ACTOR)


def test_fifo_when_batches_have_no_expiry(ledger: Ledger, clock: Clock) -> None:
    ledger.receive("SKU-B", "FIRST", 5, location="A-01", actor=ACTOR)
    clock.advance(hours=1)
    ledger.receive("SKU-B", "SECOND", 5, location="A-02", actor=ACTOR)
    refused(
        ErrorCode.FEFO_VIOLATION,
        ledger,
        ledger.pick,
        "SKU-B",
        "SECOND",
        1,
        from_location="A-02",
        actor=ACTOR,
    )
    ledger.pick("SKU-B", "FIRST", 1, from_location="A-01", actor=ACTOR)


def test_expiry_warning_and_block_windows(ledger: Ledger, clock: Clock) -> None:
    # today is 2026-11-22: warning window 30 days, block window 7 days
    ledger.receive("SKU-A", "SOON", 5, expiry="2026-12-10", location="A-01", actor=ACTOR)
    r = ledger.pick("SKU-A", "SOON", 1, from_location="A-01", actor=ACTOR)
    assert r.warnings and r.warnings[0].startswith("EXPIRY_WARNING")
    assert r.event.payload["warnings"] == list(r.warnings)
    clock.advance(days=11)  # 2026-12-03: 7 days left
    refused(
        ErrorCode.EXPIRY_BLOCKED,
        ledger,
        ledger.pick,
        "SKU-A",
        "SOON",
        1,
        from_location="A-01",
        actor=ACTOR,
    )
    refused(ErrorCode.EXPIRY_BLOCKED, ledger, ledger.ship, "SKU-A", "SOON", 1, actor=ACTOR)
    swept = ledger.block_expiring(actor="device:edge-01")
    assert [s.event.kind for s in swept] == [EventKind.EXPIRY_BLOCK]
    assert ledger.block_expiring(actor="device:edge-01") == []
    assert ledger.batches("SKU-A")[0].expiry_blocked


def test_expiry_windows_are_configurable(tmp_path: object, clock: Clock) -> None:
    from pathlib import Path

    from tests.ledger.helpers import seed

    with Ledger.open(
        Path(str(tmp_path)) / "l.db",
        "edge-01",
        clock=clock,
        expiry_warning_days=60,
        expiry_block_days=20,
    ) as led:
        seed(led)
        led.receive("SKU-A", "L1", 5, expiry="2026-12-10", location="A-01", actor=ACTOR)
        with pytest.raises(DockgateError) as exc:
            led.pick("SKU-A", "L1", 1, from_location="A-01", actor=ACTOR)
        assert exc.value.code == ErrorCode.EXPIRY_BLOCKED


def test_batch_expiry_cannot_change(ledger: Ledger) -> None:
    ledger.receive("SKU-A", "L1", 5, expiry="2027-01-01", actor=ACTOR)
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.receive,
        "SKU-A",
        "L1",
        5,
        expiry="2027-02-01",
        actor=ACTOR,
    )


def test_safety_stock_alert_event_on_crossing(ledger: Ledger) -> None:
    ledger.receive("SKU-B", "L1", 12, location="A-01", actor=ACTOR)
    assert ledger.pick("SKU-B", "L1", 2, from_location="A-01", actor=ACTOR).alerts == ()
    r = ledger.pick("SKU-B", "L1", 1, from_location="A-01", actor=ACTOR)
    (alert,) = r.alerts
    assert alert.kind == EventKind.ALERT and alert.seq == r.event.seq + 1
    assert alert.payload == {
        "code": "BELOW_SAFETY_STOCK",
        "sku": "SKU-B",
        "available": 9,
        "safety_stock": 10,
        "cause": r.event.id,
    }
    # below already: no new alert for every further pick
    assert ledger.pick("SKU-B", "L1", 1, from_location="A-01", actor=ACTOR).alerts == ()
    assert ledger.kpis().below_safety_stock == (("SKU-B", 8, 10),)


def test_duplicate_event_id_returns_original_result(ledger: Ledger) -> None:
    ledger.receive("SKU-B", "L1", 12, location="A-01", actor=ACTOR)
    eid = str(uuid.uuid4())
    first = ledger.pick("SKU-B", "L1", 3, from_location="A-01", actor=ACTOR, event_id=eid)
    again = ledger.pick("SKU-B", "L1", 3, from_location="A-01", actor=ACTOR, event_id=eid)
    assert again.duplicate and not first.duplicate
    assert again.event == first.event and again.alerts == first.alerts and first.alerts
    assert ledger.stock(location="A-01")[0].qty == 9
    refused(
        ErrorCode.EVENT_INVALID, ledger, ledger.ship, "SKU-B", "L1", 1, actor=ACTOR, event_id=eid
    )


def test_adjust_and_cycle_count(ledger: Ledger) -> None:
    ledger.receive("SKU-A", "L1", 10, location="A-01", actor=ACTOR)
    ledger.adjust("SKU-A", "L1", "A-01", -2, reason="crushed carton", actor=ACTOR)
    r = ledger.cycle_count("SKU-A", "L1", "A-01", 7, actor=ACTOR)
    assert (r.event.payload["system_qty"], r.event.payload["delta"]) == (8, -1)
    ledger.cycle_count("SKU-A", "L1", "A-01", 7, actor=ACTOR)
    ledger.cycle_count("SKU-A", "L1", "A-01", 0, actor=ACTOR)
    assert ledger.stock() == []
    refused(
        ErrorCode.QUANTITY_INVALID,
        ledger,
        ledger.adjust,
        "SKU-A",
        "L1",
        "A-01",
        0,
        reason="nothing",
        actor=ACTOR,
    )
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.adjust,
        "SKU-A",
        "L1",
        "A-01",
        1,
        reason=" ",
        actor=ACTOR,
    )
    assert ledger.kpis().count_discrepancy_rate == pytest.approx(2 / 3)


def test_unreadable_carton_held_then_identified(ledger: Ledger) -> None:
    held = ledger.hold_unidentified(actor="device:edge-01", raw="(01)0950?", model_version="ocr@3")
    hold = held.event.payload["lot"]
    assert held.event.payload["location"] == "QUARANTINE"
    assert held.event.payload["model_version"] == "ocr@3"
    assert ledger.held_locations(hold) == [("QUARANTINE", 1)]
    refused(
        ErrorCode.BATCH_FROZEN,
        ledger,
        ledger.transfer,
        "UNIDENTIFIED",
        hold,
        1,
        from_location="QUARANTINE",
        to="A-01",
        actor=ACTOR,
    )
    r = ledger.identify(hold, sku="SKU-B", lot="L5", expiry="2027-03-01", actor=ACTOR)
    assert r.event.payload["from"] == "QUARANTINE"
    assert [(s.sku, s.lot, s.qty) for s in ledger.stock()] == [("SKU-B", "L5", 1)]
    assert [e.kind for e in ledger.history(lot=hold)] == ["hold", "identify"]
    assert ledger.verify().ok


def test_observations_are_chained_and_move_nothing(ledger: Ledger) -> None:
    read = ledger.record_read(
        {"gtin": "09506000134352", "lot": "L5", "conf": 0.93},
        actor="device:edge-01",
        model_version="ocr@3",
    )
    verdict = ledger.record_verdict(
        {"carton": read.event.id, "damage": "crush", "p": 0.81},
        actor="device:edge-01",
        model_version="defect@2",
    )
    assert verdict.event.prev_hash == read.event.hash
    assert ledger.stock() == [] and ledger.verify().ok


def test_putaway_slot_choice(ledger: Ledger, clock: Clock) -> None:
    ledger.receive("SKU-A", "FAR", 4, expiry="2027-09-01", actor=ACTOR)
    assert ledger.choose_putaway_slot("SKU-A", "FAR") == "A-01"  # nearest empty storage
    ledger.putaway("SKU-A", "FAR", 2, actor=ACTOR)
    ledger.add_location("A-00", "storage", rank=0, actor=ACTOR)
    assert ledger.choose_putaway_slot("SKU-A", "FAR") == "A-01"  # joins its own batch
    ledger.receive("SKU-A", "NEAR", 4, expiry="2026-12-15", actor=ACTOR)
    assert ledger.choose_putaway_slot("SKU-A", "NEAR") == "F-01"  # near expiry: forward zone
    assert ledger.choose_putaway_slot("UNIDENTIFIED", "H1") == "QUARANTINE"


def test_master_data_changes_are_logged_events(ledger: Ledger) -> None:
    kinds = [e.kind for e in ledger.events()]
    assert (
        set(kinds) == {"master-data"} and len(kinds) == 8
    )  # 2 SKUs, 1 unit, 4 locations, 1 supplier
    refused(ErrorCode.CODE_INVALID, ledger, ledger.add_sku, "UNIDENTIFIED", actor=ACTOR)
    refused(ErrorCode.EVENT_INVALID, ledger, ledger.add_location, "X-1", "roof", actor=ACTOR)
    refused(ErrorCode.QUANTITY_INVALID, ledger, ledger.add_unit, "SKU-A", "PAL", 0, actor=ACTOR)
    refused(ErrorCode.CODE_INVALID, ledger, ledger.receive, "UNIDENTIFIED", "L1", 1, actor=ACTOR)


def test_expiry_days_are_local_days(tmp_path: object) -> None:
    """At 2026-11-29 20:00 UTC it is already 11-30 in Shanghai: 7 days left to 12-07."""
    from datetime import UTC, datetime
    from pathlib import Path

    from tests.ledger.helpers import seed

    clock = Clock(datetime(2026, 11, 29, 20, 0, tzinfo=UTC))
    for offset, code in ((0, None), (480, ErrorCode.EXPIRY_BLOCKED)):
        path = Path(str(tmp_path)) / f"l{offset}.db"
        with Ledger.open(path, "edge-01", clock=clock, utc_offset_minutes=offset) as led:
            seed(led)
            led.receive("SKU-A", "L1", 5, expiry="2026-12-07", location="A-01", actor=ACTOR)
            try:
                led.pick("SKU-A", "L1", 1, from_location="A-01", actor=ACTOR)
                got = None
            except DockgateError as exc:
                got = exc.code
            assert got == code


def test_pick_goes_to_outbound_and_fefo_looks_at_pickable_stock(ledger: Ledger) -> None:
    ledger.receive("SKU-A", "NEW", 5, expiry="2027-06-30", location="A-01", actor=ACTOR)
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.pick,
        "SKU-A",
        "NEW",
        1,
        from_location="A-01",
        to="A-02",
        actor=ACTOR,
    )
    # an older batch still on the inbound dock is not put away yet: it does not block the pick
    ledger.receive("SKU-A", "OLD", 5, expiry="2027-01-31", actor=ACTOR)
    ledger.pick("SKU-A", "NEW", 1, from_location="A-01", actor=ACTOR)
    ledger.putaway("SKU-A", "OLD", 5, to="A-02", actor=ACTOR)
    refused(
        ErrorCode.FEFO_VIOLATION,
        ledger,
        ledger.pick,
        "SKU-A",
        "NEW",
        1,
        from_location="A-01",
        actor=ACTOR,
    )


def test_unexpected_fields_and_order_refs(ledger: Ledger) -> None:
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.append,
        "receipt",
        {"sku": "SKU-A", "lot": "L1", "qty": 1, "location": "A-01", "colour": "red"},
        actor=ACTOR,
    )
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.append,
        "hold",
        {"sku": "SKU-A", "lot": "H1", "qty": 1, "location": "QUARANTINE"},
        actor=ACTOR,
    )
    r = ledger.receive("SKU-A", "L1", 3, location="A-01", ref="ASN-2026-0042", actor=ACTOR)
    assert r.event.payload["ref"] == "ASN-2026-0042"
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.ship,
        "SKU-A",
        "L1",
        1,
        from_location="A-01",
        ref="",
        actor=ACTOR,
    )
    ledger.ship("SKU-A", "L1", 1, from_location="A-01", ref="SO-7", actor=ACTOR)


def test_found_stock_of_an_unknown_batch_gets_a_batch(ledger: Ledger) -> None:
    ledger.cycle_count("SKU-A", "FOUND", "A-01", 4, actor=ACTOR)
    (batch,) = ledger.batches("SKU-A")
    assert (batch.lot, batch.qty, batch.first_received) == ("FOUND", 4, "2026-11-22T08:00:00.000Z")
    refused(
        ErrorCode.EVENT_INVALID,
        ledger,
        ledger.transfer,
        "SKU-A",
        "FOUND",
        1,
        from_location="A-01",
        to="a-01",
        actor=ACTOR,
    )
    assert ledger.verify().ok
