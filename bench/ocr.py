"""Carton-code OCR benchmark: accuracy, acceptance and latency per smudge bucket.

Reads generated 1280x720 frames (fixtures.cartons, seeded) at 0, 10, 20, 30, 40 and 50 %
smudge and prints, per bucket, for

- Dockgate without an ASN list,
- Dockgate with an ASN list (the carton's own line among ``--asn-size`` lines of other cartons),
- RapidOCR's default pipeline (rapidocr.RapidOCR with its bundled PP-OCRv6 files, nothing
  downloaded) on the same frames, in the same run, as the reference column; its text is parsed
  with the same grammar (edge.codes.text.parse_text) and a parse with GTIN, lot and expiry
  counts as its "accepted" read (it has no confidence gate),

these columns: frames, share ACCEPTED, field-exact accuracy of ACCEPTED reads (every field the
carton prints, prod date and SSCC included), share ACCEPTED and correct, wrong ACCEPTED count,
share of printed lines whose ``text`` is exact, latency p50 / p95 in ms per frame end to end.

The machine is shared and has 2 cores: timings are noisy, so the table shows medians and the
latency ratio to RapidOCR measured in the same run. RapidOCR takes ~1 s per frame here, so by
default it reads the first ``--ref-per-bucket`` frames of each bucket (the same frames Dockgate
reads first); ``--ref-per-bucket 0`` reads them all.

    .venv/bin/python bench/ocr.py                  # 100 frames per bucket
    .venv/bin/python bench/ocr.py --frames 20      # quick look
    .venv/bin/python bench/ocr.py --frames 40 --breakdown --ref-per-bucket -1

``--breakdown`` also prints where the frames that are not ACCEPTED and correct were lost, each
counted once, at the first stage that went wrong (see :func:`attribute`).

``--twin-odds`` fits a recogniser's ``[ocr] twin_margin`` (see edge/vision/ocr/config.py): on
each frame whose lot has a look-alike character, how much more likely the recogniser makes the
true lot than each one-swap twin of it; the margin is the worst twin's lead plus 3.

    .venv/bin/python bench/ocr.py --recognizer crnn --seed 5000000 --frames 300 --twin-odds

``--optional-bars B1,B2,...`` fits ``[ocr] optional_threshold``, the bar a production date or
SSCC must reach on its own (no ASN confirms them): it lists the most confident wrong optional
fields and, per bar, ACCEPTED and right and wrong ACCEPTED in each mode (calibration seeds).

    .venv/bin/python bench/ocr.py --recognizer crnn --seed 5100000 --frames 300 \
        --optional-bars 0.85,0.88,0.9,0.92,0.95 --threads 1

``--calibrate T1,T2,...`` fits a recogniser's temperature instead: each frame is located and
recognised once, then decoded and gated at each temperature (use another ``--seed`` than the
benchmark's, e.g. 5000000); per temperature it prints ACCEPTED and right per bucket, wrong
ACCEPTED and the most confident wrong read, without and with an ASN.

    .venv/bin/python bench/ocr.py --recognizer crnn --seed 5000000 --frames 40 \
        --calibrate 1.0,1.25,1.5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.codes.text import parse_text
from edge.vision.ocr.config import OcrConfig
from edge.vision.ocr.decode import Decoder, soften
from edge.vision.ocr.locate import Located, locate
from edge.vision.ocr.reader import _TWIN_GROUPS, ASN, CartonRead, FrameRead, Reader, _twins

BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
FIELDS = ("gtin", "lot", "expiry", "prod_date", "sscc")
REFERENCE_DAY_ISO = "2026-11-22"


@dataclass
class Tally:
    n: int = 0
    accepted: int = 0
    correct: int = 0
    wrong: int = 0
    lines: int = 0
    lines_exact: int = 0
    ms: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    wrong_examples: list[str] = field(default_factory=list)

    def add(
        self, accepted: bool, ok: bool, ms: float, cpu: float, text: str, truth_lines: list[str]
    ) -> None:
        self.n += 1
        self.ms.append(ms)
        self.cpu.append(cpu)
        if accepted:
            self.accepted += 1
            self.correct += ok
            self.wrong += not ok
        got = text.split("\n")
        self.lines += len(truth_lines)
        self.lines_exact += sum(1 for t in truth_lines if t in got)

    def row(self) -> list[str]:
        if not self.n:
            return ["-"] * 8
        acc = self.accepted / self.n
        exact = self.correct / self.accepted if self.accepted else float("nan")
        return [
            f"{100 * acc:.1f}",
            "-" if not self.accepted else f"{100 * exact:.1f}",
            f"{100 * self.correct / self.n:.1f}",
            str(self.wrong),
            f"{100 * self.lines_exact / max(self.lines, 1):.1f}",
            f"{np.percentile(self.ms, 50):.0f}",
            f"{np.percentile(self.ms, 95):.0f}",
            f"{np.percentile(self.cpu, 50):.0f}",
        ]


# Stages a frame can be lost at, in pipeline order (see attribute()); "ok" is ACCEPTED and right.
STAGES = (
    "ok",
    "region",
    "line missed",
    "lines merged",
    "line cut",
    "recog",
    "parse/fuse",
    "asn record",
    "gate:conf",
    "gate:unexpl",
    "gate:other",
)
REGION_COVER = 0.9  # share of the code's truth box the located region must hold
LINE_OVERLAP = 0.5  # share of a truth line's height a crop must hold to be its crop
CUT_TOLERANCE = 0.5  # a crop may miss this many cap heights of a truth line's ends


@dataclass
class Breakdown:
    """Per bucket and mode: frames per stage, wrong ACCEPTED per stage, and the confidences
    of right reads that the gate sent to REVIEW for low confidence."""

    stages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    wrong: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    review_conf: list[float] = field(default_factory=list)
    n: int = 0


def _to_region(located: Located, pts: Any) -> np.ndarray:
    """Frame points in the located region's deskewed coordinates (as locate.locate rotates)."""
    r = located.region
    p = np.asarray(pts, np.float64).reshape(-1, 2) - [r.x, r.y]
    if abs(r.angle) >= 0.25:  # locate._rotate skips smaller angles
        m = cv2.getRotationMatrix2D((r.w / 2, r.h / 2), r.angle, 1.0)
        p = p @ m[:, :2].T + m[:, 2]
    return p


