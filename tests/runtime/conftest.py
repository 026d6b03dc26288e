"""A real ledger with the master data a gate needs, on a real WAL file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "fixtures" / "samples" / "cartons"


def sample_truth() -> dict[str, dict[str, Any]]:
    data = json.loads((SAMPLES / "truth.json").read_text())
    return {name: t for name, t in data["frames"].items()}


def seed_master_data(ledger: Ledger, gtins: list[str]) -> None:
    actor = "user:test-admin"
    for code, zone, rank in [
        ("INBOUND", "inbound", 50),
        ("A-01", "storage", 10),
        ("A-02", "storage", 20),
        ("Q-01", "quarantine", 90),
        ("OUTBOUND", "outbound", 0),
    ]:
        ledger.add_location(code, zone, actor=actor, rank=rank)
    for n, gtin in enumerate(sorted(set(gtins))):
        ledger.add_sku(f"SKU-{n:03d}", gtin=gtin, name=f"product {n}", case_qty=12, actor=actor)


@pytest.fixture
def gate_ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "ledger.db", "gate-test-01")
    gtins = [t["gtin"] for t in sample_truth().values()] + ["06901234567892"]
    seed_master_data(ledger, gtins)
    try:
        yield ledger
    finally:
        ledger.close()
