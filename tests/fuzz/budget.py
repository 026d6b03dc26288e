"""Shared hypothesis budget for the fuzz tests: bounded examples, a per-example deadline that
turns a hang into a failure, and a wall-clock cap for anything that must stay fast.

``DOCKGATE_FUZZ_EXAMPLES`` scales every budget (e.g. 10 for a long local run); CI keeps 1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("DOCKGATE_FUZZ_EXAMPLES", "1")))
T = TypeVar("T")


def budget(examples: int, deadline_s: float = 2.0) -> settings:
    """``examples`` x SCALE examples; any single one over ``deadline_s`` fails (a hang)."""
    return settings(
        max_examples=examples * SCALE,
        deadline=timedelta(seconds=deadline_s),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=False,
    )


def timed(fn: Callable[[], T], limit_s: float) -> T:
    """Run ``fn`` and fail if it took longer than ``limit_s`` (for single big inputs)."""
    start = time.perf_counter()
    result = fn()
    took = time.perf_counter() - start
    assert took < limit_s, f"took {took:.2f} s (limit {limit_s} s): unbounded work on bad input"
    return result
