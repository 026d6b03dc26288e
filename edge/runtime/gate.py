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
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import uuid_utils

from edge.contracts.errors import DockgateError, ErrorCode
from edge.runtime.bus import Bus
from edge.runtime.carton import CartonFrames, CartonOutcome, CartonResult, Decision
from edge.runtime.settings import GateConfig

log = logging.getLogger(__name__)

ACCEPTED, REVIEW = "ACCEPTED", "REVIEW"
# defect actions, as edge.vision.defects.verdict.Action spells them
ACT_FREEZE, ACT_REVIEW = "freeze", "review"
TOPIC_CARTON = "carton.done"


class Sorter(Protocol):
    """The sorting line as the gate sees it; the real one wraps firmware_bridge's LineIO."""

    def sort(self, carton_id: str, tracking_id: int | None, chute: int) -> None:
        """Send the carton to ``chute`` (0 = reject/manual lane). Must not block the gate."""


class TaskSink(Protocol):
    """Where AGV transport tasks go (edge.agv's dispatcher)."""

    def submit_transport(self, task_id: str, carton_id: str, from_node: str, to: str) -> None: ...


class LedgerLike(Protocol):
    device_id: str

    def transaction(self) -> AbstractContextManager[Any]: ...
    def sku_by_gtin(self, gtin: str) -> str: ...
    def choose_putaway_slot(self, sku: str, lot: str, expiry: str | None = None) -> str: ...
    def record_read(self, read: Any, *, actor: str, model_version: str | None = None) -> Any: ...
    def record_verdict(self, v: Any, *, actor: str, model_version: str | None = None) -> Any: ...
    def receive(self, sku: str, lot: str, qty: int, **kw: Any) -> Any: ...
    def putaway(self, sku: str, lot: str, qty: int, **kw: Any) -> Any: ...
    def freeze(self, sku: str, lot: str, **kw: Any) -> Any: ...
    def hold_unidentified(self, qty: int = 1, **kw: Any) -> Any: ...


@dataclass
class Gate:
    """Books one carton at a time; call :meth:`book` from a single booking thread."""

    ledger: LedgerLike
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
        self._act(outcome)
        return outcome

    def divert(self, carton: CartonFrames, reason: str) -> CartonOutcome:
        """Back-pressure: the carton could not be read in time. It goes to the manual lane and the
        ledger records a hold for it, so it is never silently skipped."""
        with self.ledger.transaction():
            held = self.ledger.hold_unidentified(
                1, actor=self.actor, reason=f"{ErrorCode.BACKPRESSURE_DIVERTED.value}: {reason}"
            )
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
    def _act(self, outcome: CartonOutcome) -> None:
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
        self.bus.publish(TOPIC_CARTON, outcome)

    def _outcome(self, result: CartonResult, decision: Decision, **kw: Any) -> CartonOutcome:
        read, verdict, carton = result.read, result.verdict, result.carton
        extra = {k: kw.pop(k) for k in ("hold",) if k in kw}
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
            latency_ms=(self.clock() - carton.t0) * 1000,
            tracking_id=carton.tracking_id,
            extra=extra,
            **kw,
        )

    def _signed(self) -> bool:
        return getattr(self.ledger, "signer", None) is not None


def new_carton_id() -> str:
    return str(uuid_utils.uuid7())


def _defect_class(result: CartonResult) -> str:
    return str(result.verdict.defect_class) if result.verdict is not None else "unknown"


def _lot(result: Any) -> str | None:
    payload = result.event.payload
    return str(payload.get("lot")) if payload.get("lot") else None
