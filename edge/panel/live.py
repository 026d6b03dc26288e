"""The live line view's memory: recent cartons from the bus, and the figures behind the charts.

One thread drains the bus subscription (so a slow or absent browser never makes the bus drop
cartons from the statistics); pages and the server-sent event stream read from here. Readers
can also :meth:`LiveFeed.pump` so the feed works without the thread (TestClient).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import threading
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edge.panel.services import CARTON_TOPIC, STATUSES, CartonEvent
from edge.runtime.bus import Bus

HOURS_KEPT = 24
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_BUCKET_MIN = 5
IDLE_POLL_S = 0.01  # the feed thread looks at the bus this often when it is idle


@dataclass(frozen=True)
class LiveCarton:
    seq: int
    event: CartonEvent


def _parse_ts(ts: str) -> datetime:
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


class LiveFeed:
    def __init__(self, bus: Bus, keep: int = 30) -> None:
        self._sub = bus.subscribe([CARTON_TOPIC], maxsize=10000)
        self._bus = bus
        self._lock = threading.Lock()
        self._take_lock = threading.Lock()
        self._recent: deque[LiveCarton] = deque(maxlen=keep)
        self._by_id: dict[str, CartonEvent] = {}
        self._hours: dict[datetime, Counter[str]] = {}
        self._latency: deque[tuple[datetime, float]] = deque(maxlen=50000)
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Live streams waiting for the next carton: woken from the feed thread, so a carton
        # reaches the browser as soon as it is published rather than at the next poll.
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="panel-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._bus.unsubscribe(self._sub)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._take_one():
                self._stop.wait(IDLE_POLL_S)

    def _take_one(self) -> bool:
        # Taking a message and adding it happen under one lock, so the feed thread and a
        # request that pumps can never swap the order of two cartons.
        with self._take_lock:
            message = self._sub.get(timeout=0)
            if message is None:
                return False
            self._add(message.payload)
            return True

    def pump(self) -> None:
        """Take whatever is waiting on the bus now (non-blocking)."""
        while self._take_one():
            pass

    def _add(self, payload: object) -> None:
        if not isinstance(payload, CartonEvent):
            return  # not our contract: ignore rather than crash the feed
        moment = _parse_ts(payload.ts)
        hour = moment.replace(minute=0, second=0, microsecond=0)
        with self._lock:
            self._seq += 1
            if len(self._recent) == self._recent.maxlen:
                self._by_id.pop(self._recent[0].event.carton_id, None)
            self._recent.append(LiveCarton(self._seq, payload))
            self._by_id[payload.carton_id] = payload
            self._hours.setdefault(hour, Counter())[payload.status] += 1
            for old in [h for h in self._hours if h < hour - timedelta(hours=HOURS_KEPT)]:
                del self._hours[old]
            if payload.latency_ms is not None:
                self._latency.append((moment, payload.latency_ms))
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that stream's loop already closed
                loop.call_soon_threadsafe(event.set)

    def waiter(self) -> asyncio.Event:
        """An event set whenever a carton arrives (call from the stream's event loop)."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
        return event

    def forget(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}

    # reading ---------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        with self._lock:
            return self._seq

    def recent(self, after_seq: int = 0) -> list[LiveCarton]:
        """Newest first."""
        self.pump()
        with self._lock:
            return [c for c in reversed(self._recent) if c.seq > after_seq]

    def carton(self, carton_id: str) -> CartonEvent | None:
        self.pump()
        with self._lock:
            return self._by_id.get(carton_id)

    def per_hour(self, now: datetime | None = None, hours: int = 12) -> list[tuple[str, int]]:
        """(hour label HH:00, cartons) for the last ``hours`` hours, oldest first."""
        self.pump()
        end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        with self._lock:
            return [
                (f"{h:%H}:00", sum(self._hours.get(h, Counter()).values()))
                for h in (end - timedelta(hours=i) for i in reversed(range(hours)))
            ]

    def status_share(self) -> dict[str, int]:
        """Cartons per status over the hours kept."""
        self.pump()
        total: Counter[str] = Counter()
        with self._lock:
            for counts in self._hours.values():
                total.update(counts)
        return {s: total.get(s, 0) for s in STATUSES}

    def latency(self, now: datetime | None = None) -> tuple[float, float, int] | None:
        """(p50, p95, n) of inference latency over the last hour, or None with no data."""
        values = [ms for _, ms in self._window(now)]
        if not values:
            return None
        return percentile(values, 50), percentile(values, 95), len(values)

    def latency_series(self, now: datetime | None = None) -> list[tuple[str, float | None]]:
        """Median latency per 5-minute bucket over the last hour (None = no carton)."""
        end = now or datetime.now(UTC)
        start = end - LATENCY_WINDOW
        buckets: dict[int, list[float]] = {}
        for moment, ms in self._window(now):
            idx = int((moment - start).total_seconds() // (LATENCY_BUCKET_MIN * 60))
            buckets.setdefault(min(idx, 11), []).append(ms)
        out: list[tuple[str, float | None]] = []
        for i in range(12):
            label = f"{start + timedelta(minutes=LATENCY_BUCKET_MIN * i):%H:%M}"
            vals = buckets.get(i)
            out.append((label, statistics.median(vals) if vals else None))
        return out

    def _window(self, now: datetime | None) -> list[tuple[datetime, float]]:
        self.pump()
        since = (now or datetime.now(UTC)) - LATENCY_WINDOW
        with self._lock:
            return [(m, ms) for m, ms in self._latency if m >= since]
