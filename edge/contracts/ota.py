"""OTA wire contracts between the edge updater (``ota/``) and the cloud (``cloud/rollouts/``).

What a device reports about its models with each heartbeat: the version it runs, the one it
keeps for rollback, whether the new one is still on probation, the releases it refused on its own
(so the cloud never pushes them again within a rollout), and the figures per version that the
rollout's health gates compare (candidate B against the devices still on A, same window).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from edge.contracts.errors import ErrorCode
from edge.contracts.settings import StrictModel

#: A non-negative count with a sane upper bound (a window never holds a billion cartons).
Count = Annotated[int, Field(ge=0, le=10**9)]


class ModelFigures(StrictModel):
    """Counts and summaries for one model version over one reporting window."""

    observations: Count = Field(0, description="cartons processed")
    errors: Count = Field(0, description="crashes and inference errors")
    latency_p95_ms: float = Field(0.0, ge=0.0, le=600_000.0, description="inference p95, ms")
    mean_confidence: float = Field(0.0, ge=0.0, le=1.0, description="mean read confidence")
    review_or_unreadable: Count = Field(0, description="reads ending in REVIEW or UNREADABLE")
    defects: Count = Field(0, description="frames judged defective")
    agreement_pairs: Count = Field(0, description="cartons read by both the OCR and a scanner")
    agreements: Count = Field(0, description="... of which OCR and scanner agreed")

    def rate(self, count: int, of: int | None = None) -> float:
        total = self.observations if of is None else of
        return count / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class RefusedRelease(StrictModel):
    version: str = Field(..., min_length=1, max_length=64, description="release version")
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$", description="the refused file's sha256")
    reason: str = Field(..., max_length=300, description="self-test, crash loop, health ...")


class ModelReport(StrictModel):
    """One model name on one device."""

    name: str = Field(..., min_length=1, max_length=40, description="model name, e.g. defect")
    running: str | None = Field(None, max_length=64, description="version in use")
    previous: str | None = Field(None, max_length=64, description="version kept for rollback")
    on_probation: bool = Field(False, description="switched, not yet confirmed healthy")
    refused: list[RefusedRelease] = Field([], max_length=20, description="refused on the device")
    last_code: ErrorCode | None = Field(None, description="code of the last update cycle")
    figures: dict[str, ModelFigures] = Field(
        {}, max_length=4, description="figures per version (shadow mode: two versions)"
    )


class OtaReport(StrictModel):
    device_id: str = Field(..., min_length=2, max_length=63, description="reporting device")
    models: list[ModelReport] = Field([], max_length=8, description="one entry per model name")
