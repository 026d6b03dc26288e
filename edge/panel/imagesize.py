"""Width and height of a PNG or JPEG from its header, so defect boxes (fractions of the crop)
are drawn over the picture at its true aspect ratio without decoding it."""

from __future__ import annotations

import struct

DEFAULT = (100, 60)


def image_size(data: bytes | None) -> tuple[int, int]:
    """(width, height); ``DEFAULT`` when the bytes are neither a PNG nor a JPEG we can read."""
    if not data:
        return DEFAULT
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return (w, h) if w and h else DEFAULT
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data) or DEFAULT
    return DEFAULT


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return (w, h) if w and h else None
        i += 2 + length
    return None
