"""The sync agent's small persistent state (what ``dockgate edge status`` shows), as JSON.

Written atomically (temp file + rename), so a SIGKILL leaves either the old or the new state.
Losing it is harmless: the outbox is the source of truth and the freeze cursor only saves work.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.contracts.errors import DockgateError


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class SyncState:
    last_success: str | None = None
    last_attempt: str | None = None
    last_error_code: str | None = None
    last_error_message: str | None = None
    last_error_at: str | None = None
    consecutive_failures: int = 0
    cloud_hwm: int = 0
    freeze_cursor: int = 0
    freezes_applied: int = 0
    conflicts_reported: int = 0


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SyncState:
        try:
            data = json.loads(self.path.read_text())
            known = set(SyncState.__dataclass_fields__)
            return SyncState(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError):
            return SyncState()

    def save(self, state: SyncState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=1))
        os.replace(tmp, self.path)


def record_error(state: SyncState, error: DockgateError) -> None:
    state.last_error_code = error.code.value
    state.last_error_message = error.message
    state.last_error_at = now_iso()
    state.consecutive_failures += 1
