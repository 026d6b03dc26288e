"""Recipe for models/ocr/: the carton-code recogniser, cut down from RapidOCR's bundled model.

Run with the [train] extra (needs the ``onnx`` package) from the repository root::

    .venv/bin/python models/ocr/make_models.py

Source: ``rapidocr`` 3.10's wheel ships ``PP-OCRv6_rec_small.onnx`` (Apache-2.0, PaddleOCR),
21 MB, whose last layer is a 120 x 18,710 matrix over a multilingual dictionary. Carton codes
need about a hundred of those classes, so this recipe keeps only the columns of the CTC blank,
printable ASCII, the space and the CJK characters of the printed-label forms (批号, 有效期至,
生产日期 and a few common neighbours). The rest of the network is untouched, so the kept classes
score exactly as before up to the softmax's renormalisation. The file drops to 12 MB and the
softmax runs over 116 columns instead of 18,710.

int8 was measured and rejected (see the commit message): onnxruntime's dynamic quantisation
made recognition 2-4x slower on this CPU (ConvInteger) and misread 7 of 8 dot-matrix test lines.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import rapidocr
from onnx import numpy_helper

SOURCE = Path(rapidocr.__file__).parent / "models" / "PP-OCRv6_rec_small.onnx"
OUT_DIR = Path(__file__).resolve().parent
OUT_NAME = "rec_ppocrv6_small_codes.onnx"
VERSION = "ppocrv6-small-rapidocr3.10-codes"
# Label words seen on Chinese carton prints, plus full-width punctuation printers use.
CJK = "".join(
    dict.fromkeys(
        "批号有效期至生产日期保质年月日止前限用：（）"  # the grammar's labels and neighbours
        "失效制造包装出厂产品净含量规格个天见喷码处瓶底盖编次内使最佳食在此之"  # other label words
    )
)
WEIGHT, BIAS = "linear_8.w_0", "linear_8.b_0"


def kept_classes(dictionary: list[str]) -> list[int]:
    """Class indices to keep: blank (0), printable ASCII, CJK label words, space (last)."""
    full = ["<blank>", *dictionary, " "]
    wanted = [chr(c) for c in range(0x21, 0x7F)] + list(CJK)
    index = {ch: i for i, ch in reversed(list(enumerate(full)))}  # first occurrence wins
    missing = [ch for ch in wanted if ch not in index]
    if missing:
        raise SystemExit(f"dictionary lacks {missing}")
    return [0, *(index[ch] for ch in dict.fromkeys(wanted)), len(full) - 1]


def build() -> dict[str, object]:
    model = onnx.load(str(SOURCE))
    meta = {p.key: p.value for p in model.metadata_props}
    dictionary = meta["character"].split("\n")
    keep = kept_classes(dictionary)
    full = ["<blank>", *dictionary, " "]
    inits = {t.name: t for t in model.graph.initializer}
    w = numpy_helper.to_array(inits[WEIGHT])
    b = numpy_helper.to_array(inits[BIAS])
    if w.shape[1] != len(full):
        raise SystemExit(f"unexpected head {w.shape} for {len(full)} classes")
    inits[WEIGHT].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w[:, keep]), WEIGHT))
    inits[BIAS].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(b[keep]), BIAS))
    model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = len(keep)
    del model.graph.value_info[:]  # stale shapes mention the old class count
    del model.metadata_props[:]
    # Like RapidOCR's files: 'character' lists every class but the blank, one per line.
    props = {"character": "\n".join(full[i] for i in keep[1:]), "source": VERSION}
    for key, value in props.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(model)
    out = OUT_DIR / OUT_NAME
    onnx.save(model, str(out))
    data = out.read_bytes()
    return {
        "file": f"ocr/{OUT_NAME}",
        "version": VERSION,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "source": f"rapidocr 3.10 wheel PP-OCRv6_rec_small.onnx, head cut to {len(keep)} classes",
        "source_sha256": hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
        "license": "Apache-2.0 (PaddleOCR / RapidOCR)",
        "input": "x: N x 3 x 48 x W float32, (pixel/255 - 0.5)/0.5, W a multiple of 8",
        "output": f"N x W/8 x {len(keep)} softmax; class 0 = CTC blank, "
        "metadata 'character' lists the others",
    }


def main() -> None:
    entry = build()
    manifest_path = OUT_DIR.parent / "manifest.json"
    manifest = (
        json.loads(manifest_path.read_text())
        if manifest_path.exists()
        else {"schema": 1, "models": {}}
    )
    manifest["models"]["ocr.rec"] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(entry, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
