"""The committed sample set: complete, parseable, small, and reproducible from its seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.codes import parse_text
from fixtures.cartons import PRESETS, generate_crop, generate_frame
from fixtures.cartons.content import REFERENCE_DAY

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "cartons"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "truth.json").read_text("utf-8"))
    return data


def test_set_is_complete_and_small(doc: dict[str, Any]) -> None:
    assert doc["buckets"] == [0, 10, 20, 30, 40, 50]
    assert len(doc["frames"]) == 30 and len(doc["crops"]) == 6
    for name in [*doc["frames"], *doc["crops"]]:
        assert (ROOT / name).is_file(), name
    assert len(list((ROOT / "preview").glob("*.png"))) >= 2
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 3_000_000, total


def test_every_truth_parses_and_is_in_the_asn(doc: dict[str, Any]) -> None:
    asn = json.loads((ROOT / "asn.json").read_text("utf-8"))
    expected = {(a["gtin"], a["lot"], a["expiry"]) for a in asn}
    for name, t in doc["frames"].items():
        code = parse_text(t["text"], today=REFERENCE_DAY).carton()
        assert code is not None, name
        assert code.as_dict() == {k: t[k] for k in ("gtin", "lot", "expiry", "prod_date", "sscc")}
        assert (t["gtin"], t["lot"], t["expiry"]) in expected
        bucket = int(name.split("/b")[1][:2])
        assert abs(t["smudge"] - bucket / 100) <= 0.05


def _same_as_committed(img: np.ndarray, path: Path, quality: int) -> None:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    committed = path.read_bytes()
    decoded = np.asarray(cv2.imdecode(np.frombuffer(committed, np.uint8), cv2.IMREAD_COLOR))
    regenerated = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    assert np.array_equal(regenerated, decoded)  # pixel-identical
    assert buf.tobytes() == committed  # and byte-identical with this OpenCV build


def test_a_frame_regenerates_identically(doc: dict[str, Any]) -> None:
    name = "frames/b30_0002.jpg"
    t = doc["frames"][name]
    img, truth = generate_frame(
        t["seed"], smudge=t["smudge_target"], settings=PRESETS[t["settings"]]
    )
    assert truth == t
    _same_as_committed(img, ROOT / name, doc["jpeg_quality"])


def test_a_crop_regenerates_identically(doc: dict[str, Any]) -> None:
    name = "crops/c40_0000.jpg"
    t = doc["crops"][name]
    img, truth = generate_crop(
        t["seed"], smudge=t["smudge_target"], settings=PRESETS[t["settings"]]
    )
    assert truth == t
    _same_as_committed(img, ROOT / name, doc["jpeg_quality"])
