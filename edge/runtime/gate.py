"""The inbound gate's booking stage: one carton's read and verdict become ledger events,
a putaway slot, an AGV task, a sorting decision and a live-view event.

Everything the ledger records for one carton (the signed read, the signed verdict, the freeze,
the receipt or the hold, the putaway) is written in ONE ledger transaction: after a crash either
all of it is there or none of it is, so a freeze can never be missing beside its verdict.
Physical actions (AGV task, PLC sorting command) follow the commit; they are idempotent by
carton id and the ledger, not them, is the record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import uuid_utils

from edge.contracts.errors import DockgateError, ErrorCode
from edge.runtime.bus import Bus
from edge.runtime.carton import (
    CARTON_TOPIC,
    STATUSES,
    CartonEvent,
    CartonFrames,
    CartonOutcome,
    CartonResult,
    Decision,
    DefectBox,
    Status,
)
from edge.runtime.settings import GateConfig

if TYPE_CHECKING:
    from edge.ledger import Ledger

log = logging.getLogger(__name__)

ACCEPTED, REVIEW = "ACCEPTED", "REVIEW"
# defect actions, as edge.vision.defects.verdict.Action spells them
ACT_FREEZE, ACT_REVIEW = "freeze", "review"


class Sorter(Protocol):
    """The sorting line as the gate sees it; the real one wraps firmware_bridge's LineIO."""

    def sort(self, carton_id: str, tracking_id: int | None, chute: int) -> None:
        """Send the carton to ``chute`` (0 = reject/manual lane). Must not block the gate."""


class TaskSink(Protocol):
    """Where AGV transport tasks go (edge.agv's dispatcher)."""

    def submit_transport(self, task_id: str, carton_id: str, from_node: str, to: str) -> None: ...


