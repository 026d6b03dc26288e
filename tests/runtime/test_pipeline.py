"""The whole gate pipeline on the committed sample frames: real reader, real defect model,
real ledger, supervised stages. Every frame becomes exactly one recorded carton decision."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from edge.camera.sources import DirectoryFrameSource
from edge.ledger import Ledger
from edge.runtime.bus import Bus
from edge.runtime.carton import Decision
from edge.runtime.gate import Gate
from edge.runtime.settings import GateConfig, PipelineConfig
from edge.runtime.stages import GatePipeline, Inference
from edge.runtime.supervisor import Supervisor
from edge.vision.defects.model import DefectModel
from edge.vision.ocr.reader import Reader
from tests.runtime.conftest import SAMPLES, sample_truth


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader()


@pytest.fixture(scope="module")
def inference(reader: Reader) -> Inference:
    return Inference(reader, DefectModel.load(), freeze_threshold=0.9, review_threshold=0.5)


def run(pipeline: GatePipeline, timeout: float = 240.0) -> Supervisor:
    sup = Supervisor(check_interval_s=0.1, heartbeat_timeout_s=60)
    pipeline.install(sup)
    sup.start()
    deadline = time.monotonic() + timeout
    while not pipeline.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    sup.stop()
    return sup


@pytest.fixture
def source() -> Iterator[DirectoryFrameSource]:
    src = DirectoryFrameSource(SAMPLES / "frames")
    yield src
    src.close()


def test_every_sample_frame_is_read_and_booked_once(
    source: DirectoryFrameSource, reader: Reader, gate_ledger: Ledger
) -> None:
    gate = Gate(gate_ledger, GateConfig(), Bus())
    pipeline = GatePipeline(
        source, Inference(reader), gate, PipelineConfig(trigger="file"), deadline_s=120.0
    )
    run(pipeline)
    truth = sample_truth()
    frames = [n for n in truth if n.startswith("frames/")]
    assert pipeline.idle()
    assert len(pipeline.outcomes) == len(frames)
    assert all(o.decision is not Decision.ERROR for o in pipeline.outcomes), [
        o.reason for o in pipeline.outcomes if o.decision is Decision.ERROR
    ]
    by_lot = {t["lot"]: t for t in truth.values()}
    received = [o for o in pipeline.outcomes if o.decision is Decision.RECEIVED]
    assert received, "no sample carton was received"
    for o in received:  # an ACCEPTED read is never wrong
        assert o.lot in by_lot and by_lot[o.lot]["gtin"] == o.gtin
        assert by_lot[o.lot]["expiry"] == o.expiry
    assert gate_ledger.verify().ok
    text = pipeline.metrics.render().decode()
    assert "dockgate_cartons_total" in text and "dockgate_camera_to_booking_seconds" in text


def test_with_the_defect_model_every_carton_ends_in_one_decision(
    source: DirectoryFrameSource, inference: Inference, gate_ledger: Ledger
) -> None:
    gate = Gate(gate_ledger, GateConfig(), Bus())
    pipeline = GatePipeline(
        source, inference, gate, PipelineConfig(trigger="file"), deadline_s=120.0
    )
    run(pipeline)
    n = len(list((SAMPLES / "frames").glob("*.jpg")))
    assert len(pipeline.outcomes) == n
    assert len({o.carton_id for o in pipeline.outcomes}) == n
    assert all(o.decision is not Decision.ERROR for o in pipeline.outcomes)
    frozen = {o.lot for o in pipeline.outcomes if o.decision is Decision.FROZEN}
    assert frozen == {b.lot for b in gate_ledger.frozen_batches()}
    assert gate_ledger.verify().ok


def test_backpressure_diverts_and_records_every_carton(
    source: DirectoryFrameSource, inference: Inference, gate_ledger: Ledger
) -> None:
    gate = Gate(gate_ledger, GateConfig(), Bus())
    # a deadline no inference can meet: the line outpaces the node
    pipeline = GatePipeline(
        source,
        inference,
        gate,
        PipelineConfig(trigger="file", inference_queue=1),
        deadline_s=0.0,
    )
    run(pipeline)
    n = len(list((SAMPLES / "frames").glob("*.jpg")))
    assert len(pipeline.outcomes) == n
    assert [o for o in pipeline.outcomes if o.decision is not Decision.DIVERTED] == []
    held = [e for e in gate_ledger.events(limit=10_000) if e.kind == "hold"]
    assert len(held) == n
    assert gate_ledger.verify().ok


def test_line_faster_than_inference_splits_into_read_and_diverted_never_lost(
    source: DirectoryFrameSource, reader: Reader, gate_ledger: Ledger
) -> None:
    gate = Gate(gate_ledger, GateConfig(), Bus())
    # frames arrive as fast as the disk gives them and each carton has less time than one OCR
    # read takes (~100 ms of CPU per frame): the line certainly outpaces the node
    pipeline = GatePipeline(
        source,
        Inference(reader),
        gate,
        PipelineConfig(trigger="file", inference_queue=1),
        deadline_s=0.08,
    )
    run(pipeline)
    n = len(list((SAMPLES / "frames").glob("*.jpg")))
    decisions = [o.decision for o in pipeline.outcomes]
    assert len(decisions) == n  # every carton accounted for
    assert Decision.DIVERTED in decisions
    assert any(d is not Decision.DIVERTED for d in decisions)
    assert gate_ledger.verify().ok
