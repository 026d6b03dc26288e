"""Health gates: a rollout's candidate version judged against the devices still on version A.

Pure code over aggregated figures (the caller sums device heartbeats per version over the same
time window). Every gate compares the candidate with the baseline measured at the same time, so
a slow morning or a batch of damaged cartons moves both sides and does not fail the rollout.
A gate without enough data says ``pending``, never ``passed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field

from edge.contracts.ota import ModelFigures
from edge.contracts.settings import StrictModel

#: The figures devices report per model version (the wire contract, edge/contracts/ota.py).
VersionFigures = ModelFigures


class GateThresholds(StrictModel):
    """How much worse than version A the candidate may be before the rollout rolls back."""

    max_error_rate_increase: float = Field(
        0.01, ge=0.0, le=1.0, description="error rate may exceed A's by at most this (absolute)"
    )
    max_latency_p95_ratio: float = Field(
        1.5, ge=1.0, le=10.0, description="inference p95 may be at most this multiple of A's"
    )
    max_confidence_drop: float = Field(
        0.05, ge=0.0, le=1.0, description="mean confidence may fall below A's by at most this"
    )
    max_review_share_increase: float = Field(
        0.05, ge=0.0, le=1.0, description="REVIEW/UNREADABLE share may exceed A's by this"
    )
    max_defect_rate_drift: float = Field(
        0.05, ge=0.0, le=1.0, description="defect rate may differ from A's by at most this"
    )
    # A retrained defect model that catches more damage freezes more cartons: a symmetric drift
    # gate would roll back the very improvement it was trained for. The training gate knows how
    # much more it catches on the regression and validation sets and widens the upper side only
    # by that (cloud/services/publish.py); a fall in the defect rate keeps the symmetric bound.
    max_defect_rate_increase: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="when set, the defect rate may exceed A's by up to this (instead of "
        "max_defect_rate_drift); a fall is still bounded by max_defect_rate_drift",
    )
    max_agreement_drop: float = Field(
        0.03, ge=0.0, le=1.0, description="OCR-vs-scanner agreement may fall below A's by this"
    )
    min_observations: int = Field(
        50, ge=1, le=1_000_000, description="cartons per side before any gate may decide"
    )
    min_agreement_pairs: int = Field(
        20, ge=1, le=1_000_000, description="cartons read by both OCR and scanner, per side"
    )


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True)
class GateResult:
    gate: str
    verdict: Verdict
    candidate: float
    baseline: float
    limit: float

    def describe(self) -> str:
        return (
            f"{self.gate} {self.verdict}: candidate {self.candidate:.4g} vs A "
            f"{self.baseline:.4g} (limit {self.limit:.4g})"
        )


def evaluate(
    candidate: VersionFigures, baseline: VersionFigures, limits: GateThresholds
) -> list[GateResult]:
    """Every gate's verdict for ``candidate`` (version B) against ``baseline`` (version A)."""
    enough = min(candidate.observations, baseline.observations) >= limits.min_observations
    pairs = min(candidate.agreement_pairs, baseline.agreement_pairs) >= limits.min_agreement_pairs
    c, b = candidate, baseline

    def gate(name: str, cv: float, bv: float, limit: float, ok: bool, ready: bool) -> GateResult:
        verdict = Verdict.PENDING if not ready else Verdict.PASSED if ok else Verdict.FAILED
        return GateResult(name, verdict, cv, bv, limit)

    def _drift_gate(cv: float, bv: float, limits: GateThresholds, ready: bool) -> GateResult:
        up = limits.max_defect_rate_increase
        up = limits.max_defect_rate_drift if up is None else up
        down = limits.max_defect_rate_drift
        # the limit shown is the bound on the side the candidate moved to
        limit = bv + up if cv >= bv else bv - down
        return gate("defect_rate_drift", cv, bv, limit, -down <= cv - bv <= up, ready)

    err_c, err_b = c.rate(c.errors), b.rate(b.errors)
    rev_c, rev_b = c.rate(c.review_or_unreadable), b.rate(b.review_or_unreadable)
    def_c, def_b = c.rate(c.defects), b.rate(b.defects)
    agr_c, agr_b = c.rate(c.agreements, c.agreement_pairs), b.rate(b.agreements, b.agreement_pairs)
    lat_limit = b.latency_p95_ms * limits.max_latency_p95_ratio
    return [
        gate(
            "error_rate",
            err_c,
            err_b,
            err_b + limits.max_error_rate_increase,
            err_c <= err_b + limits.max_error_rate_increase,
            enough,
        ),
        gate(
            "latency_p95_ms",
            c.latency_p95_ms,
            b.latency_p95_ms,
            lat_limit,
            c.latency_p95_ms <= lat_limit,
            enough,
        ),
        gate(
            "mean_confidence",
            c.mean_confidence,
            b.mean_confidence,
            b.mean_confidence - limits.max_confidence_drop,
            c.mean_confidence >= b.mean_confidence - limits.max_confidence_drop,
            enough,
        ),
        gate(
            "review_share",
            rev_c,
            rev_b,
            rev_b + limits.max_review_share_increase,
            rev_c <= rev_b + limits.max_review_share_increase,
            enough,
        ),
        _drift_gate(def_c, def_b, limits, enough),
        gate(
            "ocr_scanner_agreement",
            agr_c,
            agr_b,
            agr_b - limits.max_agreement_drop,
            agr_c >= agr_b - limits.max_agreement_drop,
            pairs,
        ),
    ]
