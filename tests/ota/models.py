"""Tiny ONNX classifiers for OTA tests, built with onnx.helper (seeded, no downloads).

``logits = x @ W`` with ``x`` a 1x4 vector: W = scale * a permutation matrix, so the known
answers of the self-test (one-hot rows -> class index) hold for the identity permutation only.
A second output ``tag`` is a constant, the model's version number, so a test can tell which
version produced a result. ``pad_kb`` adds an unused initializer so downloads take many chunks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ota.swap import SelfTestResult

CLASSES = 4
KNOWN = [(np.eye(CLASSES, dtype=np.float32)[i : i + 1], i) for i in range(CLASSES)]


def make_model(
    path: Path, tag: float, *, perm: tuple[int, ...] = (0, 1, 2, 3), pad_kb: int = 0
) -> Path:
    w = np.zeros((CLASSES, CLASSES), dtype=np.float32)
    for row, col in enumerate(perm):
        w[row, col] = 1.0 + tag  # different bytes per version
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(np.array([tag], dtype=np.float32), "T"),
    ]
    if pad_kb:
        rng = np.random.default_rng(int(tag * 1000))
        pad = rng.standard_normal(pad_kb * 256).astype(np.float32)
        inits.append(numpy_helper.from_array(pad, "pad"))
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["logits"]),
            helper.make_node("Identity", ["T"], ["tag"]),
        ],
        "ota-test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", CLASSES])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES]),
            helper.make_tensor_value_info("tag", TensorProto.FLOAT, [1]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def known_answer_test(session: object) -> SelfTestResult:
    """The self-test used with these models: every one-hot row must map to its own class."""
    run = session.run  # type: ignore[attr-defined]
    correct = sum(int(np.argmax(run(["logits"], {"x": x})[0])) == want for x, want in KNOWN)
    return SelfTestResult(passed=correct == len(KNOWN), correct=correct, total=len(KNOWN))
