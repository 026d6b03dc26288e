"""Closed-vocabulary reading: which line of the ASN (if any) is printed on this carton.

Each expected value is printed in every form its field can take (a GTIN as 14 or 13 digits, an
expiry as ``270831``, ``2027.08.31``, ``08/2027``, ``AUG 2027``, ...) and *spotted* on every
recognised line of every frame (:func:`edge.vision.ocr.ctc.spot`): no parse is needed, so a
smudge that ate a label or a bracket does not hide the value. A record's score is the sum of
its fields' best spots; records compete with each other and with "none of them" (the values
the open, grammar-constrained decoder read, weighted by ``other_weight``)::

    P(record) = e^S(record) / (sum over records e^S(r) + other_weight * e^S(open read))

Decoys that share a GTIN and expiry but differ in the lot split the probability between them
unless the lot's frames decide, which is exactly when a gate should ask a person.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.vision.ocr import ctc, strings
from edge.vision.ocr.forms import MONTHS

Probs = npt.NDArray[np.float64]
MATCHED = ("gtin", "lot", "expiry")
UNSEEN = -8.0  # spot score (log) at and below which a value counts as not on the frame


@dataclass(frozen=True)
class AsnMatch:
    values: dict[str, str]  # gtin, lot, expiry of the winning record
    probability: float
    runner_up: float
    unseen: tuple[str, ...] = ()  # fields of the winner that no frame shows


def value_forms(field: str, value: str, tags: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The ways ``value`` (stored form) may be printed, value part only.

    ``tags`` (the printed forms the open decoder saw for this field) narrows dates to those
    forms; empty means every form.
    """
    if field == "gtin":
        return (value, value[1:]) if value.startswith("0") else (value,)
    if field == "lot":
        return (value,)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return ()
    yy, mm, dd, yyyy = f"{day.year % 100:02d}", f"{day.month:02d}", f"{day.day:02d}", str(day.year)
    month_end = (day + dt.timedelta(days=1)).day == 1
    forms: dict[str, list[str]] = {
        "yymmdd": [yy + mm + dd] + ([yy + mm + "00"] if month_end else []),
        "ymd": [f"{yyyy}{sep}{mm}{sep}{dd}" for sep in "-./"],
        "my": [f"{mm}/{yyyy}", f"{mm}/{yy}", f"{mm} {yyyy}"] if month_end else [],
        "mon": [f"{MONTHS[day.month - 1]} {yyyy}"] if month_end else [],
    }
    kinds = {t.split(".")[-1] for t in tags} & set(forms) or set(forms)
    return tuple(v for k in sorted(kinds) for v in forms[k])


# Characters PP-OCR confuses on dot-matrix and thermal print (seen on generated and hand
# frames): a confident 'H' where 'N' is printed is common, so an expected 'N' should not be
# ruled out by it. Candidates and the open read are scored on the same softened matrices.
LOOKALIKES = ("0OQD", "8B", "1I", "2Z", "5S", "6G", "UV", "HNM")


class AsnMatcher:
    def __init__(self, index: Mapping[str, int], confusion: float = 0.15) -> None:
        """``confusion``: share of a class's probability spread over its look-alikes."""
        self.index = index
        self.groups = [
            np.asarray([index[c] for c in g if c in index], dtype=np.intp) for g in LOOKALIKES
        ]
        self.confusion = confusion

    def soften(self, probs: Probs) -> Probs:
        """Spread ``confusion`` of each look-alike class's probability over its group."""
        if self.confusion <= 0:
            return probs
        out = probs.copy()
        for g in self.groups:
            mean = probs[:, g].mean(axis=1, keepdims=True)
            out[:, g] = (1 - self.confusion) * probs[:, g] + self.confusion * mean
        return out

    def _labels(self, text: str) -> list[int] | None:
        out = [self.index.get(c) for c in text]
        return None if any(i is None for i in out) else [int(i) for i in out if i is not None]

    def field_scores(
        self,
        frames: Sequence[Sequence[Probs]],
        field: str,
        values: Sequence[str],
        tags: frozenset[str],
    ) -> dict[str, float]:
        """Per value: the sum over frames of its best spot score on any line, in any form."""
        values = list(dict.fromkeys(values))
        printed: list[tuple[int, list[int]]] = []
        for i, v in enumerate(values):
            for text in value_forms(field, v, tags):
                labels = self._labels(text)
                if labels:
                    printed.append((i, labels))
        total = np.zeros(len(values))
        if not printed:
            return dict.fromkeys(values, ctc.NEG)
        owners = np.asarray([i for i, _ in printed])
        for lines in frames:
            best = np.full(len(values), ctc.NEG)
            for probs in lines:
                scores = strings.spot(probs, [lab for _, lab in printed])
                np.maximum.at(best, owners, scores)
            # below the floor a value is simply not on the frame; how far below is noise and
            # must not decide between two records (the expiry line may be gone entirely)
            total += np.maximum(best, UNSEEN)
        return {v: float(total[i]) for i, v in enumerate(values)}

    def match(
        self,
        frames: Sequence[Sequence[Probs]],
        expect: Sequence[Mapping[str, str]],
        open_reads: Mapping[str, tuple[str, float, frozenset[str]]],
        other_weight: float,
    ) -> AsnMatch | None:
        """The most probable ASN record on these frames, or None without lines or records.

        ``open_reads`` maps a field to the open decoder's (value, confidence, printed tags).
        """
        if not expect or not any(frames):
            return None
        soft = [[self.soften(p) for p in lines] for lines in frames]
        scores: dict[str, dict[str, float]] = {}
        for f in MATCHED:
            wanted = [r[f] for r in expect]
            if f in open_reads:
                wanted.append(open_reads[f][0])
            tags = open_reads[f][2] if f in open_reads else frozenset()
            scores[f] = self.field_scores(soft, f, wanted, tags)
        records = list(dict.fromkeys(tuple(r[f] for f in MATCHED) for r in expect))
        rec_scores = [
            sum(scores[f][v] for f, v in zip(MATCHED, rec, strict=True)) for rec in records
        ]
        other = sum(self._other(f, scores[f], open_reads.get(f), expect) for f in MATCHED)
        logs = [*rec_scores, math.log(other_weight) + other]
        m = max(logs)
        weights = [math.exp(x - m) for x in logs]
        denom = sum(weights)
        order = sorted(range(len(records)), key=lambda i: rec_scores[i], reverse=True)
        best = order[0]
        runner = weights[order[1]] / denom if len(order) > 1 else 0.0
        n_frames = sum(1 for lines in frames if lines)
        unseen = tuple(
            f
            for f, v in zip(MATCHED, records[best], strict=True)
            if scores[f][v] <= UNSEEN * n_frames + 1e-9
        )
        return AsnMatch(
            values=dict(zip(MATCHED, records[best], strict=True)),
            probability=weights[best] / denom,
            runner_up=runner,
            unseen=unseen,
        )

    @staticmethod
    def _other(
        field: str,
        scores: Mapping[str, float],
        read: tuple[str, float, frozenset[str]] | None,
        expect: Sequence[Mapping[str, str]],
    ) -> float:
        """Score of the best value of ``field`` that is not on the ASN."""
        if read is None:
            # a field the open decoder could not read says nothing against the records
            return max(scores.values())
        value, conf, _ = read
        if value not in {r[field] for r in expect}:
            return scores[value]
        # The open read is on the list: the best unlisted value is an alternative reading,
        # whose weight relative to the open read is about (1 - confidence) / confidence.
        c = min(max(conf, 1e-3), 1 - 1e-3)
        return scores[value] + math.log((1 - c) / c)
