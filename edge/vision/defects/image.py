"""Image input for the defect model: decode, validate and letterbox, never crash on bad input.

Everything a camera or a user can hand in (empty or truncated files, 1x1 pixels, grayscale,
alpha channels, 16-bit, a 10,000 x 10,000 photo) either becomes a well-formed model input or
raises ``DockgateError(IMAGE_INVALID)`` with a sentence saying what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.vision.image import (
    MAX_DECODE_PIXELS,
    MAX_FILE_BYTES,
    decode,
    invalid_image,
    peek_size,
    read_image,
)

#: The model input the trainer letterboxes frames into by default, (width, height); a model file
#: states its own in its metadata, and inference reads that. 192x144 up to defect-2026.12.07-s8:
#: a carton face filling 0.4 of a 1280x720 frame was 77 pixels wide there, a small tear 9. The
#: same net fine-tuned at 256x192 froze 0.93 of the held-out damage at <= 1 % false freezes
#: against 0.87 (bench/defects.py), at 1.7x the compute, which int8 convolutions pay back.
INPUT_SIZE: tuple[int, int] = (256, 192)

__all__ = [
    "INPUT_SIZE",
    "MAX_DECODE_PIXELS",
    "MAX_FILE_BYTES",
    "MIN_SIDE",
    "Letterbox",
    "decode",
    "letterbox",
    "peek_size",
    "read_image",
    "to_rgb8",
]

#: Smallest side the model can say anything about; smaller frames are refused, not guessed at.
MIN_SIDE = 16
PAD_VALUE = 0.5  # letterbox bars: mid-grey, which the network sees as "nothing here"

FloatImage = npt.NDArray[np.float32]


def to_rgb8(image: np.ndarray, channels: str = "bgr") -> npt.NDArray[np.uint8]:
    """Any plausible frame array to H x W x 3 RGB uint8, or ``IMAGE_INVALID``.

    Accepts H x W (grayscale), H x W x 1/3/4, uint8, uint16 (scaled) and float in [0, 1].
    ``channels`` says the colour order of 3/4-channel input: ``bgr`` (OpenCV, camera frames) or
    ``rgb``.
    """
    if not isinstance(image, np.ndarray):
        raise invalid_image(f"expected an image array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise invalid_image(f"unsupported image shape {image.shape}; expected HxW, HxWx3 or HxWx4")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise invalid_image(f"the image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} needed")
    image = _to_uint8(image)
    if image.ndim == 2:
        return _u8(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB))
    if image.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB if channels == "bgr" else cv2.COLOR_RGBA2RGB
        return _u8(cv2.cvtColor(image, code))
    if channels == "bgr":
        return _u8(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if channels != "rgb":
        raise ValueError(f"channels must be 'bgr' or 'rgb', got {channels!r}")
    return np.ascontiguousarray(image)


def _u8(array: Any) -> npt.NDArray[np.uint8]:
    """OpenCV returns untyped arrays; this states (and keeps) what they are."""
    return np.asarray(array, dtype=np.uint8)


def _to_uint8(image: np.ndarray) -> npt.NDArray[np.uint8]:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise invalid_image("the image contains NaN or infinite values")
        return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    raise invalid_image(f"unsupported pixel type {image.dtype}; expected uint8, uint16 or float")


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the model input, to map model-grid boxes back to the frame."""

    scale: float
    pad_x: int
    pad_y: int
    src_w: int
    src_h: int

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        """Model-input pixel coordinates to source-frame pixel coordinates (clamped)."""
        sx = min(max((x - self.pad_x) / self.scale, 0.0), float(self.src_w))
        sy = min(max((y - self.pad_y) / self.scale, 0.0), float(self.src_h))
        return sx, sy


def letterbox(rgb: npt.NDArray[np.uint8], width: int, height: int) -> tuple[FloatImage, Letterbox]:
    """Fit an RGB frame into ``width`` x ``height`` keeping its aspect ratio.

    Returns a (1, 3, height, width) float32 tensor in [0, 1] and the geometry used.
    """
    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (w, h) != (nw, nh):
        # INTER_AREA averages the source pixels: thin cracks fade but do not alias away.
        rgb = _u8(cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA))
    canvas = np.full((height, width, 3), PAD_VALUE, np.float32)
    px, py = (width - nw) // 2, (height - nh) // 2
    canvas[py : py + nh, px : px + nw] = rgb.astype(np.float32) * (1.0 / 255.0)
    tensor = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None])
    return tensor, Letterbox(scale=scale, pad_x=px, pad_y=py, src_w=w, src_h=h)
