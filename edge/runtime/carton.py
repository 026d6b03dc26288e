"""The values that flow through the gate pipeline, one carton at a time.

``CartonFrames`` (capture) -> ``CartonResult`` (inference) -> ``CartonOutcome`` (booking).
All frozen: they cross thread boundaries and end up on the bus for the panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from edge.camera.frame import Frame


class Trigger(StrEnum):
    PHOTO_EYE = "photo-eye"  # the PLC saw the carton break the beam
    PRESENCE = "presence"  # the camera saw something on the empty belt
    FILE = "file"  # one image = one carton (folders of stills)


class Decision(StrEnum):
    """What happened to the carton physically and in the ledger."""

    RECEIVED = "RECEIVED"  # booked into its batch, putaway slot chosen, AGV task queued
    REVIEW = "REVIEW"  # code read with low confidence: held for an operator to confirm
    HELD = "HELD"  # code unreadable or unknown: held as UNIDENTIFIED in quarantine
    FROZEN = "FROZEN"  # defect above the freeze threshold: batch frozen, carton to quarantine
    DIVERTED = "DIVERTED"  # inference could not keep up: manual lane, recorded
    ERROR = "ERROR"  # a stage failed for this carton: manual lane, recorded


@dataclass(frozen=True, eq=False)
class CartonFrames:
    carton_id: str
    frames: tuple[Frame, ...]
    trigger: Trigger
    t0: float  # time.monotonic() when the carton was first seen
    tracking_id: int | None = None  # the PLC's id when a photo-eye triggered it
    prefer: int | None = None  # index of the frame to read first (None: the middle one)

    def since(self, frames: Sequence[Frame]) -> float:
        """Where camera-to-booking starts when ``frames`` are read: the photo-eye's beam break,
        else the capture of the earliest of them (a kept frame that is not read is not waited
        for)."""
        if self.trigger is Trigger.PHOTO_EYE or not frames:
            return self.t0
        return min(f.ts for f in frames)


@dataclass(frozen=True, eq=False)
class CartonResult:
    carton: CartonFrames
    read: Any  # edge.vision.ocr.reader.CartonRead
    verdict: Any | None  # edge.vision.defects.model.DefectVerdict, None without a defect model
    defect_action: str  # edge.vision.defects.verdict.Action value: freeze | review | pass
    infer_ms: float
    best_frame: Frame | None = None
    frames_read: int = 0  # how many of the carton's frames the reader fused (0: not said)
    since: float | None = None  # camera-to-booking starts here (CartonFrames.since); None: t0


@dataclass(frozen=True)
class CartonOutcome:
    """What the panel's live view and the metrics see for each carton."""

    carton_id: str
    decision: Decision
    status: str  # the read status: ACCEPTED | REVIEW | UNREADABLE | ERROR | DIVERTED
    gtin: str | None = None
    sku: str | None = None
    lot: str | None = None
    expiry: str | None = None
    confidence: float = 0.0
    defect_class: str | None = None
    defect_score: float | None = None
    defect_box: tuple[int, int, int, int] | None = None
    location: str | None = None
    task_id: str | None = None
    seqs: tuple[int, ...] = ()
    signed: bool = False
    reason: str = ""
    latency_ms: float = 0.0
    tracking_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# what the live view and any other subscriber receive ----------------------------------------
CARTON_TOPIC = "carton.read"
Status = Literal["ACCEPTED", "REVIEW", "UNREADABLE", "ERROR"]
STATUSES: tuple[Status, ...] = ("ACCEPTED", "REVIEW", "UNREADABLE", "ERROR")


@dataclass(frozen=True)
class DefectBox:
    """Where the defect model saw damage, as fractions (0..1) of the crop's width and height."""

    x: float
    y: float
    w: float
    h: float
    label: str = "damage"


@dataclass(frozen=True)
class CartonEvent:
    """One carton through the gate, as the pipeline publishes it on ``carton.read``."""

    carton_id: str
    ts: str  # UTC, RFC 3339
    status: Status
    confidence: float
    fields: Mapping[str, str] = field(default_factory=dict)  # gtin, lot, expiry, sscc
    text: str = ""
    reason: str = ""  # error code for UNREADABLE / ERROR
    defect: Literal["ok", "damaged", "not_run"] = "not_run"
    defect_score: float | None = None
    defect_boxes: tuple[DefectBox, ...] = ()
    signature: Literal["signed", "unsigned", "invalid"] = "unsigned"
    agv_task: str | None = None
    latency_ms: float | None = None
    crop: bytes | None = None  # PNG or JPEG bytes of the code region / carton
    crop_type: str = "image/png"
    decision: str = ""  # the gate's Decision value (RECEIVED, HELD, FROZEN, ...)
    location: str | None = None  # where the ledger put the carton
    ocr_model: str | None = None  # OCR model version that made the read
