"""CTC decoding on the recogniser's per-frame class probabilities.

Three decoders over a ``T x C`` probability matrix (class 0 is the CTC blank):

- :func:`greedy` - the best path collapsed (what the ``text`` key shows, before any parsing);
- :func:`viterbi` - the best path through a :class:`CtcGraph`, an automaton of allowed strings
  (the code grammar, with GS1 check digits built into the states), with the frames each
  character was read from;
- :func:`forward` - the total probability of every path spelling any
  string the graph allows; with :func:`edge.vision.ocr.strings.literal_forward` (one given
  string) their ratio is the posterior of that string
  among the strings the grammar allows; it is the confidence the reader reports.

A graph state is a (node, class) pair: it emits one character. Transitions go from a state to
a *node* (any of its classes), so a check-digit position can send each digit to the node that
remembers the new weighted sum. CTC's rule that a repeated character needs a blank between
its two emissions is honoured: a direct transition into the same class is not allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
NEG = -1e30  # log of "impossible"; finite so that sums stay finite
_TINY = 1e-30


@dataclass(frozen=True)
class CtcGraph:
    """A compiled automaton. Built by :class:`edge.vision.ocr.grammar.GraphBuilder`."""

    cls: IntArray  # (n_states,) class index each state emits
    node: IntArray  # (n_states,) node of each state
    start: npt.NDArray[np.bool_]  # (n_states,) the state may emit the first character
    accept: npt.NDArray[np.bool_]  # (n_states,) the string may end after this state
    node_tags: tuple[str, ...]  # (N,) field tag of each node ("" for labels and spaces)
    pair_src: IntArray  # (P,) state k ...
    pair_dst: IntArray  # (P,) ... may be followed by any state of node pair_dst
    n_nodes: int

    @property
    def n_states(self) -> int:
        return int(self.cls.shape[0])


@dataclass(frozen=True)
class Emission:
    """One decoded character: its state, and the first and last frame it was read from."""

    state: int
    char_class: int
    first: int
    last: int


@dataclass(frozen=True)
class Path:
    """The Viterbi result: characters and their frames, and the path's log-probability."""

    emissions: tuple[Emission, ...]
    log_prob: float


class _Plan:
    """Index arrays derived once per graph for the per-frame updates.

    Nodes with the same set of predecessor states share a *junction* (in a line graph, every
    element's first node is fed by every element's last state), so each frame reduces over
    (state -> junction) pairs, far fewer than (state -> node) pairs.
    """

    def __init__(self, g: CtcGraph) -> None:
        classes = np.unique(g.cls)
        n_cls = int(classes.shape[0])
        self.col = np.searchsorted(classes, g.cls)  # dense column of each state's class
        preds: list[set[int]] = [set() for _ in range(g.n_nodes)]
        for k, m in zip(g.pair_src.tolist(), g.pair_dst.tolist(), strict=True):
            preds[m].add(k)
        junction_of: dict[frozenset[int], int] = {}
        node_j = np.full(g.n_nodes, -1, dtype=np.intp)
        for m, ks in enumerate(preds):
            if ks:
                node_j[m] = junction_of.setdefault(frozenset(ks), len(junction_of))
        n_j = max(len(junction_of), 1)
        src = [k for ks, _ in sorted(junction_of.items(), key=lambda x: x[1]) for k in sorted(ks)]
        jid = [j for ks, j in sorted(junction_of.items(), key=lambda x: x[1]) for _ in ks]
        src_a = np.asarray(src, dtype=np.intp)
        j_a = np.asarray(jid, dtype=np.intp)
        key = j_a * n_cls + self.col[src_a] if src_a.size else j_a
        order = np.argsort(key, kind="stable")
        self.src = src_a[order]
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else key
        self.keys = key[starts]
        # group g covers src[bounds[g]:bounds[g + 1]]
        self.bounds = np.r_[starts, key.size].astype(np.intp)
        self.shape = (n_j, n_cls)
        # per state: its node's junction (-1: only reachable as a first character)
        self.state_j = node_j[g.node]
        self.has_j = self.state_j >= 0
        # predecessor states of each junction, for backtracking
        self.j_preds = [np.empty(0, np.intp)] * n_j
        for members, j in junction_of.items():
            self.j_preds[j] = np.asarray(sorted(members), dtype=np.intp)
        self.node_j = node_j

    def kernel_args(self) -> tuple[object, ...]:
        return (
            self.src,
            self.bounds,
            self.keys,
            self.shape[1],
            self.state_j,
            self.col,
            self.shape[0],
        )


