"""The text-line recogniser: PP-OCR's CTC model on the CPU, returning per-frame probabilities.

Only line crops go in (the localiser found them); the full-frame detector never runs. The output
is the ``T x C`` softmax per line, which :mod:`edge.vision.ocr.decode` reads, never a string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.session import MODELS_DIR, ModelEntry, load_model

MODEL_NAME = "ocr.rec"
HEIGHT = 48  # the model's fixed input height
STRIDE = 8  # input columns per output frame
MIN_WIDTH = 64
MAX_WIDTH = 2048  # ~ 80 characters; longer crops are squeezed, not cut


class Recognizer:
    """Wraps the manifest's ``ocr.rec`` model: line crops in, probability matrices out."""

    def __init__(
        self, *, threads: int = 2, models_dir: Path = MODELS_DIR, squeeze: float = 1.0
    ) -> None:
        """``squeeze`` < 1 narrows crops before recognition (fewer frames, faster)."""
        warm = {"x": np.zeros((1, 3, HEIGHT, 160), np.float32)}
        self.session, self.entry = load_model(
            MODEL_NAME, threads=threads, models_dir=models_dir, warmup=warm
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise DockgateError(ErrorCode.MODEL_INVALID, f"{MODEL_NAME} has no character list")
        self.charset: tuple[str, ...] = ("", *meta["character"].split("\n"))
        self.squeeze = squeeze
        self.input_name = self.session.get_inputs()[0].name

    @property
    def model(self) -> ModelEntry:
        return self.entry

    def prepare(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """One grey line crop -> ``3 x 48 x W`` float input (W a multiple of 8)."""
        h, w = crop.shape[:2]
        width = math.ceil(HEIGHT * w / max(h, 1) * self.squeeze)
        width = int(min(max(width, MIN_WIDTH), MAX_WIDTH))
        width = -(-width // STRIDE) * STRIDE
        resized = cv2.resize(crop, (width, HEIGHT), interpolation=cv2.INTER_AREA)
        norm = resized.astype(np.float32) / 127.5 - 1.0
        return np.repeat(norm[None], 3, axis=0)

    def __call__(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float64]]:
        """Per crop, its ``T x C`` class probabilities.

        Crops of similar width share a batch; a short line is not padded to a long one's
        width (padding costs as much as text: measured 224 vs 181 ms for the same lines).
        """
        inputs = [self.prepare(c) for c in crops]
        out: list[npt.NDArray[np.float64] | None] = [None] * len(inputs)
        order = sorted(range(len(inputs)), key=lambda i: inputs[i].shape[2])
        while order:
            group = [order.pop(0)]
            while order and inputs[order[0]].shape[2] <= 1.15 * inputs[group[0]].shape[2]:
                group.append(order.pop(0))
            for i, probs in zip(group, self._run([inputs[i] for i in group]), strict=True):
                out[i] = probs
        return [p for p in out if p is not None]

    def _run(self, inputs: list[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.float64]]:
        widest = max(x.shape[2] for x in inputs)
        # Pad with the normalised value of a plain light background, not mid-grey, so that the
        # padding reads as blank and not as a smudge.
        batch = np.full((len(inputs), 3, HEIGHT, widest), 0.8, np.float32)
        for i, x in enumerate(inputs):
            batch[i, :, :, : x.shape[2]] = x
        probs = self.session.run(None, {self.input_name: batch})[0]
        return [probs[i, : x.shape[2] // STRIDE].astype(np.float64) for i, x in enumerate(inputs)]


class LineRecognizer(Protocol):
    """What the reader needs of a recogniser (:class:`Recognizer`, ``CrnnRecognizer``)."""

    charset: tuple[str, ...]

    def __call__(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float64]]: ...


class Remapped:
    """A recogniser whose output columns are moved into another charset's columns, so that
    one decoder (one CTC graph) reads the output of several models.

    A character of the inner charset that the target lacks loses its probability (the rows are
    renormalised); target characters the inner model lacks get none.
    """

    def __init__(self, inner: LineRecognizer, charset: Sequence[str]) -> None:
        self.inner = inner
        self.charset: tuple[str, ...] = tuple(charset)
        index = {c: i for i, c in enumerate(self.charset) if i > 0}
        self.src = np.asarray(
            [0, *(i for i, c in enumerate(inner.charset) if i > 0 and c in index)], np.intp
        )
        self.dst = np.asarray([0, *(index[inner.charset[i]] for i in self.src[1:])], np.intp)
        self.lost = tuple(c for i, c in enumerate(inner.charset) if i > 0 and c not in index)

    def __call__(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float64]]:
        out = []
        for p in self.inner(crops):
            q = np.zeros((p.shape[0], len(self.charset)), np.float64)
            q[:, self.dst] = p[:, self.src]
            q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
            out.append(q)
        return out
