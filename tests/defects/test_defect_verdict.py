"""Verdict to action, thresholds and the [defects] config section."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from pydantic import ValidationError

from edge.vision.defects.config import DefectConfig
from edge.vision.defects.metrics import (
    average_precision,
    choose_thresholds,
    confusion,
    false_freeze_rate,
    recall,
)
from edge.vision.defects.model import DefectVerdict
from edge.vision.defects.verdict import Action, verdict_action


def _verdict(defect_score: float) -> DefectVerdict:
    ok = 1.0 - defect_score
    return DefectVerdict(
        scores=MappingProxyType({"ok": ok, "crack": defect_score}),
        top_class="ok" if ok >= defect_score else "crack",
        top_score=max(ok, defect_score),
        defect_class="crack",
        defect_score=defect_score,
        box=None,
        heatmap=np.zeros((2, 2), np.float32),
        model_version="t",
        latency_ms=1.0,
    )


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.0, Action.PASS),
        (0.1999, Action.PASS),
        (0.2, Action.REVIEW),
        (0.6999, Action.REVIEW),
        (0.7, Action.FREEZE),
        (1.0, Action.FREEZE),
    ],
)
def test_thresholds_are_inclusive_from_below(score: float, expected: Action) -> None:
    assert verdict_action(_verdict(score), freeze_threshold=0.7, review_threshold=0.2) is expected


def test_equal_thresholds_leave_no_review_band() -> None:
    assert verdict_action(_verdict(0.5), 0.5, 0.5) is Action.FREEZE
    assert verdict_action(_verdict(0.49), 0.5, 0.5) is Action.PASS


@pytest.mark.parametrize(("freeze", "review"), [(0.3, 0.5), (1.2, 0.1), (0.5, -0.1)])
def test_inconsistent_thresholds_are_refused(freeze: float, review: float) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        verdict_action(_verdict(0.5), freeze, review)


def test_verdict_is_frozen_and_serialisable() -> None:
    v = _verdict(0.8)
    with pytest.raises(AttributeError):
        v.defect_score = 0.1  # type: ignore[misc]
    d = v.to_dict()
    assert d["defect_score"] == 0.8 and d["heatmap"] == [[0.0, 0.0], [0.0, 0.0]]


def test_config_section_validates() -> None:
    assert DefectConfig().threads == 1
    with pytest.raises(ValidationError, match="must not exceed"):
        DefectConfig(freeze_threshold=0.3, review_threshold=0.6)
    with pytest.raises(ValidationError, match="both"):
        DefectConfig(model="x.onnx")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DefectConfig(threads=0)


def test_threshold_choice_and_metrics() -> None:
    ok = np.linspace(0.0, 0.1, 200)
    bad = np.linspace(0.9, 1.0, 200)
    th = choose_thresholds(ok, bad)
    assert 0.1 < th.freeze < 0.9  # in the gap, with margin on both sides
    assert th.val_recall == 1.0 and th.val_false_freeze == 0.0
    assert th.review <= th.freeze
    assert recall(bad, 0.95) == pytest.approx(0.5, abs=0.01)
    assert false_freeze_rate(ok, 0.05) == pytest.approx(0.5, abs=0.01)
    assert average_precision(ok, bad) == pytest.approx(1.0)
    m = confusion(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    assert m.tolist() == [[1, 0], [1, 1]]


def test_overlapping_scores_favour_few_false_freezes() -> None:
    rng = np.random.default_rng(0)
    ok = rng.uniform(0.0, 0.6, 1000)
    bad = rng.uniform(0.4, 1.0, 1000)
    th = choose_thresholds(ok, bad, target_false_freeze=0.01)
    assert th.val_false_freeze <= 0.011


def test_edge_config_carries_the_section(tmp_path: Path) -> None:
    from edge.config import load_edge_config
    from edge.contracts.errors import DockgateError, ErrorCode

    good = tmp_path / "good.toml"
    good.write_text("[defects]\nfreeze_threshold = 0.9\nreview_threshold = 0.5\nthreads = 2\n")
    cfg = load_edge_config(good)
    assert cfg.defects.freeze_threshold == 0.9 and cfg.defects.threads == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[defects]\nfreeze_threshold = 0.4\nreview_threshold = 0.6\n")
    with pytest.raises(DockgateError) as info:
        load_edge_config(bad)
    assert info.value.code is ErrorCode.CONFIG_INVALID
    assert "defects" in str(info.value)
