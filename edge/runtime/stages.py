"""The gate pipeline's three supervised stages and the bounded queues between them.

capture (frames -> cartons) -> inference (OCR + defect) -> booking (ledger, line, AGV, bus)

Queues and the frame iterator belong to :class:`GatePipeline`, not to the workers, so a stage
that dies is replaced by a fresh worker that carries on where the old one stopped. A carton that
cannot get through inference before its deadline is diverted to the manual lane and recorded:
never silently skipped, and no queue grows without bound.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.camera.frame import Frame
from edge.camera.sources import FrameSource
from edge.runtime.carton import CartonFrames, CartonResult, Trigger
from edge.runtime.gate import Gate, new_carton_id
from edge.runtime.metrics import Metrics
from edge.runtime.presence import PresenceSegmenter
from edge.runtime.settings import PipelineConfig
from edge.runtime.supervisor import Supervisor, Worker

log = logging.getLogger(__name__)


ESTIMATE_DECAY = 0.8  # per carton diverted on the inference-time estimate alone


@dataclass(frozen=True)
class _Divert:
    carton: CartonFrames
    reason: str


class Inference:
    """OCR (several frames fused) and the defect check for one carton."""

    def __init__(
        self,
        reader: Any,
        defect_model: Any | None = None,
        *,
        freeze_threshold: float = 0.5,
        review_threshold: float = 0.3,
        expect: Callable[[], Sequence[Any]] | None = None,
    ) -> None:
        self.reader = reader
        self.defect_model = defect_model
        self.freeze_threshold = freeze_threshold
        self.review_threshold = review_threshold
        self.expect = expect

    def __call__(self, carton: CartonFrames) -> CartonResult:
        from edge.vision.defects.verdict import verdict_action

        started = time.perf_counter()
        images = [f.image for f in carton.frames]
        expected = list(self.expect()) if self.expect is not None else None
        read = self.reader.read_frames(images, expected or None)
        best = carton.frames[len(carton.frames) // 2]
        verdict, action = None, "pass"
        if self.defect_model is not None:
            verdict = self.defect_model.predict(best.image)
            action = str(verdict_action(verdict, self.freeze_threshold, self.review_threshold))
        return CartonResult(
            carton, read, verdict, action, (time.perf_counter() - started) * 1000, best
        )


@dataclass
class GatePipeline:
    source: FrameSource
    inference: Callable[[CartonFrames], CartonResult]
    gate: Gate
    config: PipelineConfig
    metrics: Metrics = field(default_factory=Metrics)
    deadline_s: float = 1.5
    infer_q: queue.Queue[CartonFrames] = field(init=False)
    book_q: queue.Queue[CartonFrames | CartonResult | _Divert] = field(init=False)
    segmenter: PresenceSegmenter = field(init=False)
    source_done: threading.Event = field(default_factory=threading.Event)
    # the most recent outcomes (demo scoring, benches, tests); bounded so a node that runs for
    # months does not grow, while ``decisions`` counts every carton since start
    outcomes: deque[Any] = field(default_factory=lambda: deque(maxlen=10_000))
    decisions: Counter[str] = field(default_factory=Counter)
    _frames: Iterator[Frame] | None = None
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # running estimate of one carton's inference time (EWMA): a carton with less time left
    # than this cannot make its deadline, so it is diverted before wasting the CPU on it
    infer_estimate_s: float = 0.0

    def __post_init__(self) -> None:
        self.infer_q = queue.Queue(self.config.inference_queue)
        self.book_q = queue.Queue(self.config.booking_queue)
        self.segmenter = PresenceSegmenter(
            threshold=self.config.presence_threshold, keep=self.config.frames_per_carton
        )

    # wiring ----------------------------------------------------------------------------------
    def install(self, supervisor: Supervisor) -> None:
        supervisor.add("capture", lambda: _Stage(self._capture_step, "capture"))
        supervisor.add("inference", lambda: _Stage(self._inference_step, "inference"))
        supervisor.add("booking", lambda: _Stage(self._booking_step, "booking"))

    def idle(self) -> bool:
        """The source has ended and every carton it produced has been booked."""
        with self._lock:
            return self.source_done.is_set() and self._in_flight == 0

    # capture ---------------------------------------------------------------------------------
    def _capture_step(self) -> None:
        if self.source_done.is_set():
            time.sleep(0.05)
            return
        if self._frames is None:
            self._frames = self.source.frames()
        frame = next(self._frames, None)
        if frame is None:
            self._frames = None
            tail = self.segmenter.flush() if self.config.trigger == "presence" else None
            if tail:
                self._carton(tail, Trigger.PRESENCE)
            self.source_done.set()
            return
        self.metrics.frames.labels(self.source.source_id).inc()
        if self.config.trigger == "file":
            self._carton([frame], Trigger.FILE)
        elif self.config.trigger == "presence":
            frames = self.segmenter.feed(frame)
            if frames:
                self._carton(frames, Trigger.PRESENCE)

    def _carton(
        self, frames: list[Frame], trigger: Trigger, tracking_id: int | None = None
    ) -> None:
        carton = CartonFrames(new_carton_id(), tuple(frames), trigger, frames[0].ts, tracking_id)
        with self._lock:
            self._in_flight += 1
        try:
            self.infer_q.put(carton, timeout=max(0.0, self._remaining(carton)))
        except queue.Full:
            self._to_booking(_Divert(carton, "inference queue full: the line outpaces inference"))

    def _remaining(self, carton: CartonFrames) -> float:
        return carton.t0 + self.deadline_s - time.monotonic()

    # inference -------------------------------------------------------------------------------
    def _inference_step(self) -> None:
        try:
            carton = self.infer_q.get(timeout=0.5)
        except queue.Empty:
            return
        remaining = self._remaining(carton)
        if remaining <= self.infer_estimate_s:
            estimate_ms = self.infer_estimate_s * 1000
            why = f"{remaining * 1000:.0f} ms left, inference takes ~{estimate_ms:.0f} ms"
            # only inferred cartons update the estimate: without this decay one slow spell (a
            # busy CPU) would leave it high and divert every carton from then on; decaying it on
            # each skip makes the stage try a carton again soon and re-measure
            self.infer_estimate_s *= ESTIMATE_DECAY
            self._to_booking(_Divert(carton, why))
            return
        result = self.inference(carton)
        seconds = result.infer_ms / 1000
        self.infer_estimate_s += 0.2 * (seconds - self.infer_estimate_s)
        self.metrics.inference.observe(seconds)
        self._to_booking(result)

    def _to_booking(self, item: CartonResult | _Divert) -> None:
        # booking is fast and local; blocking here only when it is badly stuck is the right
        # back-pressure (the supervisor sees the stall through the missing heartbeat)
        self.book_q.put(item)

    # booking ---------------------------------------------------------------------------------
    def _booking_step(self) -> None:
        try:
            item = self.book_q.get(timeout=0.5)
        except queue.Empty:
            return
        try:
            if isinstance(item, _Divert):
                outcome = self.gate.divert(item.carton, item.reason)
                self.metrics.diverted.inc()
            else:
                assert isinstance(item, CartonResult)
                outcome = self.gate.book(item)
                self._count(item, outcome)
            self.metrics.latency.observe(outcome.latency_ms / 1000)
            self.metrics.cartons.labels(outcome.decision.value).inc()
            self.outcomes.append(outcome)
            self.decisions[outcome.decision.value] += 1
        finally:
            with self._lock:
                self._in_flight -= 1

    def _count(self, result: CartonResult, outcome: Any) -> None:
        self.metrics.reads.labels(result.read.status).inc()
        if result.verdict is not None:
            self.metrics.defects.labels(result.defect_action, result.verdict.defect_class).inc()
        if outcome.decision.value == "FROZEN":
            self.metrics.freezes.inc()
        if outcome.task_id:
            self.metrics.dispatches.inc()


class _Stage(Worker):
    def __init__(self, step: Callable[[], None], name: str) -> None:
        super().__init__()
        self.name = name
        self._step = step

    def step(self) -> None:
        self._step()
