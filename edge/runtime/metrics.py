"""Prometheus metrics of one edge node (``/metrics``), on a registry of its own so tests and
several nodes in one process never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.frames = Counter("dockgate_frames", "Frames captured", ["source"], registry=r)
        self.frames_dropped = Counter(
            "dockgate_frames_dropped", "Free-running frames dropped (newer view kept)", registry=r
        )
        self.cartons = Counter(
            "dockgate_cartons", "Cartons through the gate by decision", ["decision"], registry=r
        )
        self.reads = Counter("dockgate_reads", "Carton reads by status", ["status"], registry=r)
        self.defects = Counter(
            "dockgate_defects", "Defect verdicts by action and class", ["action", "cls"], registry=r
        )
        self.freezes = Counter("dockgate_freezes", "Batches frozen by this node", registry=r)
        self.dispatches = Counter("dockgate_dispatches", "AGV tasks submitted", registry=r)
        self.diverted = Counter(
            "dockgate_diverted", "Cartons sent to the manual lane by back-pressure", registry=r
        )
        self.restarts = Counter(
            "dockgate_stage_restarts", "Supervised stage restarts", ["stage"], registry=r
        )
        self.scan_pairs = Counter(
            "dockgate_scan_pairs",
            "Cartons read by both OCR (accepted) and the scanner, by OCR model and agreement",
            ["model", "result"],
            registry=r,
        )
        self.frames_read = Counter(
            "dockgate_frames_read", "Frames the reader fused, summed over cartons", registry=r
        )
        self.samples_pending = Gauge(
            "dockgate_samples_pending",
            "Low-confidence samples not yet sent to the cloud",
            registry=r,
        )
        self.sync_backlog = Gauge(
            "dockgate_sync_backlog", "Signed events waiting for the cloud", registry=r
        )
        self.model_version = Gauge(
            "dockgate_model_info",
            "Model versions in use (value 1)",
            ["model", "version"],
            registry=r,
        )
        self.latency = Histogram(
            "dockgate_camera_to_booking_seconds",
            "First frame of a carton to its ledger commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "dockgate_inference_seconds",
            "OCR + defect inference per carton",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
