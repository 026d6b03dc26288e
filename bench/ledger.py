"""Ledger figures: durable appends per second (single writer, group commit) and verify time.

Prints medians over several rounds and a same-run reference: raw sqlite3 INSERT + COMMIT with
WAL and synchronous=FULL on the same disk (the fsync floor every durable append pays). The
machine is shared and has 2 cores, so absolute numbers are noisy; compare the ratios. "CPU
us/ev" is this process's CPU time per event (time.process_time), which contention hardly
changes: 1e6 / it is what one free core could append when fsync is amortised.

    .venv/bin/python bench/ledger.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.ledger import Ledger

ACTOR = "device:bench"


Figure = tuple[float, float, float]  # events/s, CPU µs per event (this process), events/commit


def raw_sqlite(path: Path, n: int) -> Figure:
    """Events/s for raw INSERT + COMMIT per row, WAL + synchronous=FULL (the reference)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (body) VALUES (?)", (f"event {i}" * 8,))
        conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return n / elapsed, cpu / n * 1e6, 1.0


def prepared(path: Path, synchronous: str = "FULL") -> Ledger:
    led = Ledger.open(path, "edge-bench", synchronous=synchronous)
    led.add_sku("SKU-1", actor=ACTOR)
    led.add_location("A-01", "storage", actor=ACTOR)
    return led


def one_op(led: Ledger, i: int) -> None:
    # a realistic mix: a receipt (rules + projection) and a carton read (observation)
    if i % 2:
        led.receive("SKU-1", f"L{i % 50}", 1, expiry="2030-01-01", actor=ACTOR)
    else:
        led.record_read({"code": f"0100012345678905-{i}", "conf": 0.97}, actor=ACTOR)


def single_writer(path: Path, n: int, synchronous: str = "FULL") -> Figure:
    led = prepared(path, synchronous)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        one_op(led, i)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    led.close()
    return n / elapsed, cpu / n * 1e6, 1.0


def batched(path: Path, n: int, per_txn: int) -> Figure:
    """One writer booking ``per_txn`` events per ``transaction()`` (e.g. a carton's events)."""
    led = prepared(path)
    start, cpu = time.perf_counter(), time.process_time()
    for first in range(0, n, per_txn):
        with led.transaction():
            for i in range(first, min(first + per_txn, n)):
                one_op(led, i)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    led.close()
    return n / elapsed, cpu / n * 1e6, float(per_txn)


def group_commit(path: Path, n: int, threads: int) -> Figure:
    led = prepared(path)
    per = n // threads
    batches_before = led.group.batches

    def worker(t: int) -> None:
        for i in range(per):
            one_op(led, t * per + i)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start, cpu = time.perf_counter(), time.process_time()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    commits = led.group.batches - batches_before
    led.close()
    total = per * threads
    return total / elapsed, cpu / total * 1e6, total / max(commits, 1)


def build(path: Path, n: int) -> None:
    """A ledger of ``n`` events, written fast (synchronous=NORMAL, 16 writers) for verify."""
    led = prepared(path, synchronous="NORMAL")
    have = led.head()[0]
    threads = 16
    per = (n - have) // threads + 1

    def worker(t: int) -> None:
        for i in range(per):
            if led.head()[0] >= n:
                return
            one_op(led, t * per + i)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    led.close()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(rounds: int, fn: Callable[[int], float]) -> tuple[float, list[float]]:
    values = [fn(r) for r in range(rounds)]
    return statistics.median(values), values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer events (smoke run)")
    ap.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = ap.parse_args()
    n = 300 if args.quick else 2000
    rounds = 3
    verify_n = 5_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        cases: list[tuple[str, Callable[[int], Figure]]] = [
            ("raw sqlite3 INSERT+COMMIT (reference)", lambda r: raw_sqlite(d / f"raw{r}", n)),
            ("ledger.append, 1 writer", lambda r: single_writer(d / f"s{r}", n)),
            (
                "  same, synchronous=NORMAL (no fsync)",
                lambda r: single_writer(d / f"n{r}", n, "NORMAL"),
            ),
        ]
        cases.append(
            ("ledger.append, 1 writer, 10 per transaction()", lambda r: batched(d / f"b{r}", n, 10))
        )
        for threads in (4, 16, 64):
            cases.append(
                (
                    f"ledger.append, {threads} writers (group commit)",
                    lambda r, t=threads: group_commit(d / f"g{t}-{r}", n, t),
                )
            )
        print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores, shared machine)")
        print(f"durable appends (synchronous=FULL, WAL), {n} events per round, {rounds} rounds")
        print(
            f"{'case':44} {'median ev/s':>11} {'vs ref':>6} {'ev/commit':>9} {'CPU us/ev':>9}"
            "  ev/s per round"
        )
        best = 0.0
        ref = 0.0
        for name, fn in cases:
            figures = [fn(r) for r in range(rounds)]
            rate = statistics.median(f[0] for f in figures)
            ref = ref or rate
            if "group commit" in name:
                best = max(best, rate)
            shown = ", ".join(f"{f[0]:.0f}" for f in figures)
            print(
                f"{name:44} {rate:11.0f} {rate / ref:6.2f} "
                f"{statistics.median(f[2] for f in figures):9.1f} "
                f"{statistics.median(f[1] for f in figures):9.0f}  [{shown}]"
            )
        path = d / "verify.db"
        build_s = timed(lambda: build(path, verify_n))
        led = Ledger.open(path, "edge-bench")
        count = led.head()[0]
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            report = led.verify()
            times.append(time.perf_counter() - t0)
            assert report.ok, report.summary()
        ref_scan = timed(lambda: led.conn.execute("SELECT * FROM events").fetchall())
        led.close()
        print(f"\nverify of {count} events (built in {build_s:.1f} s)")
        print(f"{'case':48} {'median s':>12} {'events/s':>12}  rounds")
        print(
            f"{'ledger.verify (chain + projection replay)':48} {statistics.median(times):12.2f} "
            f"{count / statistics.median(times):12.0f}  [{', '.join(f'{t:.2f}' for t in times)}]"
        )
        print(f"{'reference: SELECT * FROM events (read only)':48} {ref_scan:12.2f}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        goal_ok = best >= 2000 and statistics.median(times) < 5
        print(
            f"\ngoal (>= 2000 durable ev/s with group commit, verify 100k < 5 s): "
            f"{'met' if goal_ok and not args.quick else 'see figures'}"
        )


if __name__ == "__main__":
    main()
