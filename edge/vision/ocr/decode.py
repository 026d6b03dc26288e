"""From one line's CTC probabilities to fields with calibrated confidences.

1. The best path through the line graph (:func:`edge.vision.ocr.forms.line_graph`) gives the
   fields and the frames each was read from.
2. Digit fields that fail their check digit (the line graph does not track check sums, to stay
   fast) are repaired: every single-digit change is scored on the field's frames and the best
   one whose check digit holds is kept.
3. A field's confidence is its posterior among every value its exact grammar allows::

       P(value) = P(frames | value) / sum over allowed v of P(frames | v)

   both by the CTC forward algorithm on the field's frames. A smudged character spreads
   probability over several values and the posterior drops; check digits remove every value
   that a single misread digit would give.
4. With expected values (from an ASN) the same frames score each candidate, and values outside
   the list keep a share ``other_weight`` of their probability mass (the prior that the carton
   is not on the list).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from edge.vision.ocr import ctc, fields, forms, strings
from edge.vision.ocr.asn import LOOKALIKES

Probs = npt.NDArray[np.float64]
SPACED_TAGS = frozenset({"exp.my", "exp.mon"})
_FLOOR = 1e-12
# log-likelihood (nats) a check-digit repair may cost before the recogniser counts as having
# been sure of a wrong digit (a factor of 2: an erased digit costs about nothing)
_FORCED_REPAIR = math.log(2.0)
# mean best-frame probability of a label's characters (spaces aside) below which the label is
# made up by the grammar, not read: legible labels measure ~1, partly smudged ones ~0.6, the
# CRNN's '批号' in front of the artwork 'KEEP DRY' 0.06
LABEL_MIN = 0.25
# Blank frames between a lot and its label, in character pitches (the line's median distance
# between characters), beyond which characters are probably hidden there: a smear over the
# head of '(10)4791363742' left '(10)742', which the grammar happily reads as lot '742'
# (ACCEPTED at 0.97). A label's own space is about one pitch.
LOT_GAP = 2.5
LOT_GAP_FACTOR = 0.2  # confidence factor of a lot read that far from its label


@dataclass(frozen=True)
class FieldRead:
    """One field of one line of one frame."""

    name: str  # CartonRead key: gtin, lot, expiry, prod_date, sscc
    tag: str  # printed form (see forms)
    printed: str  # as printed, e.g. "2027.08.31"
    value: str | None  # stored form, e.g. "2027-08-31"; None if not a valid value
    confidence: float
    span: Probs  # the field's frames (for scoring candidates and fusion)
    log_norm: float  # log-sum over all values the field's grammar allows on ``span``


@dataclass(frozen=True)
class LineRead:
    text: str  # best-path string, before any parsing
    fields: tuple[FieldRead, ...]
    fits: bool  # a grammatical reading is close to the best path


class Decoder:
    """Decodes lines for one recogniser charset."""

    def __init__(
        self,
        charset: Sequence[str],
        *,
        fit_margin: float = 0.35,
        temperature: float = 1.0,
        lot_lookalike: float = 0.0,
        lot_groups: Sequence[str] = LOOKALIKES,
        repair_cap: float = 1.0,
        label_min: float = LABEL_MIN,
    ) -> None:
        """``fit_margin``: nats per frame a grammatical path may lose to the best path;
        ``temperature`` > 1 flattens the recogniser's per-frame probabilities before any
        confidence is computed (the network is over-confident on dot-matrix print);
        ``lot_lookalike``: share of each look-alike class's probability spread over its group
        before a lot is scored (a lot may hold both '0' and 'O', and the network is sure of
        the wrong one about as often as it is unsure); ``repair_cap``: the highest confidence
        of a digit field whose check digit could only be repaired against the recogniser's
        clear reading of a digit; ``label_min``: the legibility (mean best-frame probability of
        its characters) a label needs for the field after it to be read."""
        self.temperature = temperature
        self.repair_cap = repair_cap
        self.label_min = label_min
        self.charset = tuple(charset)
        self.index = {c: i for i, c in enumerate(self.charset) if i > 0}
        self.lot_lookalike = lot_lookalike
        self.groups = [
            np.asarray([self.index[c] for c in g if c in self.index], dtype=np.intp)
            for g in lot_groups
        ]
        self.graph = forms.line_graph(self.charset)
        self.fit_margin = fit_margin

    def labels(self, text: str) -> list[int] | None:
        out = [self.index.get(c) for c in text]
        return None if any(i is None for i in out) else [int(i) for i in out if i is not None]

    def line(self, probs: Probs) -> LineRead:
        text, _ = ctc.greedy(probs, self.charset)
        probs = soften(probs, self.temperature)
        logp = np.log(np.maximum(probs, _FLOOR))
        path = ctc.viterbi(logp, self.graph)
        if path is None:
            return LineRead(text, (), False)
        best = float(logp.max(axis=1).sum())
        fits = path.log_prob >= best - self.fit_margin * probs.shape[0] - 2.0
        return LineRead(text, tuple(self._fields(probs, path)), fits)

    def _fields(self, probs: Probs, path: ctc.Path) -> list[FieldRead]:
        ems = path.emissions
        tags = [self.graph.node_tags[self.graph.node[e.state]] for e in ems]
        out: list[FieldRead] = []
        space = self.index.get(" ")
        label: float | None = None  # legibility of the label before the next field
        firsts = [e.first for e in ems]
        pitch = float(np.median(np.diff(firsts))) if len(firsts) > 2 else 0.0
        i = 0
        while i < len(ems):
            j = i
            while j + 1 < len(ems) and tags[j + 1] == tags[i]:
                j += 1
            if not tags[i]:
                best = [
                    float(probs[e.first : e.last + 1, e.char_class].max())
                    for e in ems[i : j + 1]
                    if e.char_class != space
                ]
                label = sum(best) / len(best) if best else None
            elif label is not None and label < self.label_min:
                # the path put a label where the recogniser barely saw one ('批号' made up
                # before the artwork 'KEEP DRY', read as a lot): the field is not read
                label = None
            else:
                label = None
                # the field's frames plus two on each side, never into a neighbour's: blank
                # margins carry no evidence, and crop edges often hold faint junk. A lot has
                # no fixed length, so it keeps every frame up to the next character: ink
                # after it (a smudged tail) must lower its confidence, not be cut off.
                lo = max(ems[i - 1].last + 1 if i > 0 else 0, ems[i].first - 2)
                end = ems[j + 1].first if j + 1 < len(ems) else probs.shape[0]
                hi = end if tags[i] == "lot" else min(end, ems[j].last + 3)
                printed = "".join(self.charset[e.char_class] for e in ems[i : j + 1])
                f = self.field(tags[i], printed, probs[lo:hi])
                if tags[i] == "lot" and i > 0 and pitch > 0:
                    gap = ems[i].first - ems[i - 1].first
                    if gap > (1 + LOT_GAP) * pitch:
                        f = replace(f, confidence=f.confidence * LOT_GAP_FACTOR)
                out.append(f)
            i = j + 1
        return out

    def field(self, tag: str, printed: str, span: Probs) -> FieldRead:
        """Check, repair and score one field read from ``span``."""
        space = self.index.get(" ")
        if space is not None and tag not in SPACED_TAGS:
            # A space next to a value is a separator, not evidence against it: count it as
            # blank for this field's scores (only month forms print a space inside the value).
            span = span.copy()
            span[:, 0] += span[:, space]
            span[:, space] = 0.0
        if tag == "lot" and self.lot_lookalike > 0:
            span = spread_lookalikes(span, self.groups, self.lot_lookalike)
        forced = False
        if tag in fields.DIGIT_TAGS and not fields.gs1_check_ok(printed):
            fixed = self._repair_digits(printed, span)
            if fixed is not None:
                # an erased digit repairs at no cost; a digit the recogniser was sure of does
                # not: then it misread this field, and may have misread or lost more of it
                cost = self.score(printed, span) - self.score(fixed, span)
                forced = cost > _FORCED_REPAIR
                printed = fixed
        if tag == "lot" and len(printed) > forms.LOT_MAX:
            printed = printed[: forms.LOT_MAX]  # the loose graph allows long lots; scoring judges
        value = fields.parse(tag, printed)
        log_norm = ctc.forward(span, forms.body_graph(self.charset, tag))
        conf = 0.0
        if value is not None:
            conf = _ratio(self.score(printed, span), log_norm)
        if tag == "lot" and (printed.startswith("-") or printed.endswith("-")):
            conf *= 0.2  # a lot that starts or ends with a dash has probably lost characters
        if forced:
            # a lost digit (a GTIN-14 read as 13 digits) repairs to a valid value as easily as
            # a misread one, and the posterior among valid values cannot tell
            conf = min(conf, self.repair_cap)
        return FieldRead(fields.FIELD_OF[tag], tag, printed, value, conf, span, log_norm)

    def score(self, printed: str, span: Probs) -> float:
        labels = self.labels(printed)
        return ctc.NEG if labels is None else strings.literal_forward(span, labels)

    def _repair_digits(self, printed: str, span: Probs) -> str | None:
        cands = [
            printed[:pos] + d + printed[pos + 1 :]
            for pos in range(len(printed))
            for d in "0123456789"
            if d != printed[pos]
        ]
        cands = [c for c in cands if fields.gs1_check_ok(c)]
        if not cands:
            return None
        labels = [self.labels(c) or [] for c in cands]
        scores = strings.literal_forward_many(span, labels)
        return cands[int(np.argmax(scores))]

    def candidates(
        self, f: FieldRead, expected: Sequence[str], other_weight: float
    ) -> dict[str, float]:
        """Posterior of each expected value (stored form) on ``f``'s frames, and of ``f.value``.

        Mass of values not on the list is scaled by ``other_weight``; the open reading keeps
        its own (scaled) posterior so a confident reading of an unlisted value still wins.
        """
        scores: dict[str, float] = {}
        for value in dict.fromkeys(expected):
            printed = fields.render(f.tag, value, f.printed)
            if printed is not None and fields.parse(f.tag, printed) == value:
                scores[value] = self.score(printed, f.span)
        listed = _logsumexp(list(scores.values()))
        other = _log_sub(f.log_norm, listed)
        denom = _logsumexp([listed, math.log(other_weight) + other])
        out = {v: _ratio(lp, denom) for v, lp in scores.items()}
        if f.value is not None and f.value not in out:
            own = self.score(f.printed, f.span)
            out[f.value] = _ratio(math.log(other_weight) + own, denom)
        return out


def spread_lookalikes(probs: Probs, groups: Sequence[npt.NDArray[np.intp]], share: float) -> Probs:
    """Move ``share`` of each look-alike class's probability to the mean of its group."""
    out = probs.copy()
    for g in groups:
        if g.size > 1:
            mean = probs[:, g].mean(axis=1, keepdims=True)
            out[:, g] = (1 - share) * probs[:, g] + share * mean
    return out


def soften(probs: Probs, temperature: float) -> Probs:
    """Temperature scaling: ``p ** (1 / T)``, renormalised per frame (T = 1 is a no-op)."""
    if temperature == 1.0:
        return probs
    out = np.power(np.maximum(probs, _FLOOR), 1.0 / temperature)
    scaled: Probs = out / out.sum(axis=1, keepdims=True)
    return scaled


def _ratio(num: float, den: float) -> float:
    if num <= ctc.NEG / 2:
        return 0.0
    return float(min(1.0, math.exp(min(num - den, 0.0))))


def _logsumexp(xs: Sequence[float]) -> float:
    live = [x for x in xs if x > ctc.NEG / 2]
    if not live:
        return ctc.NEG
    m = max(live)
    return m + math.log(sum(math.exp(x - m) for x in live))


def _log_sub(a: float, b: float) -> float:
    """log(exp(a) - exp(b)), floored at a tiny share of exp(a)."""
    if b <= ctc.NEG / 2:
        return a
    diff = 1.0 - math.exp(min(b - a, 0.0))
    return a + math.log(max(diff, 1e-6))