_PLANS: dict[int, tuple[CtcGraph, _Plan]] = {}


def _plan(g: CtcGraph) -> _Plan:
    hit = _PLANS.get(id(g))
    if hit is not None and hit[0] is g:
        return hit[1]
    plan = _Plan(g)
    if len(_PLANS) > 256:  # graphs are few and long-lived; bound the cache anyway
        _PLANS.clear()
    _PLANS[id(g)] = (g, plan)
    return plan


def greedy(probs: FloatArray, charset: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Best-path decoding: the collapsed string and, per character, its first and last frame.

    ``charset[i]`` is the character of class ``i``; ``charset[0]`` (the blank) is ignored.
    """
    best = probs.argmax(axis=1)
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    prev = 0
    for t, c in enumerate(best.tolist()):
        if c != 0 and c == prev:
            spans[-1] = (spans[-1][0], t)
        elif c != 0:
            text.append(charset[c])
            spans.append((t, t))
        prev = c
    return "".join(text), spans


def viterbi(log_probs: FloatArray, g: CtcGraph) -> Path | None:
    """Most probable path through ``g``; ``None`` if no allowed string fits in ``T`` frames."""
    p = _plan(g)
    lp = np.ascontiguousarray(log_probs, dtype=np.float64)
    e_hist, b_hist, b0_hist = _viterbi_fill(
        np.ascontiguousarray(lp[:, g.cls]),
        np.ascontiguousarray(lp[:, 0]),
        g.start,
        *p.kernel_args(),
    )
    final = np.where(g.accept, np.maximum(e_hist[-1], b_hist[-1]), NEG)
    k = int(final.argmax())
    if final[k] <= NEG / 2:
        return None
    return Path(_backtrack(p, g, e_hist, b_hist, b0_hist, k, lp), float(final[k]))


@numba.njit(cache=True, nogil=True)
def _viterbi_fill(  # type: ignore[no-untyped-def]
    lp_states, lp_blank, start, src, bounds, keys, n_cls, state_j, col, n_j
):  # pragma: no cover - compiled; exercised through viterbi()
    n_frames, n_states = lp_states.shape
    e_hist = np.empty((n_frames, n_states))
    b_hist = np.empty((n_frames, n_states))
    b0_hist = np.empty(n_frames)
    for k in range(n_states):
        e_hist[0, k] = lp_states[0, k] if start[k] else NEG
        b_hist[0, k] = NEG
    b0_hist[0] = lp_blank[0]
    top1 = np.empty(n_j)
    top2 = np.empty(n_j)
    topc = np.empty(n_j, np.int64)
    jb = np.empty(n_j)
    for t in range(1, n_frames):
        em = e_hist[t - 1]
        bl = b_hist[t - 1]
        top1[:] = NEG
        top2[:] = NEG
        topc[:] = -1
        jb[:] = NEG
        # per junction: best blank, and the two best emitting scores of different classes
        for gi in range(keys.shape[0]):
            j = keys[gi] // n_cls
            ve = NEG
            vb = NEG
            for q in range(bounds[gi], bounds[gi + 1]):
                ve = max(ve, em[src[q]])
                vb = max(vb, bl[src[q]])
            jb[j] = max(jb[j], vb)
            if ve > top1[j]:
                top2[j] = top1[j]
                top1[j] = ve
                topc[j] = keys[gi] % n_cls
            elif ve > top2[j]:
                top2[j] = ve
        b0 = b0_hist[t - 1]
        for k in range(n_states):
            enter = NEG
            j = state_j[k]
            if j >= 0:
                # CTC: the same class again right after itself needs a blank in between
                enter = max(top2[j] if topc[j] == col[k] else top1[j], jb[j])
            if start[k]:
                enter = max(enter, b0)
            e_hist[t, k] = max(em[k], enter) + lp_states[t, k]
            b_hist[t, k] = max(bl[k], em[k]) + lp_blank[t]
        b0_hist[t] = b0 + lp_blank[t]
    return e_hist, b_hist, b0_hist


def _backtrack(
    p: _Plan,
    g: CtcGraph,
    e_hist: FloatArray,
    b_hist: FloatArray,
    b0_hist: FloatArray,
    k: int,
    log_probs: FloatArray,
) -> tuple[Emission, ...]:
    n_frames = e_hist.shape[0]
    blank = b_hist[n_frames - 1, k] >= e_hist[n_frames - 1, k]
    out: list[Emission] = []
    last = -1 if blank else n_frames - 1
    t = n_frames - 1
    while t >= 0:
        if blank:
            if t == 0:
                break
            if e_hist[t - 1, k] > b_hist[t - 1, k]:
                blank, last = False, t - 1
            t -= 1
            continue
        # emitting k at t: did it start here or continue from t-1?
        if t == 0:
            out.append(Emission(k, int(g.cls[k]), 0, last))
            break
        stay = e_hist[t - 1, k]
        preds = p.j_preds[p.state_j[k]] if p.has_j[k] else np.empty(0, np.intp)
        from_b = b_hist[t - 1, preds]
        from_e = np.where(g.cls[preds] != g.cls[k], e_hist[t - 1, preds], NEG)
        best_b = int(from_b.argmax()) if preds.size else -1
        best_e = int(from_e.argmax()) if preds.size else -1
        cands = [
            (stay, "stay", k),
            (b0_hist[t - 1] if g.start[k] else NEG, "start", -1),
            (from_b[best_b] if best_b >= 0 else NEG, "blank", preds[best_b] if best_b >= 0 else -1),
            (from_e[best_e] if best_e >= 0 else NEG, "emit", preds[best_e] if best_e >= 0 else -1),
        ]
        _, how, prev = max(cands, key=lambda c: c[0])
        if how == "stay":
            t -= 1
            continue
        out.append(Emission(k, int(g.cls[k]), t, last))
        if how == "start":
            break
        k = int(prev)
        blank = how == "blank"
        last = t - 1
        t -= 1
    out.reverse()
    return tuple(out)


def forward(probs: FloatArray, g: CtcGraph) -> float:
    """log of the total probability of all paths spelling any string ``g`` allows."""
    p = _plan(g)
    pr = np.ascontiguousarray(probs, dtype=np.float64)
    total, log_scale = _forward_fill(
        np.ascontiguousarray(pr[:, g.cls]),
        np.ascontiguousarray(pr[:, 0]),
        g.start,
        g.accept,
        *p.kernel_args(),
    )
    return float(np.log(total)) + float(log_scale) if total > 0 else NEG


@numba.njit(cache=True, nogil=True)
def _forward_fill(  # type: ignore[no-untyped-def]
    pr_states, pr_blank, start, accept, src, bounds, keys, n_cls, state_j, col, n_j
):  # pragma: no cover - compiled; exercised through forward()
    n_frames, n_states = pr_states.shape
    em = np.zeros(n_states)
    bl = np.zeros(n_states)
    em2 = np.zeros(n_states)
    for k in range(n_states):
        if start[k]:
            em[k] = pr_states[0, k]
    b0 = pr_blank[0]
    log_scale = 0.0
    dense = np.zeros(n_j * n_cls)
    jt = np.zeros(n_j)
    jb = np.zeros(n_j)
    for t in range(1, n_frames):
        dense[:] = 0.0
        jt[:] = 0.0
        jb[:] = 0.0
        for gi in range(keys.shape[0]):
            j = keys[gi] // n_cls
            ve = 0.0
            vb = 0.0
            for q in range(bounds[gi], bounds[gi + 1]):
                ve += em[src[q]]
                vb += bl[src[q]]
            dense[keys[gi]] = ve
            jt[j] += ve
            jb[j] += vb
        scale = b0 * pr_blank[t]
        for k in range(n_states):
            enter = 0.0
            j = state_j[k]
            if j >= 0:
                enter = max(jt[j] - dense[j * n_cls + col[k]], 0.0) + jb[j]
            if start[k]:
                enter += b0
            em2[k] = (em[k] + enter) * pr_states[t, k]
            bl[k] = (bl[k] + em[k]) * pr_blank[t]
            scale = max(scale, em2[k], bl[k])
        em[:] = em2
        b0 *= pr_blank[t]
        if scale < 1e-300:
            return 0.0, log_scale
        em /= scale
        bl /= scale
        b0 /= scale
        log_scale += np.log(scale)
    total = 0.0
    for k in range(n_states):
        if accept[k]:
            total += em[k] + bl[k]
    return total, log_scale
