"""Line-level figures for a recogniser: greedy CTC text, character error rate, exact match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.vision.ocr import strings


def greedy_text(probs: npt.NDArray[np.floating], charset: Sequence[str]) -> str:
    """Best path, repeats collapsed, blanks (class 0) dropped."""
    best = np.asarray(probs).argmax(axis=1)
    out: list[str] = []
    prev = -1
    for k in best.tolist():
        if k != prev and k != 0:
            out.append(charset[k])
        prev = k
    return "".join(out)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    return int(strings.edit_distance(a, b))


@dataclass(frozen=True)
class LineScore:
    """Exact-match share and character error rate (edits / truth characters) over lines."""

    lines: int
    exact: int
    edits: int
    chars: int

    @property
    def exact_rate(self) -> float:
        return self.exact / self.lines if self.lines else 0.0

    @property
    def cer(self) -> float:
        return self.edits / self.chars if self.chars else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "lines": self.lines,
            "exact_match": round(self.exact_rate, 4),
            "cer": round(self.cer, 4),
        }


def score_lines(predicted: Sequence[str], truth: Sequence[str]) -> LineScore:
    """Compare predictions to truths, line by line (spaces count: the grammar reads them)."""
    if len(predicted) != len(truth):
        raise ValueError("one prediction per truth line")
    exact = sum(p == t for p, t in zip(predicted, truth, strict=True))
    edits = sum(edit_distance(p, t) for p, t in zip(predicted, truth, strict=True))
    return LineScore(len(truth), exact, edits, sum(len(t) for t in truth))