def locate_stage(located: Located, truth: dict[str, Any]) -> str | None:
    """The localisation fault of a frame, judged against the generator's truth boxes: the
    region misses part of the code, a printed line has no crop, two lines share one crop, or
    a crop cuts a line (more than CUT_TOLERANCE cap heights off an end, or a quarter of its
    height). None when every printed line has its own whole crop."""
    r = located.region
    quad = np.asarray(truth["quad"], np.float64)
    qx0, qy0 = quad.min(axis=0)
    qx1, qy1 = quad.max(axis=0)
    ix = max(0.0, min(qx1, r.x + r.w) - max(qx0, r.x))
    iy = max(0.0, min(qy1, r.y + r.h) - max(qy0, r.y))
    if ix * iy < REGION_COVER * (qx1 - qx0) * (qy1 - qy0):
        return "region"
    boxes = located.boxes
    owner: list[int] = []
    for lq in truth["line_quads"]:
        p = _to_region(located, lq)
        tx0, ty0 = p.min(axis=0)
        tx1, ty1 = p.max(axis=0)
        th = max(ty1 - ty0, 1.0)
        overlaps = [max(0.0, min(ty1, b[3]) - max(ty0, b[1])) / th for b in boxes]
        k = int(np.argmax(overlaps)) if overlaps else -1
        if k < 0 or overlaps[k] < LINE_OVERLAP:
            return "line missed"
        owner.append(k)
        b = boxes[k]
        cap = float(truth["char_height_px"])
        if tx0 < b[0] - CUT_TOLERANCE * cap or tx1 > b[2] + CUT_TOLERANCE * cap:
            return "line cut"
        if overlaps[k] < 0.75:
            return "line cut"
    if len(set(owner)) < len(owner):
        return "lines merged"
    return None


