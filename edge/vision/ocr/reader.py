"""The carton-code reader: image(s) in, one :class:`CartonRead` out.

``locate`` -> line crops -> ``Recognizer`` (one ONNX batch) -> ``Decoder`` per line (grammar
and check-digit constrained) -> ``fuse`` per field over lines and frames -> status.

Status rules: ``ERROR`` when the input is not a usable image; ``UNREADABLE`` (with a reason)
when no line parses or GTIN, lot or expiry is missing; otherwise ``ACCEPTED`` when the lowest
field confidence reaches the threshold, and a production date or SSCC its own stricter bar
(no ASN confirms them), and ``REVIEW`` below it. A read whose fields match different lines of
the given ASN is ``REVIEW`` whatever its confidence.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.contracts.errors import ErrorCode
from edge.vision.ocr import ctc
from edge.vision.ocr.asn import LOOKALIKES, AsnMatcher, value_forms
from edge.vision.ocr.config import OcrConfig
from edge.vision.ocr.decode import Decoder, FieldRead, LineRead, soften
from edge.vision.ocr.fuse import FusedField, fuse_field
from edge.vision.ocr.locate import Located, locate
from edge.vision.ocr.recognize import LineRecognizer, Recognizer, Remapped
from edge.vision.ocr.samples import SampleStore
from edge.vision.ocr.strings import edit_distance
from edge.vision.session import MODELS_DIR

REQUIRED = ("gtin", "lot", "expiry")
OPTIONAL = ("prod_date", "sscc")
ACCEPTED, REVIEW, UNREADABLE, ERROR = "ACCEPTED", "REVIEW", "UNREADABLE", "ERROR"
# Digits and the letters some fonts draw the same: the zero and the round letters; the one
# and the straight letters (a 5x7 dot-matrix '1' has a foot like an 'L': PP-OCR read lot
# 'L260704' as '1260704' at 0.999, and an ASN listing both took the wrong one); the five and
# the S ('F27S734' matched to its ASN twin 'F275734' at 0.88)
_TWIN_GROUPS = (("0", "0ODQ"), ("1", "1IL"), ("5", "5S"))
# A strip beside the code holds print when the recogniser reads at least PROBE_DIGITS digits
# there (a prod date or SSCC is mostly digits), each with at least PROBE_PEAK probability at the
# reader's temperature. Fitted on the calibration seed 5100000 (150 frames per smudge bucket,
# reads ACCEPTED but for this rule): the one carton whose prod date hid under tape there read
# ')270614' (CRNN, peaks 0.15-0.46) and '027' (PP-OCR, 0.31-0.35), and one under white tape at
# 300 frames per bucket '2.10' (0.64-0.99). Both recognisers also read a few characters into
# plain board and tape edges, mostly below 0.2 (PP-OCR 'EMPA2AT' on a clean label, 0.10-0.33).
# Two digits at 0.2 stopped 4 of 230 right ASN reads (CRNN) and 4 of 129 (PP-OCR); any two
# letters or digits at 0.2 stopped 10 and 5; two digits at 0.25, 3 and 2.
PROBE_DIGITS, PROBE_PEAK = 2, 0.2
# A run of this many adjacent digits that no reported field explains is ink not understood,
# however much of its line the fields explain (an SSCC whose label was lost, read glued to the
# GTIN: PP-OCR on calibration seed 5100000 accepted 'GTIN 400522849529502961' without it)
LOOSE_RUN = 5
JSON_KEYS = (
    "file",
    "status",
    "gtin",
    "lot",
    "expiry",
    "prod_date",
    "sscc",
    "text",
    "confidence",
    "latency_ms",
)


@dataclass(frozen=True)
class ASN:
    """One open advance-shipping-notice line: what the gate expects to see."""

    gtin: str
    lot: str
    expiry: str  # ISO date


@dataclass(frozen=True)
class CartonRead:
    """One read. The first ten fields are the JSON keys; ``reason`` says why it is not ACCEPTED
    (with a stable error code) and goes to stderr in the CLI, not into the JSON; neither does
    ``field_confidence``."""

    file: str | None
    status: str
    gtin: str | None
    lot: str | None
    expiry: str | None
    prod_date: str | None
    sscc: str | None
    text: str
    confidence: float
    latency_ms: float
    reason: str | None = field(default=None, compare=False)
    #: each reported field's confidence (GTIN, lot and expiry: the ASN match's when it decided
    #: them); not a JSON key
    field_confidence: Mapping[str, float] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, Any]:
        """Exactly the CLI's keys."""
        d = asdict(self)
        return {k: d[k] for k in JSON_KEYS}


