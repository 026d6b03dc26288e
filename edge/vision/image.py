"""Decoding untrusted image bytes: bounded in memory and time, never a crash.

Every image that comes from outside (files given to ``dockgate read``, uploads, defect images a
user drops in a folder) is decoded here: sizes are read from the header before anything is
decoded, a PNG whose chunks claim more bytes than the file holds is refused at once, and a JPEG
too large to decode in full is decoded at 1/8 scale only when that fits the pixel budget.
Problems raise ``DockgateError(IMAGE_INVALID)`` with a sentence saying what was wrong.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.contracts.errors import DockgateError, ErrorCode

#: Encoded images above this are not decoded in full (JPEG is decoded at 1/8 scale instead):
#: a 100 MP PNG would need 300 MB of RAM on a box that has little to spare.
MAX_DECODE_PIXELS = 40_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024


def invalid_image(message: str) -> DockgateError:
    """``IMAGE_INVALID`` with a sentence saying what was wrong."""
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


def _png_truncated(data: bytes) -> bool:
    """True when a chunk claims more bytes than the file holds (OpenCV would spend a second of
    CPU on a 60-byte file claiming a 1 GB IDAT before giving up)."""
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        if i + 12 + length > len(data):
            return True
        if data[i + 4 : i + 8] == b"IEND":
            return False
        i += 12 + length
    return True


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
        raise invalid_image("the image is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise invalid_image(f"the image file is {len(data)} bytes, over the {MAX_FILE_BYTES} limit")
    flags = cv2.IMREAD_COLOR
    if data[:8] == b"\x89PNG\r\n\x1a\n" and _png_truncated(data):
        raise invalid_image("truncated PNG: a chunk runs past the end of the file")
    size = peek_size(data)
    if size is not None and size[0] * size[1] > MAX_DECODE_PIXELS:
        if data[:2] == b"\xff\xd8" and size[0] * size[1] // 64 > MAX_DECODE_PIXELS:
            raise invalid_image(
                f"the image is {size[0]}x{size[1]} pixels: even at 1/8 scale over the "
                f"{MAX_DECODE_PIXELS // 1_000_000} MP limit"
            )
        if data[:2] != b"\xff\xd8":
            raise invalid_image(
                f"the image is {size[0]}x{size[1]} pixels, over the "
                f"{MAX_DECODE_PIXELS // 1_000_000} MP limit for this format; send a JPEG or "
                "a smaller frame"
            )
        flags = cv2.IMREAD_REDUCED_COLOR_8  # libjpeg's DCT scaling: cheap and memory-light
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise invalid_image("not a decodable image (unknown format, truncated or corrupt)")
    return np.ascontiguousarray(image)


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """Read and decode an image file (BGR uint8); ``IMAGE_INVALID`` if missing or unusable."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # refused before a byte of it is read into memory
            raise invalid_image(f"{path}: {size} bytes, over the {MAX_FILE_BYTES} byte limit")
        data = path.read_bytes()
    except OSError as exc:
        raise invalid_image(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return decode(data)
    except DockgateError as exc:
        raise invalid_image(f"{path}: {exc.message}") from None
