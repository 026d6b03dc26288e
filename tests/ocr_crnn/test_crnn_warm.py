"""Warm start: the shipped CRNN's ONNX initializers back into a CrnnNet, checked against
onnxruntime, fine-tunable without losing what it reads, and a file that is not it refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from edge.vision.ocr.crnn import train as crnn
from edge.vision.ocr.crnn.charset import CHARSET
from edge.vision.ocr.crnn.data import build_lines, plain, train_specs
from edge.vision.ocr.crnn.metrics import score_lines
from edge.vision.ocr.crnn.net import CrnnNet
from edge.vision.ocr.crnn.warm import MAX_DIFF, load_onnx_weights, max_diff
from edge.vision.session import MODELS_DIR, model_entry, read_manifest
from edge.vision.warmstart import WarmStartError

SHIPPED = model_entry("ocr.crnn").path


def test_loaded_net_reproduces_the_onnx_outputs() -> None:
    torch.manual_seed(3)
    net = CrnnNet(len(CHARSET))
    before = max_diff(net, SHIPPED)
    load_onnx_weights(net, SHIPPED)
    after = max_diff(net, SHIPPED)
    assert before > 0.01  # random weights are far off: the check can tell
    assert after < MAX_DIFF, after
    bn = net.features[1]
    assert isinstance(bn, torch.nn.BatchNorm2d)
    assert bn.running_mean is not None and not bn.running_mean.any()
    assert torch.allclose(bn.weight, torch.ones(16))


def test_a_few_fine_tune_steps_keep_the_reads(tmp_path: Path) -> None:
    """Three steps at the loop's learning rate from the shipped model: it still reads the
    training domain's lines (no collapse), and its BatchNorm statistics did not move."""
    lines = build_lines(train_specs(24, seed=5))
    val = build_lines(train_specs(16, seed=9))
    val_lines = [plain(im) for im in val.images]
    cfg = crnn.TrainConfig(epochs=1, batch=8, lr=5e-4, eval_every=1000, init=str(SHIPPED))
    torch.manual_seed(1)
    net = CrnnNet(len(CHARSET))
    load_onnx_weights(net, SHIPPED)
    start = score_lines(crnn.predict_torch(net, val_lines), val.texts)
    bn = net.features[1]
    assert isinstance(bn, torch.nn.BatchNorm2d) and bn.running_var is not None
    stats = bn.running_var.clone()
    first = net.head.weight.detach().clone()
    history, _ = crnn._fit(net, lines, val_lines, val.texts, cfg, crnn.LogReporter())
    after = score_lines(crnn.predict_torch(net, val_lines), val.texts)
    assert history[-1]["step"] == 3
    assert not torch.equal(net.head.weight, first)  # it did learn
    assert torch.equal(bn.running_var, stats)
    # the training look is wide (small, smeared, thermal...): the shipped model reads it at a
    # CER of about 0.06; random weights are near 1
    assert start.cer < 0.1, start.summary()
    assert after.exact_rate >= start.exact_rate - 0.13, (start.summary(), after.summary())
    assert after.cer <= start.cer + 0.02, (start.summary(), after.summary())


def test_a_file_that_is_not_this_crnn_is_refused(tmp_path: Path) -> None:
    net = CrnnNet(len(CHARSET))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(WarmStartError, match="not an ONNX model"):
        load_onnx_weights(net, junk)
    with pytest.raises(WarmStartError, match="not a CRNN graph"):
        load_onnx_weights(net, model_entry("defect").path)
    with pytest.raises(WarmStartError, match="needs"):  # another charset size
        load_onnx_weights(CrnnNet(len(CHARSET) + 1), SHIPPED)
    # the same weights, but the output columns swapped after the softmax: every shape fits,
    # only the numeric check against onnxruntime can tell
    model = onnx.load(str(SHIPPED))
    out = model.graph.output[0]
    raw = out.name + "_raw"
    for node in model.graph.node:
        node.output[:] = [raw if o == out.name else o for o in node.output]
    perm = np.roll(np.arange(len(CHARSET)), 1).astype(np.int64)
    model.graph.initializer.append(numpy_helper.from_array(perm, "perm"))
    model.graph.node.append(helper.make_node("Gather", [raw, "perm"], [out.name], axis=2))
    swapped = tmp_path / "swapped.onnx"
    onnx.save(model, str(swapped))
    with pytest.raises(WarmStartError, match="disagrees with onnxruntime"):
        load_onnx_weights(net, swapped)


def test_a_codes_job_starts_from_production_unless_told_not_to(tmp_path: Path) -> None:
    from edge.vision import learning

    signed = tmp_path / "signed.onnx"
    signed.write_bytes(SHIPPED.read_bytes())
    params, start = learning.start_from("codes", {"epochs": 1}, signed)  # a signed release exists
    assert params == {"epochs": 1, "init": str(signed)}
    shipped = read_manifest(MODELS_DIR)["ocr.crnn"].version  # start_from reads the ONNX metadata
    assert start == {"source": "release", "file": str(signed), "version": shipped}
    params, start = learning.start_from("codes", {}, None)  # none: the manifest's shipped model
    assert params["init"] == str(SHIPPED) and start["source"] == "shipped"
    params, start = learning.start_from("codes", {"init": "none"}, signed)
    assert params["init"] == "" and start == {"source": "none"}
    params, start = learning.start_from("codes", {"init": str(signed)}, None)
    assert start["source"] == "file" and params["init"] == str(signed)
    cfg = learning.config_for("codes", params, "v1", 1)
    assert cfg.init == str(signed)
    params, start = learning.start_from("codes", {"init": "shipped"}, signed)  # release ignored
    assert params["init"] == str(SHIPPED) and start["source"] == "shipped"
