"""What int8 quantisation costs the line recognisers: ``ocr.rec`` (PP-OCR) and ``ocr.crnn``.

Each recogniser is quantised, in one run and into a temporary directory, with onnxruntime's own
tools (after :func:`onnxruntime.quantization.shape_inference.quant_pre_process`):

- **int8 dynamic**: :func:`~onnxruntime.quantization.quantize_dynamic`, int8 weights of the
  MatMul/Gemm/LSTM/Attention nodes, activations quantised on the fly (convolutions stay float);
- **int8 static**: :func:`~onnxruntime.quantization.quantize_static`, QDQ format, per-channel
  int8 weights, uint8 activations, MinMax ranges calibrated on ``--calib`` lines of the CRNN
  generator's *training* domain (:func:`edge.vision.ocr.crnn.data.train_specs`, never the
  held-out lines), each normalised as the reader normalises a crop and turned into the input
  tensor by the recogniser's own ``prepare``; ``--static-ops`` picks the node types quantised
  (default Conv/MatMul/Gemm; ``all``: the tool's default list, elementwise ops included).

Every variant then runs through its runtime class (:class:`edge.vision.ocr.recognize.Recognizer`
from a temporary models directory with its own manifest; :class:`~edge.vision.ocr.crnn.runtime.
CrnnRecognizer` from ``path``), on the crops of ``bench/recognisers.py``: ``--lines`` held-out
synthetic lines (HOLDOUT preset, smudge 0/10/20/30 %) and the committed regression set,
greedy decoding. A method that fails on a model (unsupported op, a session that will not load)
is reported in its row instead of stopping the run.

Columns: file size, held-out line exact match and CER, regression exact match, latency per
line (one line per call, wall-clock p50/p95 ms) and per call of 8 held-out lines (p50 ms), on
``--threads`` onnxruntime threads (default 1), and the median of the per-call latency ratios to
float32 (line / batch). The variants of a recogniser are interleaved call by call (the order
rotating), so that the shared machine's noise hits them alike.

    .venv/bin/python bench/ocr_int8.py                       # 400 held-out lines
    .venv/bin/python bench/ocr_int8.py --lines 100 --calib 50   # quick look
    .venv/bin/python bench/ocr_int8.py --keep /tmp/int8      # keep the int8 .onnx files
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.recognisers import regression_set
from edge.vision.ocr.crnn import LINE_CACHE
from edge.vision.ocr.crnn.data import build_lines, holdout_specs, normalise, train_specs
from edge.vision.ocr.crnn.metrics import greedy_text, score_lines
from edge.vision.ocr.crnn.prep import batch_input
from edge.vision.ocr.crnn.runtime import MODEL_NAME as CRNN_NAME
from edge.vision.ocr.crnn.runtime import CrnnRecognizer
from edge.vision.ocr.recognize import MODEL_NAME as REC_NAME
from edge.vision.ocr.recognize import LineRecognizer, Recognizer
from edge.vision.session import model_entry, sha256_file

Gray = npt.NDArray[np.uint8]
Feed = dict[str, npt.NDArray[np.float32]]
BATCH = 8
DYNAMIC_OPS = ["MatMul", "Gemm", "LSTM", "Attention"]
STATIC_OPS = "Conv,MatMul,Gemm"


@dataclass
class Variant:
    """One model file of a recogniser, loaded (``rec``) or not (``error`` says why)."""

    name: str
    path: Path | None = None
    rec: LineRecognizer | None = None
    error: str = ""
    texts: list[str] = field(default_factory=list)
    reg_texts: list[str] = field(default_factory=list)
    line_ms: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)


def _why(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".replace("|", "/").split())
    return text if len(text) <= 300 else text[:297] + "..."


def _single_threaded_calibration() -> None:
    """The calibrator opens its own session with onnxruntime's default thread count; one here."""
    import onnxruntime as ort
    from onnxruntime.quantization import calibrate

    def create(self: Any) -> None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.infer_session = ort.InferenceSession(
            self.augmented_model_path, sess_options=opts, providers=self.execution_providers
        )

    calibrate.CalibraterBase.create_inference_session = create


