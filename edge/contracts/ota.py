"""OTA wire contracts between the edge updater (``ota/``) and the cloud (``cloud/rollouts/``).

What a device reports about its models with each heartbeat: the version it runs, the one it
keeps for rollback, whether the new one is still on probation, the releases it refused on its own
(so the cloud never pushes them again within a rollout), and the figures per version that the
rollout's health gates compare (candidate B against the devices still on A, same window).

The cloud's answer is an :class:`OtaDirective`: which version of each model name the device
should run (and, in shadow mode, which one to run beside it without acting on it).

Endpoints (both authenticated exactly like ``/v1/ingest``: ``Authorization: Dockgate-Sig <JWS>``
over method, path, sha256(body), time and nonce; the path signed is the bare path, no query):

``POST /v1/ota/report`` (:data:`REPORT_PATH`)
    Body: :class:`OtaReport` (``device_id`` must be the certificate's device). Answers 200 with
    the :class:`OtaDirective` for this device, computed after the report was applied (so a
    device that reports a refusal gets version A in the same answer). Send one with each
    heartbeat and immediately after a switch, a self-refusal or a failed update cycle.

``GET /v1/ota/assignments`` (:data:`ASSIGNMENTS_PATH`)
    Answers 200 with the :class:`OtaDirective` and an ``ETag`` header (strong, quoted; equal to
    ``OtaDirective.etag`` in quotes). Send ``If-None-Match: "<etag>"`` to get ``304 Not
    Modified`` with no body while nothing changed for this device. The ETag covers only the
    assignments (not ``poll_after_s``).

Figures (:class:`ModelFigures` in ``ModelReport.figures``, keyed by version) are the counts of
the window since the previous report the cloud answered 200 to (deltas, not totals since boot):
the device clears them only after a 200, so a failed send is carried into the next report.
``report_seq`` (increasing per device, persisted or seeded from the clock) lets the cloud ignore
a report it already counted (a retry after a lost answer). ``latency_p95_ms`` and
``mean_confidence`` are summaries over the window's observations; the cloud weights them by
``observations`` when it adds devices and windows together.

How a device follows a directive, per model name:

* exactly one :class:`Assignment` with ``shadow=False``: run that version and act on its results.
  The device fetches ``target`` through TUF (signed targets metadata): ``sha256``/``length`` here
  are informative, never a substitute for TUF verification.
* at most one more with ``shadow=True``: run it beside the acting version on the same frames,
  never act on its results, report its figures under its own version plus ``disagreements``
  (frames whose result differed from the acting version's).
* a model name not in the directive: the cloud has no opinion; keep what runs.
* a version the device refused on its own (``ModelReport.refused``) is never assigned to it again
  within the same rollout; should one still arrive (a race), keep refusing it.
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
    disagreements: Count = Field(
        0, description="shadow version only: frames whose result differed from the acting one"
    )

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
    report_seq: int | None = Field(
        None, ge=0, le=2**62, description="increasing per device: a resent report counts once"
    )


REPORT_PATH = "/v1/ota/report"
ASSIGNMENTS_PATH = "/v1/ota/assignments"


class Assignment(StrictModel):
    """One version of one model name that a device should run (or shadow)."""

    name: str = Field(..., min_length=1, max_length=40, description="model name, e.g. defect")
    version: str = Field(..., min_length=1, max_length=64, description="release version")
    target: str = Field(
        ..., min_length=1, max_length=300, description="TUF target path <name>/<version>/<file>"
    )
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$", description="hint; TUF verifies")
    length: int = Field(..., ge=0, description="bytes; hint, TUF verifies")
    rollout_id: str | None = Field(None, max_length=63, description="rollout deciding this")
    shadow: bool = Field(False, description="run beside the acting version, never act on it")


class OtaDirective(StrictModel):
    """The cloud's answer: what this device should run, and when to ask again."""

    device_id: str = Field(..., min_length=2, max_length=63)
    assignments: list[Assignment] = Field([], max_length=16)
    poll_after_s: float = Field(30.0, ge=0.5, le=86400.0, description="ask again after this")
    etag: str = Field(..., min_length=1, max_length=80, description="of the assignments")
