"""Back-pressure must not latch: after a slow spell the inference stage tries cartons again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from edge.camera.frame import Frame
from edge.camera.sources import SyntheticSource
from edge.ledger import Ledger
from edge.runtime.bus import Bus
from edge.runtime.carton import CartonFrames, CartonResult, Trigger
from edge.runtime.gate import Gate
from edge.runtime.settings import GateConfig, PipelineConfig
from edge.runtime.stages import GatePipeline


@pytest.fixture
def source() -> Iterator[SyntheticSource]:
    src = SyntheticSource(lambda n: np.zeros((8, 8, 3), np.uint8), count=0)
    yield src
    src.close()


def test_a_stale_inference_estimate_decays_until_a_carton_is_tried(
    source: SyntheticSource, gate_ledger: Ledger
) -> None:
    inferred: list[str] = []

    def fast_inference(carton: CartonFrames) -> CartonResult:
        inferred.append(carton.carton_id)
        return CartonResult(carton, None, None, "pass", infer_ms=20.0)

    pipeline = GatePipeline(
        source, fast_inference, Gate(gate_ledger, GateConfig(), Bus()), PipelineConfig(),
        deadline_s=1.5,
    )  # fmt: skip
    pipeline.infer_estimate_s = 5.0  # left over from a spell when inference took 5 s
    frame = Frame(np.zeros((8, 8, 3), np.uint8), 1, time.monotonic(), "test")
    for n in range(12):
        carton = CartonFrames(f"c{n}", (frame,), Trigger.PRESENCE, time.monotonic())
        pipeline.infer_q.put(carton)
        pipeline._inference_step()
    diverted = pipeline.book_q.qsize() - len(inferred)
    assert inferred, "every carton was diverted: the estimate never came back down"
    assert 0 < diverted < 12
    assert pipeline.infer_estimate_s < 1.0  # re-measured from the cartons actually inferred
