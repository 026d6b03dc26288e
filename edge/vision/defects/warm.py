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
``train_config`` says so) runs the same convs once on a doubled batch. An int8 export
(:mod:`.quantize`) is read through its float twin (:func:`~.quantize.dequantized`: the weights
its int8 values and scales stand for). :func:`load_onnx_weights` checks itself against
onnxruntime (on the float twin of an int8 file) and refuses a file it does not reproduce.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.vision.defects.net import DefectNet, FlipAveraged
from edge.vision.defects.quantize import dequantized, is_quantized
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
    source: Path | bytes = path
    if is_quantized(graph):
        import onnx
        from onnx import numpy_helper

        twin = dequantized(onnx.load(str(path)))
        graph, source = twin.graph, twin.SerializeToString()
        inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    mods = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    bns = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != len(mods) or len(bns) != len(mods) - 1:
        raise WarmStartError(
            f"{path}: {len(convs)} convolutions, this net has {len(mods)} (not a defect export "
            "of this architecture: another stem?)"
        )
    # The exporter stores equal constants once, the others as an Identity of it (two convs
    # whose folded biases are both zero): read through those.
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    state: dict[str, torch.Tensor] = {}
    for k, (node, (name, conv)) in enumerate(zip(convs, mods, strict=True)):
        names = [alias.get(i, i) for i in node.input[1:3]]
        if len(names) < 2 or any(i not in inits for i in names):
            raise WarmStartError(f"{path}: conv {k} has no constant weight and bias")
        w, b = inits[names[0]], inits[names[1]]
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
        net, state, path, (lambda: max_diff(net, source)) if check else None, MAX_DIFF, "defect"
    )


def max_diff(net: DefectNet, onnx_model: Path | bytes) -> float:
    """Largest |difference| of logits and class maps, ``net`` (eval mode, mirror-averaged as
    the file is) vs onnxruntime, on two seeded random frames of the graph's input size.
    ``onnx_model``: an ONNX file, or a serialised model (the float twin of an int8 file)."""
    import onnxruntime as ort

    where = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    sess = ort.InferenceSession(where, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    h, w = (int(d) for d in sess.get_inputs()[0].shape[2:])  # the export fixes both sides
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