class Feeds:
    """onnxruntime's CalibrationDataReader over prepared input tensors, one line per run."""

    def __init__(self, name: str, tensors: Sequence[npt.NDArray[np.float32]]) -> None:
        self.name = name
        self.it: Iterator[npt.NDArray[np.float32]] = iter(tensors)

    def get_next(self) -> Feed | None:
        x = next(self.it, None)
        return None if x is None else {self.name: x}


def _copy_metadata(src: Path, dst: Path) -> None:
    """The runtime classes read the charset (and the CRNN its height/stride) from metadata."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    proto = onnx.load(str(dst))
    if {p.key: p.value for p in proto.metadata_props} == meta:
        return
    del proto.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(dst))


def preprocess(src: Path, dst: Path) -> tuple[Path, str]:
    """``quant_pre_process`` into ``dst`` (retried with symbolic dims merged, then without
    symbolic shape inference), then, below opset 13, ONNX's version converter to 13: per-channel
    QDQ needs ``DequantizeLinear``'s ``axis``. Returns the model to quantise and what was done.
    """
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    notes, out = [], src
    tries: list[dict[str, bool]] = [{}, {"auto_merge": True}, {"skip_symbolic_shape": True}]
    cwd = Path.cwd()
    os.chdir(dst.parent)  # failed symbolic inference leaves its temp files in the cwd
    try:
        for kwargs in tries:
            try:
                quant_pre_process(str(src), str(dst), **kwargs)
                out = dst
                notes.append("ok" + (f" with {kwargs}" if kwargs else ""))
                break
            except Exception as exc:  # the tools raise many types; report, do not stop
                notes.append(f"{kwargs or 'default'} failed ({_why(exc)})")
    finally:
        os.chdir(cwd)
    proto = onnx.load(str(out))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        try:
            proto = version_converter.convert_version(proto, 13)
            onnx.checker.check_model(proto)
            out = dst.with_name(dst.stem + ".opset13.onnx")
            onnx.save(proto, str(out))
            notes.append(f"opset {opset} -> 13")
        except Exception as exc:
            notes.append(f"opset {opset} -> 13 failed ({_why(exc)})")
    return out, "; ".join(notes)


def quantise(
    method: str, src: Path, dst: Path, calib: Callable[[], Feeds], static_ops: str, meta: Path
) -> None:
    """Write ``src`` quantised by ``method`` (``dynamic`` | ``static``) to ``dst``, with the
    metadata of ``meta`` (the installed model)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    dst.parent.mkdir(parents=True, exist_ok=True)
    if method == "dynamic":
        quantize_dynamic(src, dst, op_types_to_quantize=DYNAMIC_OPS, weight_type=QuantType.QInt8)
    else:
        ops = None if static_ops == "all" else static_ops.split(",")
        quantize_static(
            src,
            dst,
            calib(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=ops,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    _copy_metadata(meta, dst)


def load(kind: str, path: Path, threads: int) -> LineRecognizer:
    """A variant through its runtime class (PP-OCR: from a models dir with its own manifest)."""
    if kind == CRNN_NAME:
        return CrnnRecognizer(threads=threads, path=path)
    entry = model_entry(REC_NAME)
    manifest = {
        "schema": 1,
        "models": {
            REC_NAME: {
                "file": path.relative_to(path.parents[1]).as_posix(),
                "version": f"{entry.version}-{path.parent.name}",
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
            }
        },
    }
    (path.parents[1] / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return Recognizer(threads=threads, models_dir=path.parents[1])


def build_variants(
    kind: str,
    work: Path,
    calib_tensors: Sequence[npt.NDArray[np.float32]],
    threads: int,
    static_ops: Sequence[str],
) -> tuple[list[Variant], str]:
    """float32 (the installed model), int8 dynamic and int8 static (one per set of node types
    in ``static_ops``) of recogniser ``kind``."""
    src = model_entry(kind).path.resolve()
    base = work / kind
    base.mkdir(parents=True, exist_ok=True)
    pre, pre_note = preprocess(src, base / "pre.onnx")
    f32 = Variant("float32", src)
    f32.rec = CrnnRecognizer(threads=threads) if kind == CRNN_NAME else Recognizer(threads=threads)
    out = [f32]
    jobs = [("dynamic", "", "int8 dynamic")]
    for ops in static_ops:
        jobs.append(("static", ops, "int8 static" + (f" ({ops})" if len(static_ops) > 1 else "")))
    for j, (method, ops, name) in enumerate(jobs):
        v = Variant(name)
        try:
            dst = base / f"{method}{j}" / "ocr" / f"{kind}.int8.onnx"

            def calib() -> Feeds:
                import onnx

                name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
                return Feeds(name, calib_tensors)

            t0 = time.perf_counter()
            quantise(method, pre, dst, calib, ops, src)
            v.path = dst
            print(f"  {kind} {name}: built in {time.perf_counter() - t0:.0f} s", flush=True)
            v.rec = load(kind, dst, threads)
        except Exception as exc:  # report the failure in the table
            v.error = _why(exc)
            print(f"  {kind} {name}: FAILED {v.error}", flush=True)
        out.append(v)
    return out, pre_note


def calibration_tensors(
    kind: str, rec: LineRecognizer, crops: Sequence[Gray]
) -> list[npt.NDArray[np.float32]]:
    """The exact input tensors the runtime class feeds its session, one line each."""
    if isinstance(rec, CrnnRecognizer):
        return [batch_input([rec.prepare(c)]) for c in crops]
    assert isinstance(rec, Recognizer), kind
    return [rec.prepare(c)[None] for c in crops]


def measure(
    variants: Sequence[Variant],
    val: Sequence[Gray],
    reg: Sequence[Gray],
) -> None:
    """Texts and latencies of every loaded variant, interleaved call by call."""
    live = [v for v in variants if v.rec is not None]
    for i, crop in enumerate(val):
        k = i % len(live)
        for v in live[k:] + live[:k]:
            assert v.rec is not None
            t0 = time.perf_counter()
            probs = v.rec([crop])[0]
            v.line_ms.append((time.perf_counter() - t0) * 1000)
            v.texts.append(greedy_text(probs, v.rec.charset))
    for j, start in enumerate(range(0, len(val) - BATCH + 1, BATCH)):
        chunk = val[start : start + BATCH]
        k = j % len(live)
        for v in live[k:] + live[:k]:
            assert v.rec is not None
            t0 = time.perf_counter()
            v.rec(chunk)
            v.batch_ms.append((time.perf_counter() - t0) * 1000)
    for v in live:
        assert v.rec is not None
        v.reg_texts = [greedy_text(v.rec([c])[0], v.rec.charset) for c in reg]


def _pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def _ratio(xs: Sequence[float], ref: Sequence[float]) -> float:
    pairs = [a / b for a, b in zip(xs, ref, strict=True) if b > 0]
    return statistics.median(pairs) if pairs else float("nan")


def rows(
    label: str,
    variants: Sequence[Variant],
    val_truth: Sequence[str],
    reg_truth: Sequence[str],
) -> tuple[list[str], dict[str, Any]]:
    out: list[str] = []
    figures: dict[str, Any] = {}
    ref = variants[0]
    for v in variants:
        mb = f"{v.path.stat().st_size / 1e6:.2f}" if v.path is not None else "-"
        if v.rec is None:
            out.append(f"| {label} | {v.name} | {mb} | failed: {v.error} |||||||")
            figures[v.name] = {"error": v.error}
            continue
        val_s, reg_s = score_lines(v.texts, val_truth), score_lines(v.reg_texts, reg_truth)
        r_line, r_batch = _ratio(v.line_ms, ref.line_ms), _ratio(v.batch_ms, ref.batch_ms)
        out.append(
            f"| {label} | {v.name} | {mb} | {val_s.exact_rate:.3f} | {val_s.cer:.4f} | "
            f"{reg_s.exact_rate:.3f} | {_pct(v.line_ms, 50):.1f} | {_pct(v.line_ms, 95):.1f} | "
            f"{_pct(v.batch_ms, 50):.1f} | {r_line:.2f} / {r_batch:.2f} |"
        )
        changed = sum(a != b for a, b in zip(v.texts, ref.texts, strict=True))
        figures[v.name] = {
            "mb": mb,
            "heldout": val_s.summary(),
            "regression": reg_s.summary(),
            "line_p50_ms": round(_pct(v.line_ms, 50), 2),
            "line_p95_ms": round(_pct(v.line_ms, 95), 2),
            "batch8_p50_ms": round(_pct(v.batch_ms, 50), 2),
            "ratio_line": round(r_line, 3),
            "ratio_batch8": round(r_batch, 3),
            "heldout_texts_changed_vs_float32": changed,
        }
    return out, figures


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lines", type=int, default=400, help="held-out lines (default 400)")
    ap.add_argument("--calib", type=int, default=100, help="calibration lines (default 100)")
    ap.add_argument("--calib-seed", type=int, default=0, help="train_specs seed of those lines")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    ap.add_argument(
        "--static-ops",
        action="append",
        default=None,
        help=f"node types quantize_static quantises (default {STATIC_OPS}; 'all': the tool's "
        "own list); repeat for one static variant each",
    )
    ap.add_argument(
        "--cache",
        type=Path,
        default=LINE_CACHE,
        help="line cache",
    )
    ap.add_argument("--keep", type=Path, default=None, help="build the int8 files here, keep them")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    args.static_ops = args.static_ops or [STATIC_OPS]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _single_threaded_calibration()

    t0 = time.perf_counter()
    val = build_lines(holdout_specs(args.lines), cache=args.cache)
    val_crops = [normalise(im) for im in val.images]
    cal = build_lines(train_specs(args.calib, args.calib_seed), cache=args.cache)
    cal_crops = [normalise(im) for im in cal.images]
    reg_crops, reg_texts, counts = regression_set()
    print(
        f"held-out: {len(val)} HOLDOUT lines; calibration: {len(cal)} training-domain lines "
        f"(train_specs seed {args.calib_seed}); regression: {counts['crops']} committed crops + "
        f"{counts['frame_lines']} lines from committed frames ({time.perf_counter() - t0:.0f} s "
        "to render/load)",
        flush=True,
    )

    table = [
        "| recogniser | variant | MB | held-out exact | CER | regression exact | "
        "line p50 ms | line p95 ms | batch-8 p50 ms | x float32 (line / batch) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    figures: dict[str, Any] = {"threads": args.threads, "static_ops": args.static_ops}
    notes = []
    with tempfile.TemporaryDirectory(prefix="ocr-int8-") as tmp:
        work = (args.keep if args.keep is not None else Path(tmp)).resolve()
        for kind, label in ((REC_NAME, "PP-OCR ocr.rec"), (CRNN_NAME, "CRNN ocr.crnn")):
            print(f"{label}: quantising", flush=True)
            ref: LineRecognizer = (
                CrnnRecognizer(threads=args.threads)
                if kind == CRNN_NAME
                else Recognizer(threads=args.threads)
            )
            tensors = calibration_tensors(kind, ref, cal_crops)
            del ref
            variants, pre_note = build_variants(kind, work, tensors, args.threads, args.static_ops)
            notes.append(f"{label}: pre-processing: {pre_note}")
            t1 = time.perf_counter()
            measure(variants, val_crops, reg_crops)
            print(f"  measured in {time.perf_counter() - t1:.0f} s", flush=True)
            r, f = rows(label, variants, val.texts, reg_texts)
            table.extend(r)
            figures[kind] = f
            for v in variants:
                v.rec = None
    print(
        f"\n{len(val)} held-out lines, {len(reg_texts)} regression lines, "
        f"{args.threads} onnxruntime thread(s), greedy decoding; static: QDQ, per-channel, "
        f"{args.calib} calibration lines, ops {' | '.join(args.static_ops)}; dynamic ops "
        f"{','.join(DYNAMIC_OPS)}\n"
    )
    print("\n".join(table))
    print()
    for n in notes:
        print(n)
    for kind in (REC_NAME, CRNN_NAME):
        for name, f in figures[kind].items():
            if "heldout_texts_changed_vs_float32" in f and name != "float32":
                print(
                    f"{kind} {name}: {f['heldout_texts_changed_vs_float32']} of {len(val)} "
                    "held-out texts differ from float32's"
                )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
