"""SIGKILL at random moments: after every restart the chain verifies and no acknowledged event
is missing (Jepsen "set" checker: lost = 0; events whose outcome was unknown may be present).

SIGKILL loses no data the kernel already has, so this proves atomicity and "ack only after
commit", not power-loss durability (that needs synchronous=FULL on honest storage, which is
what the ledger runs with here).
"""

from __future__ import annotations

import os
import random
import select
import signal
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from edge.ledger import Ledger
from tests.ledger import crash_child

KILLS = 60


def _fork_child(db: Path, resend: list[str]) -> tuple[int, int]:
    """Fork a child running ``crash_child.run``; returns (pid, read end of its pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 0
        try:
            os.close(read_fd)
            crash_child.run(db, resend, write_fd)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _read_until_ready(stream: BinaryIO, lines: list[str]) -> None:
    while True:
        # a child that hangs (say, on a lock another parent thread held at fork) fails fast
        ready, _, _ = select.select([stream], [], [], 30)
        assert ready, "child not ready within 30 s"
        line = stream.readline().decode()
        assert line, "child died before it was ready"
        lines.append(line.strip())
        if line.strip() == "ready":
            return


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    rnd = random.Random(20261122)
    acked: set[str] = set()
    unknown: set[str] = set()
    deadline = time.monotonic() + 90
    for kill in range(KILLS):
        lines: list[str] = []
        pid, fd = _fork_child(db, sorted(unknown))
        with os.fdopen(fd, "rb", buffering=0) as stream:  # unbuffered: select() sees all
            try:
                _read_until_ready(stream, lines)
                time.sleep(rnd.uniform(0.0, 0.25))
            finally:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
            lines += stream.read().decode().splitlines()  # what it said before it died
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        tried = {ln.split()[1] for ln in lines if ln.startswith("try ")}
        done = {ln.split()[1] for ln in lines if ln.startswith(("ack ", "refused "))}
        acked |= {ln.split()[1] for ln in lines if ln.startswith("ack ")}
        unknown = (unknown | tried) - done
        with Ledger.open(db, "edge-01") as led:
            report = led.verify()
            assert report.ok, f"kill {kill}: {report.summary()}"
            stored = {e.id for e in led.events(0, 10**9)}
            seqs = [e.seq for e in led.events(0, 10**9)]
            assert seqs == list(range(1, len(seqs) + 1))
            assert led.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        lost = acked - stored
        assert not lost, f"kill {kill}: acknowledged but missing: {sorted(lost)[:3]}"
        assert time.monotonic() < deadline, f"only {kill} kills in the time budget"
    assert len(acked) > KILLS  # the kills really landed among appends
    print(f"{KILLS} kills, {len(acked)} acknowledged, {len(unknown)} outcome unknown at the end")
