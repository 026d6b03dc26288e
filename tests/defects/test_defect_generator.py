"""The seeded defect image generator: deterministic, labelled, two distinct domains, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fixtures.cartons import HOLDOUT as CARTON_HOLDOUT
from fixtures.defects import CLASSES, FRAME_H, FRAME_W, HOLDOUT, TRAIN, render_sample
from fixtures.defects.__main__ import main as generator_cli
from fixtures.defects.face import FACE_CLASSES, FACE_H, FACE_W, face_settings, render_face


@pytest.mark.parametrize("label", CLASSES)
def test_same_seed_same_pixels(label: str) -> None:
    a = render_sample(11, label, TRAIN)
    b = render_sample(11, label, TRAIN)
    assert a.image.dtype == np.uint8 and a.image.shape == (FRAME_H, FRAME_W, 3)
    assert np.array_equal(a.image, b.image)
    assert a.box == b.box


@pytest.mark.parametrize("label", CLASSES)
def test_damage_has_a_box_inside_the_frame(label: str) -> None:
    for seed in range(6):
        s = render_sample(seed, label, TRAIN)
        if label == "ok":
            assert s.box is None
            continue
        assert s.box is not None
        x0, y0, x1, y1 = s.box
        assert 0 <= x0 < x1 <= FRAME_W and 0 <= y0 < y1 <= FRAME_H, s.box
        assert (x1 - x0) * (y1 - y0) >= 9  # damage is visible, not a single pixel


def test_damage_changes_the_item_not_the_whole_frame() -> None:
    # Same seed and domain, different class: the scene differs (damage and item kind drawn),
    # and frames are not trivially constant.
    for label in CLASSES:
        img = render_sample(3, label, TRAIN).image.astype(np.float32)
        assert img.std() > 10.0


def test_seeds_and_domains_differ() -> None:
    a = render_sample(1, "wet", TRAIN).image
    b = render_sample(2, "wet", TRAIN).image
    c = render_sample(1, "wet", HOLDOUT).image
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(TRAIN.conveyors).isdisjoint(HOLDOUT.conveyors)
    assert set(TRAIN.bottle_shapes).isdisjoint(HOLDOUT.bottle_shapes)
    assert TRAIN.crush_depth[0] >= HOLDOUT.crush_depth[1]  # held-out dents are shallower


def test_unknown_class_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown class"):
        render_sample(0, "melted", TRAIN)


def test_cli_writes_class_folders_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = CliRunner().invoke(
        generator_cli, ["--out", str(out), "--per-class", "2", "--seed", "5", "--format", "jpg"]
    )
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "truth.json").read_text())
    assert len(truth) == 2 * len(CLASSES)
    for rel, item in truth.items():
        assert (out / rel).stat().st_size > 1000
        assert rel.split("/")[0] == item["label"]


@pytest.mark.parametrize("label", FACE_CLASSES)
def test_carton_faces_are_seeded_and_damage_is_in_view(label: str) -> None:
    a_img, a_box, meta = render_face(21, label, TRAIN)
    b_img, b_box, _ = render_face(21, label, TRAIN)
    assert a_img.dtype == np.uint8 and a_img.shape == (FACE_H, FACE_W, 3)
    assert np.array_equal(a_img, b_img) and a_box == b_box
    assert meta["item"] == "carton-face" and meta["conveyor"] in TRAIN.conveyors
    if label == "ok":
        assert a_box is None
    else:
        assert a_box is not None
        x0, y0, x1, y1 = a_box
        assert 0 <= x0 < x1 <= FACE_W and 0 <= y0 < y1 <= FACE_H, a_box
        assert (x1 - x0) * (y1 - y0) >= 9


def test_carton_faces_use_the_carton_generator_settings_of_their_domain() -> None:
    # Held-out faces use the carton generator's HOLDOUT look and held-out belts; training faces
    # its TRAIN look (plus artwork and glare): the held-out set keeps settings training never saw.
    assert face_settings(HOLDOUT) == CARTON_HOLDOUT
    train = face_settings(TRAIN)
    assert set(train.thermal_fonts).isdisjoint(CARTON_HOLDOUT.thermal_fonts)
    assert set(train.kraft_tones).isdisjoint(CARTON_HOLDOUT.kraft_tones)
    assert set(train.inks).isdisjoint(CARTON_HOLDOUT.inks)
    _, _, meta = render_face(4, "wet", HOLDOUT)
    assert meta["conveyor"] in HOLDOUT.conveyors
    assert not np.array_equal(render_face(4, "ok", TRAIN)[0], render_face(4, "ok", HOLDOUT)[0])
    with pytest.raises(ValueError, match="no carton-face frames"):
        render_face(0, "crack", TRAIN)
