"""asyncio helpers shared by the adapters and simulators."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end. Python 3.11's ``asyncio.wait_for`` (used inside
    pymodbus) can swallow a cancellation that races with a completing request, so cancel again
    until the task is really done; the loops also check a stop flag."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.5)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
