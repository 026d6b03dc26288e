"""In-process publish/subscribe between the domain and its outputs.

Domain code (ledger, vision) publishes typed, frozen events; adapters (AGV dispatch, PLC, the
panel's live view, the sync agent) subscribe. Publishing never blocks the line: each subscriber
has a bounded queue, and when a slow subscriber's queue is full its oldest message is dropped and
counted (the panel shows the count) rather than stalling the publisher.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    """One published event: a topic like ``ledger.appended`` and a frozen payload object."""

    topic: str
    payload: Any


@dataclass
class Subscription:
    """A subscriber's bounded inbox. Read with :meth:`get`; close with :meth:`close`."""

    topics: frozenset[str]
    maxsize: int
    _queue: queue.Queue[Message] = field(init=False)
    dropped: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self._queue = queue.Queue(maxsize=self.maxsize)

    def matches(self, topic: str) -> bool:
        return any(
            topic == t or (t.endswith(".*") and topic.startswith(t[:-1])) for t in self.topics
        )

    def offer(self, message: Message) -> None:
        """Enqueue without blocking; drop the oldest message when full."""
        while True:
            try:
                self._queue.put_nowait(message)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None) -> Message | None:
        """Next message, or ``None`` after ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self.closed = True


class Bus:
    """Thread-safe fan-out of messages to subscriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self.published = 0

    def subscribe(self, topics: Iterable[str], maxsize: int = 1000) -> Subscription:
        """Subscribe to exact topics, or to a prefix with ``"prefix.*"``."""
        sub = Subscription(frozenset(topics), maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        with self._lock:
            self._subs = [s for s in self._subs if s is not sub]

    def publish(self, topic: str, payload: Any) -> int:
        """Deliver to every matching subscription; returns how many received it."""
        message = Message(topic, payload)
        with self._lock:
            targets = [s for s in self._subs if not s.closed and s.matches(topic)]
            self.published += 1
        for sub in targets:
            sub.offer(message)
        return len(targets)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "published": self.published,
                "subscribers": len(self._subs),
                "dropped": sum(s.dropped for s in self._subs),
            }
