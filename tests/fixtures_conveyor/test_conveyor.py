"""The generated conveyor video: the camera's presence trigger finds every carton exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera.settings import CameraConfig, FileSource
from edge.camera.sources import open_source
from edge.codes import parse_text
from edge.runtime.presence import PresenceSegmenter
from fixtures.conveyor import ConveyorSpec, write_conveyor
from fixtures.conveyor.damage import DAMAGE_CLASSES, damage_face
from fixtures.conveyor.video import load_truth, render_conveyor

SPEC = ConveyorSpec(cartons=12, seed=11, damaged_share=0.4)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("conveyor")
    write_conveyor(out, SPEC)
    return out


def test_presence_finds_each_carton_exactly_once(video: Path) -> None:
    truth = load_truth(video)
    assert len(truth) == SPEC.cartons
    source = open_source(CameraConfig(source=FileSource(path=video / "conveyor.avi")))
    seg = PresenceSegmenter(threshold=18.0, keep=3)
    found: list[list[int]] = []
    for frame in source.frames():
        frames = seg.feed(frame)
        if frames:
            found.append([f.frame_id - 1 for f in frames])  # sources count frames from 1
    tail = seg.flush()
    if tail:
        found.append([f.frame_id - 1 for f in tail])
    source.close()
    assert len(found) == len(truth)
    for ids, t in zip(found, truth, strict=True):
        assert all(t.first_frame <= i <= t.last_frame for i in ids), (ids, t)
    doc = json.loads((video / "truth.json").read_text())
    assert doc["frames"] == (SPEC.cartons + 1) * SPEC.gap_frames + SPEC.cartons * (
        SPEC.enter_frames + SPEC.full_frames + SPEC.leave_frames
    )


def test_truth_matches_the_printed_code_and_the_asn(video: Path) -> None:
    truth = load_truth(video)
    asn = json.loads((video / "asn.json").read_text())
    lines = {(a["gtin"], a["lot"], a["expiry"]) for a in asn}
    for t in truth:
        code = parse_text(t.text)
        assert code.gtin == t.gtin and code.lot == t.lot
        assert (t.gtin, t.lot, t.expiry) in lines
    damaged = [t for t in truth if t.damage != "ok"]
    assert damaged and len(damaged) < len(truth)
    assert {t.damage for t in damaged} <= set(DAMAGE_CLASSES)
    assert all(t.damage_box is not None for t in damaged)
    assert any(t.smudge > 0.05 for t in truth)


def test_same_seed_same_frames() -> None:
    spec = ConveyorSpec(cartons=2, seed=5, damaged_share=1.0)
    a = [img for img, _ in render_conveyor(spec)]
    b = [img for img, _ in render_conveyor(spec)]
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_damage_stays_clear_of_the_code() -> None:
    img = np.full((720, 1280, 3), 200, np.uint8)
    quad = [[100, 100], [600, 100], [600, 200], [100, 200]]
    for kind in DAMAGE_CLASSES:
        out, (x0, y0, x1, y1) = damage_face(img, quad, kind, seed=1)
        assert out.shape == img.shape and not np.array_equal(out, img)
        code = cv2.absdiff(out[100:200, 100:600], img[100:200, 100:600])
        assert float(code.mean()) < 2.0, kind
        assert x1 > x0 and y1 > y0


def test_the_conveyor_draws_training_damage_in_its_original_shapes_only() -> None:
    # the demo's and the pipeline bench's footage must not change when training draws more
    # kinds of damage (fixtures.defects.domains.TRAIN's *_kinds)
    import dataclasses

    from fixtures.conveyor.damage import CONVEYOR
    from fixtures.defects import TRAIN

    assert CONVEYOR.crush_kinds == CONVEYOR.tear_kinds == CONVEYOR.wet_kinds == ("classic",)
    assert len(set(TRAIN.crush_kinds)) > 1  # training itself does draw more
    kinds = {"crush_kinds", "tear_kinds", "wet_kinds"}
    for f in dataclasses.fields(TRAIN):
        if f.name not in kinds:
            assert getattr(CONVEYOR, f.name) == getattr(TRAIN, f.name), f.name