def attribute(
    read: CartonRead,
    ok: bool,
    loc_fault: str | None,
    truth: dict[str, Any],
    asn: list[ASN] | None,
) -> str:
    """The first stage at which a frame was lost ("ok" if ACCEPTED and right).

    In order: localisation (``loc_fault``); then, if every field is right but the status is
    not ACCEPTED, the gate (by its reason: low confidence, unexplained text, other rules);
    with an ASN, a read that reports another carton's ASN line; then the recogniser if a
    printed line is not exactly among the recognised lines (``text``), else the decoder
    (grammar, check-digit repair, fusion) lost a line the recogniser read right.
    """
    if read.status == "ACCEPTED" and ok:
        return "ok"
    if loc_fault is not None:
        return loc_fault
    if ok:
        reason = read.reason or ""
        if "confidence" in reason:
            return "gate:conf"
        if "not understood" in reason:
            return "gate:unexpl"
        return "gate:other"
    if asn is not None:
        key = (read.gtin, read.lot, read.expiry)
        own = (str(truth["gtin"]), str(truth["lot"]), str(truth["expiry"]))
        if key != own and key in {(a.gtin, a.lot, a.expiry) for a in asn}:
            return "asn record"
    got = read.text.split("\n")
    if all(line in got for line in truth["lines"]):
        return "parse/fuse"
    return "recog"


def print_breakdown(breakdowns: dict[tuple[str, float], Breakdown], recognizer: str) -> None:
    print()
    print(f"Loss breakdown ({recognizer}): % of frames by the first stage that went wrong")
    print("(ok = ACCEPTED and right; region/line missed/merged/cut: the localiser against the")
    print("generator's truth boxes; recog: a printed line is not among the recognised lines;")
    print("parse/fuse: every line recognised exactly, fields still wrong; asn record: another")
    print("carton's ASN line reported; gate:*: every field right but not ACCEPTED, by reason;")
    print("wrong: of those frames, wrong ACCEPTED; conf50: median confidence of gate:conf reads)")
    for mode in ("dockgate", "dockgate+asn"):
        print()
        print(f"| {mode} | " + " | ".join(STAGES) + " | wrong | conf50 |")
        print("|" + "---|" * (len(STAGES) + 3))
        total = Breakdown()
        for b in BUCKETS:
            bd = breakdowns[mode, b]
            total.n += bd.n
            for k in STAGES:
                total.stages[k] += bd.stages[k]
                total.wrong[k] += bd.wrong[k]
            total.review_conf += bd.review_conf
            _breakdown_row(f"{b:.0%}", bd)
        _breakdown_row("all", total)


def _breakdown_row(name: str, bd: Breakdown) -> None:
    n = max(bd.n, 1)
    cells = [f"{100 * bd.stages[k] / n:.1f}" for k in STAGES]
    wrong = ", ".join(f"{k} {v}" for k, v in bd.wrong.items() if v) or "0"
    conf = f"{np.median(bd.review_conf):.2f}" if bd.review_conf else "-"
    print(f"| {name} | " + " | ".join(cells) + f" | {wrong} | {conf} |")


Recognised = tuple[float, Located, list[Any], list[ASN], dict[str, str | None]]


def recognised(reader: Reader, args: Any) -> list[Recognised]:
    """Each frame located and recognised once (smudge, located lines, the recogniser's output,
    the frame's ASN, the true fields), for re-running the decoder and gate on."""
    cached: list[Recognised] = []
    recent: list[dict[str, Any]] = []
    for smudge, seed, image, truth in frames(args.frames, args.seed):
        loc = locate(image)
        asn = make_asn(truth, recent, seed)
        cached.append((smudge, loc, reader.recognizer(loc.lines), asn, truth_fields(truth)))
        recent = [truth, *recent][: args.asn_size - 1]
    return cached


