"""Ledger fixtures: a real WAL SQLite file per test, with a hand-moved clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.ledger import Ledger
from tests.ledger.helpers import Clock, seed


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    led = Ledger.open(tmp_path / "ledger.db", "edge-01", clock=clock)
    seed(led)
    try:
        yield led
    finally:
        led.close()
