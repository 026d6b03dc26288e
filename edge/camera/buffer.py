"""The bounded hand-off between capture and inference, with a declared overflow policy.

Free-running video drops the oldest frame when inference falls behind (a newer view of the same
carton is worth more than an old one). A frame captured for a photo-eye trigger is a carton the
line expects an answer for: it is never dropped silently; when the buffer stays full the producer
gets ``False`` back and must divert that carton to the manual lane and record it.
"""

from __future__ import annotations

import threading
from collections import deque
from enum import StrEnum

from edge.camera.frame import Frame


class Overflow(StrEnum):
    DROP_OLDEST = "drop-oldest"
    WAIT = "wait"


class FrameBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self.dropped = 0
        self.refused = 0

    def put(self, frame: Frame, policy: Overflow, timeout: float = 0.0) -> bool:
        """Add a frame. DROP_OLDEST always succeeds; WAIT waits up to ``timeout`` seconds for
        room and returns ``False`` (counted in ``refused``) if there is none."""
        with self._cond:
            if policy is Overflow.DROP_OLDEST:
                while len(self._items) >= self.capacity:
                    self._items.popleft()
                    self.dropped += 1
            elif not self._cond.wait_for(lambda: len(self._items) < self.capacity, timeout):
                self.refused += 1
                return False
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> Frame | None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
