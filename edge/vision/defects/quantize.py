"""Int8 defect models: static quantisation of an export, and its float twin for a warm start.

On the 2-core edge box the defect model runs beside OCR on every frame. Its convolutions in
int8 (onnxruntime's static quantisation, QDQ format: per-channel int8 weights, uint8
activations with ranges calibrated on training frames) run 1.6-1.7x faster than float32 on
this machine's CPU (defect-2026.12.07-s9's weights, one thread), at a cost measured on the
held-out set (see the model card and ``bench/defects.py``). Training (:mod:`.train`)
quantises what it exports when ``TrainConfig.quantize`` is set, before it chooses thresholds,
so thresholds and figures are those of the int8 file the edge runs.

A fine-tune starts from float weights: :func:`dequantized` turns an int8 file back into the
float graph its weights describe (each int8 weight times its scale; the activations'
quantise/dequantise pairs removed), which :mod:`.warm` reads and checks against onnxruntime
like any float export.

Training-time only: needs ``onnx`` (the ``[train]`` extra), never imported at inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# Frames the activation ranges are calibrated on (MinMax: the extremes seen), drawn from the
# training split; each costs one float inference. 128 is the only count tried: in int8, s9's
# first stage lost 0.002 of held-out recall at <= 1 % false freezes (0.013 at its threshold).
CALIBRATION_FRAMES = 128


def is_quantized(graph: Any) -> bool:
    """Whether an ONNX graph holds quantise/dequantise nodes (an int8 QDQ export)."""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node)


def quantize_int8(path: Path, frames: npt.NDArray[np.uint8]) -> None:
    """Replace the float defect model at ``path`` by its int8 version (QDQ, convolutions only),
    its activation ranges calibrated on ``frames`` ((N, 3, H, W) uint8 model inputs, as
    :class:`~edge.vision.defects.data.Frames` holds them). The file's metadata is kept and the
    file is replaced atomically. Deterministic: the same file and frames give the same bytes."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if len(frames) == 0:
        raise ValueError("int8 calibration needs at least one frame")
    source = onnx.load(str(path))
    name = source.graph.input[0].name
    feeds = iter([{name: (f[None].astype(np.float32) / 255.0)} for f in frames])

    class Feed(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
            return next(feeds, None)

    part = path.with_suffix(".int8.part")
    quantize_static(
        str(path),
        str(part),
        Feed(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=["Conv"],
    )
    model = onnx.load(str(part))
    del model.metadata_props[:]
    model.metadata_props.extend(source.metadata_props)
    model.producer_name = source.producer_name
    onnx.checker.check_model(model)
    onnx.save(model, str(part))
    part.replace(path)


def dequantized(model: Any) -> Any:
    """A float copy of the QDQ ``model`` (an ``onnx.ModelProto``): every constant int8/int32
    tensor behind a ``DequantizeLinear`` becomes the float initializer it stands for, and each
    activation's ``QuantizeLinear`` -> ``DequantizeLinear`` pair is bypassed. Its ``Conv``
    nodes, in order, then hold float weights and biases like a float export's."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    rename: dict[str, str] = {}
    drop: set[str] = set()
    floats = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = node.input[0]
        if src in inits:  # a weight or bias: dequantise it once, here
            floats.append(numpy_helper.from_array(_dequantize(node, inits), node.output[0]))
            drop.add(node.name)
        elif src in producer and producer[src].op_type == "QuantizeLinear":
            rename[node.output[0]] = producer[src].input[0]
            drop |= {node.name, producer[src].name}
    kept = [n for n in graph.node if n.name not in drop]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    for out in graph.output:
        out.name = rename.get(out.name, out.name)
    used = {name for n in kept for name in n.input}
    del graph.node[:]
    graph.node.extend(kept)
    remaining = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend([*remaining, *floats])
    onnx.checker.check_model(model)
    return model


def _dequantize(node: Any, inits: dict[str, Any]) -> npt.NDArray[np.float32]:
    """(q - zero point) * scale, per channel along the node's ``axis`` (default 1)."""
    from onnx import numpy_helper

    q = numpy_helper.to_array(inits[node.input[0]]).astype(np.float64)
    scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
    zero = (
        numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        if len(node.input) > 2 and node.input[2]
        else np.zeros_like(scale)
    )
    if scale.ndim == 1 and q.ndim > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q - zero) * scale).astype(np.float32)
