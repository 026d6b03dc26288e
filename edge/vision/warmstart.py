"""What both trainers' warm starts share: reading an exported ONNX model's weights back into
its torch net (training only; needs ``[train]``).

An exported graph keeps every weight as an initializer, with each BatchNorm folded into the
conv before it. A warm-started net therefore gets identity BatchNorm layers around the folded
weights (mean 0, variance ``1 - eps``, scale 1, shift the folded bias) and must keep their
statistics frozen while it fine-tunes (:func:`freeze_batchnorm` after each ``net.train()``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn


class WarmStartError(ValueError):
    """The file is not a model this net can be filled from (or does not reproduce it)."""


def read_initializers(path: Path) -> tuple[dict[str, npt.NDArray[np.float32]], Any]:
    """(initializers by name, graph) of the ONNX file ``path``; :class:`WarmStartError` when it
    is not one."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # a truncated or foreign file: onnx raises various types
        raise WarmStartError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from exc
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return inits, model.graph


def identity_batchnorm(prefix: str, bn: nn.BatchNorm2d, shift: torch.Tensor) -> dict[str, Any]:
    """State entries (``{prefix}.weight`` ...) that make ``bn`` in eval mode add ``shift``:
    (x - 0) / sqrt(1 - eps + eps) * 1 + shift."""
    n = bn.num_features
    return {
        f"{prefix}.weight": torch.ones(n),
        f"{prefix}.bias": shift,
        f"{prefix}.running_mean": torch.zeros(n),
        f"{prefix}.running_var": torch.full((n,), 1.0 - bn.eps),
        f"{prefix}.num_batches_tracked": torch.tensor(0),
    }


def freeze_batchnorm(net: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode (its statistics frozen): call after each
    ``net.train()`` when fine-tuning a warm-started net."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def load_checked(
    net: nn.Module,
    state: dict[str, Any],
    path: Path,
    diff: Callable[[], float] | None,
    limit: float,
    what: str,
) -> None:
    """Load ``state`` (which must cover all of ``net``) and, with ``diff`` (the largest output
    difference against onnxruntime), refuse a result that does not reproduce the file."""
    missing = set(net.state_dict()) - set(state)
    if missing:
        raise WarmStartError(f"{path}: nothing for {sorted(missing)}")
    net.load_state_dict(state)
    if diff is not None:
        worst = diff()
        if not worst < limit:  # also catches NaN
            raise WarmStartError(
                f"{path}: the loaded net disagrees with onnxruntime by {worst:.2e} (limit "
                f"{limit:.0e}): not the {what} layout this code exports"
            )
