"""From a defect verdict to what the line does with the carton: freeze, review or pass."""

from __future__ import annotations

from enum import StrEnum

from edge.vision.defects.model import DefectVerdict


class Action(StrEnum):
    """What a verdict asks for. FREEZE: freeze the batch and divert the carton (QA work order);
    REVIEW: a person looks at the frame; PASS: nothing to do."""

    FREEZE = "freeze"
    REVIEW = "review"
    PASS = "pass"  # noqa: S105 - an action name, not a password


def verdict_action(
    verdict: DefectVerdict, freeze_threshold: float, review_threshold: float
) -> Action:
    """Compare the verdict's defect score (1 - P(ok)) with the two thresholds.

    ``score >= freeze_threshold`` freezes; ``review_threshold <= score < freeze_threshold`` goes
    to review; anything lower passes. Thresholds must satisfy 0 <= review <= freeze <= 1, else
    ``ValueError`` (a misconfiguration, caught at config check, never at run time).
    """
    if not 0.0 <= review_threshold <= freeze_threshold <= 1.0:
        raise ValueError(
            f"thresholds must satisfy 0 <= review ({review_threshold}) <= "
            f"freeze ({freeze_threshold}) <= 1"
        )
    if verdict.defect_score >= freeze_threshold:
        return Action.FREEZE
    if verdict.defect_score >= review_threshold:
        return Action.REVIEW
    return Action.PASS
