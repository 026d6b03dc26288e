"""Dispatch tasks in SQLite (WAL, synchronous=FULL): a task is never only in memory.

One file (default ``<data_dir>/dispatch.db``) holds the tasks, their history (what the operator
sees: why a task waits, why it was re-dispatched) and the per-AGV, per-topic headerId counters
so a restart never sends a headerId that goes backwards. Not thread-safe by itself: the
dispatcher serialises access.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
# Statuses: QUEUED (waiting for an AGV), ASSIGNED (order sent, not yet echoed by the AGV's
# state), RUNNING (echoed), CANCELLING (cancelOrder sent), then DONE, FAILED or CANCELLED.
ACTIVE = ("ASSIGNED", "RUNNING", "CANCELLING")
OPEN = ("QUEUED", *ACTIVE)

_DDL = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    carton_id TEXT NOT NULL,
    from_node TEXT NOT NULL,
    to_location TEXT NOT NULL,
    to_node TEXT NOT NULL,
    status TEXT NOT NULL,
    agv TEXT,
    order_id TEXT,
    order_update_id INTEGER NOT NULL DEFAULT 0,
    route TEXT NOT NULL DEFAULT '[]',
    released_upto INTEGER NOT NULL DEFAULT 0,
    acked INTEGER NOT NULL DEFAULT 0,
    picked INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    redispatched INTEGER NOT NULL DEFAULT 0,
    failed_agvs TEXT NOT NULL DEFAULT '[]',
    cancel_action TEXT,
    code TEXT,
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(status, created_at);
CREATE TABLE IF NOT EXISTS task_log (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    code TEXT,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS header_ids (
    agv TEXT NOT NULL,
    subtopic TEXT NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (agv, subtopic)
);
"""


@dataclass
class TaskRow:
    """One dispatch task as stored. ``route`` is the node ids the order drives through."""

    task_id: str
    carton_id: str
    from_node: str
    to_location: str
    to_node: str
    status: str = "QUEUED"
    agv: str | None = None
    order_id: str | None = None
    order_update_id: int = 0
    route: list[str] = field(default_factory=list)
    released_upto: int = 0
    acked: bool = False
    picked: bool = False  # the AGV reported its pick FINISHED: the carton is on that AGV
    sends: int = 0
    attempt: int = 0
    redispatched: int = 0
    failed_agvs: list[str] = field(default_factory=list)
    cancel_action: str | None = None
    code: str | None = None
    reason: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


_COLUMNS = list(TaskRow.__dataclass_fields__)
_JSON = ("route", "failed_agvs")
# SQL built once from the dataclass's own field names, never from input.
_COLS = ",".join(_COLUMNS)
_INSERT = f"INSERT INTO tasks({_COLS}) VALUES ({','.join('?' * len(_COLUMNS))})"  # noqa: S608
_UPDATE = f"UPDATE tasks SET {','.join(f'{c}=?' for c in _COLUMNS[1:])} WHERE task_id=?"  # noqa: S608
_SELECT = f"SELECT {_COLS} FROM tasks"  # noqa: S608


class TaskStore:
    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        # The dispatcher's lock serialises every use; paho's thread and the ticker both call in.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if fresh:
            os.chmod(path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_DDL)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def _tx(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                cur.execute(sql, args)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    @staticmethod
    def _log_stmt(
        task_id: str, event: str, code: str | None, detail: str | None
    ) -> tuple[str, tuple[Any, ...]]:
        return (
            "INSERT INTO task_log(task_id, at, event, code, detail) VALUES (?,?,?,?,?)",
            (task_id, time.time(), event, code, detail),
        )

    def insert(self, row: TaskRow) -> bool:
        """Store a new task; False when a task with that id exists (a resubmission)."""
        values = [_dump(c, getattr(row, c)) for c in _COLUMNS]
        try:
            self._tx(
                [
                    (_INSERT, tuple(values)),
                    self._log_stmt(row.task_id, "submitted", None, row.to_location),
                ]
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def save(
        self,
        row: TaskRow,
        event: str | None = None,
        code: str | None = None,
        detail: str | None = None,
        header: tuple[str, str, int] | None = None,
        insert: bool = False,
    ) -> None:
        """Write the whole row (and a log line, and a headerId) in one transaction.

        ``insert`` stores a new task in the same transaction, so a carton that finds an AGV at
        once costs one fsync, not two.
        """
        row.updated_at = time.time()
        args = (*(_dump(c, getattr(row, c)) for c in _COLUMNS[1:]), row.task_id)
        stmts: list[tuple[str, tuple[Any, ...]]] = []
        if insert:
            stmts.append((_INSERT, tuple(_dump(c, getattr(row, c)) for c in _COLUMNS)))
            stmts.append(self._log_stmt(row.task_id, "submitted", None, row.to_location))
        stmts.append((_UPDATE, args))
        if event is not None:
            stmts.append(self._log_stmt(row.task_id, event, code, detail))
        if header is not None:
            stmts.append(_header_stmt(*header))
        self._tx(stmts)

    def get(self, task_id: str) -> TaskRow | None:
        cur = self._db.execute(_SELECT + " WHERE task_id=?", (task_id,))
        found = cur.fetchone()
        return _load(found) if found else None

    def by_status(self, statuses: tuple[str, ...]) -> list[TaskRow]:
        marks = ",".join("?" * len(statuses))
        cur = self._db.execute(
            f"{_SELECT} WHERE status IN ({marks}) ORDER BY created_at, task_id",
            statuses,
        )
        return [_load(r) for r in cur.fetchall()]

    def history(self, task_id: str) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT at, event, code, detail FROM task_log WHERE task_id=? ORDER BY id", (task_id,)
        )
        return [dict(zip(("at", "event", "code", "detail"), r, strict=True)) for r in cur]

    def counts(self) -> dict[str, int]:
        cur = self._db.execute("SELECT status, count(*) FROM tasks GROUP BY status")
        return {str(s): int(n) for s, n in cur.fetchall()}

    def header_ids(self) -> dict[tuple[str, str], int]:
        cur = self._db.execute("SELECT agv, subtopic, last FROM header_ids")
        return {(str(a), str(s)): int(n) for a, s, n in cur.fetchall()}

    def save_header(self, agv: str, subtopic: str, value: int) -> None:
        self._tx([_header_stmt(agv, subtopic, value)])


def _header_stmt(agv: str, subtopic: str, value: int) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO header_ids(agv, subtopic, last) VALUES (?,?,?) "
        "ON CONFLICT(agv, subtopic) DO UPDATE SET last=excluded.last",
        (agv, subtopic, value),
    )


def _dump(column: str, value: Any) -> Any:
    if column in _JSON:
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _load(values: tuple[Any, ...]) -> TaskRow:
    data = dict(zip(_COLUMNS, values, strict=True))
    for c in _JSON:
        data[c] = json.loads(data[c])
    data["acked"] = bool(data["acked"])
    data["picked"] = bool(data["picked"])
    return TaskRow(**data)