@dataclass(frozen=True)
class FrameRead:
    located: Located
    lines: tuple[LineRead, ...]
    probs: tuple[npt.NDArray[np.float64], ...]  # per line, for scoring ASN values
    source: int = 0  # which recogniser (index in Reader.recognizers) read it

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def error_read(file: str | None, reason: str, latency_ms: float = 0.0) -> CartonRead:
    return CartonRead(
        file, ERROR, None, None, None, None, None, "", 0.0, round(latency_ms, 1), reason
    )


class Reader:
    """Loads the recogniser once; thread-safe (one read at a time per reader)."""

    def __init__(
        self,
        config: OcrConfig | None = None,
        *,
        models_dir: Path = MODELS_DIR,
        samples: SampleStore | None = None,
        crnn: LineRecognizer | None = None,
    ) -> None:
        """``crnn`` replaces the manifest's CRNN (a model installed over the air, see
        edge/runtime/ota.py); it is used only where ``config.recognizer`` asks for the CRNN."""
        self.config = config or OcrConfig()
        self.recognizers = _recognizers(self.config, models_dir, crnn)
        self.recognizer = self.recognizers[0]
        self.temperature = self.config.calibrated_temperature
        self.decoder = Decoder(
            self.recognizer.charset,
            temperature=self.temperature,
            lot_lookalike=self.config.lot_lookalike,
            repair_cap=self.config.repair_cap,
        )
        self.matcher = AsnMatcher(self.decoder.index)
        # scores look-alike lots against each other: spreading a look-alike's probability over
        # its group (as the matcher does) would hide the very difference being weighed
        self._twin_matcher = AsnMatcher(self.decoder.index, confusion=0.0)
        self.samples = samples
        self._lock = threading.Lock()
        self._warm_decoder()

    def _warm_decoder(self) -> None:
        # compiles the numba kernels and the graphs now, not on the first carton
        probs = np.full((24, len(self.recognizer.charset)), 1e-4)
        probs[:, 0] = 1.0
        self.decoder.line(probs / probs.sum(axis=1, keepdims=True))

    def read(
        self,
        image: npt.NDArray[Any],
        expect: Sequence[ASN] | None = None,
        *,
        file: str | None = None,
    ) -> CartonRead:
        """Read one frame."""
        return self.read_frames([image], expect, file=file)

    def read_frames(
        self,
        images: Sequence[npt.NDArray[Any]],
        expect: Sequence[ASN] | None = None,
        *,
        file: str | None = None,
    ) -> CartonRead:
        """Read several frames of the same carton and fuse them into one read."""
        start = time.perf_counter()
        with self._lock:
            located: list[Located] = []
            for image in images:
                problem = self._check(image)
                if problem is not None:
                    ms = (time.perf_counter() - start) * 1000
                    return error_read(file, f"{ErrorCode.IMAGE_INVALID.value}: {problem}", ms)
                img = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
                located.append(locate(img))
            cascade = self.config.recognizer == "cascade"
            first = range(1) if cascade else range(len(self.recognizers))
            frames = [self._read_lines(loc, k) for loc in located for k in first]
            read = self._result(frames, expect, file, start)
            if cascade and read.status != ACCEPTED and len(self.recognizers) > 1:
                # the fast recogniser is not sure: the second one reads the same crops and
                # both reads are fused (agreement raises the confidence, disagreement lowers it)
                more = range(1, len(self.recognizers))
                frames += [self._read_lines(loc, k) for loc in located for k in more]
                read = self._result(frames, expect, file, start)
        if self.samples is not None and read.status in (REVIEW, UNREADABLE) and frames:
            self.samples.keep(_sample_crop(images[0], frames[0].located), read)
        return read

    def _check(self, image: Any) -> str | None:
        if not isinstance(image, np.ndarray):
            return "not an image array"
        if image.dtype != np.uint8:
            return f"pixel type {image.dtype}, expected uint8"
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            return f"shape {image.shape} is not a grey, BGR or BGRA image"
        h, w = image.shape[:2]
        if h < 8 or w < 16:
            return f"{w}x{h} is too small to hold a printed line"
        if h * w > self.config.max_image_pixels:
            return f"{w}x{h} is over the {self.config.max_image_pixels} pixel limit"
        return None

    def _read_lines(self, located: Located, k: int) -> FrameRead:
        """Recogniser ``k``'s read of the located lines."""
        probs = self.recognizers[k](located.lines)
        lines = tuple(self.decoder.line(p) for p in probs)
        return FrameRead(located, lines, tuple(probs), k)

    def _frame(self, image: npt.NDArray[np.uint8]) -> FrameRead:
        """The first recogniser's read of one image."""
        img = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        return self._read_lines(locate(img), 0)

    def _result(
        self,
        frames: Sequence[FrameRead],
        expect: Sequence[ASN] | None,
        file: str | None,
        start: float,
    ) -> CartonRead:
        reads: dict[str, list[FieldRead]] = {}
        for fr in frames:
            for line in fr.lines:
                # a line the grammar can only explain badly ("KEEP DRY" forced into a lot)
                # gives no field readings; its text still counts as unexplained ink
                for f in line.fields if line.fits else ():
                    reads.setdefault(f.name, []).append(f)
        fused: dict[str, FusedField] = {}
        for name, rs in reads.items():
            ff = fuse_field(self.decoder, rs, evidence_weight=self.config.evidence_weight)
            if ff is not None:
                fused[name] = ff
        text = _text(frames)
        values = {n: (fused[n].value if n in fused else None) for n in (*REQUIRED, *OPTIONAL)}
        confs = {n: f.confidence for n, f in fused.items()}
        match = None
        # the recogniser's probabilities at the reader's temperature, for scoring ASN values
        soft = [[soften(p, self.temperature) for p in fr.probs] for fr in frames] if expect else []
        if expect:
            open_reads = {
                n: (f.value, f.confidence, frozenset(r.tag for r in reads[n]))
                for n, f in fused.items()
                if n in REQUIRED
            }
            match = self.matcher.match(
                soft,
                [{"gtin": a.gtin, "lot": a.lot, "expiry": a.expiry} for a in expect],
                open_reads,
                self.config.asn_other_weight,
            )
        open_conf = min((confs[n] for n in REQUIRED if n in confs), default=0.0)
        if (
            match is not None
            and not any(n in fused for n in match.unseen)
            and (
                match.probability >= self.config.accept_threshold
                or match.probability > open_conf
                or any(n not in fused for n in REQUIRED)
            )
        ):
            # the ASN record explains the frames better than the open read: report it, but
            # a field no frame shows is the ASN's word, not a read
            values.update(match.values)
            for n in REQUIRED:
                confs[n] = 0.0 if n in match.unseen else match.probability
        missing = [n for n in REQUIRED if values[n] is None]
        confidence = min((confs[n] for n in values if values[n] is not None), default=0.0)
        status, reason = self._status(missing, confidence, values, expect, frames, soft)
        if (
            status == ACCEPTED
            and match is not None
            and any(values[n] != match.values[n] for n in REQUIRED)
        ):
            # The open read names one ASN line, the look-alike-aware ASN match prefers another
            # (lots '1907' and '19O7' on one truck): the print does not decide between them.
            status = REVIEW
            reason = f"{ErrorCode.UNREADABLE.value}: the read and the best ASN line disagree"
        if status == ACCEPTED and expect and "lot" in fused:
            rival = _rival_lot(fused["lot"].value, values, expect)
            if rival is not None:
                # The print lost a character of the lot ('22009-1') and two ASN lots are one
                # edit from it ('220409-1', '220109-1'): the character-level match chose one,
                # but the string the recogniser saw does not decide between them.
                status = REVIEW
                reason = (
                    f"{ErrorCode.UNREADABLE.value}: the lot read ({fused['lot'].value}) is at "
                    f"least as near the ASN's {rival} as {values['lot']}"
                )
        bar = self.config.calibrated_optional_threshold
        weak = sorted((confs[n], n) for n in OPTIONAL if values[n] is not None and confs[n] < bar)
        if status == ACCEPTED and weak:
            # no ASN line vouches for a prod date or SSCC (the match confirms GTIN, lot and
            # expiry only): the field's own read must carry it
            status = REVIEW
            reason = (
                f"{ErrorCode.UNREADABLE.value}: {weak[0][1]} confidence {weak[0][0]:.3f} below "
                f"{bar} (no ASN confirms it)"
            )
        return CartonRead(
            file=file,
            status=status,
            text=text,
            confidence=round(confidence if not missing else 0.0, 4),
            latency_ms=round((time.perf_counter() - start) * 1000, 1),
            reason=reason,
            field_confidence={n: round(confs[n], 4) for n in values if values[n] is not None},
            **values,
        )

    def _unexplained(self, frames: Sequence[FrameRead], values: dict[str, str | None]) -> bool:
        """Ink the localiser left out, or a line whose digits neither its confident fields nor
        the reported values account for: they may be a prod date or SSCC that was not read.

        A line without digits ("KEEP DRY") cannot hide either, so it never counts.
        """
        forms = [
            text
            for name in REQUIRED
            if values[name] is not None
            for text in value_forms(name, str(values[name]))
        ]
        by_field = {
            name: (str(value),) if name == "sscc" else value_forms(name, str(value))
            for name, value in values.items()
            if value is not None
        }
        # blind: the board's texture swamps the rows beside the code, so a faint line there
        # can be neither found nor ruled out by ink; the probes do not rule it out either (a
        # prod date under tape read 'EX2X', one digit, on bench seed 8000000)
        if any(fr.located.dropped or fr.located.blind for fr in frames) or _unread_line(frames):
            return True
        for fr in frames:
            for line in fr.lines:
                # a field explains its digits only if it is what the read reports: a second,
                # different lot on the carton ('(11)260615' read as '(10)260615', a prod date
                # taken for a lot and then outvoted) is ink the read does not account for
                own = [
                    f.printed
                    for f in line.fields
                    if line.fits
                    and f.value is not None
                    and f.confidence >= 0.5
                    and f.value == values.get(f.name)
                ]
                digits, covered = _cover(line.text, [*own, *forms], by_field)
                if _share(digits, covered) < 0.7 or _longest_loose(digits, covered) >= LOOSE_RUN:
                    return True
        return False

    def _print_beside(self, frames: Sequence[FrameRead]) -> str | None:
        """What the recogniser reads in the strips beside the code (``Located.probes``) when it
        reads print there: one more line (a prod date under tape or faded ink) that the
        localiser did not cut out; None when the strips read blank."""
        seen = {id(fr.located): fr for fr in frames}
        for fr in seen.values():
            if not fr.located.probes:
                continue
            recognizer = self.recognizers[fr.source]
            for probs in recognizer(fr.located.probes):
                soft = soften(probs, self.temperature)
                text, spans = ctc.greedy(soft, recognizer.charset)
                sure = [
                    ch
                    for ch, (a, b) in zip(text, spans, strict=True)
                    if ch.isdigit() and float(soft[a : b + 1].max()) >= PROBE_PEAK
                ]
                if len(sure) >= PROBE_DIGITS:
                    return text.strip()
        return None

    def _twin_odds(
        self, soft: Sequence[Sequence[npt.NDArray[np.float64]]], lot: str, twins: Sequence[str]
    ) -> float:
        """Natural log of how much more likely the frames make ``lot`` than the likeliest of
        its look-alike ``twins`` (each value's best spot on any line, summed over frames, on
        ``soft``: per frame, its lines' probabilities at the reader's temperature; 0 when none
        of them is seen)."""
        scores = self._twin_matcher.field_scores(soft, "lot", [lot, *twins], frozenset())
        return min(scores[lot] - scores[t] for t in twins)

    def _status(
        self,
        missing: list[str],
        confidence: float,
        values: dict[str, str | None],
        expect: Sequence[ASN] | None,
        frames: Sequence[FrameRead],
        soft: Sequence[Sequence[npt.NDArray[np.float64]]],
    ) -> tuple[str, str | None]:
        """Status and reason of a read; ``soft``: the frames' probabilities at the reader's
        temperature (given with an ASN)."""
        code = ErrorCode.UNREADABLE.value
        if not any(fr.lines for fr in frames):
            return UNREADABLE, f"{code}: no printed text found"
        if missing:
            return UNREADABLE, f"{code}: no {', '.join(missing)} read"
        prod, expiry = values["prod_date"], values["expiry"]
        if prod is not None and expiry is not None and prod >= expiry:
            # a carton is made before it expires: one of the two dates is misread (or the
            # expiry's line was read as a production date)
            return REVIEW, f"{code}: production date {prod} not before expiry {expiry}"
        unread = [n for n in OPTIONAL if values[n] is None and _printed(n, frames)]
        if unread:
            # an optional field is printed (its label is there) but was not read: accepting
            # would book the carton without it
            return REVIEW, f"{code}: {', '.join(unread)} printed but not read"
        if any(values[n] is None for n in OPTIONAL) and self._unexplained(frames, values):
            # some printed text was not understood; it may be the missing prod date or SSCC
            return REVIEW, f"{code}: printed text not understood (a field may be missing)"
        if expect:
            on_list = {(a.gtin, a.lot, a.expiry) for a in expect}
            key = (values["gtin"], values["lot"], values["expiry"])
            partly = any(sum(x == y for x, y in zip(key, k, strict=True)) >= 1 for k in on_list)
            if key not in on_list and partly:
                return REVIEW, f"{code}: fields match the ASN only in part"
            lot = values["lot"] or ""
            twins = sorted(
                k[1] for k in on_list if k != key and k[::2] == key[::2] and _twins(k[1], lot)
            )
            margin = self.config.calibrated_twin_margin
            if twins and self._twin_odds(soft, lot, twins) < margin:
                # lots '1907' and '19O7' for one product and date: many fonts draw 0 and O
                # alike and the recogniser was seen sure of the wrong one (0.96); only print
                # that tells them apart far beyond that lets the read through
                return REVIEW, f"{code}: the ASN lists a look-alike lot ({twins[0]})"
        if confidence < self.config.accept_threshold:
            return (
                REVIEW,
                f"{code}: confidence {confidence:.3f} below {self.config.accept_threshold}",
            )
        if any(values[n] is None for n in OPTIONAL):
            beside = self._print_beside(frames)
            if beside is not None:
                # print the localiser left out (under tape, faded, or lost in the board's
                # texture) where one more line would sit: it may be the missing field
                return REVIEW, f"{code}: print beside the code not understood ({beside!r})"
        return ACCEPTED, None


