"""OCR test fixtures: one reader per session (loading and warming the model takes a second)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.vision.ocr.reader import Reader


@pytest.fixture(scope="session")
def reader() -> Reader:
    return Reader()


def printed_line(text: str, *, height: int = 48, angle: float = 0.0) -> np.ndarray:
    """A clean printed line (Hershey font) on a light label: a tight crop like a hand photo."""
    scale = height / 30
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    img = np.full((h + base + 2 * height // 2, w + height), 235, np.uint8)
    cv2.putText(img, text, (height // 2, h + height // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 30, 2)
    if angle:
        m = cv2.getRotationMatrix2D((img.shape[1] / 2, img.shape[0] / 2), angle, 1.0)
        img = cv2.warpAffine(img, m, img.shape[::-1], borderValue=235)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def label(lines: list[str], *, frame: tuple[int, int] | None = None, seed: int = 0) -> np.ndarray:
    """Printed lines stacked on a label, optionally pasted into a kraft-coloured frame."""
    crops = [printed_line(t, height=36) for t in lines]
    width = max(c.shape[1] for c in crops)
    block = np.full((sum(c.shape[0] for c in crops), width, 3), 235, np.uint8)
    y = 0
    for c in crops:
        block[y : y + c.shape[0], : c.shape[1]] = c
        y += c.shape[0]
    if frame is None:
        return block
    rng = np.random.default_rng(seed)
    fh, fw = frame
    out = np.empty((fh, fw, 3), np.uint8)
    out[:] = (80, 130, 170)  # kraft brown in BGR
    out = np.clip(out + rng.normal(0, 5, out.shape), 0, 255).astype(np.uint8)
    y0 = int(rng.integers(0, fh - block.shape[0]))
    x0 = int(rng.integers(0, fw - block.shape[1]))
    out[y0 : y0 + block.shape[0], x0 : x0 + block.shape[1]] = block
    return out
