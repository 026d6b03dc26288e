"""Named, transactional schema migrations, each recorded in the transaction that applies it.

Before applying pending migrations to a database that already holds data, a consistent copy is
taken with SQLite's backup API (``<db>.before-<migration>.bak``, mode 0600), so a migration bug
in the field can be undone by hand. Migrations are lists of single statements (never
``executescript``, which would commit halfway).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from edge.ledger.db import raise_storage_error


@dataclass(frozen=True)
class Migration:
    """One schema step: a unique name and the statements it runs, in order."""

    name: str
    statements: tuple[str, ...]


_APPEND_ONLY = (
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END",
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
    "BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_initial",
        (
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            # the log: payload is RFC 8785 canonical JSON text, hash covers every other column
            """CREATE TABLE events (
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                device_id TEXT NOT NULL,
                ts TEXT NOT NULL,
                kind TEXT NOT NULL,
                actor TEXT NOT NULL,
                payload TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL)""",
            "CREATE INDEX events_lot ON events (json_extract(payload, '$.lot'))",
            "CREATE INDEX events_sku ON events (json_extract(payload, '$.sku'))",
            *_APPEND_ONLY,
            # rows wait here until the cloud acknowledged them; envelope NULL = not signed yet
            """CREATE TABLE outbox (
                seq INTEGER PRIMARY KEY REFERENCES events (seq),
                event_id TEXT NOT NULL,
                model_version TEXT,
                envelope TEXT)""",
            # projections (rebuildable from the log)
            """CREATE TABLE stock (
                sku TEXT NOT NULL, lot TEXT NOT NULL, location TEXT NOT NULL,
                qty INTEGER NOT NULL CHECK (qty > 0), expiry TEXT,
                PRIMARY KEY (sku, lot, location)) WITHOUT ROWID""",
            """CREATE TABLE batches (
                sku TEXT NOT NULL, lot TEXT NOT NULL, expiry TEXT,
                frozen INTEGER NOT NULL DEFAULT 0, freeze_reason TEXT,
                expiry_blocked INTEGER NOT NULL DEFAULT 0, first_received TEXT,
                PRIMARY KEY (sku, lot)) WITHOUT ROWID""",
            # master data (changes are also logged as master-data events)
            """CREATE TABLE skus (
                sku TEXT PRIMARY KEY, gtin TEXT UNIQUE, name TEXT NOT NULL DEFAULT '',
                base_unit TEXT NOT NULL DEFAULT 'EA',
                safety_stock INTEGER NOT NULL DEFAULT 0 CHECK (safety_stock >= 0))""",
            """CREATE TABLE units (
                sku TEXT NOT NULL REFERENCES skus (sku), unit TEXT NOT NULL,
                factor INTEGER NOT NULL CHECK (factor > 0), PRIMARY KEY (sku, unit))""",
            "CREATE TABLE suppliers (code TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '')",
            """CREATE TABLE locations (
                code TEXT PRIMARY KEY,
                zone TEXT NOT NULL CHECK (zone IN
                    ('inbound', 'storage', 'forward', 'quarantine', 'outbound')),
                rank INTEGER NOT NULL DEFAULT 100)""",
            "INSERT INTO locations VALUES ('INBOUND', 'inbound', 0), "
            "('QUARANTINE', 'quarantine', 0), ('OUTBOUND', 'outbound', 0)",
        ),
    ),
)


def applied(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations already applied, in order."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    return [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]


def pending(
    db: sqlite_utils.Database, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[Migration]:
    """Migrations not applied yet, in order."""
    done = set(applied(db))
    return [m for m in migrations if m.name not in done]


def backup(db: sqlite_utils.Database, dest: Path) -> Path:
    """A consistent copy of the live database (backup API, never a file copy), mode 0600."""
    fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    target = sqlite3.connect(str(dest))
    try:
        db.conn.backup(target)
    finally:
        target.close()
    return dest


def apply(
    db: sqlite_utils.Database, path: Path | None, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[str]:
    """Apply pending migrations, each in one transaction with its ``_migrations`` record.

    Returns the names applied. Backs up ``path`` first when it already holds applied
    migrations (a fresh file has nothing to lose).
    """
    todo = pending(db, migrations)
    if not todo:
        return []
    if path is not None and applied(db):
        dest = path.with_name(f"{path.name}.before-{todo[0].name}.bak")
        if not dest.exists():  # an earlier failed attempt's copy is the true "before"
            backup(db, dest)
    conn = db.conn
    for migration in todo:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (migration.name, datetime.now(UTC).isoformat()),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise_storage_error(exc, f"migration {migration.name}")
    return [m.name for m in todo]