def _rival_lot(
    read: str | None, values: dict[str, str | None], expect: Sequence[ASN]
) -> str | None:
    """Another ASN lot, for the reported GTIN and expiry, at most as many edits from the open
    read's lot as the reported lot is, when the open read is near the reported lot but not it;
    or, when the open read is not near the reported lot, another that it is near.

    Near is one real edit per five characters (as in :func:`_digit_coverage`); a swap of
    look-alikes ('U' read for 'V') costs half an edit, so a read that differs from its lot only
    by look-alikes is nearer to it than to a lot with another character there."""
    got = values["lot"]
    if read is None or got is None or read == got:
        return None
    near = _edits(read, got)

    def rival(lot: str) -> bool:
        if near <= max(1, len(got) // 5):
            return _edits(read, lot) <= near
        # too garbled to be the reported lot: it still speaks against it when it is a near
        # copy of another lot ('JBNW' read, 'JBDW' listed, and the match found 'L220228' in
        # the digits of a smudged date)
        return _edits(read, lot) <= max(1, len(lot) // 5)

    rivals = sorted(
        a.lot
        for a in expect
        if a.lot != got
        and (a.gtin, a.expiry) == (values["gtin"], values["expiry"])
        and rival(a.lot)
    )
    return rivals[0] if rivals else None


def _edits(a: str, b: str) -> float:
    """Edit distance with look-alike substitutions ('U' read for 'V') at half cost."""
    return edit_distance(a, b, _swap_cost)


def _swap_cost(x: str, y: str) -> float:
    return 0.5 if _GROUPS.get(x, frozenset()) & _GROUPS.get(y, frozenset()) else 1.0


def _unread_line(frames: Sequence[FrameRead]) -> bool:
    """A line the localiser found that no recogniser read as more than a stray mark or two
    ('EO' for a prod date under a smear): print that could not be read."""
    reads: dict[tuple[int, int], bool] = {}
    for fr in frames:
        for i, line in enumerate(fr.lines):
            key = (id(fr.located), i)
            reads[key] = reads.get(key, False) or len(line.text.strip()) >= 4 or bool(line.fields)
    return not all(reads.values())


def _text(frames: Sequence[FrameRead]) -> str:
    """The ``text`` key: the recognised lines of the image with the most text, each line from
    the recogniser whose reading of it the code grammar explains best (then the first one's)."""
    by_image: dict[int, list[FrameRead]] = {}
    for fr in frames:
        by_image.setdefault(id(fr.located), []).append(fr)
    texts = []
    for reads in by_image.values():
        lines = []
        for i in range(max(len(r.lines) for r in reads)):
            options = [(r.source, r.lines[i]) for r in reads if i < len(r.lines)]
            _, best = max(options, key=lambda o: (_line_quality(o[1]), -o[0]))
            lines.append(best.text)
        texts.append("\n".join(lines))
    return max(texts, key=len) if texts else ""


def _line_quality(line: LineRead) -> tuple[bool, float]:
    """Does the grammar explain the line, and how sure are its fields (mean confidence)."""
    confs = [f.confidence for f in line.fields if f.value is not None]
    return line.fits, sum(confs) / len(confs) if confs else 0.0


# Labels that show an optional field is printed, as the recogniser spells them.
_OPTIONAL_MARKS = {
    "sscc": ("(00)", "SSCC"),
    # '日期' is in 生产日期 only (not in 有效期至); 'PR0D' is PROD with its O read as a zero
    "prod_date": ("(11)", "PROD", "PR0D", "生产", "日期"),
}


def _printed(name: str, frames: Sequence[FrameRead]) -> bool:
    text = "\n".join(fr.text.upper() for fr in frames)
    return any(mark in text for mark in _OPTIONAL_MARKS[name])


# A GS1 application identifier in brackets, as printed or as the recogniser bends the
# brackets ('<', '[', '{', '1'): its digits are a label, not part of any value. Where the
# opening bracket is lost or read as a character ('410)' for '(10)'), one of the grammar's
# AIs before a closing bracket, not inside a word or number, is still a label.
_AI_LABEL = re.compile(r"[(<\[{]\d{2,4}[)>\]}1]|(?<![0-9A-Z])[41CIL]?(?:00|01|10|11|17)[)>\]}]")
# Characters the recogniser confuses on dot-matrix print count as equal when a value is
# looked for in a line (an 'N' read as 'H' is still the ASN lot's 'N').
_GROUPS: dict[str, frozenset[int]] = {}
for _g, _chars in enumerate(LOOKALIKES):
    for _c in _chars:
        _GROUPS[_c] = _GROUPS.get(_c, frozenset()) | {_g}


def _digit_coverage(
    text: str, values: Sequence[str], labelled: Mapping[str, Sequence[str]] | None = None
) -> float:
    """Share of the digits in ``text`` inside a near-copy of one of ``values``.

    A value covers the stretch of ``text`` it matches with at most one edit per five
    characters (a misread or lost character; look-alikes are not edits), so scattered digits
    that merely also occur in a date do not count. The digits of bracketed AIs and of labels
    read with a zero ('L0T') are labels.

    ``labelled`` (field name -> the printed forms of its reported value) also lets a value
    cover a more garbled copy, one edit per three characters, but only in the stretch after
    that field's own label ('有效期至 2030/65-15' for an expiry 2030-08-15): the label says
    whose digits those are, so they cannot be a production date or SSCC that was not read.
    """
    return _share(*_cover(text, values, labelled))


def _share(digits: Sequence[int], covered: set[int]) -> float:
    return sum(1 for i in digits if i in covered) / len(digits) if digits else 1.0


def _loose_run(
    text: str, values: Sequence[str], labelled: Mapping[str, Sequence[str]] | None = None
) -> int:
    """The longest run of adjacent digits in ``text`` that no value covers (as in
    :func:`_digit_coverage`): an SSCC or a prod date whose label was lost, glued to a field
    that covers the rest of its line ('GTIN 400522849529502961': the GTIN covers 13 of 18)."""
    return _longest_loose(*_cover(text, values, labelled))


def _longest_loose(digits: Sequence[int], covered: set[int]) -> int:
    longest = run = 0
    prev = -2
    for i in digits:
        run = (run + 1 if i == prev + 1 else 1) if i not in covered else 0
        longest = max(longest, run)
        prev = i
    return longest


def _cover(
    text: str, values: Sequence[str], labelled: Mapping[str, Sequence[str]] | None
) -> tuple[list[int], set[int]]:
    """The indices of ``text``'s value digits (not labels) and of the characters the values
    cover (see :func:`_digit_coverage`)."""
    labels = {
        i
        for pattern in (_AI_LABEL, _LABEL_RE)
        for m in pattern.finditer(text.upper())
        for i in range(m.start(), m.end())
    }  # 'L0T' and 'PR0D' have no digit of a value either
    digits = [i for i, c in enumerate(text) if c.isdigit() and i not in labels]
    covered: set[int] = set()
    if not digits:
        return digits, covered
    for v in values:
        span = _near_substring(text, v, max(1, len(v) // 5))
        if span is not None:
            covered.update(range(*span))
    if labelled:
        covered |= _labelled_cover(text, labelled)
    return digits, covered


# The labels of each field as printed and as the recogniser bends them ('L0T', '有效期' with
# its last character lost, '<17)'). The stretch after one, up to the next label, is that
# field's print.
_FIELD_LABELS = {
    "gtin": r"GTIN|[(<\[{]01[)>\]}]",
    "lot": r"L[O0]T|批号|[(<\[{]10[)>\]}]",
    "expiry": r"EXP|有效期至?|BEST BY|[(<\[{]1[57][)>\]}]",
    "prod_date": r"PR[O0]D|生产日期|[(<\[{]11[)>\]}]",
    "sscc": r"SSCC|[(<\[{]00[)>\]}]",
}
_LABEL_RE = re.compile("|".join(f"(?P<{name}>{pat})" for name, pat in _FIELD_LABELS.items()))


def _labelled_cover(text: str, labelled: Mapping[str, Sequence[str]]) -> set[int]:
    """Positions of ``text`` inside a near-copy (one edit per three characters) of one of a
    field's ``labelled`` forms, looked for only between that field's label and the next
    label. A second date after the expiry's stays uncovered: only one copy is matched."""
    marks = list(_LABEL_RE.finditer(text.upper()))
    covered: set[int] = set()
    for mark, after in zip(marks, [*marks[1:], None][: len(marks)], strict=True):
        start, end = mark.end(), (after.start() if after is not None else len(text))
        for form in labelled.get(str(mark.lastgroup), ()):
            hit = _near_substring(text[start:end], form, max(1, len(form) // 3))
            if hit is not None:
                covered.update(range(start + hit[0], start + hit[1]))
                break
    return covered


def _twins(a: str, b: str) -> bool:
    """Same length, and they differ only where one has a zero and the other an O, D or Q, one
    has a one and the other an I or L, or one a five and the other an S."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x != y] if len(a) == len(b) else [()]
    return all(
        len(p) == 2 and any(d in p and set(p) <= set(g) for d, g in _TWIN_GROUPS) for p in pairs
    )


def _differ(a: str, b: str) -> bool:
    return a != b and not (_GROUPS.get(a, frozenset()) & _GROUPS.get(b, frozenset()))


def _near_substring(text: str, pattern: str, k: int) -> tuple[int, int] | None:
    """The ``[start, end)`` of the substring of ``text`` closest to ``pattern`` in edit
    distance, if that distance is at most ``k`` (Sellers' algorithm; look-alikes cost 0).

    Ties go to the earliest end, and among equal distances at one end to the earliest start.
    It runs on every line of every read (the unexplained-text check), so the inner loop avoids
    tuples, and the scan stops at the first exact (look-alike) match: nothing beats it.
    """
    if not pattern:
        return None
    m = len(pattern)
    # prev[i]: distance of pattern[:i] to the best substring ending here; starts[i]: its start
    prev = list(range(m + 1))
    starts = [0] * (m + 1)
    best_d, best = k + 1, None
    for j, ch in enumerate(text, start=1):
        cur, cur_start = [0] * (m + 1), [j] * (m + 1)
        left, left_start = 0, j
        for i in range(1, m + 1):
            # the three moves in min((d, start)) order: substitute, skip text, skip pattern
            d, st = prev[i - 1] + _differ(pattern[i - 1], ch), starts[i - 1]
            d2, st2 = prev[i] + 1, starts[i]
            if d2 < d or (d2 == d and st2 < st):
                d, st = d2, st2
            d3 = left + 1
            if d3 < d or (d3 == d and left_start < st):
                d, st = d3, left_start
            cur[i], cur_start[i] = d, st
            left, left_start = d, st
        prev, starts = cur, cur_start
        if prev[m] < best_d:
            best_d, best = prev[m], (starts[m], j)
            if best_d == 0:
                break
    return best


def _sample_crop(image: npt.NDArray[np.uint8], located: Located) -> npt.NDArray[np.uint8]:
    r = located.region
    crop = image[r.y : r.y + r.h, r.x : r.x + r.w]
    return crop if crop.size else image


def _recognizers(
    config: OcrConfig, models_dir: Path, crnn: LineRecognizer | None = None
) -> list[LineRecognizer]:
    """The configured recognisers, first the one whose charset the decoder uses."""
    pp: list[LineRecognizer] = []
    if config.recognizer != "crnn":
        pp.append(Recognizer(threads=config.threads, models_dir=models_dir, squeeze=config.squeeze))
    if config.recognizer == "ppocr":
        return pp
    from edge.vision.ocr.crnn.runtime import CrnnRecognizer

    if crnn is None:
        crnn = CrnnRecognizer(threads=config.threads, models_dir=models_dir)
    if not pp:
        return [crnn]
    # both and cascade: the CRNN reads first (its text is the text key; in a cascade PP-OCR
    # reads only what the CRNN could not accept), in PP-OCR's wider charset
    return [Remapped(crnn, pp[0].charset), *pp]


_DEFAULT: Reader | None = None
_DEFAULT_LOCK = threading.Lock()


def default_reader() -> Reader:
    """A process-wide reader with the default config (models loaded on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Reader()
        return _DEFAULT


def read_image(image: npt.NDArray[Any], expect: Sequence[ASN] | None = None) -> CartonRead:
    """Read one image (numpy, BGR or grey uint8) with the default reader."""
    return default_reader().read(image, expect)
