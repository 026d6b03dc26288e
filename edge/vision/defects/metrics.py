"""Metrics for the defect model: thresholds, recall, false-freeze rate, confusion, PR curve.

Pure numpy so that training, the model card and ``bench/defects.py`` compute the same figures.
"Defective" means any class other than ``ok``; the score is ``1 - P(ok)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Thresholds:
    """Freeze and review thresholds with the validation figures they were chosen from."""

    freeze: float
    review: float
    val_recall: float
    val_false_freeze: float


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-z)))


def choose_thresholds(
    ok_scores: Floats,
    defect_scores: Floats,
    *,
    target_false_freeze: float = 0.005,
    target_recall: float = 0.99,
    review_false_rate: float = 0.05,
) -> Thresholds:
    """Pick thresholds on a validation split.

    Freeze: midway (in logit space) between the ok score that keeps the false-freeze rate at
    ``target_false_freeze`` and the defective score that keeps recall at ``target_recall``, so
    that drift on either side has the same margin; if the two overlap, the false-freeze bound
    wins (a needless freeze stops a whole batch). Review: the ok score exceeded by
    ``review_false_rate`` of good items, never above the freeze threshold.
    """
    if len(ok_scores) == 0 or len(defect_scores) == 0:
        raise ValueError("need both ok and defective validation samples to choose thresholds")
    ok_hi = float(np.quantile(ok_scores, 1.0 - target_false_freeze, method="higher"))
    defect_lo = float(np.quantile(defect_scores, 1.0 - target_recall, method="lower"))
    freeze = _sigmoid((_logit(ok_hi) + _logit(defect_lo)) / 2) if defect_lo > ok_hi else ok_hi
    freeze = min(max(freeze, 1e-4), 1 - 1e-6)
    review = float(np.quantile(ok_scores, 1.0 - review_false_rate, method="higher"))
    review = min(max(review, 1e-4), freeze)
    return Thresholds(
        freeze=freeze,
        review=review,
        val_recall=recall(defect_scores, freeze),
        val_false_freeze=false_freeze_rate(ok_scores, freeze),
    )


def defect_scores(
    probs: Floats, y: npt.NDArray[np.int64], classes: tuple[str, ...]
) -> tuple[Floats, Floats]:
    """(scores of good frames, scores of damaged frames); the score is ``1 - P(ok)``."""
    ok = classes.index("ok")
    score = 1.0 - probs[:, ok]
    return score[y == ok], score[y != ok]


def frozen_by_class(
    probs: Floats,
    y: npt.NDArray[np.int64],
    classes: tuple[str, ...],
    threshold: float,
) -> dict[str, float]:
    """Share of each class's frames scored at or above ``threshold`` (for ``ok``: false freezes)."""
    ok = classes.index("ok")
    score = 1.0 - probs[:, ok]
    return {
        name: float(np.mean(score[y == i] >= threshold))
        for i, name in enumerate(classes)
        if np.any(y == i)
    }


def recall(defect_scores: Floats, threshold: float) -> float:
    """Share of defective items scored at or above ``threshold``."""
    return float(np.mean(defect_scores >= threshold)) if len(defect_scores) else float("nan")


def false_freeze_rate(ok_scores: Floats, threshold: float) -> float:
    """Share of good items that would be frozen at ``threshold``."""
    return float(np.mean(ok_scores >= threshold)) if len(ok_scores) else float("nan")


def confusion(
    truth: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.int64]:
    """``n`` x ``n`` confusion matrix, rows = true class, columns = predicted class."""
    out = np.zeros((n, n), np.int64)
    np.add.at(out, (truth, pred), 1)
    return out


def pr_curve(ok_scores: Floats, defect_scores: Floats) -> tuple[Floats, Floats, Floats]:
    """Precision, recall and threshold arrays for "defective" over all score cut-offs."""
    scores = np.concatenate([defect_scores, ok_scores])
    labels = np.concatenate([np.ones(len(defect_scores)), np.zeros(len(ok_scores))])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    tp = np.cumsum(labels)
    fp = np.cumsum(1 - labels)
    precision = tp / np.maximum(tp + fp, 1)
    rec = tp / max(len(defect_scores), 1)
    return precision, rec, scores


def average_precision(ok_scores: Floats, defect_scores: Floats) -> float:
    """Area under the precision-recall curve (step-wise, as scikit-learn computes it)."""
    precision, rec, _ = pr_curve(ok_scores, defect_scores)
    prev = np.concatenate([[0.0], rec[:-1]])
    return float(np.sum((rec - prev) * precision))


def format_confusion(matrix: npt.NDArray[np.int64], classes: tuple[str, ...]) -> str:
    """A Markdown table: rows = true class, columns = predicted class."""
    head = "| true \\ predicted | " + " | ".join(classes) + " | recall |"
    sep = "|---" * (len(classes) + 2) + "|"
    rows = []
    for i, name in enumerate(classes):
        total = int(matrix[i].sum())
        rate = f"{matrix[i, i] / total:.3f}" if total else "n/a"
        rows.append(f"| {name} | " + " | ".join(str(int(v)) for v in matrix[i]) + f" | {rate} |")
    return "\n".join([head, sep, *rows])
