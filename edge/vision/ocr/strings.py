"""Scores of given strings on a CTC probability matrix: exact (the string is the whole line
or field) and spotted (the string is somewhere in the line). Compiled with numba like the graph
search in :mod:`edge.vision.ocr.ctc`. Also the edit distance between two strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numba
import numpy as np

from edge.vision.ocr.ctc import NEG, FloatArray


def edit_distance(a: str, b: str, swap: Callable[[str, str], float] | None = None) -> float:
    """Levenshtein distance: insertions and deletions cost 1, a substitution ``swap(x, y)``
    (default 1). Plain Python: the strings are short (a line, a lot)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        cur = [float(i)]
        for j, cb in enumerate(b, 1):
            cost = 0.0 if ca == cb else (1.0 if swap is None else swap(ca, cb))
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost))
        prev = cur
    return prev[-1]


def literal_forward(probs: FloatArray, labels: Sequence[int]) -> float:
    """log P(string ``labels`` | probs) by the standard CTC forward algorithm."""
    return float(literal_forward_many(probs, [labels])[0])


def literal_forward_many(probs: FloatArray, candidates: Sequence[Sequence[int]]) -> FloatArray:
    """:func:`literal_forward` for several strings on the same frames, in one compiled call."""
    pr = np.ascontiguousarray(probs, dtype=np.float64)
    width = max((len(c) for c in candidates), default=0)
    labels = np.zeros((len(candidates), max(width, 1)), dtype=np.intp)
    lengths = np.zeros(len(candidates), dtype=np.intp)
    for i, c in enumerate(candidates):
        labels[i, : len(c)] = c
        lengths[i] = len(c)
    out: FloatArray = _literal_many(pr, labels, lengths)
    return out


@numba.njit(cache=True, nogil=True)
def _literal_many(pr, labels, lengths):  # type: ignore[no-untyped-def]  # pragma: no cover
    out = np.empty(labels.shape[0])
    for i in range(labels.shape[0]):
        out[i] = _literal_one(pr, labels[i, : lengths[i]])
    return out


@numba.njit(cache=True, nogil=True)
def _literal_one(pr, lab):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    n_frames = pr.shape[0]
    n_ext = 2 * lab.shape[0] + 1
    alpha = np.zeros(n_ext)
    nxt = np.zeros(n_ext)
    alpha[0] = pr[0, 0]
    if n_ext > 1:
        alpha[1] = pr[0, lab[0]]
    log_scale = 0.0
    for t in range(1, n_frames):
        for s in range(n_ext):
            v = alpha[s]
            if s >= 1:
                v += alpha[s - 1]
            if s % 2 == 1 and s >= 3 and lab[s // 2] != lab[s // 2 - 1]:
                v += alpha[s - 2]
            nxt[s] = v * (pr[t, lab[s // 2]] if s % 2 == 1 else pr[t, 0])
        scale = 0.0
        for s in range(n_ext):
            alpha[s] = nxt[s]
            scale = max(scale, alpha[s])
        if scale <= 0.0:
            return NEG
        for s in range(n_ext):
            alpha[s] /= scale
        log_scale += np.log(scale)
    total = alpha[n_ext - 1] + (alpha[n_ext - 2] if n_ext > 1 else 0.0)
    return np.log(total) + log_scale if total > 0 else NEG


def spot(probs: FloatArray, candidates: Sequence[Sequence[int]]) -> FloatArray:
    """How well each candidate string explains some stretch of the line, anywhere in it.

    CTC forward with a garbage state before and after the string that, at each frame, emits the
    frame's best class probability; dividing by that best probability makes the score a
    log-ratio of "the string is printed here" to "the best reading of these frames" (summed over
    placements, so a clean print scores a little above 0). A look-alike that differs in one
    clear character loses that character's log-probability ratio. Used to score expected (ASN)
    values even where a smudge broke the line's structure, e.g. ate the label before a lot.
    Returns one log score per candidate (``NEG`` for an empty one).
    """
    pr = np.ascontiguousarray(probs, dtype=np.float64)
    width = max((len(c) for c in candidates), default=0)
    labels = np.zeros((len(candidates), max(width, 1)), dtype=np.intp)
    lengths = np.zeros(len(candidates), dtype=np.intp)
    for i, c in enumerate(candidates):
        labels[i, : len(c)] = c
        lengths[i] = len(c)
    out: FloatArray = _spot_many(pr, pr.max(axis=1), labels, lengths)
    return out


@numba.njit(cache=True, nogil=True)
def _spot_many(pr, best, labels, lengths):  # type: ignore[no-untyped-def]  # pragma: no cover
    out = np.full(labels.shape[0], NEG)
    for i in range(labels.shape[0]):
        if lengths[i] > 0:
            out[i] = _spot_one(pr, best, labels[i, : lengths[i]])
    return out


@numba.njit(cache=True, nogil=True)
def _spot_one(pr, best, lab):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    n_frames = pr.shape[0]
    n_ext = 2 * lab.shape[0] + 1
    # states: 0 = leading garbage, 1..n_ext = blank/label chain, n_ext + 1 = trailing garbage
    alpha = np.zeros(n_ext + 2)
    nxt = np.zeros(n_ext + 2)
    alpha[0] = 1.0  # garbage emits best / best = 1
    alpha[1] = pr[0, 0] / best[0]
    alpha[2] = pr[0, lab[0]] / best[0]
    log_scale = 0.0
    for t in range(1, n_frames):
        nxt[0] = alpha[0]
        for s in range(1, n_ext + 1):
            v = alpha[s] + alpha[s - 1]
            if s % 2 == 0:  # a label state
                k = s // 2 - 1
                if s >= 4 and lab[k] != lab[k - 1]:
                    v += alpha[s - 2]
                if s == 2:
                    v += alpha[0]  # the string starts right after garbage
                nxt[s] = v * pr[t, lab[k]] / best[t]
            else:
                nxt[s] = v * pr[t, 0] / best[t]
        nxt[n_ext + 1] = alpha[n_ext + 1] + alpha[n_ext] + alpha[n_ext - 1]
        scale = 0.0
        for s in range(n_ext + 2):
            alpha[s] = nxt[s]
            scale = max(scale, alpha[s])
        if scale <= 0.0:
            return NEG
        for s in range(n_ext + 2):
            alpha[s] /= scale
        log_scale += np.log(scale)
    total = alpha[n_ext + 1] + alpha[n_ext] + alpha[n_ext - 1]
    return np.log(total) + log_scale if total > 0 else NEG