@dataclass
class Gate:
    """Books one carton at a time; call :meth:`book` from a single booking thread."""

    ledger: Ledger
    config: GateConfig
    bus: Bus
    sorter: Sorter | None = None
    tasks: TaskSink | None = None
    ocr_version: str | None = None
    clock: Callable[[], float] = time.monotonic

    @property
    def actor(self) -> str:
        return f"device:{self.ledger.device_id}"

    def book(self, result: CartonResult) -> CartonOutcome:
        carton = result.carton
        try:
            outcome = self._book(result)
        except DockgateError as exc:
            # a refusal (e.g. STORAGE_FULL) means nothing was written: the carton goes to the
            # manual lane and the operator sees the code
            log.error("carton %s not booked: %s", carton.carton_id, exc)
            outcome = self._outcome(
                result, Decision.ERROR, reason=f"{exc.code.value}: {exc.message}"
            )
        self._act(outcome, result)
        return outcome

    def divert(self, carton: CartonFrames, reason: str) -> CartonOutcome:
        """Back-pressure: the carton could not be read in time. It goes to the manual lane and the
        ledger records a hold for it, so it is never silently skipped."""
        try:
            with self.ledger.transaction():
                held = self.ledger.hold_unidentified(
                    1, actor=self.actor, reason=f"{ErrorCode.BACKPRESSURE_DIVERTED.value}: {reason}"
                )
        except DockgateError as exc:
            # e.g. STORAGE_FULL: nothing was written; the carton still goes to the manual lane
            # and the operator sees the code (raising here would kill the booking stage)
            log.error("carton %s not held: %s", carton.carton_id, exc)
            refused = CartonOutcome(
                carton_id=carton.carton_id,
                decision=Decision.ERROR,
                status="DIVERTED",
                reason=f"{exc.code.value}: {exc.message}",
                signed=self._signed(),
                latency_ms=(self.clock() - carton.t0) * 1000,
                tracking_id=carton.tracking_id,
                extra={"frames": _frame_ids(carton)},
            )
            self._act(refused)
            return refused
        outcome = CartonOutcome(
            carton_id=carton.carton_id,
            decision=Decision.DIVERTED,
            status="DIVERTED",
            lot=_lot(held),
            reason=ErrorCode.BACKPRESSURE_DIVERTED.value,
            seqs=(held.event.seq,),
            signed=self._signed(),
            latency_ms=(self.clock() - carton.t0) * 1000,
            tracking_id=carton.tracking_id,
            extra={"frames": _frame_ids(carton)},
        )
        self._act(outcome)
        return outcome

    # booking --------------------------------------------------------------------------
    def _book(self, result: CartonResult) -> CartonOutcome:
        read, verdict, carton = result.read, result.verdict, result.carton
        sku = self._sku(read)
        events: list[Any] = []
        with self.ledger.transaction():
            read_payload = {"carton_id": carton.carton_id, **read.as_json()}
            if carton.tracking_id is not None:
                read_payload["tracking_id"] = carton.tracking_id
            events.append(
                self.ledger.record_read(
                    read_payload, actor=self.actor, model_version=self.ocr_version
                )
            )
            if verdict is not None:
                v = verdict.to_dict()
                v.pop("heatmap", None)  # the coarse map stays with the sample, not in the chain
                v.update(carton_id=carton.carton_id, action=result.defect_action)
                events.append(
                    self.ledger.record_verdict(
                        v, actor=self.actor, model_version=verdict.model_version
                    )
                )
            decision, location, extra = self._stock_events(result, sku, events)
        return self._outcome(
            result,
            decision,
            sku=sku,
            location=location,
            seqs=tuple(e.event.seq for e in events),
            **extra,
        )

    def _stock_events(
        self, result: CartonResult, sku: str | None, events: list[Any]
    ) -> tuple[Decision, str | None, dict[str, Any]]:
        read, action = result.read, result.defect_action
        identified = read.status == ACCEPTED and sku is not None
        if action == ACT_FREEZE and identified:
            assert sku is not None
            reason = f"defect {_defect_class(result)} at the gate, carton {result.carton.carton_id}"
            events.append(self.ledger.freeze(sku, read.lot, reason=reason, actor=self.actor))
            slot = self._receive(sku, read, events, quarantine=True)
            return Decision.FROZEN, slot, {}
        if action in (ACT_FREEZE, ACT_REVIEW) or not identified:
            why = self._hold_reason(result, sku)
            held = self.ledger.hold_unidentified(
                1, actor=self.actor, reason=why, raw=read.text or None
            )
            events.append(held)
            decision = Decision.REVIEW if REVIEW in (read.status, action.upper()) else Decision.HELD
            if action == ACT_FREEZE:
                decision = Decision.HELD  # freeze follows when QA identifies the carton
            return decision, held.event.payload.get("location"), {"hold": _lot(held), "reason": why}
        assert sku is not None
        slot = self._receive(sku, read, events, quarantine=False)
        return Decision.RECEIVED, slot, {}

    def _receive(self, sku: str, read: Any, events: list[Any], *, quarantine: bool) -> str:
        unit = self.config.receipt_unit
        events.append(
            self.ledger.receive(
                sku,
                read.lot,
                1,
                unit=unit,
                expiry=read.expiry,
                actor=self.actor,
                location=self.config.inbound_location,
            )
        )
        qty = int(events[-1].event.payload.get("qty_base", events[-1].event.payload.get("qty", 1)))
        slot = self.ledger.choose_putaway_slot(sku, read.lot, read.expiry)
        events.append(
            self.ledger.putaway(
                sku,
                read.lot,
                qty,
                from_location=self.config.inbound_location,
                to=slot,
                actor=self.actor,
            )
        )
        return slot

    def _sku(self, read: Any) -> str | None:
        if read.status != ACCEPTED or not read.gtin:
            return None
        try:
            return self.ledger.sku_by_gtin(read.gtin)
        except DockgateError as exc:
            if exc.code is ErrorCode.UNKNOWN_SKU:
                return None
            raise

    @staticmethod
    def _hold_reason(result: CartonResult, sku: str | None) -> str:
        read = result.read
        if result.defect_action == ACT_FREEZE:
            return f"defect {_defect_class(result)} on a carton whose code is not known"
        if read.status == ACCEPTED and sku is None:
            return f"{ErrorCode.UNKNOWN_SKU.value}: GTIN {read.gtin} not in master data"
        if result.defect_action == ACT_REVIEW and result.verdict is not None:
            return f"defect score {result.verdict.defect_score:.2f} needs a look"
        return read.reason or f"{read.status}: code not read with enough certainty"

    # after the commit --------------------------------------------------------------------
    def _act(self, outcome: CartonOutcome, result: CartonResult | None = None) -> None:
        chute = {
            Decision.RECEIVED: self.config.chute_putaway,
            Decision.FROZEN: self.config.chute_quarantine,
        }.get(outcome.decision, 0)
        if self.sorter is not None:
            self.sorter.sort(outcome.carton_id, outcome.tracking_id, chute)
        if (
            self.tasks is not None
            and outcome.location is not None
            and outcome.decision in (Decision.RECEIVED, Decision.FROZEN)
        ):
            self.tasks.submit_transport(
                outcome.task_id or outcome.carton_id,
                outcome.carton_id,
                self.config.node,
                outcome.location,
            )
        event = live_event(outcome, result, signed=self._signed(), ocr_model=self.ocr_version)
        self.bus.publish(CARTON_TOPIC, event)

    def _outcome(self, result: CartonResult, decision: Decision, **kw: Any) -> CartonOutcome:
        read, verdict, carton = result.read, result.verdict, result.carton
        extra = {k: kw.pop(k) for k in ("hold",) if k in kw}
        extra["frames"] = _frame_ids(carton)
        if result.frames_read:
            extra["frames_read"] = result.frames_read
        extra["infer_ms"] = round(result.infer_ms, 1)
        return CartonOutcome(
            carton_id=carton.carton_id,
            decision=decision,
            status=read.status,
            gtin=read.gtin,
            lot=read.lot if read.status == ACCEPTED else extra.get("hold"),
            expiry=read.expiry,
            confidence=read.confidence,
            defect_class=verdict.defect_class if verdict is not None else None,
            defect_score=verdict.defect_score if verdict is not None else None,
            defect_box=verdict.box if verdict is not None else None,
            task_id=f"T-{carton.carton_id}"
            if decision in (Decision.RECEIVED, Decision.FROZEN)
            else None,
            signed=self._signed(),
            latency_ms=(self.clock() - (carton.t0 if result.since is None else result.since))
            * 1000,
            tracking_id=carton.tracking_id,
            extra=extra,
            **kw,
        )

    def _signed(self) -> bool:
        return getattr(self.ledger, "signer", None) is not None


