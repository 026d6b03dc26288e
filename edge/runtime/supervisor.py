"""Supervised worker threads: start order, heartbeats, restarts with a budget, degraded state.

Why threads and not processes: on a 2-core box the heavy work (onnxruntime inference, OpenCV,
SQLite commits, hashing in C) releases the GIL, so threads in one process use both cores without
copying frames between processes, and they share one loaded copy of each model (memory matters
on cheap edge boxes). A worker that raises or stops sending heartbeats is replaced by a fresh
instance from its factory; more than ``max_restarts`` within ``window_s`` marks it degraded, which
``/readyz`` and the panel show, instead of restarting forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class Worker:
    """Base class of a supervised stage: override :meth:`step` (one unit of work).

    ``step`` should return within about a second so heartbeats stay fresh and stop requests are
    seen; it is called in a loop until :meth:`stop`.
    """

    name = "worker"

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.last_beat = time.monotonic()

    def setup(self) -> None:
        """Called once in the worker thread before the first step (open files, connect...)."""

    def step(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        """Called once in the worker thread after the last step, also after an error."""

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        self.setup()
        try:
            while not self.stop_event.is_set():
                self.beat()
                self.step()
        finally:
            self.teardown()


@dataclass
class _Slot:
    name: str
    factory: Callable[[], Worker]
    worker: Worker | None = None
    thread: threading.Thread | None = None
    restarts: int = 0
    recent: deque[float] = field(default_factory=deque)
    last_error: str = ""
    degraded: bool = False


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    alive: bool
    restarts: int
    degraded: bool
    last_error: str
    heartbeat_age_s: float


class Supervisor:
    """Starts workers in the order added and keeps them running."""

    def __init__(
        self,
        *,
        heartbeat_timeout_s: float = 10.0,
        max_restarts: int = 5,
        window_s: float = 60.0,
        check_interval_s: float = 0.5,
        on_restart: Callable[[str, str], None] | None = None,
    ) -> None:
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.check_interval_s = check_interval_s
        self.on_restart = on_restart
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    def add(self, name: str, factory: Callable[[], Worker]) -> None:
        self._slots.append(_Slot(name, factory))

    def start(self) -> None:
        for slot in self._slots:
            self._launch(slot)
        self._watchdog = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._watchdog.start()

    def _launch(self, slot: _Slot) -> None:
        worker = slot.factory()
        worker.name = slot.name

        def target() -> None:
            try:
                worker.run()
            except Exception as exc:
                slot.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("worker %s died", slot.name)

        slot.worker = worker
        slot.thread = threading.Thread(target=target, name=f"dg-{slot.name}", daemon=True)
        slot.thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            now = time.monotonic()
            with self._lock:
                for slot in self._slots:
                    self._check(slot, now)

    def _check(self, slot: _Slot, now: float) -> None:
        if slot.degraded or slot.worker is None or slot.thread is None:
            return
        dead = not slot.thread.is_alive()
        stale = now - slot.worker.last_beat > self.heartbeat_timeout_s
        if not (dead or stale):
            return
        reason = slot.last_error if dead else f"no heartbeat for {now - slot.worker.last_beat:.1f}s"
        slot.worker.stop()
        while slot.recent and now - slot.recent[0] > self.window_s:
            slot.recent.popleft()
        if len(slot.recent) >= self.max_restarts:
            slot.degraded = True
            log.error(
                "worker %s degraded after %d restarts: %s", slot.name, len(slot.recent), reason
            )
            return
        slot.recent.append(now)
        slot.restarts += 1
        slot.last_error = reason or "stopped"
        log.warning("restarting worker %s (%s)", slot.name, slot.last_error)
        if self.on_restart is not None:
            self.on_restart(slot.name, slot.last_error)
        self._launch(slot)

    def status(self) -> list[WorkerStatus]:
        now = time.monotonic()
        with self._lock:
            return [
                WorkerStatus(
                    name=s.name,
                    alive=bool(s.thread and s.thread.is_alive()),
                    restarts=s.restarts,
                    degraded=s.degraded,
                    last_error=s.last_error,
                    heartbeat_age_s=now - s.worker.last_beat if s.worker else 0.0,
                )
                for s in self._slots
            ]

    def healthy(self) -> bool:
        return all(st.alive and not st.degraded for st in self.status())

    def stop(self, timeout: float = 5.0) -> None:
        """Stop in reverse start order and wait for every thread."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout)
        for slot in reversed(self._slots):
            if slot.worker is not None:
                slot.worker.stop()
        for slot in reversed(self._slots):
            if slot.thread is not None:
                slot.thread.join(timeout)
