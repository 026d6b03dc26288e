"""Bad input never crashes the node: a clear IMAGE_INVALID or a correct verdict."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.defects.image import decode, letterbox, peek_size, read_image, to_rgb8
from edge.vision.defects.model import DefectModel
from fixtures.defects import TRAIN, render_sample


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _jpg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def _invalid(fn: object, *args: object) -> DockgateError:
    with pytest.raises(DockgateError) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.code is ErrorCode.IMAGE_INVALID
    return info.value


def test_empty_bytes() -> None:
    assert "empty" in _invalid(decode, b"").message


def test_not_an_image() -> None:
    assert "not a decodable image" in _invalid(decode, b"GIF? no, a text file\n" * 10).message


def test_truncated_png_is_refused() -> None:
    data = _png(render_sample(0, "ok", TRAIN).image)
    _invalid(decode, data[: len(data) // 3])


def test_truncated_jpeg_is_refused_or_scored(shipped_model: DefectModel) -> None:
    # libjpeg pads a cut JPEG with grey: either a clear error or a verdict, never a crash.
    data = _jpg(render_sample(0, "ok", TRAIN).image)
    try:
        image = decode(data[: len(data) // 2])
    except DockgateError as exc:
        assert exc.code is ErrorCode.IMAGE_INVALID
        return
    assert shipped_model.predict(image).top_class in shipped_model.info.classes


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in _invalid(read_image, tmp_path / "nope.png").message


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (8, 500, 3), (0, 0, 3)])
def test_tiny_images(shipped_model: DefectModel, shape: tuple[int, ...]) -> None:
    err = _invalid(shipped_model.predict, np.zeros(shape, np.uint8))
    assert "at least" in err.message or "shape" in err.message


def test_1x1_png_file(shipped_model: DefectModel) -> None:
    image = decode(_png(np.full((1, 1, 3), 128, np.uint8)))
    _invalid(shipped_model.predict, image)


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10, 3, 2), np.uint8), np.zeros((40, 40, 2), np.uint8)]
)
def test_wrong_shapes(shipped_model: DefectModel, bad: np.ndarray) -> None:
    assert "shape" in _invalid(shipped_model.predict, bad).message


def test_nan_and_odd_dtypes(shipped_model: DefectModel) -> None:
    nan = np.full((64, 64, 3), np.nan, np.float32)
    assert "NaN" in _invalid(shipped_model.predict, nan).message
    _invalid(shipped_model.predict, np.zeros((64, 64, 3), np.complex64))
    _invalid(shipped_model.predict, "not an array")


def test_grayscale_gets_a_correct_verdict(shipped_model: DefectModel) -> None:
    frame = render_sample(4, "tear", TRAIN).image
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    for image in (gray, gray[..., None]):
        v = shipped_model.predict(image)
        assert 0.0 <= v.defect_score <= 1.0
        assert abs(sum(v.scores.values()) - 1.0) < 1e-5
    # A gray decode of a file works as well.
    assert decode(_png(gray)).shape == (*gray.shape, 3)


def test_alpha_uint16_and_float_frames(shipped_model: DefectModel) -> None:
    rgb = render_sample(2, "wet", TRAIN).image
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    base = shipped_model.predict(bgr).defect_score
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    assert shipped_model.predict(bgra).defect_score == pytest.approx(base, abs=1e-6)
    u16 = bgr.astype(np.uint16) * 257
    assert shipped_model.predict(u16).defect_score == pytest.approx(base, abs=1e-6)
    f = bgr.astype(np.float32) / 255.0
    assert shipped_model.predict(f).defect_score == pytest.approx(base, abs=1e-6)
    assert shipped_model.predict(rgb, channels="rgb").defect_score == pytest.approx(base, abs=1e-6)


@pytest.mark.slow
def test_10000x10000_array_gets_a_verdict(shipped_model: DefectModel) -> None:
    # A 300 MB frame: downscaled and scored, same verdict as the camera-sized frame.
    small = cv2.cvtColor(render_sample(7, "crush", TRAIN).image, cv2.COLOR_RGB2BGR)
    huge = cv2.resize(small, (10_000, 10_000), interpolation=cv2.INTER_NEAREST)
    v = shipped_model.predict(huge)
    assert v.top_class in shipped_model.info.classes
    if v.box is not None:
        x0, y0, x1, y1 = v.box
        assert 0 <= x0 < x1 <= 10_000 and 0 <= y0 < y1 <= 10_000
    del huge


def test_10000x10000_png_bytes_are_refused_before_decoding() -> None:
    # Header only: a PNG that claims 10,000 x 10,000 is refused without allocating 300 MB.
    header = _png(np.zeros((16, 16, 3), np.uint8))
    forged = header[:16] + (10_000).to_bytes(4, "big") * 2 + header[24:]
    assert peek_size(forged) == (10_000, 10_000)
    assert "MP limit" in _invalid(decode, forged).message


@pytest.mark.slow
def test_10000x10000_jpeg_is_decoded_reduced(shipped_model: DefectModel) -> None:
    big = np.full((10_000, 10_000, 3), 90, np.uint8)
    data = _jpg(big)
    assert peek_size(data) == (10_000, 10_000)
    image = decode(data)
    assert image.shape == (1250, 1250, 3)  # decoded at 1/8 scale by libjpeg
    assert shipped_model.predict(image).top_class in shipped_model.info.classes


def test_letterbox_geometry_maps_back() -> None:
    rgb = np.zeros((100, 400, 3), np.uint8)
    tensor, geom = letterbox(rgb, 192, 144)
    assert tensor.shape == (1, 3, 144, 192) and tensor.dtype == np.float32
    assert geom.scale == pytest.approx(192 / 400)
    assert geom.pad_x == 0 and geom.pad_y == (144 - 48) // 2
    assert geom.to_source(0, geom.pad_y) == (0.0, 0.0)
    assert geom.to_source(192, 144) == (400.0, 100.0)


def test_bad_channel_order_argument() -> None:
    with pytest.raises(ValueError, match="channels"):
        to_rgb8(np.zeros((32, 32, 3), np.uint8), channels="yuv")
