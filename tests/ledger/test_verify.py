"""Chain and projection verification: tampering, deletion, swaps, rebuild, the fast path."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import Event, canonical_json, event_hash
from edge.ledger import Ledger
from edge.ledger.hashing import proves_intact
from edge.ledger.verify import _self_check
from tests.ledger.helpers import ACTOR


def book(led: Ledger) -> None:
    led.receive("SKU-A", "L1", 24, expiry="2027-06-30", actor=ACTOR)
    led.putaway("SKU-A", "L1", 24, to="A-01", actor=ACTOR)
    led.pick("SKU-A", "L1", 5, from_location="A-01", actor=ACTOR)
    led.record_read({"gtin": "09506000134352", "conf": 0.91, "名": "茶"}, actor="device:edge-01")
    led.freeze("SKU-A", "L1", reason="qa", actor="user:qa")


def unlock(conn: sqlite3.Connection) -> None:
    """What an attacker with file access does first."""
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")


def test_intact_ledger_verifies(ledger: Ledger) -> None:
    book(ledger)
    report = ledger.verify()
    assert report.ok and report.count == 13 and report.summary() == "OK 13 events"


def test_changed_payload_points_at_its_row(ledger: Ledger) -> None:
    book(ledger)
    unlock(ledger.conn)
    ledger.conn.execute("UPDATE events SET payload = replace(payload, '24', '42') WHERE seq = 9")
    report = ledger.verify()
    assert not report.ok and report.problem == "chain"
    assert report.seq == 9 and report.found_hash != report.expected_hash
    assert report.event_id == ledger.events(8, 1)[0].id
    assert "BROKEN at seq 9" in report.summary()


def test_whitespace_in_payload_is_tampering(ledger: Ledger) -> None:
    book(ledger)
    unlock(ledger.conn)
    ledger.conn.execute("UPDATE events SET payload = replace(payload, ',', ', ') WHERE seq = 10")
    report = ledger.verify()
    assert (report.ok, report.seq, report.detail) == (False, 10, "not canonical")


def test_deleted_and_swapped_rows_break_the_links(ledger: Ledger) -> None:
    book(ledger)
    unlock(ledger.conn)
    ledger.conn.execute("DELETE FROM events WHERE seq = 10")
    report = ledger.verify()
    assert (report.ok, report.seq, report.detail) == (False, 11, "sequence gap")


def test_swapped_rows_point_at_the_first(ledger: Ledger) -> None:
    book(ledger)
    unlock(ledger.conn)
    ledger.conn.execute("UPDATE events SET seq = -1 WHERE seq = 9")
    ledger.conn.execute("UPDATE events SET seq = 9 WHERE seq = 10")
    ledger.conn.execute("UPDATE events SET seq = 10 WHERE seq = -1")
    report = ledger.verify()
    assert (report.ok, report.seq) == (False, 9)


def test_recomputed_chain_is_caught_by_projection_or_head(ledger: Ledger) -> None:
    """A root attacker who rewrites a row and re-hashes everything after it passes the chain
    walk (that needs the cloud's signed checkpoints), but not the projection check unless the
    tables were edited too."""
    book(ledger)
    unlock(ledger.conn)
    rows = ledger.conn.execute(
        "SELECT seq, id, device_id, ts, kind, actor, payload, prev_hash FROM events ORDER BY seq"
    ).fetchall()
    prev = rows[8][7]
    for row in rows[8:]:
        payload = json.loads(row[6])
        if row[0] == 9:
            payload["qty"] = 240
        body = dict(
            zip(["seq", "id", "device_id", "ts", "kind", "actor", "payload"], row[:7], strict=True),
            prev_hash=prev,
        )
        body["payload"] = payload
        digest = event_hash(body)
        ledger.conn.execute(
            "UPDATE events SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (canonical_json(payload).decode(), prev, digest, row[0]),
        )
        prev = digest
    report = ledger.verify()
    assert report.problem == "projection" and "stock" in report.detail


def test_projection_mismatch_and_rebuild(ledger: Ledger) -> None:
    book(ledger)
    before = ledger.stock()
    ledger.conn.execute("UPDATE stock SET qty = qty + 1 WHERE location = 'A-01'")
    ledger.conn.execute("UPDATE batches SET frozen = 0")
    report = ledger.verify()
    assert report.problem == "projection" and not report.ok
    assert report.summary().startswith("PROJECTION MISMATCH")
    assert ledger.rebuild_projection() == len(before)
    assert ledger.stock() == before and ledger.verify().ok


def _row(event: Event, text: str) -> tuple[Any, ...]:
    return (
        event.seq,
        event.id,
        event.device_id,
        event.ts,
        event.kind,
        event.actor,
        text,
        event.prev_hash,
        event.hash,
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    actor=st.text(min_size=1, max_size=6),
    seq=st.integers(1, 2**40),
)
def test_fast_path_agrees_with_event_hash(payload: dict[str, Any], actor: str, seq: int) -> None:
    """The quick proof never accepts what event_hash rejects, nor rejects an intact row."""
    try:
        text = canonical_json(payload).decode()
        event = Event(
            "0194-id",
            "edge-01",
            seq,
            "2026-11-22T08:00:00.000Z",
            "carton-read",
            f"user:{actor}",
            json.loads(text),
            "0" * 64,
        ).sealed()
    except (ValueError, UnicodeEncodeError):
        return  # not representable (lone surrogates, 2**53 as a float): append refuses it
    row = _row(event, text)
    assert _self_check(row)[1] is None
    looser = json.dumps(json.loads(text), sort_keys=True)  # same value, other bytes
    if looser != text:
        assert not proves_intact(_row(event, looser), looser, event.hash)
        assert _self_check(_row(event, looser))[1] is not None


@settings(max_examples=150, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_stored_payload_is_exactly_rfc8785(payload: dict[str, Any]) -> None:
    """Whatever path append takes to the bytes, they are the RFC 8785 encoding, and the hash
    is event_hash of the stored event."""
    with tempfile.TemporaryDirectory() as tmp:
        with Ledger.open(Path(tmp) / "l.db", "edge-01", synchronous="NORMAL") as led:
            try:
                r = led.record_read(payload, actor="device:edge-01")
            except DockgateError as exc:
                assert exc.code == ErrorCode.EVENT_INVALID
                return
            text = led.conn.execute("SELECT payload FROM events").fetchone()[0]
            assert text == canonical_json(r.event.payload).decode()
            assert r.event.hash == event_hash(r.event.body())
            assert led.verify().ok


def test_damaged_pages_are_reported(tmp_path: Path) -> None:
    from tests.ledger.helpers import seed

    path = tmp_path / "l.db"
    with Ledger.open(path, "edge-01") as led:
        seed(led)
        for i in range(300):
            led.record_read({"n": i, "pad": "y" * 200}, actor="device:edge-01")
        led.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    for page in (1, 2, 3):  # scribble over b-tree page headers (a bad sector, a bit flip)
        for i in range(4096 * page, 4096 * page + 8):
            data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    try:
        with Ledger.open(path, "edge-01") as led:
            report = led.verify()
    except DockgateError as exc:  # damage SQLite trips over at once
        assert exc.code == ErrorCode.LEDGER_CORRUPT, exc
        return
    assert not report.ok and report.problem in ("storage", "chain"), report


def test_a_damaged_index_is_found_by_verify(tmp_path: Path) -> None:
    from tests.ledger.helpers import seed

    path = tmp_path / "l.db"
    with Ledger.open(path, "edge-01") as led:
        seed(led)
        for i in range(300):
            led.receive("SKU-A", f"L{i}", 1, actor=ACTOR)
        led.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = led.conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'events_lot'"
        ).fetchone()[0]
    data = bytearray(path.read_bytes())
    start = 4096 * (root - 1)
    for i in range(start, start + 8):  # the index's root page header: only verify reads it
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with Ledger.open(path, "edge-01") as led:
        report = led.verify()
    assert (report.ok, report.problem) == (False, "storage")
    assert report.summary().startswith("DATABASE DAMAGED")
