"""Child process for the SIGKILL test: appends events from 3 threads until it is killed.

The test forks it (the parent has already imported everything, so a cycle costs milliseconds,
not an interpreter start); ``python -m tests.ledger.crash_child DB`` runs it by hand.
Protocol on the given fd (stdout by hand), one line each, written with a single ``os.write``:
``try <id>`` before an append, ``ack <id>`` only after ``append`` returned (committed), and
``ready`` once the ledger is open. argv: ledger path, then ids whose outcome the parent never
saw; they are re-sent first with the same content and must book nothing twice.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import uuid
from pathlib import Path

from edge.contracts.errors import DockgateError
from edge.ledger import Ledger
from tests.ledger.helpers import ACTOR, seed

OUT = 1


def say(line: str) -> None:
    os.write(OUT, (line + "\n").encode())


def one(led: Ledger, event_id: str) -> None:
    """A deterministic booking per id, so a re-send carries the same content."""
    rnd = random.Random(event_id)
    lot = f"L{rnd.randint(1, 3)}"
    kind = rnd.choice(["receive", "receive", "pick", "read"])
    say(f"try {event_id}")
    try:
        if kind == "receive":
            led.receive(
                "SKU-B", lot, rnd.randint(1, 5), location="A-01", actor=ACTOR, event_id=event_id
            )
        elif kind == "pick":
            led.pick(
                "SKU-B",
                lot,
                1,
                from_location="A-01",
                actor=ACTOR,
                event_id=event_id,
                override_reason="crash test",
                supervisor="user:lee",
            )
        else:
            led.record_read({"n": rnd.random()}, actor="device:edge-01", event_id=event_id)
    except DockgateError as exc:
        say(f"refused {event_id} {exc.code.value}")
        return
    say(f"ack {event_id}")


def run(path: Path, resend: list[str], out: int = 1) -> None:
    """Open the ledger, re-send ``resend``, then append from 3 threads forever."""
    global OUT
    OUT = out
    led = Ledger.open(path, "edge-01")
    if led.head()[0] == 0:
        seed(led)
    for event_id in resend:
        one(led, event_id)
    say("ready")

    def worker() -> None:
        while True:
            one(led, str(uuid.uuid4()))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    run(Path(sys.argv[1]), sys.argv[2:])
