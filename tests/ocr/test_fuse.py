"""Fusing field readings across frames, on hand-made probability matrices."""

from __future__ import annotations

import pytest

from edge.vision.ocr.decode import Decoder, FieldRead
from edge.vision.ocr.fuse import fuse_field
from tests.ocr.probs import CHARSET, matrix


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(CHARSET)


def _lot(decoder: Decoder, **kw: object) -> FieldRead:
    return decoder.line(matrix("LOT A24B117", **kw)).fields[0]  # type: ignore[arg-type]


def test_frames_smudged_in_different_places_fuse_to_a_confident_read(decoder: Decoder) -> None:
    # one frame per character, so a smudged character is one uncertain frame
    a = _lot(decoder, frames=2, overrides={7: {"8": 0.3, "B": 0.65}})
    b = _lot(decoder, frames=2, overrides={5: {"Z": 0.3, "2": 0.65}})
    assert a.confidence < 0.75 and b.confidence < 0.75
    fused = fuse_field(decoder, [a, b], evidence_weight=0.0)
    assert fused is not None and fused.value == "A24B117" and fused.readings == 2
    assert fused.confidence > max(a.confidence, b.confidence)


def test_disagreeing_clear_frames_are_not_confident(decoder: Decoder) -> None:
    a = decoder.line(matrix("LOT A24B117")).fields[0]
    b = decoder.line(matrix("LOT A24B118")).fields[0]
    fused = fuse_field(decoder, [a, b], evidence_weight=0.0)
    assert fused is not None and fused.confidence < 0.5


def test_single_reading_keeps_its_confidence(decoder: Decoder) -> None:
    a = decoder.line(matrix("LOT A24B117")).fields[0]
    fused = fuse_field(decoder, [a], evidence_weight=0.0)
    assert fused is not None and fused.value == a.value
    assert abs(fused.confidence - a.confidence) < 1e-6


def test_no_readings() -> None:
    assert fuse_field(Decoder(CHARSET), []) is None
