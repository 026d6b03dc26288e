"""Remapped: one recogniser's output moved into another charset's columns for one decoder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.vision.ocr.ctc import greedy
from edge.vision.ocr.recognize import Remapped


class _Fixed:
    """A recogniser that returns given matrices (the model is not under test here)."""

    def __init__(self, charset: tuple[str, ...], probs: list[npt.NDArray[np.float64]]) -> None:
        self.charset = charset
        self.probs = probs

    def __call__(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float64]]:
        return self.probs[: len(crops)]


def test_columns_follow_their_characters_and_rows_stay_distributions() -> None:
    inner = ("", "7", "A", "批")
    target = ("", "A", "a", "7", "X", "批")
    p = np.array([[0.1, 0.7, 0.1, 0.1], [0.9, 0.05, 0.05, 0.0], [0.0, 0.0, 0.2, 0.8]])
    out = Remapped(_Fixed(inner, [p]), target)([np.zeros((8, 16), np.uint8)])[0]
    assert out.shape == (3, len(target))
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[:, target.index("7")], p[:, 1])
    np.testing.assert_allclose(out[:, target.index("批")], p[:, 3])
    assert out[:, target.index("a")].max() == 0.0
    assert greedy(out, target)[0] == greedy(p, inner)[0] == "7批"


def test_characters_the_target_lacks_lose_their_mass() -> None:
    inner = ("", "1", "#")
    target = ("", "1")
    p = np.array([[0.2, 0.3, 0.5]])
    rm = Remapped(_Fixed(inner, [p]), target)
    assert rm.lost == ("#",)
    out = rm([np.zeros((8, 16), np.uint8)])[0]
    np.testing.assert_allclose(out, [[0.4, 0.6]])