def live_event(
    outcome: CartonOutcome,
    result: CartonResult | None,
    *,
    signed: bool,
    ocr_model: str | None = None,
) -> CartonEvent:
    """The live-view event for one carton: fields, verdict, a small JPEG of the frame."""
    read = result.read if result is not None else None
    status: Status = "ERROR"
    for known in STATUSES:
        if outcome.status == known:
            status = known
    fields = {
        k: str(v)
        for k, v in (("gtin", outcome.gtin), ("lot", outcome.lot), ("expiry", outcome.expiry))
        if v
    }
    if read is not None and read.sscc:
        fields["sscc"] = read.sscc
    crop: bytes | None = None
    boxes: tuple[DefectBox, ...] = ()
    frame = None
    if result is not None:
        frames = result.carton.frames
        frame = result.best_frame or (frames[len(frames) // 2] if frames else None)
    if frame is not None:
        crop = _thumbnail(frame.image)
        h, w = frame.image.shape[:2]
        if outcome.defect_box is not None and outcome.defect_class not in (None, "ok"):
            x0, y0, x1, y1 = outcome.defect_box
            boxes = (
                DefectBox(x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h, outcome.defect_class or ""),
            )
    damaged = outcome.decision is Decision.FROZEN or (
        result is not None and result.defect_action != "pass"
    )
    return CartonEvent(
        carton_id=outcome.carton_id,
        ts=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        status=status,
        confidence=outcome.confidence,
        fields=fields,
        text=read.text if read is not None else "",
        reason=outcome.reason,
        defect="not_run" if outcome.defect_score is None else ("damaged" if damaged else "ok"),
        defect_score=outcome.defect_score,
        defect_boxes=boxes,
        signature="signed" if signed else "unsigned",
        agv_task=outcome.task_id,
        latency_ms=round(outcome.latency_ms, 1),
        crop=crop,
        crop_type="image/jpeg",
        decision=outcome.decision.value,
        location=outcome.location,
        ocr_model=ocr_model,
    )


def _thumbnail(image: Any, width: int = 480) -> bytes | None:
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(1, h * width // w)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return bytes(data) if ok else None


def new_carton_id() -> str:
    return str(uuid_utils.uuid7())


def _defect_class(result: CartonResult) -> str:
    return str(result.verdict.defect_class) if result.verdict is not None else "unknown"


def _frame_ids(carton: CartonFrames) -> list[int]:
    """The camera's frame numbers behind a decision: ties it back to the footage (and lets the
    demo score each carton against its generator's ground truth)."""
    return [f.frame_id for f in carton.frames]


def _lot(result: Any) -> str | None:
    payload = result.event.payload
    return str(payload.get("lot")) if payload.get("lot") else None