def calibrate(reader: Reader, args: Any, temperatures: list[float]) -> None:
    """Decoder and gate re-run at each temperature on recogniser outputs computed once."""
    cached = recognised(reader, args)
    print(
        f"calibration: {args.frames} frames per bucket, seed {args.seed}, recognizer "
        f"{reader.config.recognizer}; ACCEPTED and right % per bucket "
        + "/".join(f"{b:.0%}" for b in BUCKETS)
        + ", all, wrong ACCEPTED, most confident wrong read (any status)"
    )
    for t in temperatures:
        reader.temperature = t
        reader.decoder = Decoder(
            reader.recognizer.charset,
            temperature=t,
            lot_lookalike=reader.config.lot_lookalike,
            repair_cap=reader.config.repair_cap,
        )
        cells = []
        for mode in ("open", "asn"):
            right = dict.fromkeys(BUCKETS, 0)
            wrong, worst, n = 0, 0.0, dict.fromkeys(BUCKETS, 0)
            for smudge, loc, probs, asn, want in cached:
                lines = tuple(reader.decoder.line(p) for p in probs)
                fr = FrameRead(loc, lines, tuple(probs), 0)
                r = reader._result([fr], asn if mode == "asn" else None, None, time.perf_counter())
                ok = all(getattr(r, k) == want[k] for k in FIELDS)
                n[smudge] += 1
                if r.status == "ACCEPTED":
                    right[smudge] += ok
                    wrong += not ok
                    if not ok and args.show_wrong:
                        print(f"WRONG T {t} {mode} {smudge:.0%}: {r} vs {want}", flush=True)
                if not ok and r.gtin and r.lot and r.expiry:
                    worst = max(worst, r.confidence)
            per = " ".join(f"{100 * right[b] / max(n[b], 1):.0f}" for b in BUCKETS)
            total = 100 * sum(right.values()) / max(sum(n.values()), 1)
            cells.append(f"{mode}: {per} all {total:.1f} %, wrong {wrong}, worst {worst:.2f}")
        print(f"T {t}: " + " | ".join(cells), flush=True)


def optional_bars(reader: Reader, args: Any, bars: list[float]) -> None:
    """Fit ``[ocr] optional_threshold``: the confidence a prod date or SSCC needs on its own.

    Each frame is read once in each mode with the bar at its top (0.9999); the bar is checked
    last, so a read stopped by it alone would be ACCEPTED at any bar its weakest optional
    field reaches. Prints the most confident wrong optional fields (on any read with GTIN, lot
    and expiry: the fitting rule) and, per bar, ACCEPTED and right and wrong ACCEPTED."""
    top = reader.config.model_copy(update={"optional_threshold": 0.9999})
    reader.config = top
    cached = recognised(reader, args)
    wrong_fields: list[tuple[float, str, str, str | None, str | None, float]] = []
    # per mode: (right if accepted, weakest optional confidence or None, accepted at the top)
    outcomes: dict[str, list[tuple[bool, float | None, bool]]] = {"open": [], "asn": []}
    # weakest optional confidence of reads stopped by the bar alone that misread one of them
    misread: list[float] = []
    for smudge, loc, probs, asn, want in cached:
        lines = tuple(reader.decoder.line(p) for p in probs)
        fr = FrameRead(loc, lines, tuple(probs), 0)
        for mode in ("open", "asn"):
            r = reader._result([fr], asn if mode == "asn" else None, None, time.perf_counter())
            ok = all(getattr(r, k) == want[k] for k in FIELDS)
            if r.gtin and r.lot and r.expiry:
                wrong_fields += [
                    (r.field_confidence[n], mode, n, getattr(r, n), want[n], smudge)
                    for n in ("prod_date", "sscc")
                    if getattr(r, n) is not None and getattr(r, n) != want[n]
                ]
            opt = [r.field_confidence[n] for n in ("prod_date", "sscc") if getattr(r, n)]
            barred = r.status == "REVIEW" and (r.reason or "").endswith("(no ASN confirms it)")
            weakest = min(opt) if barred and opt else None
            outcomes[mode].append((ok, weakest, r.status == "ACCEPTED"))
            if weakest is not None and any(
                getattr(r, n) not in (None, want[n]) for n in ("prod_date", "sscc")
            ):
                misread.append(weakest)
    print(
        f"optional bar: seed {args.seed}, {args.frames} frames per bucket, recognizer "
        f"{reader.config.recognizer} at temperature {reader.temperature}; "
        f"{len(wrong_fields)} wrong prod dates / SSCCs on reads with GTIN, lot and expiry"
    )
    print("Most confident wrong optional fields (confidence, mode, field, read, truth, smudge):")
    for conf, mode, name, got, want_v, smudge in sorted(wrong_fields, reverse=True)[:8]:
        print(f"  {conf:.3f}  {mode}  {name}  {got}  {want_v}  {smudge:.0%}")
    print(
        "Most confident misread prod date or SSCC that only the bar stops (the fitting rule: "
        "the bar is this plus 0.03, at least accept_threshold): "
        + (f"{max(misread):.3f}" if misread else "none")
    )
    print()
    print("| bar | open: ACCEPTED and right | wrong | ASN: ACCEPTED and right | wrong |")
    print("|---|---|---|---|---|")
    for bar in bars:
        cells = []
        for mode in ("open", "asn"):
            acc = [(ok, w) for ok, w, top_ok in outcomes[mode] if top_ok or (w or 0.0) >= bar]
            right = sum(ok for ok, _ in acc)
            n = len(outcomes[mode])
            cells += [f"{100 * right / max(n, 1):.1f} %", str(len(acc) - right)]
        print(f"| {bar} | " + " | ".join(cells) + " |")


