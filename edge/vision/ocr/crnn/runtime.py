"""``CrnnRecognizer``: Dockgate's own CRNN on onnxruntime, same contract as ``Recognizer``.

Grey line crops in (light paper, dark print, as :func:`edge.vision.ocr.locate.locate` cuts
them), one ``T x C`` float64 softmax per crop out, column 0 the CTC blank and ``charset[i]`` the
character of column ``i``; :class:`edge.vision.ocr.decode.Decoder` takes ``charset`` as it is.
``T`` is the crop's width at 32 rows, divided by 4.

The model file is the manifest's ``ocr.crnn`` entry (sha256 checked before loading); its ONNX
metadata carries the charset (``character``, one per line, PP-OCR's convention), the input
height and the stride, and a file whose metadata disagrees with this code is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.ocr.crnn.charset import from_metadata
from edge.vision.ocr.crnn.prep import HEIGHT, STRIDE, Gray, batch_input, resize_line
from edge.vision.session import MODELS_DIR, ModelEntry, load_model, load_session, sha256_file

MODEL_NAME = "ocr.crnn"
GROUP_SPREAD = 1.15  # crops whose widths differ by less than this share one batch


class CrnnRecognizer:
    """Wraps the manifest's ``ocr.crnn`` model: line crops in, probability matrices out."""

    def __init__(
        self,
        *,
        threads: int = 2,
        models_dir: Path = MODELS_DIR,
        squeeze: float = 1.0,
        model_name: str = MODEL_NAME,
        path: Path | None = None,
        sha256: str | None = None,
    ) -> None:
        """Load ``model_name`` from the manifest in ``models_dir``, or the file ``path``:
        a release installed over the air (``sha256``, the signed hash, is checked before
        loading) or a candidate that is not installed yet (no ``sha256``: it is computed, not
        checked).

        ``squeeze`` < 1 narrows crops before recognition (fewer frames, faster).
        """
        warm = {"x": np.full((1, 1, HEIGHT, 128), 0.8, np.float32)}
        if path is None:
            self.session, self.entry = load_model(
                model_name, threads=threads, models_dir=models_dir, warmup=warm
            )
        else:
            sha = sha256 or sha256_file(path)
            self.session = load_session(path, sha, threads=threads, warmup=warm)
            self.entry = ModelEntry(model_name, path, "candidate", sha, path.stat().st_size)
        self.charset: tuple[str, ...] = _check_metadata(self.session, self.entry.path)
        self.squeeze = squeeze
        self.input_name = self.session.get_inputs()[0].name

    @property
    def model(self) -> ModelEntry:
        return self.entry

    def prepare(self, crop: npt.NDArray[np.uint8]) -> Gray:
        """One grey (or BGR) line crop -> ``32 x W`` uint8, ``W`` a multiple of 4."""
        if crop.ndim == 3:
            import cv2

            crop = np.asarray(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), np.uint8)
        return resize_line(crop, self.squeeze)

    def __call__(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float64]]:
        """Per crop, its ``T x C`` class probabilities (in the order given).

        Crops of similar width share a batch; a short line is not padded to a long one's width.
        """
        lines = [self.prepare(c) for c in crops]
        out: list[npt.NDArray[np.float64] | None] = [None] * len(lines)
        order = sorted(range(len(lines)), key=lambda i: lines[i].shape[1])
        while order:
            group = [order.pop(0)]
            while order and lines[order[0]].shape[1] <= GROUP_SPREAD * lines[group[0]].shape[1]:
                group.append(order.pop(0))
            for i, probs in zip(group, self._run([lines[i] for i in group]), strict=True):
                out[i] = probs
        return [p for p in out if p is not None]

    def _run(self, lines: list[Gray]) -> list[npt.NDArray[np.float64]]:
        probs = self.session.run(None, {self.input_name: batch_input(lines)})[0]
        return [probs[i, : x.shape[1] // STRIDE].astype(np.float64) for i, x in enumerate(lines)]


def _check_metadata(session: ort.InferenceSession, path: Path) -> tuple[str, ...]:
    meta = session.get_modelmeta().custom_metadata_map
    problems = []
    if "character" not in meta:
        problems.append("no 'character' list")
    if meta.get("height") != str(HEIGHT):
        problems.append(f"input height {meta.get('height')!r}, expected {HEIGHT}")
    if meta.get("stride") != str(STRIDE):
        problems.append(f"stride {meta.get('stride')!r}, expected {STRIDE}")
    if problems:
        raise DockgateError(ErrorCode.MODEL_INVALID, f"CRNN model {path}: {'; '.join(problems)}")
    charset = from_metadata(meta["character"])
    n_out = session.get_outputs()[0].shape[-1]
    if isinstance(n_out, int) and n_out != len(charset):
        raise DockgateError(
            ErrorCode.MODEL_INVALID,
            f"CRNN model {path}: {n_out} output classes but {len(charset)} in its charset",
        )
    return charset
