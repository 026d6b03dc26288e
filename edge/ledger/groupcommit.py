"""Group commit without a background thread: the first waiting caller commits for everyone.

Callers enqueue a request and wait. Whoever finds no commit in progress becomes the leader,
takes every queued request, runs them as one transaction (one fsync) and wakes the others.
Each caller returns only after the transaction holding its request committed (or failed), so
"acknowledged" still means "durable". A lone caller pays nothing extra: it leads a batch of one.
No thread is started, so nothing is left running when the ledger closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")


class Pending(Generic[R]):
    """One caller's request and, once its batch committed, its outcome."""

    __slots__ = ("done", "error", "request", "result")

    def __init__(self, request: object) -> None:
        self.request = request
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None

    def resolve(self, result: R) -> None:
        self.result, self.done = result, True

    def reject(self, error: BaseException) -> None:
        self.error, self.done = error, True


class GroupCommit(Generic[R]):
    """Batches concurrent requests into one ``run_batch`` call (which must resolve each)."""

    def __init__(self, run_batch: Callable[[list[Pending[R]]], None], max_batch: int = 512) -> None:
        self._run_batch = run_batch
        self._max = max_batch
        self._cv = threading.Condition()
        self._queue: list[Pending[R]] = []
        self._busy = False
        self.batches = 0  # for the bench: how many commits served how many requests

    def submit(self, request: object) -> R:
        """Queue ``request``, lead or wait for the batch holding it, return its result."""
        item: Pending[R] = Pending(request)
        with self._cv:
            self._queue.append(item)
        while True:
            with self._cv:
                while not item.done and self._busy:
                    self._cv.wait()
                if item.done:
                    break
                self._busy = True
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                self._run_batch(batch)
            except BaseException as exc:  # the runner failed as a whole: nobody is acknowledged
                for p in batch:
                    if not p.done:
                        p.reject(exc)
            finally:
                with self._cv:
                    self.batches += 1
                    self._busy = False
                    self._cv.notify_all()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]