def lot_twins(lot: str) -> list[str]:
    """Every lot that differs from ``lot`` by one look-alike swap the reader's twin rule knows
    (a zero and an O, D or Q; a one and an I or L; a five and an S)."""
    out = {
        lot[:i] + alt + lot[i + 1 :]
        for i, ch in enumerate(lot)
        for _, group in _TWIN_GROUPS
        if ch in group
        for alt in group
        if alt != ch
    }
    return sorted(t for t in out if _twins(t, lot))


def twin_odds(reader: Reader, args: Any) -> None:
    """Fit ``[ocr] twin_margin``: on each frame, the log-odds of the carton's true lot over
    each of its look-alike twins (:func:`lot_twins`). A twin favoured over the truth by more
    than a margin is a wrong read that margin would let through (if the ASN listed the twin)."""
    pairs: list[tuple[float, str, str, float]] = []
    n_frames = 0
    for smudge, _seed, image, truth in frames(args.frames, args.seed):
        lot = str(truth["lot"])
        twins = lot_twins(lot)
        if not twins:
            continue
        n_frames += 1
        fr = reader._frame(image)
        soft = [[soften(p, reader.temperature) for p in fr.probs]]
        pairs += [(reader._twin_odds(soft, lot, [t]), lot, t, smudge) for t in twins]
    print(
        f"twin odds: seed {args.seed}, {args.frames} frames per bucket, recognizer "
        f"{reader.config.recognizer} at temperature {reader.temperature}; {n_frames} frames "
        f"whose lot has a look-alike character, {len(pairs)} (lot, twin) pairs"
    )
    print()
    print("| margin | twins beating the truth by more | truth beating its twins by at least |")
    print("|---|---|---|")
    for m in (2, 3, 4, 5, 6, 7, 8, 9, 10, 12):
        wrong = sum(o < -m for o, *_ in pairs)
        right = sum(o >= m for o, *_ in pairs)
        print(f"| {m} | {wrong} | {right} ({100 * right / max(len(pairs), 1):.0f} %) |")
    print()
    print("Twins most favoured over the truth (log-odds, true lot, twin, smudge):")
    for o, lot, t, smudge in sorted(pairs)[:8]:
        print(f"  {o:7.2f}  {lot}  {t}  {smudge:.0%}")


def frames(per_bucket: int, seed: int) -> Iterator[tuple[float, int, np.ndarray, dict[str, Any]]]:
    from fixtures.cartons import frame_seed, generate_frame

    for smudge in BUCKETS:
        for i in range(per_bucket):
            fseed = frame_seed(seed, round(smudge * 100), i)
            image, truth = generate_frame(fseed, smudge=smudge)
            yield smudge, fseed, image, truth


def truth_fields(truth: dict[str, Any]) -> dict[str, str | None]:
    return {k: (str(truth[k]) if truth.get(k) is not None else None) for k in FIELDS}


def make_asn(truth: dict[str, Any], others: list[dict[str, Any]], seed: int) -> list[ASN]:
    """The carton's line among the lines of ``others`` (one truck), each with three decoys:
    near-miss lots (look-alike swapped), same GTIN other lot, same lot other expiry."""
    from fixtures.cartons import asn_for

    lines = asn_for([truth, *others], decoys=3, seed=seed)
    return [ASN(x["gtin"], x["lot"], x["expiry"]) for x in lines]


