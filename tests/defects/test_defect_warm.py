"""A defect training run can start from an exported defect model (edge.vision.defects.warm):
the learning loop fine-tunes what the fleet runs instead of training a CNN from scratch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edge.vision.defects.card import card_text
from edge.vision.defects.net import DefectNet
from edge.vision.defects.quantize import dequantized, is_quantized
from edge.vision.defects.train import TrainConfig, export_onnx, train
from edge.vision.defects.warm import (
    MAX_DIFF,
    flip_averaged,
    load_onnx_weights,
    max_diff,
)
from edge.vision.session import model_entry, onnx_metadata
from edge.vision.warmstart import WarmStartError
from tests.loop.test_training import blind_defect_model

SHIPPED = model_entry("defect").path
SMALL = TrainConfig(widths=(4, 8, 8, 8), stem=4)


def _export(tmp_path: Path, name: str, cfg: TrainConfig, seed: int = 0) -> tuple[DefectNet, Path]:
    torch.manual_seed(seed)
    net = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem)
    # BatchNorm with statistics of its own, so the export's folding is not a no-op
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    net.eval()
    path = tmp_path / name
    meta = {"version": name, "train_config": json.dumps(dataclasses.asdict(cfg))}
    export_onnx(net, path, cfg, meta)
    return net, path


def test_the_shipped_model_loads_and_reproduces_onnxruntime() -> None:
    cfg = TrainConfig()  # the shipped model's layout is the default one
    net = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem)
    load_onnx_weights(net, SHIPPED)
    assert flip_averaged(onnx_metadata(SHIPPED))  # s7 onwards ship mirror-averaged
    model = onnx.load(str(SHIPPED))
    assert is_quantized(model.graph)  # s9 onwards ship int8: the check runs on its float twin
    assert max_diff(net, dequantized(model).SerializeToString()) < MAX_DIFF


@pytest.mark.parametrize("flip", [True, False])
def test_plain_and_mirror_averaged_exports_load_back(tmp_path: Path, flip: bool) -> None:
    cfg = dataclasses.replace(SMALL, flip_average=flip)
    trained, path = _export(tmp_path, "m.onnx", cfg)
    assert flip_averaged(onnx_metadata(path)) is flip
    net = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem)
    load_onnx_weights(net, path)
    assert max_diff(net, path) < MAX_DIFF
    x = torch.rand(2, 3, cfg.input_height, cfg.input_width)
    with torch.no_grad():
        a, amaps = trained(x)
        b, bmaps = net.eval()(x)
    torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)  # BatchNorm folded, same function
    torch.testing.assert_close(bmaps, amaps, atol=1e-4, rtol=1e-4)


def test_equal_biases_stored_once_load_back(tmp_path: Path) -> None:
    """A fresh net's folded biases are all zero: the exporter stores them once, the other convs
    read it through Identity nodes, and the loader follows them."""
    cfg = dataclasses.replace(SMALL, flip_average=False)
    torch.manual_seed(1)
    fresh = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem).eval()
    path = tmp_path / "fresh.onnx"
    export_onnx(fresh, path, cfg, {"train_config": json.dumps(dataclasses.asdict(cfg))})
    assert any(n.op_type == "Identity" for n in onnx.load(str(path)).graph.node)
    net = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem)
    load_onnx_weights(net, path)
    assert max_diff(net, path) < MAX_DIFF


def test_files_it_cannot_fill_the_net_from_are_refused(tmp_path: Path) -> None:
    _, small = _export(tmp_path, "small.onnx", SMALL)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    default = TrainConfig()
    with pytest.raises(WarmStartError, match="not an ONNX model"):
        load_onnx_weights(DefectNet(5, SMALL.widths, stem=SMALL.stem), junk)
    with pytest.raises(WarmStartError, match="another width"):
        load_onnx_weights(DefectNet(5, default.widths, stem=default.stem), small)
    with pytest.raises(WarmStartError, match="convolutions"):  # no stem in the net
        load_onnx_weights(DefectNet(5, SMALL.widths, stem=0), small)
    blind = blind_defect_model(tmp_path / "blind.onnx")  # another architecture altogether
    with pytest.raises(WarmStartError, match="0 convolutions"):
        load_onnx_weights(DefectNet(5, SMALL.widths, stem=SMALL.stem), blind)
    crnn = model_entry("ocr.crnn").path
    with pytest.raises(WarmStartError, match="convolutions"):
        load_onnx_weights(DefectNet(5, SMALL.widths, stem=SMALL.stem), crnn)


def test_a_file_whose_function_differs_is_refused(tmp_path: Path) -> None:
    """Right shapes, other function (the head's pooling blend changed): the check catches it."""
    _, path = _export(tmp_path, "small.onnx", dataclasses.replace(SMALL, flip_average=False))
    other = DefectNet(5, SMALL.widths, max_weight=0.9, stem=SMALL.stem)
    with pytest.raises(WarmStartError, match="disagrees with onnxruntime"):
        load_onnx_weights(other, path)


def test_training_from_an_export_starts_where_it_left_off(tmp_path: Path) -> None:
    """A run with ``init`` starts from the file's function (zero learning rate: ends there),
    keeps BatchNorm fixed, and the CLI's --init reaches the config."""
    _, start = _export(tmp_path, "start.onnx", SMALL)
    cfg = dataclasses.replace(
        SMALL,
        seed=2,
        per_class=2,
        face_per_class=1,
        holdout_per_class=1,
        holdout_face_per_class=1,
        epochs=1,
        lr=1e-12,
        weight_decay=0.0,
        init=str(start),
        version="warm-test",
        quantize=False,  # int8 rounding is tests/defects/test_defect_quantize.py's subject
    )
    result = train(None, tmp_path / "out", cfg)
    import onnxruntime as ort

    x = np.random.default_rng(3).random((2, 3, cfg.input_height, cfg.input_width), np.float32)
    runs = [
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"image": x})
        for p in (start, result.onnx_path)
    ]
    for before, after in zip(*runs, strict=True):
        np.testing.assert_allclose(after, before, atol=1e-4)
    meta = {p.key: p.value for p in onnx.load(str(result.onnx_path)).metadata_props}
    assert json.loads(meta["train_config"])["init"] == str(start)
    assert "Fine-tuned from `start.onnx`" in card_text(result)  # the start's version
    assert "Fine-tuned" not in card_text(dataclasses.replace(result, config=SMALL))
    with pytest.raises(WarmStartError, match="another width"):
        train(None, tmp_path / "bad", dataclasses.replace(cfg, init=str(SHIPPED)))
