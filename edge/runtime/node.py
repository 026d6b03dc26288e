"""One edge node: every component built from the config, started in order, stopped in reverse.

Start order follows the data flow backwards, so every consumer is listening before its producer
starts: ledger, I/O peers (PLC, scanner, AGV master control), panel and health endpoints, sync,
then the pipeline stages (booking, inference, capture).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from edge.camera.sources import FrameSource, open_source
from edge.config import EdgeConfig
from edge.contracts.errors import DockgateError, ErrorCode
from edge.runtime import components
from edge.runtime.adapters import AgvTasks, LineSorter
from edge.runtime.agreement import AgreementTracker, AgreementWorker, ledger_recorder
from edge.runtime.aio import LoopThread
from edge.runtime.bus import Bus, Subscription
from edge.runtime.gate import Gate
from edge.runtime.health import count_restarts, health_router
from edge.runtime.metrics import Metrics
from edge.runtime.stages import GatePipeline, Inference
from edge.runtime.supervisor import Supervisor

log = logging.getLogger(__name__)


@dataclass
class EdgeNode:
    config: EdgeConfig
    source: FrameSource | None = None  # default: the configured camera
    panel_port: int | None = None  # default: [panel] port
    # open ASN lines the reader may match a code against (edge.vision.ocr.reader.ASN); called per
    # carton, so a site's receiving system can update them while the node runs
    expect: Callable[[], Sequence[Any]] | None = None
    bus: Bus = field(default_factory=Bus)
    metrics: Metrics = field(default_factory=Metrics)
    _stops: list[Callable[[], None]] = field(default_factory=list)
    _stop_event: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Build and start everything; on any failure, stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        cfg = self.config
        data_dir = components.data_dir(cfg)
        self.signer = components.device_signer(cfg)
        self.ledger = components.open_ledger(cfg, self.signer)
        self._stops.append(self.ledger.close)
        self.samples = components.sample_store(cfg)
        self.io = LoopThread()
        self.io.start()
        self._stops.append(self.io.stop)
        self._start_line()
        self.dispatch = self._start_agv(data_dir)
        self.supervisor = Supervisor(on_restart=count_restarts(self.metrics))
        self.pipeline = self._build_pipeline()
        self._start_panel()
        self._start_sync()
        if self.ota is not None:
            self.ota.start_agent(self.signer)
            self._stops.append(self.ota.stop)
        self.pipeline.install(self.supervisor)

        def on_pair(model: str, ok: bool) -> None:
            self.metrics.scan_pairs.labels(model, "agree" if ok else "disagree").inc()

        to_ledger = ledger_recorder(self.ledger)

        def record(observation: dict[str, Any]) -> None:
            to_ledger(observation)
            agree = observation.get("agree")
            if self.ota is not None and agree is not None:
                # by carton: the pair goes to the model versions that read and checked it
                self.ota.on_pair(observation.get("carton_id"), bool(agree))

        self.agreement = AgreementTracker(record, on_pair=on_pair)
        self.supervisor.add("agreement", lambda: AgreementWorker(self.bus, self.agreement))
        self.supervisor.start()
        self._stops.append(self.supervisor.stop)
        for name, version in self._model_versions().items():
            self.metrics.model_version.labels(name, version).set(1)

    # I/O peers ------------------------------------------------------------------------------
    def _start_line(self) -> None:
        from firmware_bridge.config import build_line_io, build_scan_source

        self.line = build_line_io(self.config.line_io, self._publisher("line"))
        self.io.run(self.line.start())
        self._stops.append(lambda: self.io.run(self.line.stop(), timeout=10))
        self.scanner = build_scan_source(self.config.scanner, self._publisher("scan"))
        self.scanner.start()
        self._stops.append(self.scanner.stop)

    def _publisher(self, topic: str) -> Callable[[Any], None]:
        def publish(fact: Any) -> None:
            self.bus.publish(topic, fact)

        return publish

    def _start_agv(self, data_dir: Any) -> Any | None:
        if self.config.agv.sitemap is None:
            log.info("AGV dispatch off: agv.sitemap is not set")
            return None
        from edge.agv.service import DispatchService

        service = DispatchService(self.config.agv, data_dir)
        service.start()
        self._stops.append(service.stop)
        return service

    # vision and booking ---------------------------------------------------------------------
    def _build_pipeline(self) -> GatePipeline:
        from edge.vision.ocr.reader import Reader

        cfg = self.config
        triggers = self._photo_eye_triggers()
        # the reader writes its samples behind the inference thread (edge/runtime/sample_writer)
        writer = components.reader_sample_store(cfg)
        self._stops.append(writer.close)
        defect, freeze, review = None, 1.0, 1.0
        self.ota: Any | None = None
        restored: dict[str, Any] = {}
        if cfg.ota.enabled:
            from edge.runtime.ota import NodeOta  # the managed models behind swappable holders

            ota = NodeOta(cfg, samples=writer)
            if ota.models():
                self.ota = ota
                restored = ota.restore_all()
        if "ocr.crnn" in restored:
            self.reader = restored["ocr.crnn"].model.reader  # the one installed, for now
        else:
            self.reader = Reader(cfg.ocr, samples=writer)
        if "defect" in restored or cfg.defects.enabled:
            from edge.vision.defects.model import DefectModel

            if "defect" in restored:
                defect = restored["defect"].model
            else:
                defect = DefectModel.load(cfg.defects.model, threads=cfg.defects.threads)
            freeze = cfg.defects.freeze_threshold or defect.info.freeze_threshold
            review = cfg.defects.review_threshold or defect.info.review_threshold
        self.defect_model = defect
        gate = Gate(
            self.ledger,
            cfg.gate,
            self.bus,
            sorter=LineSorter(self.io, self.line, self.bus),
            tasks=AgvTasks(self.dispatch.dispatcher) if self.dispatch is not None else None,
            ocr_version=self._model_versions().get("ocr"),
        )
        source = self.source or open_source(cfg.camera)
        self._stops.append(source.close)
        inference = Inference(
            self.reader,
            defect,
            freeze_threshold=freeze,
            review_threshold=review,
            expect=self.expect,
            latency_target_s=(cfg.pipeline.latency_target_ms / 1000) or None,
            ota=self.ota,
        )
        return GatePipeline(
            source,
            inference,
            gate,
            cfg.pipeline,
            self.metrics,
            deadline_s=cfg.gate.deadline_ms / 1000,
            triggers=triggers,
        )

    def _photo_eye_triggers(self) -> Subscription | None:
        """The PLC's photo-eye edges, when the gate is triggered by one (checked first)."""
        cfg = self.config
        if cfg.pipeline.trigger != "photo-eye":
            return None
        if cfg.line_io.type == "noop":
            raise DockgateError(
                ErrorCode.CONFIG_INVALID,
                "pipeline.trigger = 'photo-eye' needs a PLC: set line_io.type to "
                "modbus_tcp or modbus_rtu (or use trigger = 'presence')",
            )
        eyes = cfg.line_io.registers.inputs.photo_eyes
        if cfg.pipeline.photo_eye not in eyes:
            raise DockgateError(
                ErrorCode.CONFIG_INVALID,
                f"pipeline.photo_eye = {cfg.pipeline.photo_eye!r} is not a photo-eye of "
                f"line_io.registers (known: {', '.join(sorted(eyes))})",
            )
        # subscribed before the capture stage starts, so no edge is missed
        return self.bus.subscribe(["line"], maxsize=1024)

    def _model_versions(self) -> dict[str, str]:
        from edge.vision.session import read_manifest

        return {name: e.version for name, e in read_manifest().items()}

    # panel, health, sync --------------------------------------------------------------------
    def _start_panel(self) -> None:
        from edge.panel.app import create_app
        from edge.panel.equipment import (
            AgvStatusProvider,
            LinkStatusProvider,
            MqttStatusProvider,
            SyncStatusProvider,
        )
        from edge.panel.providers import NodeDeviceProvider
        from edge.panel.review_store import SampleReviewQueue
        from edge.panel.security import PUBLIC, allow
        from edge.panel.server import SYNC_STATE_FILE, uvicorn_config
        from edge.panel.services import PanelServices, StatusProvider

        cfg = self.config
        data_dir = cfg.device.data_dir
        equipment: list[StatusProvider] = [
            LinkStatusProvider("plc", [self.line]),
            LinkStatusProvider("scanner", [self.scanner]),
            SyncStatusProvider(self.ledger, data_dir / SYNC_STATE_FILE),
        ]
        if self.dispatch is not None:
            equipment += [
                AgvStatusProvider(self.dispatch.dispatcher),
                MqttStatusProvider(self.dispatch.dispatcher),
            ]
        services = PanelServices(
            bus=self.bus,
            device=NodeDeviceProvider(
                cfg.device.id, cfg.device.site, cfg.sync.resolved_trust_dir(data_dir)
            ),
            ledger=self.ledger,
            review=SampleReviewQueue(self.samples),
            equipment=equipment,
            expiry_warning_days=cfg.ledger.expiry_warning_days,
            expiry_block_days=cfg.ledger.expiry_block_days,
        )
        app = create_app(services, cfg.panel, cfg.panel.resolved_db(data_dir))
        health = health_router(self.supervisor, self.metrics, {"ledger": self._ledger_ok})
        for route in health.routes:  # probes and scrapers carry no session: say so explicitly
            allow(PUBLIC)(route.endpoint)  # type: ignore[attr-defined]
        app.include_router(health)
        self.server = uvicorn.Server(uvicorn_config(app, cfg.panel, self.panel_port))
        thread = threading.Thread(target=self.server.run, name="dg-panel", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the panel did not start (port in use?)")

        def stop_panel() -> None:
            self.server.should_exit = True
            thread.join(timeout=10)

        self._stops.append(stop_panel)

    def _ledger_ok(self) -> str | None:
        # STORAGE_FULL while the ledger refuses new work (the gate diverts, nothing is booked);
        # clears by itself when space returns. A failing commit still raises at the gate.
        return self.ledger.storage_problem()

    def _start_sync(self) -> None:
        cfg = self.config
        if self.signer is None or not cfg.sync.cloud_url:
            log.info(
                "cloud sync off: %s", "not enrolled" if self.signer is None else "no cloud_url"
            )
            return
        from edge.panel.server import SYNC_STATE_FILE
        from edge.sync.agent import SyncAgent
        from edge.sync.client import CloudClient
        from edge.sync.state import StateFile

        client = CloudClient(cfg.sync.cloud_url, self.signer, cfg.sync.timeout_s)
        agent = SyncAgent(
            self.ledger,
            client,
            self.signer,
            StateFile(cfg.device.data_dir / SYNC_STATE_FILE),
            cfg.sync,
        )
        threads = agent.start(self._stop_event)
        if cfg.sync.samples:
            from edge.sync.samples import STATE_FILE, SampleUploader

            self.sample_uploader = SampleUploader(
                self.samples,
                client,
                self.signer.device_id,
                cfg.device.data_dir / STATE_FILE,
                cfg.sync,
                model_version=self._model_versions().get("ocr"),
            )
            threads.append(self.sample_uploader.start(self._stop_event))

        def stop_sync() -> None:
            self._stop_event.set()
            for t in threads:
                t.join(timeout=10)
            client.close()

        self._stops.append(stop_sync)

    # lifecycle -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop in reverse start order; safe to call more than once."""
        self._stop_event.set()
        while self._stops:
            fn = self._stops.pop()
            try:
                fn()
            except Exception:
                log.exception("while stopping")

    def status_line(self) -> str:
        counts = self.pipeline.decisions
        pending = self.ledger.outbox_stats().pending
        self.pipeline.metrics.sync_backlog.set(pending)
        uploader = getattr(self, "sample_uploader", None)
        if uploader is not None:
            self.pipeline.metrics.samples_pending.set(len(uploader.pending()))
        parts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()))
        total = sum(counts.values())
        return f"cartons {total} ({parts or 'none yet'}); sync backlog {pending}"
