"""Writer for the power-loss test, run under the power-loss shim (``LD_PRELOAD``).

``python -m tests.chaos.powerloss_child`` is a zygote: it imports the ledger once, then for
each ``run <db> <synchronous> <log>`` line on stdin forks a writer and answers ``pid <pid>``;
``wait <pid>`` reaps it and answers ``done <pid>``. Forking from a warm zygote makes a cycle
cost milliseconds instead of an interpreter start, so 100+ cycles fit in CI.

A writer appends from 2 threads until it is killed. It logs to ``<log>`` one line per
``os.write``: ``try <id>`` before an append (or a 3-event transaction), ``ack <id>`` only after
it returned, ``ready`` once the ledger is open.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import traceback
import uuid
from pathlib import Path

from edge.contracts.errors import DockgateError
from edge.ledger import Ledger

ACTOR = "user:anna"
DEVICE = "edge-01"


def _writer(db: Path, synchronous: str, log: Path) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def say(line: str) -> None:
        os.write(fd, (line + "\n").encode())

    led = Ledger.open(db, DEVICE, synchronous=synchronous)
    if led.head()[0] == 0:
        seeded = [
            led.add_sku("SKU-P", actor=ACTOR),
            led.add_location("A-01", "storage", rank=10, actor=ACTOR),
        ]
        for result in seeded:  # master data must survive too (ids are the ledger's own)
            say(f"ack {result.event.id}")
    say("ready")

    def one(rnd: random.Random) -> None:
        ids = [str(uuid.uuid4()) for _ in range(rnd.choice([1, 1, 1, 3]))]
        for i in ids:
            say(f"try {i}")
        try:
            if len(ids) == 1:
                led.record_read(
                    {"n": rnd.random(), "pad": "x" * rnd.randint(0, 900)},
                    actor=f"device:{DEVICE}",
                    event_id=ids[0],
                )
            else:
                with led.transaction():  # a carton: read, then two receipts, all or nothing
                    led.record_read({"n": rnd.random()}, actor=f"device:{DEVICE}", event_id=ids[0])
                    for i in ids[1:]:
                        led.receive(
                            "SKU-P",
                            f"L{rnd.randint(1, 4)}",
                            rnd.randint(1, 9),
                            location="A-01",
                            actor=ACTOR,
                            event_id=i,
                        )
        except DockgateError as exc:
            for i in ids:
                say(f"refused {i} {exc.code.value}")
            return
        for i in ids:
            say(f"ack {i}")

    def loop(seed: int) -> None:
        rnd = random.Random(seed)
        while True:
            one(rnd)

    threads = [threading.Thread(target=loop, args=(s,), daemon=True) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def zygote() -> None:
    """Serve ``run``/``wait`` requests on stdin until EOF."""
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "run":
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    _writer(Path(args[0]), args[1], Path(args[2]))
                except BaseException:
                    traceback.print_exc()
                    code = 1
                finally:
                    os._exit(code)
            print(f"pid {pid}", flush=True)
        elif cmd == "wait":
            _, status = os.waitpid(int(args[0]), 0)
            print(f"done {args[0]} {status}", flush=True)


if __name__ == "__main__":
    zygote()
