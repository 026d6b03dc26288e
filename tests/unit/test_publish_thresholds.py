"""The rollout gates a trained candidate gets (cloud/services/publish.thresholds)."""

from __future__ import annotations

from typing import Any

import pytest

from cloud.rollouts.gates import GateThresholds
from cloud.services.publish import thresholds


def figures(**splits: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {"splits": {k: {"candidate": c, "production": p} for k, (c, p) in splits.items()}}


def test_a_defect_model_that_catches_more_may_freeze_more_by_its_measured_gain() -> None:
    evaluation = figures(
        regression=(
            {"count": 40, "recall": 0.90, "false_freeze": 0.02},
            {"count": 40, "recall": 0.60, "false_freeze": 0.01},
        ),
        val=(
            {"count": 20, "recall": 0.80, "false_freeze": 0.00},
            {"count": 20, "recall": 0.70, "false_freeze": 0.05},
        ),
    )
    gates = thresholds("defect", evaluation)
    # the larger gain (regression: +0.30 recall, +0.01 false freezes) on top of the usual 0.05
    assert gates.max_defect_rate_increase == pytest.approx(0.36)
    assert gates.max_defect_rate_drift == GateThresholds().max_defect_rate_drift


def test_no_gain_or_no_members_or_a_codes_model_keeps_the_symmetric_gate() -> None:
    same = ({"count": 10, "recall": 0.5, "false_freeze": 0.0},) * 2
    empty = ({"count": 0, "recall": 1.0}, {"count": 0, "recall": 0.0})
    assert thresholds("defect", figures(val=same)) == GateThresholds()
    assert thresholds("defect", figures(val=empty)) == GateThresholds()
    assert thresholds("defect", {}) == GateThresholds()
    assert thresholds("codes", figures(val=same)) == GateThresholds()
