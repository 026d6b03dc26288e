"""Combine field readings from several lines and frames into one value per field.

Each reading of a field (a line of a frame) gives a posterior over candidate values; readings
are independent evidence, so per candidate the posteriors multiply (a product of experts),
with an "other" hypothesis for values none of the readings proposed. Candidates are scored as
whole strings on every reading's frames, never voted per character, which would misalign when
two frames split a smudged character differently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edge.vision.ocr import fields
from edge.vision.ocr.decode import Decoder, FieldRead

_FLOOR = 1e-9


@dataclass(frozen=True)
class FusedField:
    name: str
    value: str
    confidence: float
    readings: int


def fuse_field(
    decoder: Decoder,
    reads: Sequence[FieldRead],
    *,
    expected: Sequence[str] = (),
    other_weight: float = 1.0,
    evidence_weight: float = 0.5,
) -> FusedField | None:
    """The best value of one field over all its readings, with its fused confidence."""
    if not reads:
        return None
    per_read: list[dict[str, float]] = []
    for r in reads:
        if expected:
            post = decoder.candidates(r, expected, other_weight)
        else:
            post = {r.value: r.confidence} if r.value is not None else {}
        per_read.append(post)
    values = list(dict.fromkeys(v for post in per_read for v in post))
    if not values:
        return None
    # Score every candidate on every reading it was not proposed by, so two frames that read
    # different values both weigh in on both values.
    for r, post in zip(reads, per_read, strict=True):
        for v in values:
            if v not in post:
                post[v] = _score_value(decoder, r, v)
    log_s = {v: sum(math.log(max(post[v], _FLOOR)) for post in per_read) for v in values}
    log_other = sum(math.log(max(1.0 - sum(post.values()), _FLOOR)) for post in per_read)
    m = max([*log_s.values(), log_other])
    denom = sum(math.exp(x - m) for x in [*log_s.values(), log_other])
    best = max(values, key=lambda v: log_s[v])
    conf = math.exp(log_s[best] - m) / denom
    if evidence_weight > 0:
        # Fit of the evidence to the grammar: the best reading's share of mass that any
        # grammatical value explains; a field read from frames that spell something
        # ungrammatical (a smear read as letters) is less trustworthy than the ratio says.
        fit = max(min(1.0, math.exp(r.log_norm)) for r in reads)
        conf *= fit**evidence_weight
    return FusedField(reads[0].name, best, float(min(conf, 1.0)), len(reads))


def _score_value(decoder: Decoder, r: FieldRead, value: str) -> float:
    printed = fields.render(r.tag, value, r.printed)
    if printed is None:
        return 0.0
    lp = decoder.score(printed, r.span)
    return float(min(1.0, math.exp(min(lp - r.log_norm, 0.0))))
