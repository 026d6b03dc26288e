"""Line recognisers side by side: Dockgate's CRNN (``ocr.crnn``) vs PP-OCR (``ocr.rec``).

Both read the very same grey line crops, in the same run, through their runtime classes
(:class:`edge.vision.ocr.crnn.runtime.CrnnRecognizer` and
:class:`edge.vision.ocr.recognize.Recognizer`), decoded greedily (before any grammar):

- **validation**: synthetic lines from the generator's HOLDOUT preset, which the CRNN's
  training never saw (dot font 7x9 bold, thermal Hershey plain/triplex, other inks, boards,
  blur, noise, JPEG), smudge 0/10/20/30 % in turn, normalised as the reader normalises crops;
- **regression**: the committed sample set (``fixtures/samples/cartons``): its single-line
  crops, and the lines the reader's own line finder (:func:`edge.vision.ocr.locate.locate`)
  cuts from its 30 frames, where it finds as many lines as the truth prints (paired top to
  bottom).

Columns: lines, line exact match, character error rate, and latency per line (one line per
call, wall-clock p50/p95 and CPU p50 in ms; the machine is shared, so compare the two
recognisers within one run).

    .venv/bin/python bench/recognisers.py                # 800 validation lines
    .venv/bin/python bench/recognisers.py --lines 200    # quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.vision.ocr.crnn import LINE_CACHE
from edge.vision.ocr.crnn.data import LineSet, build_lines, holdout_specs, normalise
from edge.vision.ocr.crnn.metrics import LineScore, greedy_text, score_lines
from edge.vision.ocr.crnn.runtime import CrnnRecognizer
from edge.vision.ocr.locate import locate
from edge.vision.ocr.recognize import Recognizer
from edge.vision.session import MODELS_DIR

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / "cartons"
Gray = np.ndarray
Recognise = Callable[[Sequence[Gray]], list[np.ndarray]]


@dataclass
class Result:
    score: LineScore
    texts: list[str]
    wall_ms: list[float]
    cpu_ms: list[float]


def run(
    rec: Recognise, charset: Sequence[str], crops: Sequence[Gray], truth: Sequence[str]
) -> Result:
    texts, wall, cpu = [], [], []
    for crop in crops:
        t0, c0 = time.perf_counter(), time.process_time()
        probs = rec([crop])[0]
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        texts.append(greedy_text(probs, charset))
    return Result(score_lines(texts, truth), texts, wall, cpu)


def regression_set(samples: Path = SAMPLES) -> tuple[list[Gray], list[str], dict[str, int]]:
    """Committed crops plus the lines the reader's line finder cuts from committed frames."""
    truth = json.loads((samples / "truth.json").read_text(encoding="utf-8"))
    crops: list[Gray] = []
    texts: list[str] = []
    counts = {"crops": 0, "frame_lines": 0, "frames_skipped": 0}
    for name, t in sorted(truth.get("crops", {}).items()):
        img = np.asarray(cv2.imread(str(samples / name), cv2.IMREAD_GRAYSCALE), np.uint8)
        crops.append(normalise(img))
        texts.append(t["text"])
        counts["crops"] += 1
    for name, t in sorted(truth.get("frames", {}).items()):
        img = np.asarray(cv2.imread(str(samples / name), cv2.IMREAD_COLOR), np.uint8)
        lines = locate(img).lines
        if len(lines) != len(t["lines"]):
            counts["frames_skipped"] += 1
            continue
        crops.extend(lines)
        texts.extend(t["lines"])
        counts["frame_lines"] += len(lines)
    return crops, texts, counts


def _pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def _row(name: str, r: Result) -> str:
    s = r.score
    return (
        f"| {name} | {s.lines} | {s.exact_rate:.3f} | {s.cer:.4f} | {_pct(r.wall_ms, 50):.1f} | "
        f"{_pct(r.wall_ms, 95):.1f} | {statistics.median(r.cpu_ms):.1f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lines", type=int, default=800, help="validation lines (default 800)")
    ap.add_argument(
        "--first", type=int, default=0, help="score only the first N of those lines (0: all)"
    )
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime threads, both models")
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ap.add_argument("--crnn", type=Path, default=None, help="a CRNN .onnx not yet installed")
    ap.add_argument(
        "--cache",
        type=Path,
        default=LINE_CACHE,
        help="line cache",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    specs = holdout_specs(args.lines)  # rendered (or cached) as one set, then maybe cut
    val = build_lines(specs, cache=args.cache)
    if args.first:
        specs = specs[: args.first]
        val = LineSet(val.images[: args.first], val.texts[: args.first])
    val_crops = [normalise(im) for im in val.images]
    reg_crops, reg_texts, reg_counts = regression_set()
    print(
        f"validation: {len(val)} HOLDOUT lines ({time.perf_counter() - t0:.0f} s to render/load); "
        f"regression: {reg_counts['crops']} committed crops + {reg_counts['frame_lines']} lines "
        f"from committed frames ({reg_counts['frames_skipped']} frames skipped: line count differs)"
    )
    crnn = CrnnRecognizer(threads=args.threads, models_dir=args.models_dir, path=args.crnn)
    ppocr = Recognizer(threads=args.threads, models_dir=args.models_dir)
    figures: dict[str, Any] = {
        "crnn_version": crnn.model.version,
        "ppocr_version": ppocr.model.version,
        "threads": args.threads,
    }
    header = (
        "| set, recogniser | lines | exact | CER | wall p50 ms | wall p95 ms | CPU p50 ms |\n"
        "|---|---|---|---|---|---|---|"
    )
    rows = [header]
    for set_name, crops, truth in (
        ("validation", val_crops, val.texts),
        ("regression", reg_crops, reg_texts),
    ):
        for rec_name, rec in (("CRNN", crnn), ("PP-OCR", ppocr)):
            r = run(rec, rec.charset, crops, truth)
            rows.append(_row(f"{set_name}, {rec_name}", r))
            figures[f"{set_name}.{rec_name}"] = {
                **r.score.summary(),
                "wall_p50_ms": round(_pct(r.wall_ms, 50), 2),
                "wall_p95_ms": round(_pct(r.wall_ms, 95), 2),
                "cpu_p50_ms": round(statistics.median(r.cpu_ms), 2),
            }
            if set_name == "validation":
                for s in sorted({sp.smudge for sp in specs}):
                    idx = [i for i, sp in enumerate(specs) if sp.smudge == s]
                    sub = score_lines([r.texts[i] for i in idx], [truth[i] for i in idx])
                    figures[f"{set_name}.{rec_name}.smudge{round(s * 100)}"] = sub.summary()
    print(
        f"CRNN {figures['crnn_version']} vs PP-OCR {figures['ppocr_version']}, "
        f"{args.threads} thread(s), greedy decoding, one line per call"
    )
    print("\n".join(rows))
    print("\nvalidation by smudge (exact / CER):")
    for s in sorted({sp.smudge for sp in specs}):
        key = f"smudge{round(s * 100)}"
        c, p = figures[f"validation.CRNN.{key}"], figures[f"validation.PP-OCR.{key}"]
        print(
            f"  {round(s * 100):>2} %: CRNN {c['exact_match']:.3f} / {c['cer']:.4f}   "
            f"PP-OCR {p['exact_match']:.3f} / {p['cer']:.4f}   ({c['lines']} lines)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
