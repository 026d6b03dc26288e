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
from edge.runtime.bus import Subscription
from edge.runtime.carton import CartonFrames, CartonResult, Trigger
from edge.runtime.gate import Gate, new_carton_id
from edge.runtime.metrics import Metrics
from edge.runtime.presence import PresenceSegmenter
from edge.runtime.settings import PipelineConfig
from edge.runtime.supervisor import Supervisor, Worker

log = logging.getLogger(__name__)


ESTIMATE_DECAY = 0.8  # per carton diverted on the inference-time estimate alone
SPREAD = 2.0  # mean deviations above the running mean a latency budget plans for


@dataclass(frozen=True)
class EyeTrigger:
    """A carton broke the PLC's photo-eye: capture from ``at`` on (the eye's time + delay)."""

    at: float
    seen: float  # time.monotonic() when the PLC poll saw the eye blocked
    tracking_id: int | None


@dataclass(frozen=True)
class _Divert:
    carton: CartonFrames
    reason: str


class Inference:
    """OCR (several frames fused) and the defect check for one carton.

    Frames per carton adapt to the latency target: the preferred frame (the middle one, or the
    one the presence trigger names) is always read; the others (nearest it first) only while
    the running per-frame estimate says they still fit before ``latency_target_s`` after the
    capture of the earliest frame read, less ``reserve_s`` (booking, kept current by the
    pipeline). On an idle line or a fast reader every frame is fused; when
    the reader is slow the carton is read from its best frame rather than late.
    """

    def __init__(
        self,
        reader: Any,
        defect_model: Any | None = None,
        *,
        freeze_threshold: float = 0.5,
        review_threshold: float = 0.3,
        expect: Callable[[], Sequence[Any]] | None = None,
        latency_target_s: float | None = None,
        ota: Any | None = None,
    ) -> None:
        """``ota`` (``edge.runtime.ota.NodeOta``): the models it manages (the defect model, the
        CRNN and the Reader built on it) come from its holders, one snapshot per carton, and
        each carton's figures go to it (OTA rollouts); ``reader`` reads when it does not manage
        the CRNN."""
        self.reader = reader
        self.defect_model = defect_model
        self.ota = ota
        self.freeze_threshold = freeze_threshold
        self.review_threshold = review_threshold
        self.expect = expect
        self.latency_target_s = latency_target_s
        # running means (EWMA) of booking after inference (set by the pipeline), one frame's
        # read and the defect check; the budget plans with mean + SPREAD x mean deviation, so a
        # jittery CPU does not push the tail over the target
        self.reserve_s = 0.0
        self.frame_estimate_s = 0.0
        self.defect_estimate_s = 0.0
        self.deviation = {"reserve": 0.0, "frame": 0.0, "defect": 0.0}

    def choose(self, carton: CartonFrames, now: float) -> list[Frame]:
        """The frames to read, in capture order: the preferred one always, then the others
        nearest to it while the running per-frame estimate says they fit before the target
        (counted from the earliest frame read, see CartonFrames.since)."""
        frames = carton.frames
        if self.latency_target_s is None or len(frames) <= 1 or self.frame_estimate_s <= 0:
            return list(frames)
        dev = self.deviation
        frame_s = self.frame_estimate_s + SPREAD * dev["frame"]
        after_s = (
            self.reserve_s + self.defect_estimate_s + SPREAD * (dev["reserve"] + dev["defect"])
        )
        order = _nearest(len(frames), carton.prefer)
        chosen = [order[0]]
        for i in order[1:]:
            start = carton.since([frames[j] for j in (*chosen, i)])
            left = start + self.latency_target_s - now - after_s
            if left < (len(chosen) + 1) * frame_s:
                break
            chosen.append(i)
        return [frames[i] for i in sorted(chosen)]

    def track_reserve(self, seconds: float) -> None:
        """The pipeline's booking time for one carton after its inference."""
        self.reserve_s = self._track("reserve", self.reserve_s, seconds)

    def _track(self, name: str, mean: float, new: float) -> float:
        """Update ``name``'s deviation; returns its new running mean."""
        if mean > 0:
            self.deviation[name] = _ewma(self.deviation[name], abs(new - mean))
        return _ewma(mean, new)

    def __call__(self, carton: CartonFrames) -> CartonResult:
        from edge.vision.defects.verdict import verdict_action

        started = time.perf_counter()
        chosen = self.choose(carton, time.monotonic())
        expected = list(self.expect()) if self.expect is not None else None
        images = [f.image for f in chosen]
        ocr = self.ota.current_ocr() if self.ota is not None else None  # one CRNN per carton
        if ocr is None:
            read = self.reader.read_frames(images, expected or None)
        else:
            read = self._read_ota(ocr, carton.carton_id, images, expected or None)
        read_s = time.perf_counter() - started
        self.frame_estimate_s = self._track("frame", self.frame_estimate_s, read_s / len(chosen))
        best = carton.frames[_preferred(len(carton.frames), carton.prefer)]
        verdict, action = None, "pass"
        if self.ota is not None and self.ota.defect is not None:
            t = time.perf_counter()
            verdict, action = self._defect_ota(best.image, read.status, carton.carton_id)
            self.defect_estimate_s = self._track(
                "defect", self.defect_estimate_s, time.perf_counter() - t
            )
        elif self.defect_model is not None:
            t = time.perf_counter()
            verdict = self.defect_model.predict(best.image)
            action = str(verdict_action(verdict, self.freeze_threshold, self.review_threshold))
            self.defect_estimate_s = self._track(
                "defect", self.defect_estimate_s, time.perf_counter() - t
            )
        return CartonResult(
            carton,
            read,
            verdict,
            action,
            (time.perf_counter() - started) * 1000,
            best,
            frames_read=len(chosen),
            since=carton.since(chosen),
        )

    def _read_ota(
        self, ocr: Any, carton_id: str, images: list[Any], expected: Sequence[Any] | None
    ) -> Any:
        """The carton read by the CRNN version ``ocr`` (the snapshot for this carton)."""
        ota: Any = self.ota
        started = time.perf_counter()
        try:
            read = ocr.model.reader.read_frames(images, expected)
        except Exception:
            ms = (time.perf_counter() - started) * 1000
            ota.record_ocr(ocr.version, None, latency_ms=ms, error=True)
            raise
        ota.record_ocr(ocr.version, read, latency_ms=(time.perf_counter() - started) * 1000)
        ota.handled(carton_id, "ocr.crnn", ocr.version)
        ota.shadow_read(images, expected, read)
        return read

    def _defect_ota(
        self, image: Any, read_status: str, carton_id: str | None = None
    ) -> tuple[Any, str]:
        from edge.vision.defects.verdict import verdict_action

        ota: Any = self.ota
        active = ota.current()  # one model for the whole carton: a switch lands between
        started = time.perf_counter()
        try:
            verdict = active.model.predict(image)
        except Exception:
            ota.record(
                active.version, None, latency_ms=(time.perf_counter() - started) * 1000, error=True
            )
            raise
        ms = (time.perf_counter() - started) * 1000
        freeze, review = ota.thresholds(active.model)
        action = str(verdict_action(verdict, freeze, review))
        ota.record(active.version, verdict, latency_ms=ms, read_status=read_status)
        if carton_id is not None:
            ota.handled(carton_id, "defect", active.version)
        ota.shadow_check(image, action)
        return verdict, action


