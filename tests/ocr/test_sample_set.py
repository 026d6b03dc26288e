"""The reader on the committed carton sample set (fixtures/samples/cartons): frames and crops,
with and without its ASN list. The hard rule is the issue's: no wrong ACCEPTED read, ever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge.vision.ocr.reader import ASN, CartonRead, Reader

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "cartons"
FIELDS = ("gtin", "lot", "expiry", "prod_date", "sscc")


@pytest.fixture(scope="module")
def sample_set() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "truth.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def asn() -> list[ASN]:
    return [ASN(**line) for line in json.loads((ROOT / "asn.json").read_text(encoding="utf-8"))]


def _wrong(read: CartonRead, want: dict[str, Any]) -> bool:
    return read.status == "ACCEPTED" and any(getattr(read, k) != want.get(k) for k in FIELDS)


@pytest.fixture(scope="module")
def frame_reads(
    reader: Reader, sample_set: dict[str, Any], asn: list[ASN]
) -> list[tuple[str, dict[str, Any], CartonRead, CartonRead]]:
    out = []
    for name, truth in sample_set["frames"].items():
        image = cv2.imread(str(ROOT / name))
        assert image is not None, name
        out.append((name, truth, reader.read(image), reader.read(image, asn)))
    return out


def test_no_wrong_accepted_frame(frame_reads: list[Any]) -> None:
    wrong = [
        (name, mode)
        for name, truth, plain, with_asn in frame_reads
        for mode, read in (("open", plain), ("asn", with_asn))
        if _wrong(read, truth)
    ]
    assert wrong == []


def test_clean_frames_are_read_and_the_asn_helps(frame_reads: list[Any]) -> None:
    def correct(read: CartonRead, truth: dict[str, Any]) -> bool:
        return read.status == "ACCEPTED" and not _wrong(read, truth)

    plain = sum(correct(p, t) for _, t, p, _ in frame_reads)
    with_asn = sum(correct(a, t) for _, t, _, a in frame_reads)
    clean_asn = sum(correct(a, t) for n, t, _, a in frame_reads if "/b00_" in n)
    # floors under today's figures (1 and 5 of 30, 2 of 5 clean): they catch a broken reader,
    # the bench measures the real rates on 600 frames. Open reads were 2-3 of 30 until PP-OCR's
    # temperature went from 1.75 to 1.9 (2026-12-07: at 1.75 it accepted two wrong lots without
    # an ASN on a second calibration seed); the ASN floor is what it was (2 + 3)
    assert plain >= 1 and with_asn >= max(plain + 3, 5) and clean_asn >= 2


def test_every_frame_gets_a_status_and_its_text(frame_reads: list[Any]) -> None:
    for name, _, plain, with_asn in frame_reads:
        assert plain.status in ("ACCEPTED", "REVIEW", "UNREADABLE"), name
        assert with_asn.status in ("ACCEPTED", "REVIEW", "UNREADABLE"), name
        assert 0.0 <= plain.confidence <= 1.0
        assert plain.status == "ACCEPTED" or plain.reason


def test_tight_crops(reader: Reader, sample_set: dict[str, Any]) -> None:
    for name, truth in sample_set["crops"].items():
        image = cv2.imread(str(ROOT / name))
        read = reader.read(image)
        assert read.status in ("ACCEPTED", "REVIEW", "UNREADABLE"), name
        # a crop holds one line, so at most the fields that line prints can be right
        if read.status == "ACCEPTED":
            assert all(getattr(read, k) == v for k, v in truth["fields"].items()), name
