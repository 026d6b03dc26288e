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
from itertools import pairwise
from typing import Any, NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[Any]  # 2-D uint8; cv2 stubs type their results loosely
WORK_WIDTH = 480  # the region search runs at this width
SMALL_INPUT = 200  # height (px) at or below which the whole image is the region
MAX_LINES = 4
MAX_ANGLE = 12.0
# a contour that fails the text-line shape test but is this elongated and this full is print
# joined to a smear or dirt (measured: region misses 17 -> 1 of 120 calibration frames)
SMEAR_LONG = 1.5
SMEAR_FILL = 0.2
STRIPS = 8  # vertical strips of a region whose median row profile splits bridged lines


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
    faint: tuple[int, ...] = ()  # indices of lines found only at a low ink threshold (tape)
    # per line, its crop's (x0, y0, x1, y1) in the deskewed region (rotated by region.angle
    # about the region's centre): where the line was cut, for measuring the localiser
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    # the low-threshold search saw texture, not lines, next to the code: a faint line there
    # could be neither found nor ruled out
    blind: bool = False
    # the strips just above the first line and below the last, where one more line of the
    # code would sit, contrast-stretched like their neighbouring line (not on their own, which
    # would blow plain board up into ink): the reader has them recognised before it accepts a
    # read without a prod date or SSCC, to see whether print it did not read lies there
    probes: tuple[Gray, ...] = ()


def to_gray(image: npt.NDArray[np.uint8]) -> Gray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _percentiles(gray: Gray, qs: tuple[float, ...]) -> list[float]:
    """Percentiles of a uint8 image from its histogram (no sort: ~10x faster than numpy's)."""
    cum = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    n = int(cum[-1])
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)  # numpy's "linear" method: between ranks floor and ceil
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        v_lo = float(np.searchsorted(cum, lo, side="right"))
        v_hi = float(np.searchsorted(cum, hi, side="right"))
        out.append(v_lo + (v_hi - v_lo) * (pos - lo))
    return out


def dark_background(gray: Gray) -> bool:
    """Whether most of ``gray`` is dark (light print on a dark ground).

    Decide this on the whole code region, never on one tight line crop: bold print fills
    most of its own line box and would look like a dark ground (measured: one line in six of
    the bold 5x7 font came out inverted when each crop decided for itself)."""
    lo, med, hi = _percentiles(gray, (2, 50, 98))
    return bool(med - lo < hi - med)


