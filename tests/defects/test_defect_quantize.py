"""Int8 defect models (edge.vision.defects.quantize): the exported file quantised, its scores
close to the float model's, its float twin back for a fine-tune."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edge.vision.defects.card import card_text
from edge.vision.defects.data import render_frames
from edge.vision.defects.model import DefectModel
from edge.vision.defects.net import DefectNet
from edge.vision.defects.quantize import dequantized, is_quantized, quantize_int8
from edge.vision.defects.train import CLASSES, TrainConfig, export_onnx, train
from edge.vision.defects.warm import MAX_DIFF, load_onnx_weights, max_diff
from edge.vision.session import sha256_file

SMALL = TrainConfig(widths=(8, 8, 16, 16), stem=4, input_width=96, input_height=72)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Generated training-domain model inputs, two per class."""
    return render_frames("train", 2, 31, CLASSES, (SMALL.input_width, SMALL.input_height)).x


def _float_export(path: Path, cfg: TrainConfig = SMALL) -> DefectNet:
    torch.manual_seed(4)
    net = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem).eval()
    meta = {
        "version": "q-test",
        "classes": json.dumps(list(cfg.classes)),
        "input_width": str(cfg.input_width),
        "input_height": str(cfg.input_height),
        "freeze_threshold": "0.9",
        "review_threshold": "0.5",
        "train_config": json.dumps(dataclasses.asdict(cfg)),
    }
    export_onnx(net, path, cfg, meta)
    return net


def _run(model: Path | bytes, x: np.ndarray) -> list[np.ndarray]:
    where = model if isinstance(model, bytes) else str(model)
    sess = ort.InferenceSession(where, providers=["CPUExecutionProvider"])
    return list(sess.run(None, {"image": x.astype(np.float32) / 255.0}))


def test_int8_file_keeps_the_contract_and_scores_close_to_float(
    tmp_path: Path, frames: np.ndarray
) -> None:
    path = tmp_path / "defect.onnx"
    _float_export(path)
    before = onnx.load(str(path))
    float_logits, float_maps = _run(path, frames)
    quantize_int8(path, frames[:6])
    after = onnx.load(str(path))
    assert is_quantized(after.graph) and not is_quantized(before.graph)
    assert {p.key: p.value for p in after.metadata_props} == {
        p.key: p.value for p in before.metadata_props
    }
    assert [n.op_type for n in after.graph.node].count("Conv") == 9  # convs stay convs
    logits, maps = _run(path, frames)
    assert maps.shape == float_maps.shape
    p_int8 = torch.softmax(torch.from_numpy(logits), 1).numpy()
    p_float = torch.softmax(torch.from_numpy(float_logits), 1).numpy()
    assert np.abs(p_int8 - p_float).max() < 0.05  # rounding, not another model
    # The runtime loads it like any defect model (thresholds and size from the metadata).
    model = DefectModel.load(path=path, sha256=sha256_file(path))
    assert (model.info.input_width, model.info.input_height) == (96, 72)
    assert 0.0 <= model.predict(frames[0].transpose(1, 2, 0)).defect_score <= 1.0


def test_quantisation_is_deterministic(tmp_path: Path, frames: np.ndarray) -> None:
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    _float_export(a)
    _float_export(b)
    quantize_int8(a, frames)
    quantize_int8(b, frames)
    assert a.read_bytes() == b.read_bytes()


def test_no_calibration_frames_is_refused(tmp_path: Path, frames: np.ndarray) -> None:
    path = tmp_path / "defect.onnx"
    _float_export(path)
    with pytest.raises(ValueError, match="at least one frame"):
        quantize_int8(path, frames[:0])


def test_the_float_twin_is_the_int8_weights_and_a_fine_tune_starts_from_it(
    tmp_path: Path, frames: np.ndarray
) -> None:
    path = tmp_path / "defect.onnx"
    source = _float_export(path)
    quantize_int8(path, frames)
    twin = dequantized(onnx.load(str(path)))
    assert not is_quantized(twin.graph)
    # The twin computes what the int8 weights stand for: near the float model it came from.
    net = DefectNet(len(SMALL.classes), SMALL.widths, stem=SMALL.stem)
    load_onnx_weights(net, path)  # reads the twin and checks itself against it
    assert max_diff(net, twin.SerializeToString()) < MAX_DIFF
    for name, value in net.state_dict().items():
        if name.endswith("weight") and value.ndim == 4:
            want = dict(source.named_parameters())[name]
            scale = float(want.abs().max()) / 127  # per-channel int8: at most half a step off
            assert float((value - want).abs().max()) <= scale * 0.51 + 1e-6, name


def test_training_exports_int8_and_measures_the_int8_file(tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        SMALL,
        seed=6,
        per_class=3,
        face_per_class=1,
        holdout_per_class=1,
        holdout_face_per_class=1,
        epochs=1,
        version="int8-test",
    )
    assert cfg.quantize  # the default since s9
    result = train(None, tmp_path / "q", cfg)
    model = onnx.load(str(result.onnx_path))
    assert is_quantized(model.graph)
    meta = {p.key: p.value for p in model.metadata_props}
    assert float(meta["freeze_threshold"]) == pytest.approx(result.freeze_threshold, abs=1e-6)
    assert json.loads(meta["train_config"])["quantize"] is True
    assert "Convolutions in int8" in card_text(result)
    plain = train(None, tmp_path / "f", dataclasses.replace(cfg, quantize=False))
    assert not is_quantized(onnx.load(str(plain.onnx_path)).graph)
    assert "Convolutions in int8" not in card_text(plain)
