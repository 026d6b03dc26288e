"""Defect model figures: held-out recall / false-freeze / confusion, and latency p50/p95.

    .venv/bin/python bench/defects.py [--per-class 200] [--face-per-class 100] [--cartons 60]
                                      [--frames 300] [--model PATH] [--latency-threads 1,2]

``--model`` measures a candidate ONNX file (e.g. a fresh ``train-defect --no-manifest`` output)
instead of the manifest's ``defect`` entry, with the same frames, so the two compare directly.

Quality is measured on frames rendered from the generator's ``holdout`` domain (settings the
training set never saw: product views and carton faces) with a seed that neither training nor
its held-out split used, through the full inference path (``DefectModel.predict`` on
camera-sized BGR frames). Then the node's own view: a ``fixtures.conveyor`` video (the demo's
carton frames: printed codes, 0-50% smudges, tape, glare, some cartons damaged) with a seed the
demo does not use, scored on the frame the gate pipeline picks and on every full-view frame.

Latency is noisy: the box has 2 cores shared with other work. Medians and p95 are reported, and a
same-run reference (a trivial ONNX graph: one Add over the same input tensor, same session
options) is timed interleaved with the model so a busy machine shows up in both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.vision.defects.metrics import (
    average_precision,
    confusion,
    false_freeze_rate,
    format_confusion,
    recall,
)
from edge.vision.defects.model import DefectModel
from edge.vision.defects.verdict import Action, verdict_action
from edge.vision.session import load_session, model_entry, sha256_file
from fixtures.conveyor import ConveyorSpec, render_conveyor
from fixtures.defects import HOLDOUT, render_sample
from fixtures.defects.dataset import sample_seeds
from fixtures.defects.face import FACE_CLASSES, render_face

BENCH_SEED = 424242
CONVEYOR_SEED = 9173  # the demo uses 7; training never renders conveyor videos
BGR = cv2.COLOR_RGB2BGR


def _held_out_frames(per_class: int, face_per_class: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """(source, label, BGR frame): held-out product views, then held-out carton faces."""
    for label, seed in sample_seeds(BENCH_SEED, per_class):
        yield "product", label, cv2.cvtColor(render_sample(seed, label, HOLDOUT).image, BGR)
    for i in range(face_per_class):
        for label in FACE_CLASSES:
            rgb, _, _ = render_face(BENCH_SEED * 1_000_003 + i, label, HOLDOUT)
            yield "face", label, cv2.cvtColor(rgb, BGR)


def quality(model: DefectModel, per_class: int, face_per_class: int) -> None:
    classes = model.info.classes
    truth, pred, score, actions, sources = [], [], [], [], []
    for source, label, frame in _held_out_frames(per_class, face_per_class):
        v = model.predict(frame)
        truth.append(classes.index(label))
        pred.append(classes.index(v.top_class))
        score.append(v.defect_score)
        actions.append(verdict_action(v, model.info.freeze_threshold, model.info.review_threshold))
        sources.append(source)
    t, s, src = np.array(truth), np.array(score), np.array(sources)
    ok = classes.index("ok")
    ok_s, bad_s = s[t == ok], s[t != ok]
    th = model.info.freeze_threshold
    act = np.array([a.value for a in actions])
    print(
        f"## Held-out quality ({len(t)} frames, domain 'holdout', seed {BENCH_SEED}: "
        f"{per_class} product views and {face_per_class} carton faces per class)\n"
    )
    print("| metric | value |\n|---|---|")
    print(f"| freeze threshold (from the model file) | {th:.4f} |")
    print(f"| recall of defective (score >= freeze) | {recall(bad_s, th):.4f} |")
    print(f"| false-freeze rate of good items | {false_freeze_rate(ok_s, th):.4f} |")
    for name in ("product", "face"):
        sel_ok, sel_bad = (t == ok) & (src == name), (t != ok) & (src == name)
        print(
            f"| - {name} frames: recall / false-freeze | {recall(s[sel_bad], th):.4f} /"
            f" {false_freeze_rate(s[sel_ok], th):.4f} ({sel_bad.sum()} / {sel_ok.sum()}) |"
        )
    print(f"| good items sent to review | {np.mean(act[t == ok] == Action.REVIEW.value):.4f} |")
    print(
        f"| defective items only in review | {np.mean(act[t != ok] == Action.REVIEW.value):.4f} |"
    )
    print(f"| defective items passed | {np.mean(act[t != ok] == Action.PASS.value):.4f} |")
    print(f"| 5-class accuracy (argmax) | {np.mean(t == np.array(pred)):.4f} |")
    print(f"| average precision (defective) | {average_precision(ok_s, bad_s):.4f} |")
    # For reference only: the best this score could do here if the threshold were tuned on the
    # held-out set itself (it never is; the shipped one: validation and threshold set).
    oracle = float(np.quantile(ok_s, 0.99, method="higher")) + 1e-9
    print(
        f"| (oracle) recall at a held-out-tuned threshold with <= 1% false freezes |"
        f" {recall(bad_s, oracle):.4f} |\n"
    )
    print("Per class (share of each class's frames at or above the freeze threshold):\n")
    print("| class | frames | frozen |\n|---|---|---|")
    for i, c in enumerate(classes):
        print(f"| {c} | {int((t == i).sum())} | {np.mean(s[t == i] >= th):.4f} |")
    print("\nConfusion (rows true, columns predicted):\n")
    print(format_confusion(confusion(t, np.array(pred), len(classes)), classes))
    print()


def conveyor(model: DefectModel, cartons: int) -> None:
    """The node's own view: fixtures.conveyor video frames (the demo's cartons), unseen seed.

    Per carton, the frame the gate pipeline scores (the middle of its visible frames) and, as a
    harder check, every frame with the carton fully in view.
    """
    spec = ConveyorSpec(cartons=cartons, seed=CONVEYOR_SEED, damaged_share=0.3)
    th, rv = model.info.freeze_threshold, model.info.review_threshold
    visible: list[np.ndarray] = []
    rows: list[tuple[str, float, list[float]]] = []
    for image, done in render_conveyor(spec):
        visible.append(image)
        if done is None:
            continue
        seen = visible[-(done.last_frame - done.first_frame + 1) :]
        full = seen[spec.enter_frames : spec.enter_frames + spec.full_frames]
        mid = seen[len(seen) // 2]
        rows.append(
            (
                done.damage,
                model.predict(mid).defect_score,
                [model.predict(f).defect_score for f in full],
            )
        )
        visible = []
    ok_mid = np.array([r[1] for r in rows if r[0] == "ok"])
    bad_mid = np.array([r[1] for r in rows if r[0] != "ok"])
    ok_all = np.array([v for r in rows if r[0] == "ok" for v in r[2]])
    bad_all = np.array([v for r in rows if r[0] != "ok" for v in r[2]])
    print(
        f"## Conveyor video (fixtures.conveyor, {cartons} cartons, seed {CONVEYOR_SEED}, "
        f"{len(ok_mid)} good incl. smudged 0-50%, {len(bad_mid)} damaged)\n"
    )
    print("| frames | good cartons frozen | good sent to review | damaged frozen |")
    print("|---|---|---|---|")
    for name, o, b in (
        ("middle frame (what the gate scores)", ok_mid, bad_mid),
        ("every full-view frame", ok_all, bad_all),
    ):
        print(
            f"| {name} | {false_freeze_rate(o, th):.4f} ({int((o >= th).sum())}/{len(o)}) |"
            f" {np.mean((o >= rv) & (o < th)):.4f} |"
            f" {recall(b, th):.4f} ({int((b >= th).sum())}/{len(b)}) |"
        )
    print()


def _reference_model(path: Path, h: int, w: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, h, w])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [helper.make_node("Add", ["image", "one"], ["y"])], "ref", [x], [y], [one]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.2x reads; newer onnx writes a newer IR by default
    onnx.save(model, str(path))


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def _load(path: Path | None, threads: int) -> DefectModel:
    """The manifest's model, or the candidate at ``path`` (its own hash: a local bench run)."""
    if path is None:
        return DefectModel.load(threads=threads)
    return DefectModel.load(path, sha256=sha256_file(path), threads=threads)


