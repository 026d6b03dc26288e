"""Cheap localisation of the printed code: region, skew and text lines, without a detector.

A full-frame text detector costs ~200 ms on 2 cores at 1280x720; this module costs a few ms.
It works on a reduced grey image: a black-hat transform keeps small dark marks (ink dots and
strokes) and drops the carton's slow shading; a closing joins dots into characters and
characters into lines; the densest cluster of line-shaped blobs is the code. The region is then
deskewed (the angle that makes the row profile sharpest, within +-12 degrees) and cut into
lines at the gaps of that profile. Each line crop is grey, light background, dark print.

Everything also works on a tight crop of one printed line: small inputs skip the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[Any]  # 2-D uint8; cv2 stubs type their results loosely
WORK_WIDTH = 480  # the region search runs at this width
SMALL_INPUT = 200  # height (px) at or below which the whole image is the region
MAX_LINES = 4
MAX_ANGLE = 12.0


@dataclass(frozen=True)
class Region:
    """Where the code is: an axis-aligned box in input pixels, and the skew of its lines."""

    x: int
    y: int
    w: int
    h: int
    angle: float


@dataclass(frozen=True)
class Located:
    region: Region
    lines: tuple[Gray, ...]  # deskewed grey crops, top to bottom
    dropped: int = 0  # ink bands left out (too thin or beyond MAX_LINES): maybe a lost line


def to_gray(image: npt.NDArray[np.uint8]) -> Gray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def normalise(gray: Gray) -> Gray:
    """Stretch contrast to light paper and dark ink; flip light-on-dark prints."""
    lo, med, hi = np.percentile(gray, (2, 50, 98))
    out = gray
    if med - lo < hi - med:  # most pixels are dark: the background is dark
        out = 255 - gray
        lo, hi = 255 - hi, 255 - lo
    scale = 230.0 / max(float(hi - lo), 16.0)
    res: Gray = np.clip((out.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    return res


def locate(image: npt.NDArray[np.uint8]) -> Located:
    """Find the code region and its lines in a BGR or grey image of any size."""
    gray = to_gray(image)
    height, width = gray.shape
    if height <= SMALL_INPUT or width <= SMALL_INPUT:
        box = (0, 0, width, height)
    else:
        box = _find_region(gray) or (0, 0, width, height)
    x, y, w, h = box
    crop = gray[y : y + h, x : x + w]
    angle = _skew(crop)
    rotated = _rotate(crop, angle)
    lines, dropped = _split_lines(rotated)
    return Located(Region(x, y, w, h, angle), tuple(lines), dropped)


def _ink(gray: Gray, k: int) -> Gray:
    """Binary map of small dark marks (dots, strokes) on any smoothly varying background."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    hat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    thr = max(float(np.percentile(hat, 99.5)) * 0.35, 18.0)
    return (hat > thr).astype(np.uint8) * 255