def rapidocr_reader() -> Callable[[np.ndarray], tuple[str, dict[str, str | None], bool]]:
    """RapidOCR's default pipeline on its bundled files; returns text, fields, complete."""
    import logging

    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "error"})
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    ref_day = __import__("datetime").date.fromisoformat(REFERENCE_DAY_ISO)

    def read(image: np.ndarray) -> tuple[str, dict[str, str | None], bool]:
        out = engine(image)
        texts = list(getattr(out, "txts", None) or ())
        text = "\n".join(texts)
        parsed = parse_text(text, today=ref_day, max_lines=max(3, len(texts)))
        got: dict[str, str | None] = dict.fromkeys(FIELDS)
        for m in parsed.matches:
            v = m.value
            got[m.field] = v if isinstance(v, str) else v.isoformat()
        complete = all(got[k] for k in ("gtin", "lot", "expiry"))
        return text, got, complete

    return read


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=100, help="frames per smudge bucket")
    ap.add_argument("--ref-per-bucket", type=int, default=20, help="RapidOCR frames per bucket")
    ap.add_argument("--asn-size", type=int, default=10, help="cartons per ASN (x4 with decoys)")
    ap.add_argument("--seed", type=int, default=4_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--recognizer",
        choices=("ppocr", "crnn", "both", "cascade"),
        default=None,
        help="the [ocr] recognizer to bench (default: the config default)",
    )
    ap.add_argument("--json", type=Path, help="also write the raw tallies here")
    ap.add_argument("--show-wrong", action="store_true", help="print every wrong ACCEPTED read")
    ap.add_argument(
        "--breakdown",
        action="store_true",
        help="also print where the frames not ACCEPTED and right were lost, per stage",
    )
    ap.add_argument(
        "--calibrate",
        default="",
        help="comma-separated temperatures: fit the recogniser's temperature instead",
    )
    ap.add_argument(
        "--twin-odds",
        action="store_true",
        help="fit the recogniser's twin margin instead (use the calibration seed)",
    )
    ap.add_argument(
        "--optional-bars",
        default="",
        help="comma-separated bars: fit the prod date / SSCC bar instead (calibration seeds)",
    )
    args = ap.parse_args(argv)

    cfg = OcrConfig(threads=args.threads)
    if args.recognizer:
        cfg = cfg.model_copy(update={"recognizer": args.recognizer})
    reader = Reader(cfg)
    if args.calibrate:
        calibrate(reader, args, [float(t) for t in args.calibrate.split(",")])
        return 0
    if args.optional_bars:
        optional_bars(reader, args, [float(b) for b in args.optional_bars.split(",")])
        return 0
    if args.twin_odds:
        twin_odds(reader, args)
        return 0
    ref = rapidocr_reader() if args.ref_per_bucket >= 0 else None
    ref_n = args.ref_per_bucket or args.frames
    systems = ("dockgate", "dockgate+asn", "rapidocr")
    tallies = {(s, b): Tally() for s in systems for b in BUCKETS}
    breakdowns = {(s, b): Breakdown() for s in systems[:2] for b in BUCKETS}
    recent: list[dict[str, Any]] = []
    t_start = time.time()
    for smudge, seed, image, truth in frames(args.frames, args.seed):
        want = truth_fields(truth)
        lines = list(truth["lines"])
        c0 = time.process_time()
        r = reader.read(image)
        cpu = (time.process_time() - c0) * 1000
        ok = all(getattr(r, k) == want[k] for k in FIELDS)
        tallies["dockgate", smudge].add(
            r.status == "ACCEPTED", ok, r.latency_ms, cpu, r.text, lines
        )
        if r.status == "ACCEPTED" and not ok:
            tallies["dockgate", smudge].wrong_examples.append(f"{seed}: {r} vs {want}")
        asn = make_asn(truth, recent, seed)
        c0 = time.process_time()
        ra = reader.read(image, asn)
        cpu_a = (time.process_time() - c0) * 1000
        ok_a = all(getattr(ra, k) == want[k] for k in FIELDS)
        t_asn = tallies["dockgate+asn", smudge]
        t_asn.add(ra.status == "ACCEPTED", ok_a, ra.latency_ms, cpu_a, ra.text, lines)
        if ra.status == "ACCEPTED" and not ok_a:
            tallies["dockgate+asn", smudge].wrong_examples.append(f"{seed}: {ra} vs {want}")
        recent = [truth, *recent][: args.asn_size - 1]
        if args.breakdown:
            loc_fault = locate_stage(locate(image), truth)
            for mode, rr, good, listed in (
                ("dockgate", r, ok, None),
                ("dockgate+asn", ra, ok_a, asn),
            ):
                bd = breakdowns[mode, smudge]
                stage = attribute(rr, good, loc_fault, truth, listed)
                bd.n += 1
                bd.stages[stage] += 1
                bd.wrong[stage] += rr.status == "ACCEPTED" and not good
                if stage == "gate:conf":
                    bd.review_conf.append(rr.confidence)
        if ref is not None and tallies["rapidocr", smudge].n < ref_n:
            t0, c0 = time.perf_counter(), time.process_time()
            text, got, complete = ref(image)
            ms = (time.perf_counter() - t0) * 1000
            cpu_r = (time.process_time() - c0) * 1000
            tallies["rapidocr", smudge].add(complete, got == want, ms, cpu_r, text, lines)
    elapsed = time.time() - t_start
    print_table(tallies, systems, args, elapsed)
    if args.breakdown:
        print_breakdown(breakdowns, args.recognizer or OcrConfig().recognizer)
    if args.show_wrong:
        for (s, b), t in tallies.items():
            for ex in t.wrong_examples:
                print(f"WRONG {s} {b:.0%}: {ex}")
    if args.json:
        raw = {f"{s}@{b}": t.__dict__ for (s, b), t in tallies.items()}
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    return 0


