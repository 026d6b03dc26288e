"""Defect inference on ONNX Runtime: frame in, :class:`DefectVerdict` out. No torch here.

The ONNX file carries its own contract in its metadata (class names, input size, version and the
thresholds chosen on the validation split), so a model swapped in by OTA brings its thresholds
with it. Loading always goes through :mod:`edge.vision.session` (sha256 gate, thread limit,
warm-up).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.defects.image import Letterbox, letterbox, to_rgb8
from edge.vision.session import MODELS_DIR, load_model, load_session

MANIFEST_NAME = "defect"
OK_CLASS = "ok"
#: Heat above this fraction of the map's peak counts as "where the damage is" for the box.
BOX_LEVEL = 0.5


@dataclass(frozen=True, eq=False)
class DefectVerdict:
    """The defect model's answer for one frame.

    ``scores`` are softmax probabilities per class (they sum to 1); ``defect_score`` is
    ``1 - scores["ok"]``, the probability that the item is damaged in any way, which is what the
    freeze and review thresholds compare against. ``defect_class`` is the most likely damage even
    when ``top_class`` is ``ok``; ``box`` (x0, y0, x1, y1 in source-frame pixels) and ``heatmap``
    (values in [0, 1] on the model's coarse grid, covering the letterboxed frame) locate it.
    """

    scores: MappingProxyType[str, float]
    top_class: str
    top_score: float
    defect_class: str
    defect_score: float
    box: tuple[int, int, int, int] | None
    heatmap: npt.NDArray[np.float32] = field(repr=False)
    model_version: str
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the signed result and the QA work order."""
        return {
            "scores": {k: round(v, 5) for k, v in self.scores.items()},
            "top_class": self.top_class,
            "top_score": round(self.top_score, 5),
            "defect_class": self.defect_class,
            "defect_score": round(self.defect_score, 5),
            "box": list(self.box) if self.box is not None else None,
            "heatmap": np.round(self.heatmap, 3).tolist(),
            "model_version": self.model_version,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass(frozen=True)
class ModelInfo:
    """The contract stored in the ONNX file's metadata."""

    classes: tuple[str, ...]
    input_width: int
    input_height: int
    version: str
    freeze_threshold: float
    review_threshold: float
    extra: MappingProxyType[str, str]

    @classmethod
    def from_metadata(cls, meta: dict[str, str], where: str) -> ModelInfo:
        try:
            classes = tuple(json.loads(meta["classes"]))
            info = cls(
                classes=classes,
                input_width=int(meta["input_width"]),
                input_height=int(meta["input_height"]),
                version=meta["version"],
                freeze_threshold=float(meta["freeze_threshold"]),
                review_threshold=float(meta["review_threshold"]),
                extra=MappingProxyType(dict(meta)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise DockgateError(
                ErrorCode.MODEL_INVALID, f"{where}: defect model metadata is incomplete: {exc}"
            ) from None
        if OK_CLASS not in info.classes or len(info.classes) < 2:
            raise DockgateError(
                ErrorCode.MODEL_INVALID, f"{where}: classes {info.classes} lack '{OK_CLASS}'"
            )
        return info


class DefectModel:
    """A loaded defect model. Thread-safe: ``InferenceSession.run`` may be called concurrently."""

    def __init__(self, session: ort.InferenceSession, info: ModelInfo, sha256: str) -> None:
        self._session = session
        self.info = info
        self.sha256 = sha256
        self._input = session.get_inputs()[0].name
        self._ok = info.classes.index(OK_CLASS)

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        sha256: str | None = None,
        threads: int = 1,
        models_dir: Path = MODELS_DIR,
    ) -> DefectModel:
        """Load the manifest's ``defect`` model, or ``path`` checked against ``sha256``.

        One intra-op thread by default: on two cores the other one belongs to the camera,
        OCR and the ledger. Raises ``MODEL_INVALID`` on a missing, tampered or foreign file.
        """
        if path is None:
            session, entry = load_model(MANIFEST_NAME, threads=threads, models_dir=models_dir)
            digest, where = entry.sha256, str(entry.path)
        else:
            if sha256 is None:
                raise DockgateError(
                    ErrorCode.MODEL_INVALID, f"{path}: loading by path needs its expected sha256"
                )
            session = load_session(path, sha256, threads=threads)
            digest, where = sha256, str(path)
        meta = dict(session.get_modelmeta().custom_metadata_map)
        return cls(session, ModelInfo.from_metadata(meta, where), digest)

    @property
    def version(self) -> str:
        return self.info.version

    def predict(self, image: np.ndarray, *, channels: str = "bgr") -> DefectVerdict:
        """Score one frame (BGR by default, as camera frames and ``cv2.imread`` give).

        Raises ``IMAGE_INVALID`` for input that is not a usable image; any other image gets a
        verdict. ``latency_ms`` covers preprocessing and inference.
        """
        start = time.perf_counter()
        rgb = to_rgb8(image, channels)
        tensor, geom = letterbox(rgb, self.info.input_width, self.info.input_height)
        logits, maps = self._session.run(None, {self._input: tensor})
        return self._verdict(logits[0], maps[0], geom, start)

    def _verdict(
        self, logits: np.ndarray, maps: np.ndarray, geom: Letterbox, start: float
    ) -> DefectVerdict:
        z = logits.astype(np.float64) - float(np.max(logits))
        probs = np.exp(z) / float(np.sum(np.exp(z)))
        classes = self.info.classes
        top = int(np.argmax(probs))
        defect_idx = max((i for i in range(len(classes)) if i != self._ok), key=lambda i: probs[i])
        heat = maps[defect_idx].astype(np.float32)
        heat = np.maximum(heat - float(np.median(heat)), 0.0)
        peak = float(heat.max())
        heat = heat / peak if peak > 0 else np.zeros_like(heat)
        defect_score = float(1.0 - probs[self._ok])
        box = self._box(heat, geom) if defect_score >= self.info.review_threshold else None
        return DefectVerdict(
            scores=MappingProxyType({c: float(p) for c, p in zip(classes, probs, strict=True)}),
            top_class=classes[top],
            top_score=float(probs[top]),
            defect_class=classes[defect_idx],
            defect_score=defect_score,
            box=box,
            heatmap=heat,
            model_version=self.info.version,
            latency_ms=(time.perf_counter() - start) * 1000.0,
        )

    def _box(self, heat: np.ndarray, geom: Letterbox) -> tuple[int, int, int, int] | None:
        """Bounding box (source pixels) of the hottest connected region of the heat map."""
        hot = (heat >= BOX_LEVEL).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
        if n <= 1:
            return None
        peak_label = int(labels[np.unravel_index(int(np.argmax(heat)), heat.shape)])
        x, y, w, h = (int(v) for v in stats[peak_label, :4])
        cell_x = self.info.input_width / heat.shape[1]
        cell_y = self.info.input_height / heat.shape[0]
        x0, y0 = geom.to_source(x * cell_x, y * cell_y)
        x1, y1 = geom.to_source((x + w) * cell_x, (y + h) * cell_y)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))