def _preferred(n: int, prefer: int | None) -> int:
    return n // 2 if prefer is None else min(max(prefer, 0), n - 1)


def _nearest(n: int, prefer: int | None) -> list[int]:
    """Frame indices, the preferred one first, then by distance to it (earlier first)."""
    p = _preferred(n, prefer)
    return sorted(range(n), key=lambda i: (abs(i - p), i))


def _ewma(old: float, new: float, alpha: float = 0.2) -> float:
    return new if old <= 0 else old + alpha * (new - old)


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
    # photo-eye trigger: the bus's "line" topic (firmware_bridge PhotoEyeEdge facts)
    triggers: Subscription | None = None
    _eye: deque[EyeTrigger] = field(default_factory=deque)
    _collecting: tuple[EyeTrigger, list[Frame]] | None = None
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
            self._source_ended()
            self.source_done.set()
            return
        self.metrics.frames.labels(self.source.source_id).inc()
        if self.config.trigger == "file":
            self._carton([frame], Trigger.FILE)
        elif self.config.trigger == "presence":
            frames = self.segmenter.feed(frame)
            if frames:
                self._carton(frames, Trigger.PRESENCE)
        elif self.config.trigger == "photo-eye":
            self._photo_eye(frame)

    def _source_ended(self) -> None:
        if self.config.trigger == "presence":
            tail = self.segmenter.flush()
            if tail:
                self._carton(tail, Trigger.PRESENCE)
        if self.config.trigger == "photo-eye":
            if self._collecting is not None:
                trig, frames = self._collecting
                self._collecting = None
                self._carton(frames, Trigger.PHOTO_EYE, trig.tracking_id, t0=trig.seen)
            self._poll_eye()
            while self._eye:
                self._eye_divert(self._eye.popleft(), "the camera delivered no frame for it")

    # photo-eye trigger -------------------------------------------------------------------------
    def _poll_eye(self) -> None:
        """Take the photo-eye edges the PLC link published since the last frame."""
        if self.triggers is None:
            return
        delay = self.config.photo_eye_delay_ms / 1000
        while (msg := self.triggers.get(timeout=0)) is not None:
            edge = msg.payload
            if getattr(edge, "name", None) != self.config.photo_eye:
                continue
            if not getattr(edge, "blocked", False):
                continue
            seen = float(getattr(edge, "monotonic", time.monotonic()))
            self._eye.append(EyeTrigger(seen + delay, seen, getattr(edge, "tracking_id", None)))

    def _photo_eye(self, frame: Frame) -> None:
        """Each photo-eye edge takes ``frames_per_carton`` consecutive frames from its time on;
        an edge the camera cannot serve within the deadline is diverted and recorded."""
        self._poll_eye()
        while self._collecting is None and self._eye and frame.ts >= self._eye[0].at:
            trig = self._eye.popleft()
            if frame.ts - trig.seen > self.deadline_s:
                self._eye_divert(trig, "no camera frame before the deadline after the photo-eye")
                continue
            self._collecting = (trig, [])
        if self._collecting is not None:
            trig, frames = self._collecting
            frames.append(frame)
            if len(frames) >= self.config.frames_per_carton:
                self._collecting = None
                self._carton(frames, Trigger.PHOTO_EYE, trig.tracking_id, t0=trig.seen)

    def _eye_divert(self, trig: EyeTrigger, why: str) -> None:
        carton = CartonFrames(new_carton_id(), (), Trigger.PHOTO_EYE, trig.seen, trig.tracking_id)
        with self._lock:
            self._in_flight += 1
        self._to_booking(_Divert(carton, why))

    def _carton(
        self,
        frames: list[Frame],
        trigger: Trigger,
        tracking_id: int | None = None,
        t0: float | None = None,
    ) -> None:
        first_seen = frames[0].ts if t0 is None else t0
        prefer = getattr(frames, "prefer", None)  # a presence Passage says which frame
        carton = CartonFrames(
            new_carton_id(), tuple(frames), trigger, first_seen, tracking_id, prefer
        )
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
        booking_started = time.perf_counter()
        try:
            if isinstance(item, _Divert):
                outcome = self.gate.divert(item.carton, item.reason)
                self.metrics.diverted.inc()
            else:
                assert isinstance(item, CartonResult)
                outcome = self.gate.book(item)
                self._count(item, outcome)
            if isinstance(self.inference, Inference) and not isinstance(item, _Divert):
                self.inference.track_reserve(time.perf_counter() - booking_started)
            self.metrics.latency.observe(outcome.latency_ms / 1000)
            self.metrics.cartons.labels(outcome.decision.value).inc()
            self.outcomes.append(outcome)
            self.decisions[outcome.decision.value] += 1
        finally:
            with self._lock:
                self._in_flight -= 1

    def _count(self, result: CartonResult, outcome: Any) -> None:
        self.metrics.reads.labels(result.read.status).inc()
        self.metrics.frames_read.inc(result.frames_read)
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
