"""The SQLite file: WAL + FULL, 0600, migrations with backup, full disk, write failures."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import Ledger, migrations
from edge.ledger.db import connect, stored_device_id
from tests.ledger.helpers import ACTOR, Clock, seed


def test_file_is_private_wal_and_fully_synchronous(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert ledger.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_events_are_append_only_in_the_schema(ledger: Ledger) -> None:
    for sql in ("UPDATE events SET actor = 'user:eve'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            ledger.conn.execute(sql)


def test_migrations_recorded_and_not_reapplied(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger.open(path, "edge-01").close()
    with Ledger.open(path, "edge-01") as led:
        assert migrations.applied(led.db) == ["0001_initial"]
    assert not list(tmp_path.glob("*.bak"))  # a fresh file has nothing to back up


def test_pending_migration_backs_up_first_and_is_atomic(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "l.db"
    with Ledger.open(path, "edge-01", clock=clock) as led:
        seed(led)
        led.receive("SKU-A", "L1", 3, actor=ACTOR)
    extra = (
        migrations.Migration("0002_note", ("ALTER TABLE skus ADD COLUMN note TEXT",)),
        migrations.Migration("0003_broken", ("CREATE TABLE x (a)", "THIS IS NOT SQL")),
    )
    database = connect(path)
    try:
        with pytest.raises(DockgateError) as exc:
            migrations.apply(database, path, migrations.MIGRATIONS + extra)
        assert exc.value.code == ErrorCode.LEDGER_WRITE_FAILED
        # 0002 committed with its record, 0003 rolled back whole (no table x, no record)
        assert migrations.applied(database) == ["0001_initial", "0002_note"]
        assert (
            database.execute("SELECT name FROM sqlite_master WHERE name = 'x'").fetchone() is None
        )
    finally:
        database.conn.close()
    backup = tmp_path / "l.db.before-0002_note.bak"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    copy = sqlite3.connect(backup)
    try:
        assert copy.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 9  # 8 master + 1
        assert [r[0] for r in copy.execute("SELECT name FROM _migrations")] == ["0001_initial"]
    finally:
        copy.close()


def test_ledger_file_belongs_to_one_device(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger.open(path, "edge-01").close()
    assert stored_device_id(path) == "edge-01"
    assert stored_device_id(tmp_path / "none.db") is None
    with pytest.raises(DockgateError) as exc:
        Ledger.open(path, "edge-02")
    assert exc.value.code == ErrorCode.DEVICE_MISMATCH


def test_storage_full_writes_nothing(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "l.db"
    with Ledger.open(path, "edge-01", clock=clock, max_size_mb=1) as led:
        seed(led)
        blob = "x" * 4000
        with pytest.raises(DockgateError) as exc:
            for i in range(1000):
                led.record_read({"n": i, "pad": blob}, actor="device:edge-01")
        assert exc.value.code == ErrorCode.STORAGE_FULL
        seq, head = led.head()
        report = led.verify()
        assert report.ok and report.count == seq
        assert led.outbox_stats().pending == seq  # every event has its outbox row, no more
        # still refusing cleanly, and reads keep working
        with pytest.raises(DockgateError) as again:
            led.record_read({"pad": blob}, actor="device:edge-01")
        assert again.value.code == ErrorCode.STORAGE_FULL
        assert led.head() == (seq, head)
    with Ledger.open(path, "edge-01", clock=clock) as led:  # limit lifted: work resumes
        led.record_read({"pad": blob}, actor="device:edge-01")
        assert led.verify().ok


def test_write_failure_is_ledger_write_failed(ledger: Ledger) -> None:
    ledger.conn.execute("PRAGMA query_only = ON")  # SQLITE_READONLY on the next write
    with pytest.raises(DockgateError) as exc:
        ledger.receive("SKU-A", "L1", 1, actor=ACTOR)
    assert exc.value.code == ErrorCode.LEDGER_WRITE_FAILED
    ledger.conn.execute("PRAGMA query_only = OFF")
    ledger.receive("SKU-A", "L1", 1, actor=ACTOR)
    assert ledger.verify().ok


def test_an_unexpected_failure_mid_append_leaves_nothing_open(tmp_path: Path) -> None:
    """A clock that fails once (say, a broken RTC driver) mid-transaction: the caller gets the
    error, nothing is written, and the next append works."""
    clock = Clock()
    fail = {"now": False}

    def flaky() -> object:
        if fail["now"]:
            fail["now"] = False
            raise RuntimeError("rtc read failed")
        return clock()

    with Ledger.open(tmp_path / "l.db", "edge-01", clock=flaky) as led:  # type: ignore[arg-type]
        seed(led)
        head = led.head()
        fail["now"] = True
        with pytest.raises(RuntimeError):
            led.receive("SKU-A", "L1", 1, actor=ACTOR)
        assert led.head() == head and not led.conn.in_transaction
        led.receive("SKU-A", "L1", 1, actor=ACTOR)
        assert led.verify().ok


def test_payload_of_the_wrong_shape_is_event_invalid(ledger: Ledger) -> None:
    for payload in (
        ["x"],
        {
            "sku": "SKU-A",
            "lot": "L1",
            "qty": 1,
            "location": "A-01",
            "warnings": 5,
            "expiry": "2026-12-01",
        },
    ):
        with pytest.raises(DockgateError) as exc:
            ledger.append("receipt", payload, actor=ACTOR)  # type: ignore[arg-type]
        assert exc.value.code in (ErrorCode.EVENT_INVALID,), exc.value
