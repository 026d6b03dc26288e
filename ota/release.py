"""What a model release says about itself: the custom metadata signed into its TUF target.

``name``, ``version``, ``sha256``, ``size``, the ONNX input/output signature (read with
onnxruntime, so a release whose file does not even open is refused before signing), the minimum
Dockgate version that can run it, and the metrics of its model card when one sits beside the file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.contracts.errors import DockgateError, ErrorCode

_NAME = re.compile(r"^[a-z][a-z0-9.-]{0,39}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
CARD_NAMES = ("MODEL_CARD.md",)


@dataclass(frozen=True)
class ReleaseInfo:
    """Custom metadata of one release target."""

    name: str
    version: str
    sha256: str
    size: int
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    min_dockgate: str
    metrics: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_custom(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "min_dockgate": self.min_dockgate,
            "metrics": self.metrics,
        }


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_name_version(name: str, version: str) -> None:
    """Names and versions become path segments on the server and the device: keep them tame."""
    if not _NAME.match(name):
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"model name {name!r}: use a-z 0-9 . -")
    if not _VERSION.match(version) or ".." in version:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"model version {version!r} is not usable")


def onnx_signature(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs and outputs (name, element type, shape) of an ONNX file; ``MODEL_INVALID`` if bad."""
    import onnxruntime as ort  # heavy: only when releasing

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises untyped errors on corrupt files
        raise DockgateError(ErrorCode.MODEL_INVALID, f"{path} does not load: {exc}") from None

    def describe(args: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "type": a.type,
                "shape": [d if isinstance(d, int) else str(d) for d in a.shape],
            }
            for a in args
        ]

    return describe(session.get_inputs()), describe(session.get_outputs())


def card_metrics(model: Path) -> dict[str, dict[str, str]]:
    """Numeric two-column tables of the model card beside ``model``, by the label above them.

    ``Held-out (the figure that matters):`` followed by ``| recall of defective | 0.57 |``
    becomes ``{"held-out": {"recall of defective": "0.57"}}``. No card: ``{}``. Values stay
    the card's decimal strings: TUF's canonical JSON has no floats (and no rounding surprises).
    """
    for name in CARD_NAMES:
        card = model.parent / name
        if card.is_file():
            return _parse_card(card.read_text(encoding="utf-8"))
    return {}


def _parse_card(text: str) -> dict[str, dict[str, str]]:
    metrics: dict[str, dict[str, str]] = {}
    label = "metrics"
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("|"):
            label = _label(line) or label
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and _NUMBER.match(cells[1]):
            metrics.setdefault(label, {})[cells[0]] = cells[1]
    return metrics


def _label(line: str) -> str:
    text = line.lstrip("#").strip().rstrip(":")
    text = re.sub(r"\s*\(.*\)$", "", text)
    return text.lower() if len(text) <= 40 else ""


def describe_model(
    model: Path, name: str, version: str, *, sha256: str, min_dockgate: str
) -> ReleaseInfo:
    check_name_version(name, version)
    inputs, outputs = onnx_signature(model)
    return ReleaseInfo(
        name=name,
        version=version,
        sha256=sha256,
        size=model.stat().st_size,
        inputs=inputs,
        outputs=outputs,
        min_dockgate=min_dockgate,
        metrics=card_metrics(model),
    )
