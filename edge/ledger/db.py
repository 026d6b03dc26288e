"""Opening the ledger's SQLite file safely and turning SQLite failures into stable codes.

WAL mode with ``synchronous=FULL``: a commit that returned survives an application crash and,
on storage that honours fsync, a power cut. The file is created with mode 0600 (stock and
supplier data are nobody else's business) and ``max_page_count`` enforces ``max_size_mb``.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import NoReturn

import sqlite_utils

from edge.contracts.errors import DockgateError, ErrorCode

BUSY_TIMEOUT_MS = 5000
_FULL_CODES = {sqlite3.SQLITE_FULL}
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def connect(
    path: Path, *, synchronous: str = "FULL", max_size_mb: int = 0
) -> sqlite_utils.Database:
    """Open (creating with mode 0600 if needed) the ledger database in WAL mode.

    Transactions are explicit (``BEGIN IMMEDIATE`` ... ``COMMIT``): the connection runs in
    autocommit mode so that Python's sqlite3 never opens one behind our back.
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"synchronous={synchronous!r}: FULL|NORMAL")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except (OSError, sqlite3.Error) as exc:
        raise_storage_error(exc, f"cannot open ledger {path}")
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise DockgateError(
                ErrorCode.LEDGER_WRITE_FAILED, f"{path}: cannot enable WAL ({mode})"
            )
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        if max_size_mb:
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            conn.execute(f"PRAGMA max_page_count = {max_size_mb * 1024 * 1024 // page_size}")
    except sqlite3.Error as exc:
        conn.close()
        raise_storage_error(exc, f"cannot open ledger {path}")
    except DockgateError:
        conn.close()
        raise
    return sqlite_utils.Database(conn)


def is_storage_full(exc: BaseException) -> bool:
    """True for SQLITE_FULL (disk or ``max_page_count``) and ENOSPC."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in _FULL_CODES
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def raise_storage_error(exc: BaseException, what: str) -> NoReturn:
    """Re-raise an SQLite/OS failure as ``STORAGE_FULL``, ``LEDGER_CORRUPT`` or
    ``LEDGER_WRITE_FAILED``."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and (code & 0xFF) in _CORRUPT_CODES:
        raise DockgateError(
            ErrorCode.LEDGER_CORRUPT, f"{what}: the ledger file is damaged ({exc})"
        ) from exc
    if is_storage_full(exc):
        raise DockgateError(
            ErrorCode.STORAGE_FULL, f"{what}: storage full; nothing was written"
        ) from exc
    raise DockgateError(
        ErrorCode.LEDGER_WRITE_FAILED, f"{what}: {type(exc).__name__}: {exc}"
    ) from exc


def bind_device(database: sqlite_utils.Database, device_id: str) -> None:
    """A ledger file belongs to one device for life: refuse to open it as another."""
    row = database.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchone()
    if row is None:
        database.execute("INSERT INTO meta (key, value) VALUES ('device_id', ?)", (device_id,))
    elif row[0] != device_id:
        raise DockgateError(
            ErrorCode.DEVICE_MISMATCH, f"this ledger belongs to device {row[0]}, not {device_id}"
        )


def stored_device_id(path: Path) -> str | None:
    """The device a ledger file belongs to (None for a new file), without migrating it."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if row is None else str(row[0])
