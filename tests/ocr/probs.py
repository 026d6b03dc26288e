"""Hand-made CTC probability matrices for decoder tests (no model involved)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edge.vision.ocr.forms import LOT_CHARS

# The recogniser's class layout: blank, printable ASCII, label CJK, space (like the model file).
CHARSET: tuple[str, ...] = (
    "",
    *[chr(c) for c in range(0x21, 0x7F)],
    *"批号有效期至生产日期保质年月止前限用：（）",
    " ",
)
INDEX = {c: i for i, c in enumerate(CHARSET) if i}
assert set(LOT_CHARS) <= set(INDEX)


def matrix(
    text: str,
    *,
    frames: int = 3,
    p: float = 0.995,
    overrides: Mapping[int, Mapping[str, float]] | None = None,
) -> np.ndarray:
    """``frames - 1`` frames per character then a blank frame, each with mass ``p`` on it.

    ``overrides[i]`` replaces character ``i``'s frames with the given distribution (the rest
    of the mass spread evenly), e.g. ``{3: {"8": 0.5, "B": 0.4}}`` for a smudged character.
    """
    rows = []
    n = len(CHARSET)
    for i, ch in enumerate(text):
        dist = dict(overrides[i]) if overrides and i in overrides else {ch: p}
        for _ in range(frames - 1):
            rows.append(_row(dist, n))
        rows.append(_row({"": p}, n))
    return np.asarray(rows)


def blank(frames: int = 24, p: float = 0.995) -> np.ndarray:
    """``frames`` frames of blank: a strip with no print."""
    return np.asarray([_row({"": p}, len(CHARSET)) for _ in range(frames)])


def _row(dist: Mapping[str, float], n: int) -> np.ndarray:
    rest = max(1.0 - sum(dist.values()), 1e-6)
    r = np.full(n, rest / n)
    for ch, q in dist.items():
        r[0 if ch == "" else INDEX[ch]] += q
    return r / r.sum()


def uniform_digits() -> dict[str, float]:
    """An erased character: every digit equally likely."""
    return {d: 0.098 for d in "0123456789"}


def decoded(charset: Sequence[str], classes: Sequence[int]) -> str:
    return "".join(charset[c] for c in classes)
