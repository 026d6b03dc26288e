"""Start a :class:`CrnnNet` from an exported ONNX CRNN (the production model): the learning
loop fine-tunes what the fleet runs instead of training from scratch.

The shipped ``crnn_codes.onnx`` has no torch checkpoint beside it, but its initializers hold
every weight, in the form the exporter (:func:`edge.vision.ocr.crnn.train._export_in_process`)
left them:

- each conv with its BatchNorm folded in: ``net.features.{i}.weight`` (scaled kernel) and
  ``net.features.{i}.weight_bias`` (the folded shift);
- the LSTM's input and recurrent weights under their torch names (the graph reorders their
  gates with ``Slice``/``Concat`` nodes before the ``LSTM`` op), and its biases constant-folded
  into one unnamed ``[directions, 8 * hidden]`` initializer, the ``LSTM`` op's ``B`` input;
- the head's weight transposed, an unnamed ``[2 * hidden, classes]`` initializer (the
  ``MatMul`` before the softmax), and ``net.head.bias``.

Unnamed initializers are found by their role in the graph (the input of the ``LSTM`` and the
``MatMul`` node), not by their generated ``val_NNN`` names. The BatchNorm layers become
identities around the folded weights (mean 0, variance ``1 - eps``, scale 1, shift the folded
bias), so the net must stay in eval mode for its BatchNorm layers (fine-tuning keeps the
statistics frozen). :func:`load_onnx_weights` checks itself against onnxruntime and refuses a
file it does not reproduce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from edge.vision.ocr.crnn.net import CrnnNet
from edge.vision.warmstart import (
    WarmStartError,
    identity_batchnorm,
    load_checked,
    read_initializers,
)

#: ONNX LSTM gate blocks are ordered i, o, f, c; torch's are i, f, g(=c), o. For torch block k,
#: the ONNX block it comes from. Checked once on the shipped model: this order reproduces
#: onnxruntime to 1e-6, the identity order is off by 0.15 (the load's own check guards it).
ONNX_GATE_FOR_TORCH = (0, 2, 3, 1)
MAX_DIFF = 1e-4  # softmax outputs, torch vs onnxruntime
CHECK_WIDTHS = (96, 200)
CHECK_SEED = 20261206


def _gates_to_torch(x: npt.NDArray[np.float32], hidden: int) -> npt.NDArray[np.float32]:
    blocks = [x[k * hidden : (k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in ONNX_GATE_FOR_TORCH])


def load_onnx_weights(net: CrnnNet, path: Path, *, check: bool = True) -> None:
    """Fill ``net`` with the weights of the ONNX CRNN ``path`` and verify the result: the
    softmax of ``net`` in eval mode must match onnxruntime's output within :data:`MAX_DIFF`
    on seeded random inputs of two widths. Raises :class:`WarmStartError` otherwise."""
    inits, graph = read_initializers(path)
    nodes = list(graph.node)
    lstm = [n for n in nodes if n.op_type == "LSTM"]
    matmul = [n for n in nodes if n.op_type == "MatMul"]
    if len(lstm) != 1 or len(matmul) != 1:
        raise WarmStartError(f"{path}: not a CRNN graph (one LSTM and one MatMul expected)")
    bias_name = lstm[0].input[3] if len(lstm[0].input) > 3 else ""
    head_name = next((i for i in matmul[0].input if i in inits), "")
    n_classes, channels, hidden = net.spec
    state: dict[str, torch.Tensor] = {}

    def take(name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        arr = inits.get(name)
        if arr is None:
            raise WarmStartError(f"{path}: no initializer {name!r} (not a CRNN export?)")
        if tuple(arr.shape) != shape:
            raise WarmStartError(
                f"{path}: {name} has shape {list(arr.shape)}, this net needs {list(shape)}"
            )
        return np.array(arr, np.float32)  # a writable copy: torch shares its memory

    convs = [(i, m) for i, m in enumerate(net.features) if isinstance(m, nn.Conv2d)]
    for i, conv in convs:
        bn = net.features[i + 1]
        assert isinstance(bn, nn.BatchNorm2d)
        w = take(f"net.features.{i}.weight", tuple(conv.weight.shape))
        b = take(f"net.features.{i}.weight_bias", (conv.out_channels,))
        state[f"features.{i}.weight"] = torch.from_numpy(w)
        state |= identity_batchnorm(f"features.{i + 1}", bn, torch.from_numpy(b))
    c5 = channels[-1]
    biases = take(bias_name, (2, 8 * hidden))  # [direction, Wb (4 gates) + Rb (4 gates)]
    for d, suffix in enumerate(("", "_reverse")):
        for kind, cin in (("ih", c5), ("hh", hidden)):
            name = f"weight_{kind}_l0{suffix}"
            state[f"rnn.{name}"] = torch.from_numpy(take(f"net.rnn.{name}", (4 * hidden, cin)))
        wb, rb = biases[d, : 4 * hidden], biases[d, 4 * hidden :]
        state[f"rnn.bias_ih_l0{suffix}"] = torch.from_numpy(_gates_to_torch(wb, hidden))
        state[f"rnn.bias_hh_l0{suffix}"] = torch.from_numpy(_gates_to_torch(rb, hidden))
    head = take(head_name, (2 * hidden, n_classes))
    state["head.weight"] = torch.from_numpy(np.ascontiguousarray(head.T))
    state["head.bias"] = torch.from_numpy(take("net.head.bias", (n_classes,)))
    load_checked(
        net, state, path, (lambda: max_diff(net, path)) if check else None, MAX_DIFF, "CRNN"
    )


def max_diff(net: CrnnNet, path: Path) -> float:
    """Largest |softmax difference| of ``net`` (eval mode) vs onnxruntime on seeded inputs."""
    import onnxruntime as ort

    from edge.vision.ocr.crnn.prep import HEIGHT

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    rng = np.random.default_rng(CHECK_SEED)
    was_training = net.training
    net.eval()
    worst = 0.0
    try:
        for width in CHECK_WIDTHS:
            x = rng.uniform(-1.0, 1.0, (2, 1, HEIGHT, width)).astype(np.float32)
            got = sess.run(None, {name: x})[0]
            with torch.no_grad():
                want = torch.softmax(net(torch.from_numpy(x)), dim=2).numpy()
            if got.shape != want.shape:
                return float("inf")
            worst = max(worst, float(np.abs(got - want).max()))
    finally:
        net.train(was_training)
    return worst
