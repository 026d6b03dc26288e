"""Score frames with an exported ONNX defect model and summarise them (no torch).

Used by training (thresholds, model card) and ``bench/defects.py``; scores come from the same
ONNX file the edge loads, through :mod:`edge.vision.session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.vision.defects.data import Frames
from edge.vision.defects.metrics import (
    average_precision,
    confusion,
    defect_scores,
    false_freeze_rate,
    recall,
)
from edge.vision.session import load_session, sha256_file

BATCH = 64


@dataclass(frozen=True)
class Evaluation:
    """Figures for one labelled set at one freeze threshold."""

    count: int
    threshold: float
    recall: float
    false_freeze: float
    accuracy: float
    average_precision: float
    confusion: npt.NDArray[np.int64]
    ok_scores: npt.NDArray[np.float64]
    defect_scores: npt.NDArray[np.float64]

    def summary(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "freeze_threshold": round(self.threshold, 6),
            "recall_defective": round(self.recall, 4),
            "false_freeze_rate": round(self.false_freeze, 4),
            "accuracy_5class": round(self.accuracy, 4),
            "average_precision": round(self.average_precision, 4),
        }


def scores_onnx(path: Path, x_u8: npt.NDArray[np.uint8], threads: int = 1) -> np.ndarray:
    """Softmax probabilities (N, C) for letterboxed uint8 inputs (N, 3, H, W)."""
    session = load_session(path, sha256_file(path), threads=threads)
    name = session.get_inputs()[0].name
    out = []
    for i in range(0, len(x_u8), BATCH):
        x = x_u8[i : i + BATCH].astype(np.float32) * (1.0 / 255.0)
        logits = session.run(["logits"], {name: x})[0].astype(np.float64)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append(z / z.sum(axis=1, keepdims=True))
    return np.concatenate(out) if out else np.zeros((0, 0))


def evaluate_frames(
    path: Path, frames: Frames, classes: tuple[str, ...], threshold: float, threads: int = 1
) -> Evaluation:
    """Score ``frames`` with the model at ``path`` and compute the figures at ``threshold``."""
    probs = scores_onnx(path, frames.x, threads=threads)
    return evaluate_probs(probs, frames.y, classes, threshold)


def evaluate_probs(
    probs: np.ndarray, y: npt.NDArray[np.int64], classes: tuple[str, ...], threshold: float
) -> Evaluation:
    """Figures from precomputed probabilities."""
    ok_scores, damaged_scores = defect_scores(probs, y, classes)
    pred = probs.argmax(axis=1).astype(np.int64)
    return Evaluation(
        count=len(y),
        threshold=threshold,
        recall=recall(damaged_scores, threshold),
        false_freeze=false_freeze_rate(ok_scores, threshold),
        accuracy=float(np.mean(pred == y)) if len(y) else float("nan"),
        average_precision=average_precision(ok_scores, damaged_scores),
        confusion=confusion(y, pred, len(classes)),
        ok_scores=ok_scores,
        defect_scores=damaged_scores,
    )
