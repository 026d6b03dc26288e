"""Capture triggered by the PLC's photo-eye: the real pymodbus PLC simulator on a free port, the
real Modbus line adapter, the real reader and ledger; only the camera is synthetic. Every beam
break becomes one booked carton carrying the PLC's tracking id, and its sorting command goes
back through the PLC mailbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import cv2
import pytest

from edge.camera.sources import SyntheticSource
from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import Ledger
from edge.runtime.adapters import LineSorter
from edge.runtime.aio import LoopThread
from edge.runtime.bus import Bus
from edge.runtime.carton import Decision, Trigger
from edge.runtime.gate import Gate
from edge.runtime.settings import GateConfig, PipelineConfig
from edge.runtime.stages import GatePipeline, Inference
from edge.runtime.supervisor import Supervisor
from edge.vision.ocr.reader import Reader
from firmware_bridge.modbus.config import ModbusTcpLineConfig
from firmware_bridge.modbus.plc import ModbusLineIO
from firmware_bridge.modbus.sim import PlcSimulator, SimSettings
from firmware_bridge.ports import CommandAck, PhotoEyeEdge
from tests.runtime.conftest import SAMPLES

FPS = 20.0


def camera(count: int | None = None) -> SyntheticSource:
    """A free-running camera at FPS looking at the sample cartons in turn."""
    images = [cv2.imread(str(p)) for p in sorted((SAMPLES / "frames").iterdir())[:4]]

    def make(n: int) -> Any:
        time.sleep(1 / FPS)
        return images[(n // 10) % len(images)]

    return SyntheticSource(make, count=count, source_id="gate")


@pytest.fixture
def io() -> Iterator[LoopThread]:
    loop = LoopThread("test-io")
    loop.start()
    yield loop
    loop.stop()


def test_photo_eye_edges_trigger_capture_and_sorting(
    io: LoopThread, port: int, gate_ledger: Ledger
) -> None:
    bus = Bus()
    acks = bus.subscribe(["line.ack"])
    sim = PlcSimulator(None, SimSettings(travel_s=20.0))
    io.run(sim.start_tcp(port=port))

    def publish(fact: Any) -> None:
        bus.publish("line", fact)

    line = ModbusLineIO(
        ModbusTcpLineConfig(host="127.0.0.1", port=port, timeout_s=1.0, poll_interval_s=0.01),
        publish,
    )
    io.run(line.start())
    source = camera()
    sup = Supervisor(check_interval_s=0.1, heartbeat_timeout_s=60)
    try:
        assert io.run(line.wait_connected(5))
        pipeline = GatePipeline(
            source,
            Inference(Reader(), latency_target_s=0.25),
            Gate(gate_ledger, GateConfig(), bus, sorter=LineSorter(io, line, bus)),
            PipelineConfig(trigger="photo-eye", frames_per_carton=2),
            deadline_s=30.0,
            triggers=bus.subscribe(["line"]),
        )
        pipeline.install(sup)
        sup.start()
        injected = []
        for _ in range(3):
            injected.append(io.run(sim.inject_carton()))
            time.sleep(0.8)
        deadline = time.monotonic() + 90
        while len(pipeline.outcomes) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        outcomes = list(pipeline.outcomes)
        assert [o.tracking_id for o in outcomes] == injected
        assert all(o.decision is not Decision.DIVERTED for o in outcomes), outcomes
        assert all(len(o.extra["frames"]) == 2 for o in outcomes)
        assert pipeline.decisions.total() == 3  # one decision per beam break, none extra
        # every decision went back to the PLC's mailbox and was taken (echoed)
        got: list[CommandAck] = []
        while len(got) < 3 and time.monotonic() < deadline:
            msg = acks.get(timeout=1)
            if msg is not None:
                got.append(msg.payload)
        assert sorted(a.tracking_id for a in got) == sorted(injected)
        assert all(a.confirmed for a in got), got
        chutes = {a.tracking_id: a.destination for a in got}
        for o in outcomes:
            want = (
                1
                if o.decision is Decision.RECEIVED
                else (2 if o.decision is Decision.FROZEN else 0)
            )
            assert chutes[o.tracking_id] == want
    finally:
        sup.stop()
        source.close()
        io.run(line.stop(), timeout=10)
        io.run(sim.stop(), timeout=10)


def test_a_beam_break_the_camera_cannot_serve_is_diverted_and_recorded(
    gate_ledger: Ledger,
) -> None:
    bus = Bus()
    triggers = bus.subscribe(["line"])
    now = time.monotonic()
    bus.publish("line", PhotoEyeEdge("pre_divert_1", True, 7, monotonic=now))  # another eye
    bus.publish("line", PhotoEyeEdge("scan", True, 41, monotonic=now - 60))  # long gone
    bus.publish("line", PhotoEyeEdge("scan", False, 41, monotonic=now - 59))  # beam clear
    bus.publish("line", PhotoEyeEdge("scan", True, 42, monotonic=now + 3600))  # never framed
    pipeline = GatePipeline(
        camera(count=5),
        Inference(Reader()),
        Gate(gate_ledger, GateConfig(), bus),
        PipelineConfig(trigger="photo-eye"),
        deadline_s=1.5,
        triggers=triggers,
    )
    sup = Supervisor(check_interval_s=0.1, heartbeat_timeout_s=60)
    pipeline.install(sup)
    sup.start()
    try:
        deadline = time.monotonic() + 30
        while not pipeline.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sup.stop()
    outcomes = {o.tracking_id: o for o in pipeline.outcomes}
    assert set(outcomes) == {41, 42}
    assert all(o.decision is Decision.DIVERTED for o in outcomes.values())
    assert all(o.reason == ErrorCode.BACKPRESSURE_DIVERTED.value for o in outcomes.values())
    holds = [e for e in gate_ledger.events() if e.kind == "hold"]
    reasons = " ".join(str(e.payload.get("reason")) for e in holds)
    assert "before the deadline after the photo-eye" in reasons
    assert "the camera delivered no frame" in reasons
    assert Trigger.PHOTO_EYE.value == "photo-eye"


def test_photo_eye_trigger_needs_a_plc(tmp_path: Any) -> None:
    from edge.config import EdgeConfig
    from edge.runtime.node import EdgeNode

    config = EdgeConfig.model_validate(
        {"device": {"id": "edge-pe", "data_dir": str(tmp_path)},
         "pipeline": {"trigger": "photo-eye"}, "line_io": {"type": "noop"}}
    )  # fmt: skip
    with pytest.raises(DockgateError) as exc:
        EdgeNode(config).start()
    assert exc.value.code is ErrorCode.CONFIG_INVALID and "photo-eye" in exc.value.message
    config = EdgeConfig.model_validate(
        {"device": {"id": "edge-pe", "data_dir": str(tmp_path)},
         "pipeline": {"trigger": "photo-eye", "photo_eye": "exit"},
         "line_io": {"type": "modbus_tcp", "host": "127.0.0.1", "port": 1}}
    )  # fmt: skip
    with pytest.raises(DockgateError) as exc:
        EdgeNode(config).start()
    assert exc.value.code is ErrorCode.CONFIG_INVALID and "'exit'" in exc.value.message
