"""Start a :class:`DefectNet` from an exported defect model (the production or shipped ONNX
file): a learning-loop job fine-tunes what the fleet runs on the site's labelled frames instead
of training a CNN from scratch in minutes, which does not learn damage (a 12-epoch stand-in
trained from scratch on 80 site frames froze 0.8 of the good regression frames on one machine
and passed the gate on another).

The exporter (:func:`edge.vision.defects.train.export_onnx`) folds each BatchNorm into the conv
before it, so the graph's ``Conv`` nodes, in order, hold the net's convs in order (the stem's,
the seven feature blocks', then the 1x1 head's), each with its weight and folded bias as
initializers; most are unnamed (``onnx::Conv_NNN``), so they are found by their node, not by
name. A mirror-averaged export (:class:`~edge.vision.defects.net.FlipAveraged`, its metadata's
``train_config`` says so) runs the same convs once on a doubled batch. :func:`load_onnx_weights`
checks itself against onnxruntime and refuses a file it does not reproduce.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.vision.defects.net import DefectNet, FlipAveraged
from edge.vision.warmstart import (
    WarmStartError,
    identity_batchnorm,
    load_checked,
    read_initializers,
)

MAX_DIFF = 1e-3  # logits and class maps, torch vs onnxruntime (float32 over 9 convs)
CHECK_SEED = 20261207


def flip_averaged(meta: Mapping[str, str]) -> bool:
    """Whether a defect export with metadata ``meta`` is mirror-averaged (its ``train_config``
    says so; files from before the option are not)."""
    try:
        return bool(json.loads(meta.get("train_config", "{}")).get("flip_average", False))
    except json.JSONDecodeError:
        return False


def load_onnx_weights(net: DefectNet, path: Path, *, check: bool = True) -> None:
    """Fill ``net`` with the weights of the exported defect model ``path`` and verify the
    result: ``net`` in eval mode (mirror-averaged when the file is) must give onnxruntime's
    logits and class maps within :data:`MAX_DIFF` on seeded random frames. Raises
    :class:`WarmStartError` otherwise (not an ONNX file, another architecture or width)."""
    inits, graph = read_initializers(path)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    mods = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    bns = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != len(mods) or len(bns) != len(mods) - 1:
        raise WarmStartError(
            f"{path}: {len(convs)} convolutions, this net has {len(mods)} (not a defect export "
            "of this architecture: another stem?)"
        )
    state: dict[str, torch.Tensor] = {}
    for k, (node, (name, conv)) in enumerate(zip(convs, mods, strict=True)):
        if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise WarmStartError(f"{path}: conv {k} has no constant weight and bias")
        w, b = inits[node.input[1]], inits[node.input[2]]
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise WarmStartError(
                f"{path}: conv {k} has shape {list(w.shape)}, this net needs "
                f"{list(conv.weight.shape)} (another width?)"
            )
        state[f"{name}.weight"] = torch.from_numpy(np.array(w, np.float32))
        bias = torch.from_numpy(np.array(b, np.float32))
        if conv.bias is not None:  # the head: a plain conv with its own bias
            state[f"{name}.bias"] = bias
        else:  # a block's conv: its BatchNorm, folded into the bias, becomes an identity + bias
            bn_name, bn = bns[k]
            state |= identity_batchnorm(bn_name, bn, bias)
    for buf in ("mean", "std"):
        state[buf] = net.get_buffer(buf).clone()
    load_checked(
        net, state, path, (lambda: max_diff(net, path)) if check else None, MAX_DIFF, "defect"
    )


def max_diff(net: DefectNet, path: Path) -> float:
    """Largest |difference| of logits and class maps, ``net`` (eval mode, mirror-averaged as
    the file is) vs onnxruntime, on two seeded random frames of the file's input size."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    h, w = int(meta.get("input_height", 144)), int(meta.get("input_width", 192))
    x = np.random.default_rng(CHECK_SEED).uniform(0.0, 1.0, (2, 3, h, w)).astype(np.float32)
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    model: nn.Module = FlipAveraged(net) if flip_averaged(meta) else net
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            want = [t.numpy() for t in model(torch.from_numpy(x))]
    finally:
        net.train(was_training)
    if [g.shape for g in got] != [t.shape for t in want]:
        return float("inf")
    return max(float(np.abs(g - t).max()) for g, t in zip(got, want, strict=True))