def print_table(
    tallies: dict[tuple[str, float], Tally], systems: tuple[str, ...], args: Any, elapsed: float
) -> None:
    heads = ["acc%", "exact%", "acc+ok%", "wrong", "text%", "p50", "p95", "cpu50"]
    print(
        f"OCR bench: {args.frames} frames per bucket (RapidOCR: first "
        f"{args.ref_per_bucket or args.frames}), ASN of {args.asn_size} cartons + 3 decoys each, "
        f"{args.threads} threads, recognizer {args.recognizer or OcrConfig().recognizer}, "
        f"{elapsed:.0f} s"
    )
    print("columns: acc% = share ACCEPTED; exact% = field-exact among ACCEPTED; acc+ok% = share")
    print("ACCEPTED and correct; wrong = wrong ACCEPTED; text% = printed lines read exactly;")
    print("p50/p95 = wall ms per frame end to end (shared 2-core machine: noisy, see the ratio);")
    print("cpu50 = median CPU ms per frame, all threads (less sensitive to other load)")
    print()
    header = "| smudge | " + " | ".join(f"{s} {h}" for s in systems for h in heads) + " |"
    print(header)
    print("|" + "---|" * (1 + len(systems) * len(heads)))
    for b in BUCKETS:
        cells = [c for s in systems for c in tallies[s, b].row()]
        print(f"| {b:.0%} | " + " | ".join(cells) + " |")
    total = {s: Tally() for s in systems}
    for (s, _), t in tallies.items():
        for k in ("n", "accepted", "correct", "wrong", "lines", "lines_exact"):
            setattr(total[s], k, getattr(total[s], k) + getattr(t, k))
        total[s].ms += t.ms
        total[s].cpu += t.cpu
    print("| all | " + " | ".join(c for s in systems for c in total[s].row()) + " |")
    print()
    d, r = total["dockgate"].ms, total["rapidocr"].ms
    if d and r:
        print(
            f"latency, same run: Dockgate p50 {np.median(d):.0f} ms, RapidOCR p50 "
            f"{np.median(r):.0f} ms, ratio {np.median(r) / np.median(d):.1f}x faster"
        )
        dc, rc = np.median(total["dockgate"].cpu), np.median(total["rapidocr"].cpu)
        print(f"CPU per frame, same run: Dockgate {dc:.0f} ms, RapidOCR {rc:.0f} ms")
    wrong = sum(total[s].wrong for s in ("dockgate", "dockgate+asn"))
    print(f"wrong ACCEPTED in the whole benchmark (Dockgate, both modes): {wrong}")


if __name__ == "__main__":
    raise SystemExit(main())