def normalise(gray: Gray, invert: bool | None = None, like: Gray | None = None) -> Gray:
    """Stretch contrast to light paper and dark ink; flip light-on-dark prints (``invert``,
    or decided on ``gray`` itself when None). ``like``: stretch as this image would be."""
    lo, hi = _percentiles(gray if like is None else like, (2, 98))
    out = gray
    if invert if invert is not None else dark_background(gray):
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
        # look a little above and below: a line under tape or faded ink is fainter than the
        # lines that found the region (the split below keeps it only beside the code's lines)
        x, y, w, h = box
        grow = min(h // 2, 90)
        y0, y1 = max(y - grow, 0), min(y + h + grow, height)
        box = (x, y0, w, y1 - y0)
    x, y, w, h = box
    crop = gray[y : y + h, x : x + w]
    angle = _skew(crop)
    rotated = _rotate(crop, angle)
    cut = _split_lines(rotated, dark_background(crop))
    return Located(
        Region(x, y, w, h, angle),
        tuple(cut.lines),
        cut.dropped,
        cut.faint,
        boxes=tuple(cut.boxes),
        blind=cut.blind,
        probes=tuple(cut.probes),
    )


def _ink(gray: Gray, k: int, scale: float = 1.0, hat: Gray | None = None) -> Gray:
    """Binary map of small dark marks (dots, strokes) on any smoothly varying background;
    ``scale`` < 1 lowers the threshold (faint print). ``hat``: the black-hat of ``gray`` with
    kernel ``k`` when the caller already has it (one per region, several thresholds)."""
    if hat is None:
        hat = _black_hat(gray, k)
    thr = max(_percentiles(hat, (99.5,))[0] * 0.35, 18.0) * scale
    return (hat > thr).astype(np.uint8) * 255


def _black_hat(gray: Gray, k: int) -> Gray:
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    hat: Gray = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    return hat


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
    blobs: list[tuple[int, int, int, int]] = []
    smeared: list[tuple[int, int, int, int]] = []
    shorts: list[float] = []
    max_h = small.shape[0] // 3
    for c in contours:
        (_, _), (rw, rh), _ = cv2.minAreaRect(c)
        long, short = max(rw, rh), min(rw, rh)
        area = cv2.contourArea(c)
        if short < 4 or short > max_h:
            continue
        # a text line is long and thin (any skew), not huge, and fills its rotated box
        if long < 2 * short or area < 0.35 * long * short:
            if long >= SMEAR_LONG * short and area >= SMEAR_FILL * long * short:
                # print joined to a smear or dirt: never the seed of the code, but the region
                # grows over it when it touches the code's lines
                sx, sy, sw, sh = cv2.boundingRect(c)
                smeared.append((sx, sy, sw, sh))
            continue
        bx, by, bw, bh = cv2.boundingRect(c)
        blobs.append((bx, by, bw, bh))
        shorts.append(short)
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
    bx, by, bw, bh = _grow(best, [*blobs, *smeared], float(np.median(shorts)))
    pad_x, pad_y = bh * 0.5 + 6, bh * 0.35 + 6
    x0 = max(int((bx - pad_x) / s), 0)
    y0 = max(int((by - pad_y) / s), 0)
    x1 = min(int((bx + bw + pad_x) / s), full_w)
    y1 = min(int((by + bh + pad_y) / s), full_h)
    return x0, y0, x1 - x0, y1 - y0


def _grow(
    box: tuple[int, int, int, int], blobs: list[tuple[int, int, int, int]], line_h: float
) -> tuple[int, int, int, int]:
    """Add blobs close to the box until none is: a smudge or tape across the code splits
    its lines into pieces the clustering above may not join (a line's far end, a line whose
    middle is covered). Close means within one typical line height, in any direction."""
    x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    reach = max(line_h, 3.0)
    changed = True
    while changed:
        changed = False
        for bx, by, bw, bh in blobs:
            if bx >= x0 and by >= y0 and bx + bw <= x1 and by + bh <= y1:
                continue
            dx = max(bx - x1, x0 - (bx + bw), 0)
            dy = max(by - y1, y0 - (by + bh), 0)
            if dx <= 2 * reach and dy <= reach:
                x0, y0 = min(x0, bx), min(y0, by)
                x1, y1 = max(x1, bx + bw), max(y1, by + bh)
                changed = True
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
    fine = max((float(coarse) + d for d in (-2.0, -1.0, 0.0, 1.0, 2.0)), key=sharpness)
    # half a degree is 9 px of drift over a 1000 px line, as much as the gap between lines
    finer = [fine + d for d in (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75)]
    return max(finer, key=sharpness)


def _bands(ink: Gray) -> tuple[list[tuple[int, int]], npt.NDArray[np.float64]]:
    """Text-line bands (rows) of a binary ink map, and its row profile."""
    rows = ink.sum(axis=1).astype(np.float64) / 255.0
    if rows.max(initial=0.0) <= 0:
        return [], rows
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
    strips = _strip_profiles(ink)
    bands = [piece for band in _merge_bands(bands) for piece in _split_band(rows, *band, strips)]
    return _join_halves(bands), rows


def _strip_profiles(ink: Gray) -> npt.NDArray[np.float64]:
    """Row profiles of STRIPS vertical strips of the ink map (STRIPS x rows)."""
    edges = np.linspace(0, ink.shape[1], STRIPS + 1).astype(int).tolist()
    return np.stack([ink[:, a:b].sum(axis=1, dtype=np.float64) / 255.0 for a, b in pairwise(edges)])


def _robust_profile(strips: npt.NDArray[np.float64], a: int, b: int) -> npt.NDArray[np.float64]:
    """The band's row profile as most of its width sees it: the median over the strips with
    ink of each strip's profile scaled to its peak. A smear or blob that bridges two lines
    fills their gap in a few strips only, so the gap stays a valley here."""
    band = strips[:, a:b]
    peaks = band.max(axis=1)
    inked = band[peaks >= 0.25 * float(peaks.max(initial=0.0))]
    if len(inked) < 3:
        return np.asarray(band.sum(axis=0), np.float64)
    return np.asarray(np.median(inked / inked.max(axis=1, keepdims=True), axis=0), np.float64)


def _line_ink(gray: Gray, k: int, scale: float = 1.0, hat: Gray | None = None) -> Gray:
    ink = _drop_border_marks(_ink(gray, k, scale, hat))
    closed: Gray = cv2.morphologyEx(
        ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1))
    )
    return closed


# Ink thresholds, as shares of the line threshold, at which faint print is looked for: the
# lowest one at which the board's texture does not swamp the rows beside the code. On coarse
# kraft 0.4 sees texture everywhere (14 of 100 clean frames), 0.6 only where tape or a smear
# hides it (seeds 4000000 and 7000000).
FAINT_SCALES = (0.4, 0.5, 0.6)


class _Faint(NamedTuple):
    bands: list[tuple[int, int]]
    blind: bool
    low: Gray  # the ink map the bands were found in


