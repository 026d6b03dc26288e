"""Fail a test that leaves threads or child processes running (pymodbus's system-health idea).

A long-running appliance cannot afford a component that forgets a thread or a process on
shutdown; a test is where that shows first.
"""

from __future__ import annotations

import threading
import time

import psutil

# Threads some libraries keep for the life of the interpreter, by name prefix.
ALLOWED_THREAD_PREFIXES = (
    "asyncio_",
    "ThreadPoolExecutor",
    "pydevd",
    "Dummy-",
    "QueueFeederThread",
)


def snapshot() -> tuple[set[int], set[int]]:
    threads = {t.ident for t in threading.enumerate() if t.ident is not None}
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    return threads, children


def leftovers(before: tuple[set[int], set[int]], grace_s: float = 3.0) -> list[str]:
    """What was started since ``before`` and is still running after ``grace_s`` seconds."""
    deadline = time.monotonic() + grace_s
    while True:
        threads = [
            t
            for t in threading.enumerate()
            if t.ident not in before[0]
            and t.is_alive()
            and not t.name.startswith(ALLOWED_THREAD_PREFIXES)
        ]
        procs = []
        for p in psutil.Process().children(recursive=True):
            try:
                if p.pid not in before[1] and p.status() != psutil.STATUS_ZOMBIE:
                    procs.append(p)
            except psutil.NoSuchProcess:
                continue
        if not threads and not procs:
            return []
        if time.monotonic() >= deadline:
            found = [f"thread {t.name!r}" for t in threads]
            for p in procs:
                try:
                    found.append(f"process {p.pid} {' '.join(p.cmdline())[:120]!r}")
                    p.kill()
                except psutil.NoSuchProcess:
                    continue
            return found
        time.sleep(0.05)
