"""Login rate limiting: a pause after too many failures, per account and per client address.

Counting per account stops guessing one password from many addresses; counting per address stops
spraying many accounts from one. The pause always ends (``lockout_s``), so an attacker can slow
the real user down but never lock them out for good. In memory: the panel is one process, and a
restart clearing the counters is harmless next to a persistent lock-out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginLimiter:
    def __init__(
        self,
        max_failures: int,
        window_s: float,
        lockout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, *keys: str) -> int:
        """Seconds to wait before another attempt for any of ``keys`` (0 = go ahead)."""
        now = self._clock()
        with self._lock:
            waits = [self._blocked_until.get(k, 0.0) - now for k in keys]
        worst = max([0.0, *waits])
        return int(worst) + 1 if worst > 0 else 0

    def failure(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                q = self._failures.setdefault(key, deque())
                q.append(now)
                while q and now - q[0] > self.window_s:
                    q.popleft()
                if len(q) >= self.max_failures:
                    self._blocked_until[key] = now + self.lockout_s
                    q.clear()
            if len(self._failures) > 10000:  # bound memory under a spray of random names
                self._failures.clear()

    def success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._blocked_until.pop(key, None)