def _faint_bands(
    gray: Gray, k: int, kept: list[tuple[int, int]], ink: Gray, hat: Gray | None = None
) -> _Faint:
    """Bands only a low ink threshold finds (print under tape, faded ink) that sit beside the
    code's lines like one more line: at least 0.4 as tall as they are (tape may cover the
    rest), close above or below, and under the same columns. Anything else faint (texture,
    artwork, edges) is ignored.

    The threshold is the lowest of :data:`FAINT_SCALES` at which the search is not blind:
    blind is when a low-threshold band holding the code's lines reaches most of a line height
    past them, so texture fills the rows beside the code and a faint line there can neither
    be found nor ruled out. Blind at every scale is reported."""
    heights = sorted(b - a for a, b in kept)
    line_h = heights[len(heights) // 2]
    cols = np.flatnonzero(ink[kept[0][0] : kept[-1][1]].any(axis=0))
    if cols.size == 0:
        return _Faint([], False, ink)
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    for scale in FAINT_SCALES:
        low = _line_ink(gray, k, scale, hat)
        bands = _join_pieces(_bands(low)[0], 1.5 * line_h)
        out = []
        blind = False
        for a, b in bands:
            inside = [(ka, kb) for ka, kb in kept if min(b, kb) - max(a, ka) > 0]
            if inside:
                blind = blind or max(inside[0][0] - a, b - inside[-1][1]) > 0.75 * line_h
                continue  # an existing line
            gap = min(abs(a - kb) if a >= kb else abs(ka - b) for ka, kb in kept)
            bc = np.flatnonzero(low[a:b].any(axis=0))
            # the gap allows a wider spacing than the kept lines' own (a prod date printed a
            # line lower, measured 1.6 line heights below the expiry's line)
            if not (0.4 * line_h <= b - a <= 1.5 * line_h and gap <= 1.7 * line_h and bc.size):
                continue
            b0, b1 = int(bc[0]), int(bc[-1]) + 1
            overlap = min(c1, b1) - max(c0, b0)
            # under the code's columns: most of the code's width, or a short line
            # ('(11)281104' under a 45-character line) lying mostly within it
            if overlap >= 0.4 * (c1 - c0) or (
                overlap >= 0.7 * (b1 - b0) and b1 - b0 >= 0.15 * (c1 - c0)
            ):
                out.append((a, b))
        if not blind:
            break
    return _Faint(out, blind, low)


def _join_pieces(bands: list[tuple[int, int]], most: float) -> list[tuple[int, int]]:
    """Join touching bands (pieces one band was cut into at its valleys) while the joined band
    is at most ``most`` rows tall: faint print under tape falls apart at its dot rows and the
    tape's edges, and each piece alone is too thin to pass for a line."""
    out: list[tuple[int, int]] = []
    for a, b in bands:
        if out and out[-1][1] == a and b - out[-1][0] <= most:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


class _Split(NamedTuple):
    lines: list[Gray]
    dropped: int
    faint: tuple[int, ...]
    boxes: list[tuple[int, int, int, int]]
    blind: bool
    probes: list[Gray]


# A probe strip: from PROBE_GAP to PROBE_GAP + PROBE_HEIGHT line heights beyond the outer line
# (one more line printed at the code's own spacing, or up to about one line height further;
# a strip taller than that shrinks a line too much for the recogniser). A strip the region
# cuts to under PROBE_MIN line heights is not probed.
PROBE_GAP, PROBE_HEIGHT, PROBE_MIN = 0.15, 1.6, 0.8


def _probes(
    gray: Gray,
    bands: list[tuple[int, int]],
    cols: tuple[int, int],
    refs: list[Gray],
    invert: bool,
) -> list[Gray]:
    """The strips above the first and below the last of ``bands`` (see :data:`PROBE_GAP`),
    under the code's columns, each stretched like the line beside it (``refs``: the first and
    last lines' raw crops)."""
    h, w = gray.shape
    heights = sorted(b - a for a, b in bands)
    line_h = heights[len(heights) // 2]
    x0, x1 = cols
    pad = int(line_h * 0.4)
    x0, x1 = max(x0 - pad, 0), min(x1 + pad, w)
    first, last = bands[0], bands[-1]
    near = int(PROBE_GAP * line_h)
    far = int((PROBE_GAP + PROBE_HEIGHT) * line_h)
    spans = [
        (max(first[0] - far, 0), max(first[0] - near, 0), refs[0]),
        (min(last[1] + near, h), min(last[1] + far, h), refs[-1]),
    ]
    return [
        normalise(gray[a:b, x0:x1], invert, like=ref)
        for a, b, ref in spans
        if b - a >= PROBE_MIN * line_h
    ]


def _split_lines(gray: Gray, invert: bool = False) -> _Split:
    """Cut a deskewed region into text lines at the gaps of its row ink profile; also the
    indices of lines found only at a low ink threshold, each crop's box, and whether the
    low-threshold search was blind (see :func:`_faint_bands`)."""
    h, w = gray.shape
    k = max(5, (min(h, 60) // 4) | 1)
    hat = _black_hat(gray, k)
    ink = _line_ink(gray, k, hat=hat)
    bands, rows = _bands(ink)
    if not bands:
        return _Split([normalise(gray, invert)], 0, (), [(0, 0, w, h)], False, [])
    tallest = max(b - a for a, b in bands)
    kept = [b for b in bands if b[1] - b[0] >= 0.35 * tallest]
    # a thin band with some ink mass (4% of the region's) may be a line mostly hidden by tape
    # or a smear; the reader will not ACCEPT without the fields such a line could hold
    dropped = sum(
        1 for b in bands if b not in kept and rows[b[0] : b[1]].sum() > 0.04 * rows.sum()
    ) + max(len(kept) - MAX_LINES, 0)
    found = _faint_bands(gray, k, kept, ink, hat) if kept else _Faint([], False, ink)
    faint = found.bands
    bands = sorted([*kept, *faint])[:MAX_LINES]
    dropped += max(len(kept) + len(faint) - MAX_LINES, 0) - max(len(kept) - MAX_LINES, 0)
    out = []
    boxes = []
    low = found.low
    for a, b in bands:
        pad = max(3, int((b - a) * 0.3))
        cols = np.flatnonzero((low if (a, b) in faint else ink)[a:b].any(axis=0))
        x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, w)
        xpad = int((b - a) * 0.4)
        box = (max(x0 - xpad, 0), max(a - pad, 0), min(x1 + xpad, w), min(b + pad, h))
        crop = gray[box[1] : box[3], box[0] : box[2]]
        out.append(normalise(crop, invert))
        boxes.append(box)
    faint_idx = tuple(i for i, band in enumerate(bands) if band in faint)
    cols = np.flatnonzero(ink[kept[0][0] : kept[-1][1]].any(axis=0))
    span = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, w)
    # the outer lines, raw, as the probes' contrast references
    refs = [gray[bands[i][0] : bands[i][1], boxes[i][0] : boxes[i][2]] for i in (0, -1)]
    probes = _probes(gray, bands, span, refs, invert)
    return _Split(out, dropped, faint_idx, boxes, found.blind, probes)


def _split_band(
    rows: npt.NDArray[np.float64],
    a: int,
    b: int,
    strips: npt.NDArray[np.float64] | None = None,
) -> list[tuple[int, int]]:
    """Split a band at a deep valley of its row profile: two lines printed close together.

    The profile is smoothed over a tenth of the band first, so the gaps between the dot rows
    of one dot-matrix line do not count as valleys. With ``strips`` (per-strip profiles, see
    :func:`_robust_profile`) a valley that a smear fills in a few strips still counts.
    """
    height = b - a
    if height < 12:
        return [(a, b)]
    # the median over strips has no smear in it to smooth away, so it gets a finer window: a
    # tight line gap survives (240 generated frames of each of two seeds: lines merged
    # 17 -> 9 and 27 -> 17, localised right 206 -> 211 and 201 -> 209)
    profiles = [(rows[a:b], max(3, height // 10))]
    if strips is not None:
        profiles.append((_robust_profile(strips, a, b), max(3, height // 20)))
    lo, hi = int(height * 0.3), int(height * 0.7)
    for raw, win in profiles:
        prof = np.convolve(raw, np.ones(win) / win, mode="same")
        cut = lo + int(np.argmin(prof[lo:hi]))
        left, right = float(prof[:cut].max(initial=0.0)), float(prof[cut:].max(initial=0.0))
        if prof[cut] < 0.4 * min(left, right):
            return _split_band(rows, a, a + cut, strips) + _split_band(rows, a + cut, b, strips)
    return [(a, b)]


def _join_halves(bands: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join two neighbouring short pieces that together are one line's height: a dot-matrix
    line with a dead nozzle row (or a valley cut) falls apart into its upper and lower half.

    A thin sliver beside a full line (a line mostly under tape) is never joined: it stays
    short, so the reader learns a line may be hidden.
    """
    if len(bands) < 2:
        return bands
    tallest = max(b - a for a, b in bands)
    out = [bands[0]]
    for a, b in bands[1:]:
        pa, pb = out[-1]
        halves = max(pb - pa, b - a) < 0.75 * tallest
        if halves and a - pb <= 0.3 * tallest and 0.75 * tallest <= b - pa <= 1.3 * tallest:
            out[-1] = (pa, b)
        else:
            out.append((a, b))
    return out


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
