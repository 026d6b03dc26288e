"""Fuzzing image input for the defect model (edge/vision/defects/image.py) and the reader's
file loading (edge/vision/ocr/cli.py ``load_image``).

Random bytes, truncated and bit-flipped JPEG/PNG, odd arrays, and decompression bombs (a tiny
file declaring a huge image). Criterion: an image or ``IMAGE_INVALID`` (the reader's problem
string), no other exception; memory stays bounded (measured in a child process).

Found and fixed (commit 9729fed, edge/vision/image.py): the reader decoded a 242 KB PNG of
15000x15000 to 1.3 GB and raised cv2.error on a 60000x60000 header; the defect decoder took a
65000x65000 JPEG at 1/8 scale (66 MP, ~340 MB); a 60-byte PNG whose IDAT claims 1 GB cost ~1 s
of CPU. The bomb and timing tests below keep them fixed.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.defects.image import MAX_DECODE_PIXELS, decode, to_rgb8
from edge.vision.ocr.cli import load_image
from tests.fuzz.budget import budget

REPO = Path(__file__).resolve().parents[2]
_RNG = np.random.default_rng(20261122)
_PICTURE = _RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8)
JPEG = cv2.imencode(".jpg", _PICTURE)[1].tobytes()
PNG = cv2.imencode(".png", _PICTURE)[1].tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bomb(w: int, h: int, rows: int | None = None) -> bytes:
    """A valid grey PNG of w x h (or its first ``rows``): a few hundred KB for 15000 x 15000."""
    c = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * w
    body = b"".join(c.compress(row) for _ in range(h if rows is None else rows)) + c.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


def jpeg_declaring(w: int, h: int) -> bytes:
    """A real JPEG whose SOF0 claims w x h (the scan data is for a tiny image)."""
    i = JPEG.index(b"\xff\xc0")
    return JPEG[: i + 5] + struct.pack(">HH", h, w) + JPEG[i + 9 :]


def _defects(data: bytes) -> None:
    try:
        image = decode(data)
    except DockgateError as exc:
        assert exc.code is ErrorCode.IMAGE_INVALID and exc.message
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def _ocr(data: bytes, tmp: Path) -> None:
    path = tmp / "frame.img"
    path.write_bytes(data)
    image, problem = load_image(path)
    assert (image is None) != (problem is None)


def _mutations(base: bytes) -> st.SearchStrategy[bytes]:
    def apply(cut: int, flips: list[tuple[int, int]]) -> bytes:
        data = bytearray(base[: max(1, cut)])
        for pos, value in flips:
            data[pos % len(data)] = value
        return bytes(data)

    return st.builds(
        apply,
        st.integers(1, len(base)),
        st.lists(st.tuples(st.integers(0, len(base)), st.integers(0, 255)), max_size=6),
    )


inputs = st.binary(max_size=400) | _mutations(JPEG) | _mutations(PNG)


# deadline 5 s: a shared 2-core machine; a hang still fails
@budget(60, deadline_s=5.0)
@given(inputs)
def test_defect_decode(data: bytes) -> None:
    _defects(data)


@budget(60, deadline_s=5.0)
@given(inputs)
def test_ocr_load_image(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    _ocr(data, tmp_path_factory.getbasetemp())


@budget(200)
@given(
    hnp.arrays(
        st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int64, np.bool_]),
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40),
    ),
    st.sampled_from(["bgr", "rgb"]),
)
def test_defect_arrays(array: np.ndarray, channels: str) -> None:
    try:
        out = to_rgb8(array, channels)
    except DockgateError as exc:
        assert exc.code is ErrorCode.IMAGE_INVALID
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


_CHILD = """
import json, resource, sys
from pathlib import Path
import numpy, cv2
from edge.contracts.errors import DockgateError
from edge.vision.defects.image import decode
from edge.vision.ocr.cli import load_image
data = Path(sys.argv[2]).read_bytes()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome = "image"
pixels = 0
try:
    if sys.argv[1] == "defects":
        image = decode(data)
        pixels = image.shape[0] * image.shape[1]
    elif load_image(Path(sys.argv[2]))[0] is None:
        outcome = "IMAGE_INVALID"
except DockgateError as exc:
    outcome = exc.code.value
except Exception as exc:
    outcome = "crash " + type(exc).__name__
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024
print(json.dumps({"outcome": outcome, "grown_mb": grown, "pixels": pixels}))
"""
#: a 40 MP frame as BGR is 120 MB; decoding may need a second copy
MEMORY_LIMIT_MB = 300


def _measure(which: str, data: bytes, tmp: Path) -> dict[str, object]:
    path = tmp / "bomb.img"
    path.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, which, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


BOMBS = {
    "png-15000x15000-grey": lambda: png_bomb(15_000, 15_000),
    "png-60000x60000-header": lambda: png_bomb(60_000, 60_000, rows=1),
    "jpeg-declaring-65000x65000": lambda: jpeg_declaring(65_000, 65_000),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "png-15000x15000-grey",
        "png-60000x60000-header",
        "jpeg-declaring-65000x65000",  # found here: 1/8 scale was decoded unchecked (66 MP)
    ],
)
def test_defects_memory_is_bounded(tmp_path: Path, name: str) -> None:
    got = _measure("defects", BOMBS[name](), tmp_path)
    assert not str(got["outcome"]).startswith("crash"), got
    assert int(str(got["pixels"])) <= MAX_DECODE_PIXELS, got  # the module's own promise
    assert int(str(got["grown_mb"])) < MEMORY_LIMIT_MB, got


@pytest.mark.slow
@pytest.mark.parametrize("name", ["png-15000x15000-grey", "png-60000x60000-header"])
def test_reader_memory_is_bounded(tmp_path: Path, name: str) -> None:
    """Found here: the reader's image loader decoded without a size check (1.3 GB for a
    242 KB PNG); it now goes through edge/vision/image.py like the defect model."""
    got = _measure("ocr", BOMBS[name](), tmp_path)
    assert not str(got["outcome"]).startswith("crash"), got
    assert int(str(got["grown_mb"])) < MEMORY_LIMIT_MB, got


def _bad_idat_length() -> bytes:
    data = bytearray(PNG[:60])
    data[33] = 59  # the IDAT chunk now claims ~1 GB; the file is 60 bytes
    return bytes(data)


def test_truncated_png_with_huge_chunk_is_refused_quickly() -> None:
    """Found here: OpenCV spent ~1 s of CPU on a 60-byte PNG whose IDAT claims ~1 GB."""
    data = _bad_idat_length()
    start = time.perf_counter()
    with pytest.raises(DockgateError):
        decode(data)
    assert time.perf_counter() - start < 0.25
