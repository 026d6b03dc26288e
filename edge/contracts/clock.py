"""The device's wall clock, with a seam for tests: a clock that jumps, not the system clock.

Every edge timestamp that goes into the ledger (event ``ts``) or a signed request (``ts`` claim)
comes from :func:`wall_time` / :func:`utc_now`. Ordering never depends on it (events are ordered
by their sequence number); the cloud flags events whose device time is implausible
(``CLOCK_SKEW``, see ``cloud/services/clock.py``).

Seam: when ``DOCKGATE_CLOCK_OFFSET_FILE`` names a file, its content (seconds, a float, may be
negative) is added to the system clock. The file is re-read when its modification time changes,
so a test can make a running node's clock jump back or forward by hours, as an NTP step or a
flat RTC battery would, without touching the machine's clock. Unset (production), the functions
are the system clock.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

ENV = "DOCKGATE_CLOCK_OFFSET_FILE"
_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], float]] = {}  # path -> ((inode, mtime_ns), offset)


def offset_s() -> float:
    """The injected offset in seconds (0 without the seam or with an unreadable file)."""
    path = os.environ.get(ENV)
    if not path:
        return 0.0
    try:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_mtime_ns)  # set_offset replaces the file: a new inode
    except OSError:
        return 0.0
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            with open(path, encoding="ascii") as f:
                value = float(f.read().strip() or 0)
        except (OSError, ValueError, UnicodeDecodeError):
            value = 0.0
        _cache[path] = (stamp, value)
        return value


def wall_time() -> float:
    """Seconds since the epoch, as this device believes."""
    return time.time() + offset_s()


def utc_now() -> datetime:
    """Now, as this device believes, timezone-aware UTC."""
    return datetime.fromtimestamp(wall_time(), UTC)


def set_offset(path: str | os.PathLike[str], seconds: float) -> None:
    """Write ``seconds`` to the seam file atomically (for tests and the chaos harness)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(repr(float(seconds)))
    os.replace(tmp, path)
