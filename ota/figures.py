"""Per-version figures of one model name over one reporting window (what a heartbeat carries).

The runtime records one observation per carton (or per frame batch) under the version that
produced it; :meth:`FiguresWindow.take` hands the window to the reporter and starts a new one,
and :meth:`FiguresWindow.give_back` merges a window whose report failed into the current one, so
the cloud sees every observation exactly once (deltas since the last report it answered 200 to).
Latency p95 is computed over a bounded sample of the window's latencies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from edge.contracts.ota import ModelFigures

MAX_LATENCIES = 4096  # per version and window: enough for a p95, bounded memory


@dataclass
class _Counts:
    observations: int = 0
    errors: int = 0
    confidence_sum: float = 0.0
    confidence_n: int = 0
    review_or_unreadable: int = 0
    defects: int = 0
    agreement_pairs: int = 0
    agreements: int = 0
    disagreements: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def merge(self, other: _Counts) -> None:
        self.observations += other.observations
        self.errors += other.errors
        self.confidence_sum += other.confidence_sum
        self.confidence_n += other.confidence_n
        self.review_or_unreadable += other.review_or_unreadable
        self.defects += other.defects
        self.agreement_pairs += other.agreement_pairs
        self.agreements += other.agreements
        self.disagreements += other.disagreements
        room = MAX_LATENCIES - len(self.latencies_ms)
        self.latencies_ms.extend(other.latencies_ms[: max(0, room)])

    def figures(self) -> ModelFigures:
        p95 = float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else 0.0
        mean = self.confidence_sum / self.confidence_n if self.confidence_n else 0.0
        return ModelFigures(
            observations=self.observations,
            errors=self.errors,
            latency_p95_ms=min(p95, 600_000.0),
            mean_confidence=min(max(mean, 0.0), 1.0),
            review_or_unreadable=self.review_or_unreadable,
            defects=self.defects,
            agreement_pairs=self.agreement_pairs,
            agreements=self.agreements,
            disagreements=self.disagreements,
        )


@dataclass
class Window:
    """A window handed out by :meth:`FiguresWindow.take` (give it back if the send failed)."""

    counts: dict[str, _Counts]

    def figures(self) -> dict[str, ModelFigures]:
        return {version: c.figures() for version, c in sorted(self.counts.items())}

    def observations(self, version: str) -> int:
        c = self.counts.get(version)
        return c.observations if c else 0


class FiguresWindow:
    """Thread-safe accumulator: the pipeline records, the OTA agent takes and reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, _Counts] = {}

    def _of(self, version: str) -> _Counts:
        return self._counts.setdefault(version, _Counts())

    def observe(
        self,
        version: str,
        *,
        latency_ms: float | None = None,
        confidence: float | None = None,
        error: bool = False,
        review: bool = False,
        defect: bool = False,
        count: int = 1,
    ) -> None:
        """One processed carton (``count`` of them, sharing these flags) by ``version``."""
        with self._lock:
            c = self._of(version)
            c.observations += count
            c.errors += count if error else 0
            c.review_or_unreadable += count if review else 0
            c.defects += count if defect else 0
            if confidence is not None:
                c.confidence_sum += confidence * count
                c.confidence_n += count
            if latency_ms is not None and len(c.latencies_ms) < MAX_LATENCIES:
                c.latencies_ms.append(latency_ms)

    def agreement(self, version: str, pairs: int, agreements: int) -> None:
        """Cartons read by both the OCR (``version``) and a scanner, and how many agreed."""
        if pairs <= 0:
            return
        with self._lock:
            c = self._of(version)
            c.agreement_pairs += pairs
            c.agreements += agreements

    def disagreement(self, shadow_version: str, count: int = 1) -> None:
        """Shadow mode: frames where ``shadow_version`` differed from the acting version."""
        with self._lock:
            self._of(shadow_version).disagreements += count

    def take(self) -> Window:
        with self._lock:
            counts, self._counts = self._counts, {}
        return Window(counts)

    def give_back(self, window: Window) -> None:
        with self._lock:
            for version, c in window.counts.items():
                self._of(version).merge(c)

    def peek(self, version: str) -> ModelFigures:
        with self._lock:
            c = self._counts.get(version)
            return c.figures() if c else ModelFigures()