def latency(frames: int, path: Path | None = None, thread_counts: tuple[int, ...] = (1, 2)) -> None:
    if path is None:
        entry = model_entry("defect")
        path, version = entry.path, entry.version
    else:
        version = _load(path, 1).version
    size = path.stat().st_size
    print(f"## Latency ({frames} frames per row, interleaved with the reference)\n")
    print(f"Model file: {path}, {size} bytes ({size / 1e6:.2f} MB), version {version}.\n")
    print(
        "| threads | frame | model p50 ms | model p95 ms | ref p50 ms | ref p95 ms |"
        " model / ref (p50) |"
    )
    print("|---|---|---|---|---|---|---|")
    sample = cv2.cvtColor(render_sample(5, "crack", HOLDOUT).image, cv2.COLOR_RGB2BGR)
    with tempfile.TemporaryDirectory() as tmp:
        for threads in thread_counts:
            model = _load(path, threads)
            ref_path = Path(tmp) / "ref.onnx"
            _reference_model(ref_path, model.info.input_height, model.info.input_width)
            ref = load_session(ref_path, sha256_file(ref_path), threads=threads)
            x = np.zeros((1, 3, model.info.input_height, model.info.input_width), np.float32)
            for name, dims in (("320x240", (320, 240)), ("1280x720", (1280, 720))):
                frame = cv2.resize(sample, dims, interpolation=cv2.INTER_LINEAR)
                m, r = [], []
                for _ in range(20):
                    model.predict(frame)
                for _ in range(frames):
                    m.append(model.predict(frame).latency_ms)
                    t0 = time.perf_counter()
                    ref.run(None, {"image": x})
                    r.append((time.perf_counter() - t0) * 1000)
                p50m, p50r = statistics.median(m), statistics.median(r)
                print(
                    f"| {threads} | {name} | {p50m:.2f} | {_pct(m, 95):.2f} | {p50r:.3f} |"
                    f" {_pct(r, 95):.3f} | {p50m / p50r:.1f} |"
                )
    print("\nmodel = letterbox + ONNX inference + softmax/heat map/box (DefectModel.predict).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=200, help="held-out product frames per class")
    ap.add_argument(
        "--face-per-class", type=int, default=100, help="held-out carton faces per class"
    )
    ap.add_argument("--cartons", type=int, default=60, help="cartons in the conveyor video")
    ap.add_argument("--frames", type=int, default=300, help="timed frames per latency row")
    ap.add_argument(
        "--model",
        type=Path,
        default=None,
        help="candidate ONNX file to measure instead of the manifest's 'defect' entry",
    )
    ap.add_argument(
        "--latency-threads",
        default="1,2",
        help="comma-separated onnxruntime thread counts for the latency rows (on a shared box, "
        "1 keeps the bench on one core)",
    )
    args = ap.parse_args()
    thread_counts = tuple(int(v) for v in args.latency_threads.split(",") if v.strip())
    started = time.perf_counter()
    model = _load(args.model, 1)
    print(f"# Defect model {model.version}\n")
    quality(model, args.per_class, args.face_per_class)
    conveyor(model, args.cartons)
    latency(args.frames, args.model, thread_counts)
    print(
        f"\n(bench took {time.perf_counter() - started:.0f} s; load average "
        f"{' '.join(f'{v:.2f}' for v in __import__('os').getloadavg())})"
    )


if __name__ == "__main__":
    main()
