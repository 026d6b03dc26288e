from __future__ import annotations

import threading
import time

from edge.runtime.supervisor import Supervisor, Worker


def wait_until(cond, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


class Counter(Worker):
    instances = 0
    steps = 0

    def __init__(self, fail_after: int | None = None, hang: bool = False) -> None:
        super().__init__()
        type(self).instances += 1
        self.fail_after = fail_after
        self.hang = hang
        self.n = 0

    def step(self) -> None:
        self.n += 1
        type(self).steps += 1
        if self.fail_after is not None and self.n >= self.fail_after:
            raise RuntimeError("boom")
        if self.hang:
            self.stop_event.wait(3.0)  # simulates a stuck stage: no heartbeat
        else:
            time.sleep(0.005)


def test_dead_worker_is_restarted_and_counted() -> None:
    Counter.instances = 0
    restarts: list[tuple[str, str]] = []
    sup = Supervisor(check_interval_s=0.05, on_restart=lambda n, r: restarts.append((n, r)))
    sup.add("reader", lambda: Counter(fail_after=3 if Counter.instances < 2 else None))
    sup.start()
    try:
        assert wait_until(lambda: sup.status()[0].restarts >= 1 and sup.status()[0].alive)
        st = sup.status()[0]
        assert "RuntimeError: boom" in restarts[0][1]
        assert not st.degraded
    finally:
        sup.stop()
    assert not any(t.name.startswith("dg-") for t in threading.enumerate())


def test_stale_heartbeat_restarts() -> None:
    Counter.instances = 0
    sup = Supervisor(check_interval_s=0.05, heartbeat_timeout_s=0.3)
    sup.add("stuck", lambda: Counter(hang=Counter.instances < 1))
    sup.start()
    try:
        assert wait_until(lambda: sup.status()[0].restarts == 1)
        assert "no heartbeat" in sup.status()[0].last_error
        assert wait_until(lambda: sup.status()[0].alive)
    finally:
        sup.stop()


def test_restart_budget_marks_degraded() -> None:
    sup = Supervisor(check_interval_s=0.02, max_restarts=3, window_s=60)
    sup.add("crashy", lambda: Counter(fail_after=1))
    sup.start()
    try:
        assert wait_until(lambda: sup.status()[0].degraded)
        assert sup.status()[0].restarts == 3
        assert not sup.healthy()
    finally:
        sup.stop()
