"""The one preprocessing step between a grey line crop and the network, shared by training
(:mod:`edge.vision.ocr.crnn.train`) and run time (:mod:`edge.vision.ocr.crnn.runtime`).

A crop is scaled to :data:`HEIGHT` rows keeping its aspect, its width rounded up to a multiple
of :data:`STRIDE` (the network emits one CTC frame per ``STRIDE`` columns), pixels mapped to
``x / 127.5 - 1``; a batch pads on the right with the value of light paper, which reads as
blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.uint8]

HEIGHT = 32  # network input height
STRIDE = 4  # input columns per output frame
MIN_WIDTH = 32
MAX_WIDTH = 2048  # longer crops are squeezed, not cut
PAD_VALUE = 0.8  # normalised light background: padding reads as blank


def resize_line(crop: Gray, squeeze: float = 1.0) -> Gray:
    """A grey line crop -> ``HEIGHT x W`` uint8, ``W`` a multiple of :data:`STRIDE`."""
    h, w = crop.shape[:2]
    width = math.ceil(HEIGHT * w / max(h, 1) * squeeze)
    width = int(min(max(width, MIN_WIDTH), MAX_WIDTH))
    width = -(-width // STRIDE) * STRIDE
    interp = cv2.INTER_AREA if h > HEIGHT else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(crop, (width, HEIGHT), interpolation=interp), np.uint8)


def batch_input(lines: Sequence[Gray]) -> npt.NDArray[np.float32]:
    """Resized lines -> ``N x 1 x HEIGHT x Wmax`` float32 in [-1, 1], right-padded light."""
    widest = max(x.shape[1] for x in lines)
    batch = np.full((len(lines), 1, HEIGHT, widest), PAD_VALUE, np.float32)
    for i, x in enumerate(lines):
        batch[i, 0, :, : x.shape[1]] = x.astype(np.float32) / 127.5 - 1.0
    return batch