def _drop_border_marks(ink: Gray) -> Gray:
    """Remove ink blobs that touch the crop's edge: label and carton edges, not print."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    h, w = ink.shape
    x, y, bw, bh = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    touching = (x <= 0) | (y <= 0) | (x + bw >= w) | (y + bh >= h)
    touching[0] = True  # background label
    keep = np.where(touching, 0, 255).astype(np.uint8)
    out: Gray = keep[labels]
    return out


def _find_region(gray: Gray) -> tuple[int, int, int, int] | None:
    full_h, full_w = gray.shape
    s = WORK_WIDTH / full_w if full_w > WORK_WIDTH else 1.0
    small: Gray = cv2.resize(
        gray, (round(full_w * s), round(full_h * s)), interpolation=cv2.INTER_AREA
    ).astype(np.uint8)
    ink = _ink(small, 11)
    joined = cv2.morphologyEx(
        ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (13, 4))
    )
    contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    blobs = []
    max_h = small.shape[0] // 3
    for c in contours:
        (_, _), (rw, rh), _ = cv2.minAreaRect(c)
        long, short = max(rw, rh), min(rw, rh)
        area = cv2.contourArea(c)
        # a text line is long and thin (any skew), not huge, and fills its rotated box
        if short < 4 or long < 2 * short or short > max_h or area < 0.35 * long * short:
            continue
        bx, by, bw, bh = cv2.boundingRect(c)
        blobs.append((bx, by, bw, bh))
    if not blobs:
        return None
    # cluster lines that sit above one another (the code block) and keep the largest cluster
    blobs.sort(key=lambda b: b[2] * b[3], reverse=True)
    best: tuple[int, int, int, int] | None = None
    best_score = 0.0
    for seed in blobs[:6]:
        x0, y0, x1, y1 = seed[0], seed[1], seed[0] + seed[2], seed[1] + seed[3]
        score = float(seed[2] * seed[3])
        for b in blobs:
            if b is seed:
                continue
            gap = max(b[1] - y1, y0 - (b[1] + b[3]))
            overlap = min(x1, b[0] + b[2]) - max(x0, b[0])
            # words of the same line: side by side, overlapping in height
            h_gap = max(b[0] - x1, x0 - (b[0] + b[2]))
            v_overlap = min(y1, b[1] + b[3]) - max(y0, b[1])
            stacked = gap < 2.0 * seed[3] and overlap > 0.2 * min(b[2], x1 - x0)
            beside = h_gap < 4.0 * seed[3] and v_overlap > 0.4 * min(b[3], seed[3])
            if stacked or beside:
                x0, y0 = min(x0, b[0]), min(y0, b[1])
                x1, y1 = max(x1, b[0] + b[2]), max(y1, b[1] + b[3])
                score += b[2] * b[3]
        if score > best_score:
            best, best_score = (x0, y0, x1 - x0, y1 - y0), score
    assert best is not None
    bx, by, bw, bh = best
    pad_x, pad_y = bh * 0.5 + 6, bh * 0.35 + 6
    x0 = max(int((bx - pad_x) / s), 0)
    y0 = max(int((by - pad_y) / s), 0)
    x1 = min(int((bx + bw + pad_x) / s), full_w)
    y1 = min(int((by + bh + pad_y) / s), full_h)
    return x0, y0, x1 - x0, y1 - y0


def _rotate(gray: Gray, angle: float) -> Gray:
    if abs(angle) < 0.25:
        return gray
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _skew(gray: Gray) -> float:
    """The rotation (degrees) that makes the ink's row profile sharpest (coarse, then fine)."""
    h, w = gray.shape
    s = min(1.0, 200 / max(w, 1))
    small = cv2.resize(gray, (max(round(w * s), 8), max(round(h * s), 8)))
    ink = _drop_border_marks(_ink(small, max(5, (min(small.shape) // 6) | 1)))
    ink = ink.astype(np.float32)
    if ink.sum() == 0:
        return 0.0
    center = (small.shape[1] / 2, small.shape[0] / 2)

    def sharpness(angle: float) -> float:
        m = cv2.getRotationMatrix2D(center, angle, 1.0)
        rot = cv2.warpAffine(ink, m, (small.shape[1], small.shape[0]))
        return float(np.var(rot.sum(axis=1)))

    coarse = max(np.arange(-MAX_ANGLE, MAX_ANGLE + 0.1, 3.0), key=lambda a: sharpness(float(a)))
    fine = [float(coarse) + d for d in (-2.0, -1.0, 0.0, 1.0, 2.0)]
    return max(fine, key=sharpness)


def _split_lines(gray: Gray) -> tuple[list[Gray], int]:
    """Cut a deskewed region into text lines at the gaps of its row ink profile."""
    h, w = gray.shape
    k = max(5, (min(h, 60) // 4) | 1)
    ink = _drop_border_marks(_ink(gray, k))
    ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
    rows = ink.sum(axis=1).astype(np.float64) / 255.0
    if rows.max(initial=0.0) <= 0:
        return [normalise(gray)], 0
    smooth = np.convolve(rows, np.ones(3) / 3, mode="same")
    on = smooth > max(0.12 * float(smooth.max()), 2.0)
    bands: list[tuple[int, int]] = []
    start = None
    for i, v in enumerate([*on.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            bands.append((start, i))
            start = None
    bands = [piece for band in _merge_bands(bands) for piece in _split_band(rows, *band)]
    if not bands:
        return [normalise(gray)], 0
    tallest = max(b - a for a, b in bands)
    kept = [b for b in bands if b[1] - b[0] >= 0.35 * tallest]
    # a thin band with some ink mass (4% of the region's) may be a line mostly hidden by tape
    # or a smear; the reader will not ACCEPT without the fields such a line could hold
    dropped = sum(
        1 for b in bands if b not in kept and rows[b[0] : b[1]].sum() > 0.04 * rows.sum()
    ) + max(len(kept) - MAX_LINES, 0)
    bands = kept[:MAX_LINES]
    out = []
    for a, b in bands:
        pad = max(3, int((b - a) * 0.3))
        cols = np.flatnonzero(ink[a:b].any(axis=0))
        x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, w)
        xpad = int((b - a) * 0.4)
        crop = gray[max(a - pad, 0) : min(b + pad, h), max(x0 - xpad, 0) : min(x1 + xpad, w)]
        out.append(normalise(crop))
    return out, dropped


def _split_band(rows: npt.NDArray[np.float64], a: int, b: int) -> list[tuple[int, int]]:
    """Split a band at a deep valley of its row profile: two lines printed close together.

    The profile is smoothed over a tenth of the band first, so the gaps between the dot rows
    of one dot-matrix line do not count as valleys.
    """
    height = b - a
    if height < 12:
        return [(a, b)]
    win = max(3, height // 10)
    prof = np.convolve(rows[a:b], np.ones(win) / win, mode="same")
    lo, hi = int(height * 0.3), int(height * 0.7)
    cut = lo + int(np.argmin(prof[lo:hi]))
    left, right = float(prof[:cut].max(initial=0.0)), float(prof[cut:].max(initial=0.0))
    if prof[cut] >= 0.4 * min(left, right):
        return [(a, b)]
    return _split_band(rows, a, a + cut) + _split_band(rows, a + cut, b)


def _merge_bands(bands: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join bands split by a thin gap inside a line (dot rows with a dead nozzle)."""
    if not bands:
        return bands
    merged = [bands[0]]
    for a, b in bands[1:]:
        pa, pb = merged[-1]
        height = max(pb - pa, b - a)
        if a - pb <= max(2, 0.2 * height):
            merged[-1] = (pa, b)
        else:
            merged.append((a, b))
    return merged
