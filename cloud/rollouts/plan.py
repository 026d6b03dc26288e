"""A rollout of one model name from version A to version B: stages, decisions, assignments.

Pure domain code (no database, no clock of its own: ``now`` is passed in), ready to be stored
and served. Devices are chosen stably: a device's bucket is a hash of the rollout id and its
device id, and a stage of ``p`` percent takes every device whose bucket is below ``p``, so each
wave contains the one before it and a device never flips back and forth between waves.

What a device should run is a pure function of the rollout's state (:meth:`Rollout.assignment`),
so a device that was offline converges to the right version when it returns and never receives a
version that was rolled back meanwhile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from cloud.rollouts.gates import GateResult, GateThresholds, Verdict, VersionFigures, evaluate
from edge.contracts.settings import StrictModel


def bucket(rollout_id: str, device_id: str) -> float:
    """A device's stable position in [0, 1) for this rollout (sha256, not Python's hash())."""
    digest = hashlib.sha256(f"{rollout_id}\x00{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Stage(StrictModel):
    """One wave: named devices and/or a percentage, a soak time and enough observations."""

    name: str = Field(..., min_length=1, max_length=40, description="e.g. canary, 25%, all")
    percent: float = Field(0.0, ge=0.0, le=100.0, description="share of the fleet, by bucket")
    devices: list[str] = Field([], max_length=1000, description="devices always in this stage")
    min_soak_s: int = Field(3600, ge=0, le=30 * 86400, description="time before promotion")
    min_observations: int = Field(
        200, ge=0, le=10_000_000, description="candidate cartons before promotion"
    )


class RolloutSpec(StrictModel):
    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="rollout id")
    model: str = Field(..., min_length=1, max_length=40, description="model name, e.g. defect")
    from_version: str = Field(..., min_length=1, max_length=64, description="version A")
    to_version: str = Field(..., min_length=1, max_length=64, description="version B")
    stages: list[Stage] = Field(..., min_length=1, max_length=10, description="waves, in order")
    gates: GateThresholds = Field(GateThresholds(), description="rollback thresholds")
    auto_promote: bool = Field(True, description="promote when gates pass, else wait")
    shadow: bool = Field(False, description="canaries run B beside A without acting on it")

    @model_validator(mode="after")
    def _waves_grow(self) -> RolloutSpec:
        if self.from_version == self.to_version:
            raise ValueError("from_version and to_version are the same")
        percents = [s.percent for s in self.stages]
        if percents != sorted(percents):
            raise ValueError("stage percentages must not decrease")
        if percents[-1] != 100.0:
            raise ValueError("the last stage must reach 100 percent")
        return self


class State(StrEnum):
    PENDING = "pending"  # stored rollouts only: created, start time not reached yet
    RUNNING = "running"
    WAITING = "waiting_for_operator"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


FINAL = {State.COMPLETED, State.ROLLED_BACK, State.ABORTED}


@dataclass(frozen=True)
class AuditEntry:
    """Who or what decided, when, and on which figures."""

    at: datetime
    actor: str  # "system" for automatic decisions, else the operator's user name
    action: str
    stage: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """What one device should run: ``run`` acts on results, ``shadow`` only reports."""

    run: str
    shadow: str | None = None


@dataclass
class Rollout:
    spec: RolloutSpec
    started_at: datetime
    stage_index: int = 0
    stage_started_at: datetime | None = None
    state: State = State.RUNNING
    refused_by: set[str] = field(default_factory=set)  # devices that rolled back on their own
    audit: list[AuditEntry] = field(default_factory=list)
    restored: bool = field(default=False, repr=False)  # loaded from storage: already started

    def __post_init__(self) -> None:
        if self.stage_started_at is None:
            self.stage_started_at = self.started_at
        if not self.restored:
            self._record(self.started_at, "system", "start", f"{self.spec.model} A->B")

    # -- who runs what --------------------------------------------------------------------
    @property
    def stage(self) -> Stage:
        return self.spec.stages[self.stage_index]

    def in_stage(self, device_id: str, index: int | None = None) -> bool:
        """Whether the device belongs to stage ``index`` (default: current) or an earlier one."""
        last = self.stage_index if index is None else index
        b = bucket(self.spec.id, device_id) * 100.0
        return any(device_id in s.devices or b < s.percent for s in self.spec.stages[: last + 1])

    def assignment(self, device_id: str) -> Assignment:
        a, b = self.spec.from_version, self.spec.to_version
        stopped = (State.ROLLED_BACK, State.ABORTED, State.PENDING)
        if self.state in stopped or device_id in self.refused_by:
            return Assignment(a)
        if self.state is State.COMPLETED:
            return Assignment(b)
        if not self.in_stage(device_id):
            return Assignment(a)
        if self.spec.shadow and self.stage_index == 0:
            return Assignment(a, shadow=b)
        return Assignment(b)

    # -- decisions ------------------------------------------------------------------------
    def tick(
        self, now: datetime, candidate: VersionFigures, baseline: VersionFigures
    ) -> list[GateResult]:
        """Judge the current stage on this window's figures; roll back, promote or hold."""
        if self.state in FINAL or self.state in (State.PAUSED, State.PENDING):
            return []
        results = evaluate(candidate, baseline, self.spec.gates)
        figures = {"candidate": candidate.to_dict(), "baseline": baseline.to_dict()}
        failed = [r for r in results if r.verdict is Verdict.FAILED]
        if failed:
            self.state = State.ROLLED_BACK
            reason = "; ".join(r.describe() for r in failed)
            self._record(now, "system", "rollback", reason, figures)
            return results
        if self.state is State.WAITING:
            return results
        assert self.stage_started_at is not None
        soaked = now - self.stage_started_at >= timedelta(seconds=self.stage.min_soak_s)
        observed = candidate.observations >= self.stage.min_observations
        all_passed = all(r.verdict is Verdict.PASSED for r in results)
        if soaked and observed and all_passed:
            if self.spec.auto_promote:
                self._advance(now, "system", "gates passed after soak", figures)
            else:
                self.state = State.WAITING
                self._record(now, "system", "await_operator", "gates passed after soak", figures)
        return results

    def device_rolled_back(self, now: datetime, device_id: str, reason: str) -> None:
        """A device went back to A on its own (crash loop, failed self-test): never push B again."""
        self.refused_by.add(device_id)
        self._record(now, f"device:{device_id}", "device_rollback", reason)

    # -- operator actions -----------------------------------------------------------------
    def pause(self, now: datetime, actor: str) -> None:
        self._require(actor, {State.RUNNING, State.WAITING}, "pause")
        self.state = State.PAUSED
        self._record(now, actor, "pause", "operator")

    def resume(self, now: datetime, actor: str) -> None:
        self._require(actor, {State.PAUSED}, "resume")
        self.state = State.RUNNING
        self._record(now, actor, "resume", "operator")

    def promote(self, now: datetime, actor: str) -> None:
        self._require(actor, {State.RUNNING, State.WAITING, State.PAUSED}, "promote")
        self._advance(now, actor, "operator", {})

    def abort(self, now: datetime, actor: str, reason: str = "operator") -> None:
        self._require(actor, {State.RUNNING, State.WAITING, State.PAUSED}, "abort")
        self.state = State.ABORTED
        self._record(now, actor, "abort", reason)

    # -- internals ------------------------------------------------------------------------
    def _advance(self, now: datetime, actor: str, reason: str, figures: dict[str, Any]) -> None:
        if self.stage_index + 1 >= len(self.spec.stages):
            self.state = State.COMPLETED
            self._record(now, actor, "complete", reason, figures)
            return
        self.stage_index += 1
        self.stage_started_at = now
        self.state = State.RUNNING
        self._record(now, actor, "promote", reason, figures)

    def _require(self, actor: str, allowed: set[State], action: str) -> None:
        if not actor:
            raise ValueError("an operator action needs the operator's name")
        if self.state not in allowed:
            raise ValueError(f"cannot {action} a rollout that is {self.state.value}")

    def _record(
        self,
        now: datetime,
        actor: str,
        action: str,
        reason: str,
        figures: dict[str, Any] | None = None,
    ) -> None:
        self.audit.append(AuditEntry(now, actor, action, self.stage.name, reason, figures or {}))
