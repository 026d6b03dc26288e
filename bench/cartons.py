"""Carton-frame generator speed: ms per 1280x720 frame (median, p95) and per crop.

    .venv/bin/python bench/cartons.py [--frames 120] [--seed 0]

The machine has 2 cores shared with other work, so timings are noisy. Medians and p95 are
reported, and a same-run reference is timed interleaved with the generator: one JPEG encode +
decode of a 1280x720 frame at quality 90 (a fixed, known cost that every frame also pays), so
a busy machine shows up in both columns and the ratio stays meaningful. The CPU column is this
process's CPU time per frame (all threads): less sensitive to waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures.cartons import HOLDOUT, TRAIN, frame_seed, generate_crop, generate_frame

BUCKETS = (0, 10, 20, 30, 40, 50)


def _reference(img: np.ndarray) -> float:
    t = time.perf_counter()
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert ok
    return (time.perf_counter() - t) * 1000


def _p95(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=120, help="frames per settings preset")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    # warm caches (texture banks, glyphs) outside the timing; the reference encodes this frame
    reference_frame, _ = generate_frame(0)
    generate_frame(0, settings=HOLDOUT)
    rows = []
    for name, settings, fn in (
        ("frame train", TRAIN, generate_frame),
        ("frame holdout", HOLDOUT, generate_frame),
        ("crop train", TRAIN, generate_crop),
    ):
        gen: list[float] = []
        cpu: list[float] = []
        ref: list[float] = []
        img = reference_frame
        for i in range(args.frames):
            b = BUCKETS[i % len(BUCKETS)]
            t, c = time.perf_counter(), time.process_time()
            out, _ = fn(frame_seed(args.seed, b, i), smudge=b / 100, settings=settings)
            gen.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            if out.shape == img.shape:
                img = out
            ref.append(_reference(img))
        rows.append((name, gen, cpu, ref))
    print(f"carton generator, {args.frames} per row, buckets {BUCKETS} (2 shared cores: noisy)")
    print()
    print(
        "| what | median ms | p95 ms | mean ms | CPU median ms | ref median ms (JPEG enc+dec) "
        "| median / ref |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, gen, cpu, ref in rows:
        med, rmed = statistics.median(gen), statistics.median(ref)
        print(
            f"| {name} | {med:.1f} | {_p95(gen):.1f} | {statistics.fmean(gen):.1f} "
            f"| {statistics.median(cpu):.1f} | {rmed:.1f} | {med / rmed:.1f}x |"
        )
    print()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
