"""Line I/O tests: besides the suite-wide thread/process check, no fd (pty, socket) may leak,
and async tests must end with no asyncio task left."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
HANG_S = 20.0


def _fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = _fds()
    yield
    deadline = time.monotonic() + 2
    while True:
        # listdir's own fd comes and goes; anything else still open is a leak.
        extra = {fd for fd in _fds() - before if os.path.exists(f"/proc/self/fd/{fd}")}
        if not extra:
            return
        if time.monotonic() > deadline:
            targets = {}
            for fd in extra:
                try:
                    targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    continue
            if targets:
                pytest.fail(f"leaked file descriptors: {targets}")
            return
        time.sleep(0.05)


def _run_async(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one async test on a fresh loop and fail if it leaves a task behind."""

    async def checked() -> T:
        try:
            result = await asyncio.wait_for(test(), HANG_S)
        except TimeoutError:
            stacks = io.StringIO()
            for task in asyncio.all_tasks():
                task.print_stack(file=stacks)
            pytest.fail(f"async test hung for {HANG_S}s; tasks:\n{stacks.getvalue()}")
        await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, f"tasks left running: {left}"
        return result

    return asyncio.run(checked())


@pytest.fixture
def run_async() -> Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any]:
    """``run_async(coroutine_function)``: fresh loop, fails on leftover tasks."""
    return _run_async
