"""Image input for the defect model: decode, validate and letterbox, never crash on bad input.

Everything a camera or a user can hand in (empty or truncated files, 1x1 pixels, grayscale,
alpha channels, 16-bit, a 10,000 x 10,000 photo) either becomes a well-formed model input or
raises ``DockgateError(IMAGE_INVALID)`` with a sentence saying what was wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.contracts.errors import DockgateError, ErrorCode

#: Smallest side the model can say anything about; smaller frames are refused, not guessed at.
MIN_SIDE = 16
#: Encoded images above this are not decoded in full (JPEG is decoded at 1/8 scale instead):
#: a 100 MP PNG would need 300 MB of RAM on a box that has little to spare.
MAX_DECODE_PIXELS = 40_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024
PAD_VALUE = 0.5  # letterbox bars: mid-grey, which the network sees as "nothing here"

FloatImage = npt.NDArray[np.float32]


def _invalid(message: str) -> DockgateError:
    return DockgateError(ErrorCode.IMAGE_INVALID, message)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF marker, without decoding."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def peek_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG from its header; ``None`` for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def decode(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode encoded image bytes to a BGR uint8 array (OpenCV order, like camera frames)."""
    if not data:
        raise _invalid("the image is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise _invalid(f"the image file is {len(data)} bytes, over the {MAX_FILE_BYTES} limit")
    flags = cv2.IMREAD_COLOR
    size = peek_size(data)
    if size is not None and size[0] * size[1] > MAX_DECODE_PIXELS:
        if data[:2] != b"\xff\xd8":
            raise _invalid(
                f"the image is {size[0]}x{size[1]} pixels, over the "
                f"{MAX_DECODE_PIXELS // 1_000_000} MP limit for this format; send a JPEG or "
                "a smaller frame"
            )
        flags = cv2.IMREAD_REDUCED_COLOR_8  # libjpeg's DCT scaling: cheap and memory-light
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise _invalid("not a decodable image (unknown format, truncated or corrupt)")
    return np.ascontiguousarray(image)


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """Read and decode an image file (BGR uint8); ``IMAGE_INVALID`` if missing or unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _invalid(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return decode(data)
    except DockgateError as exc:
        raise _invalid(f"{path}: {exc.message}") from None


def to_rgb8(image: np.ndarray, channels: str = "bgr") -> npt.NDArray[np.uint8]:
    """Any plausible frame array to H x W x 3 RGB uint8, or ``IMAGE_INVALID``.

    Accepts H x W (grayscale), H x W x 1/3/4, uint8, uint16 (scaled) and float in [0, 1].
    ``channels`` says the colour order of 3/4-channel input: ``bgr`` (OpenCV, camera frames) or
    ``rgb``.
    """
    if not isinstance(image, np.ndarray):
        raise _invalid(f"expected an image array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise _invalid(f"unsupported image shape {image.shape}; expected HxW, HxWx3 or HxWx4")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise _invalid(f"the image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
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
            raise _invalid("the image contains NaN or infinite values")
        return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    raise _invalid(f"unsupported pixel type {image.dtype}; expected uint8, uint16 or float")


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
