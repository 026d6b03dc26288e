"""The booking stage on a real ledger: every carton ends in exactly one recorded decision."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pytest

from edge.camera.frame import Frame
from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import Ledger
from edge.runtime.bus import Bus
from edge.runtime.carton import CARTON_TOPIC, CartonFrames, CartonResult, Decision, Trigger
from edge.runtime.gate import Gate, new_carton_id
from edge.runtime.settings import GateConfig
from edge.vision.defects.model import DefectVerdict
from edge.vision.ocr.reader import CartonRead

GTIN = "06901234567892"


@dataclass
class RecordingSorter:
    """The sorting line as seen by the gate, recording decisions (the real PLC adapter is
    tested against the PLC simulator in tests/firmware_bridge)."""

    sorted: list[tuple[str, int | None, int]] = field(default_factory=list)

    def sort(self, carton_id: str, tracking_id: int | None, chute: int) -> None:
        self.sorted.append((carton_id, tracking_id, chute))


@dataclass
class RecordingTasks:
    tasks: list[tuple[str, str, str, str]] = field(default_factory=list)

    def submit_transport(self, task_id: str, carton_id: str, from_node: str, to: str) -> None:
        self.tasks.append((task_id, carton_id, from_node, to))


def read(status: str = "ACCEPTED", lot: str = "A24B117", gtin: str = GTIN) -> CartonRead:
    return CartonRead(
        None,
        status,
        gtin,
        lot,
        "2030-08-31",
        None,
        None,
        f"(01){gtin}\nLOT {lot}",
        0.97,
        30.0,
        None if status == "ACCEPTED" else f"UNREADABLE: {status.lower()}",
    )


def verdict(score: float, cls: str = "crush") -> DefectVerdict:
    scores = {"ok": 1 - score, "crack": 0.0, "crush": score, "tear": 0.0, "wet": 0.0}
    return DefectVerdict(
        MappingProxyType(scores),
        cls if score > 0.5 else "ok",
        max(score, 1 - score),
        cls,
        score,
        (10, 20, 200, 220),
        np.zeros((4, 4), np.float32),
        "defect-test",
        3.0,
    )


def carton(tracking_id: int | None = 7) -> CartonFrames:
    frame = Frame(np.zeros((72, 128, 3), np.uint8), 1, time.monotonic(), "test")
    return CartonFrames(new_carton_id(), (frame,), Trigger.FILE, frame.ts, tracking_id)


def result(r: CartonRead, v: DefectVerdict | None = None, action: str = "pass") -> CartonResult:
    return CartonResult(carton(), r, v, action, 40.0)


@pytest.fixture
def wired(gate_ledger: Ledger) -> tuple[Gate, RecordingSorter, RecordingTasks, Bus]:
    bus, sorter, tasks = Bus(), RecordingSorter(), RecordingTasks()
    gate = Gate(gate_ledger, GateConfig(), bus, sorter=sorter, tasks=tasks, ocr_version="ocr-t")
    return gate, sorter, tasks, bus


def kinds(ledger: Ledger, seqs: tuple[int, ...]) -> list[str]:
    return [e.kind for e in ledger.events(after_seq=min(seqs) - 1, limit=len(seqs))]


def test_accepted_good_carton_is_received_put_away_and_dispatched(wired, gate_ledger) -> None:  # type: ignore[no-untyped-def]
    gate, sorter, tasks, bus = wired
    sub = bus.subscribe([CARTON_TOPIC])
    outcome = gate.book(result(read(), verdict(0.01)))
    assert outcome.decision is Decision.RECEIVED
    assert kinds(gate_ledger, outcome.seqs) == [
        "carton-read",
        "defect-verdict",
        "receipt",
        "putaway",
    ]
    assert list(outcome.seqs) == list(range(outcome.seqs[0], outcome.seqs[0] + 4))
    stock = {(r.lot, r.location): r.qty for r in gate_ledger.stock()}
    assert stock == {("A24B117", outcome.location): 12}  # one case of 12
    assert sorter.sorted == [(outcome.carton_id, 7, 1)]
    assert tasks.tasks and tasks.tasks[0][3] == outcome.location
    live = sub.get(1.0)
    assert live is not None and live.payload.decision == "RECEIVED"
    assert live.payload.fields["lot"] == "A24B117" and live.payload.crop  # JPEG thumbnail
    assert gate_ledger.verify().ok


def test_defective_carton_freezes_its_batch_in_the_same_transaction(wired, gate_ledger) -> None:  # type: ignore[no-untyped-def]
    gate, sorter, _, _ = wired
    outcome = gate.book(result(read(), verdict(0.97), "freeze"))
    assert outcome.decision is Decision.FROZEN
    assert "qa-freeze" in kinds(gate_ledger, outcome.seqs)
    assert [b.lot for b in gate_ledger.frozen_batches()] == ["A24B117"]
    zones = {r.location: r.zone for r in gate_ledger.stock()}
    assert zones[outcome.location] == "quarantine"
    assert sorter.sorted[-1][2] == 2  # quarantine chute
    with pytest.raises(DockgateError) as err:
        gate_ledger.pick(
            gate_ledger.sku_by_gtin(GTIN),
            "A24B117",
            1,
            from_location=outcome.location,
            actor="user:picker",
        )
    assert err.value.code is ErrorCode.BATCH_FROZEN


def test_unreadable_defective_carton_is_held_unidentified(wired, gate_ledger) -> None:  # type: ignore[no-untyped-def]
    gate, sorter, _, _ = wired
    outcome = gate.book(result(read("UNREADABLE", lot=""), verdict(0.9), "freeze"))
    assert outcome.decision is Decision.HELD
    assert kinds(gate_ledger, outcome.seqs)[-1] == "hold"
    assert gate_ledger.frozen_batches() == []
    assert sorter.sorted[-1][2] == 0  # manual lane


def test_review_read_goes_to_review(wired, gate_ledger) -> None:  # type: ignore[no-untyped-def]
    gate, sorter, tasks, _ = wired
    outcome = gate.book(result(read("REVIEW")))
    assert outcome.decision is Decision.REVIEW
    assert sorter.sorted[-1][2] == 0 and tasks.tasks == []


def test_unknown_gtin_is_held_with_its_code(wired, gate_ledger) -> None:  # type: ignore[no-untyped-def]
    gate, _, _, _ = wired
    outcome = gate.book(result(read(gtin="04012345678901")))
    assert outcome.decision is Decision.HELD
    assert ErrorCode.UNKNOWN_SKU.value in outcome.reason


def test_divert_is_recorded_not_skipped(wired, gate_ledger) -> None:  # type: ignore[no-untyped-def]
    gate, sorter, _, _ = wired
    c = carton()
    outcome = gate.divert(c, "test")
    assert outcome.decision is Decision.DIVERTED
    assert kinds(gate_ledger, outcome.seqs) == ["hold"]
    assert sorter.sorted[-1] == (c.carton_id, 7, 0)
