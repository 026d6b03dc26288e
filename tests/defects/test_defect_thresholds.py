"""Thresholds chosen on a threshold set (edge.vision.defects.thresholds) and
`dockgate models threshold-defect`, which gives an exported model new thresholds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.vision.defects.data import Mix, render_face_frames, render_frames, render_mix
from edge.vision.defects.metrics import choose_thresholds, defect_scores, frozen_by_class
from edge.vision.defects.model import DefectModel
from edge.vision.defects.thresholds import (
    SEED_OFFSET,
    render_threshold_set,
    rethreshold,
)
from edge.vision.session import MODELS_DIR, onnx_metadata, read_manifest, sha256_file

CLASSES = ("ok", "crack", "crush", "tear", "wet")
SIZE = (96, 72)
SHIPPED = MODELS_DIR / "defect" / "defect.onnx"
TINY = Mix(per_class=2, ok_factor=3, face_per_class=1, face_ok_factor=3)


def test_render_mix_is_the_training_sets_four_parts_in_order() -> None:
    """The training set of every shipped model was rendered as these four calls; the shared
    function must give the same frames, or a retrain would not reproduce a model."""
    got = render_mix(TINY, 7, CLASSES, SIZE)
    parts = [
        render_frames("train", 2, 7, CLASSES, SIZE),
        render_frames("train", 4, 50_007, CLASSES, SIZE, only=("ok",)),
        render_face_frames("train", 1, 20_007, CLASSES, SIZE),
        render_face_frames("train", 2, 70_007, CLASSES, SIZE, only=("ok",)),
    ]
    assert got.source == [s for p in parts for s in p.source]
    assert np.array_equal(got.x, np.concatenate([p.x for p in parts]))
    assert np.bincount(got.y, minlength=5).tolist() == [2 + 4 + 1 + 2, 2, 3, 3, 3]


def test_mix_scales_every_kind() -> None:
    assert Mix(500, 3, 250, 3).scaled(0.5) == Mix(250, 3, 125, 3)
    assert Mix(500, 3, 250, 3).scaled(0) == Mix(0, 3, 0, 3)


def test_threshold_set_shares_no_frame_with_the_training_set() -> None:
    train_sources = set(render_mix(TINY, 7, CLASSES, SIZE).source)
    held = render_threshold_set(TINY, 7, CLASSES, SIZE)
    assert len(held) == len(train_sources) and not train_sources & set(held.source)
    # ... and is its own, reproducible set: the training mix of seed 7 + SEED_OFFSET.
    assert held.source == render_mix(TINY, 7 + SEED_OFFSET, CLASSES, SIZE).source


def test_defect_scores_and_frozen_shares() -> None:
    probs = np.array([[0.9, 0.1, 0, 0, 0], [0.2, 0.8, 0, 0, 0], [0.6, 0, 0.4, 0, 0]])
    y = np.array([0, 1, 2])
    good, damaged = defect_scores(probs, y, CLASSES)
    assert np.allclose(good, [0.1]) and np.allclose(damaged, [0.8, 0.4])
    assert frozen_by_class(probs, y, CLASSES, 0.5) == {"ok": 0.0, "crack": 1.0, "crush": 0.0}


def _initializers(path: Path) -> dict[str, bytes]:
    graph = onnx.load(str(path)).graph
    return {t.name: t.SerializeToString() for t in graph.initializer}


def test_rethreshold_writes_new_thresholds_and_keeps_the_weights(tmp_path: Path) -> None:
    before = sha256_file(SHIPPED)
    out = tmp_path / "defect.onnx"
    done = rethreshold(SHIPPED, out, mix=TINY, seed=11, version="rethreshold-test")
    assert sha256_file(SHIPPED) == before  # the source is not touched
    meta, old = onnx_metadata(out), onnx_metadata(SHIPPED)
    assert meta["version"] == "rethreshold-test"
    assert float(meta["freeze_threshold"]) == pytest.approx(done.thresholds.freeze, abs=1e-6)
    assert float(meta["review_threshold"]) == pytest.approx(done.thresholds.review, abs=1e-6)
    assert done.previous_freeze == pytest.approx(float(old["freeze_threshold"]))
    source = json.loads(meta["thresholds_from"])
    assert (source["good_frames"], source["damaged_frames"]) == (9, 11)
    assert done.good_frames == 9 and done.damaged_frames == 11
    # Everything else in the contract is kept, and the weights are the same bytes.
    for key in ("classes", "input_width", "input_height", "train_config"):
        assert meta[key] == old[key]
    assert _initializers(out) == _initializers(SHIPPED)
    # The thresholds are the ones metrics.choose_thresholds picks on those frames.
    model = DefectModel.load(path=out, sha256=sha256_file(out))
    assert model.info.freeze_threshold == pytest.approx(done.thresholds.freeze, abs=1e-6)
    assert model.info.version == "rethreshold-test"


def test_rethreshold_matches_choose_thresholds_on_the_same_frames(tmp_path: Path) -> None:
    from edge.vision.defects.evaluate import scores_onnx

    done = rethreshold(SHIPPED, tmp_path / "d.onnx", mix=TINY, seed=12, version="v")
    meta = onnx_metadata(SHIPPED)
    size = (int(meta["input_width"]), int(meta["input_height"]))
    frames = render_threshold_set(TINY, 12, CLASSES, size)
    good, damaged = defect_scores(scores_onnx(SHIPPED, frames.x), frames.y, CLASSES)
    assert done.thresholds == choose_thresholds(good, damaged)


def test_rethreshold_refuses_a_file_that_is_not_a_defect_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(ValueError, match="not an exported defect model"):
        rethreshold(bad, tmp_path / "out.onnx", mix=TINY, seed=1, version="v")
    assert not (tmp_path / "out.onnx").exists()


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["models", "threshold-defect", *args])
    return result.exit_code, result.output


def test_threshold_defect_command_updates_model_card_and_manifest(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "defect").mkdir(parents=True)
    model = models / "defect" / "defect.onnx"
    shutil.copyfile(SHIPPED, model)
    shutil.copyfile(SHIPPED.parent / "MODEL_CARD.md", models / "defect" / "MODEL_CARD.md")
    code, output = _cli(
        str(model),
        "--version",
        "cli-test",
        "--per-class",
        "2",
        "--face-per-class",
        "1",
        "--holdout-per-class",
        "2",
        "--holdout-face-per-class",
        "1",
    )
    assert code == 0, output
    report = json.loads(output[output.index("{") :])
    assert report["version"] == "cli-test"
    assert report["threshold_set"] == {"good": 9, "damaged": 11}
    assert report["holdout"]["count"] == 2 * 5 + 1 * 4
    assert set(report["holdout"]["frozen_by_class"]) == set(CLASSES)
    new_freeze = report["freeze_threshold"][1]
    assert float(onnx_metadata(model)["freeze_threshold"]) == pytest.approx(new_freeze, abs=1e-6)

    card = (models / "defect" / "MODEL_CARD.md").read_text(encoding="utf-8")
    sha = sha256_file(model)
    assert card.startswith("# Defect model `cli-test`")
    assert card.count(sha) == 1 and "## Thresholds chosen again: `cli-test`" in card
    assert "## Data" in card  # the training record stays
    entry = read_manifest(models)["defect"]
    assert (entry.version, entry.sha256) == ("cli-test", sha)
    DefectModel.load(models_dir=models)  # the manifest and file agree


def test_threshold_defect_command_writes_out_beside_a_copy_of_the_card(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "defect.onnx"
    out.parent.mkdir()
    code, output = _cli(
        str(SHIPPED),
        "--out",
        str(out),
        "--version",
        "copy-test",
        "--no-manifest",
        "--per-class",
        "2",
        "--face-per-class",
        "1",
        "--holdout-per-class",
        "1",
        "--holdout-face-per-class",
        "0",
    )
    assert code == 0, output
    assert onnx_metadata(out)["version"] == "copy-test"
    card = (out.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Data" in card and "copy-test" in card
    assert not (tmp_path / "manifest.json").exists()


def test_threshold_defect_command_refuses_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "defect.onnx"
    bad.write_bytes(b"\x08\x07truncated")
    code, output = _cli(str(bad), "--version", "v")
    assert code == 1 and "not an exported defect model" in output
    assert "Traceback" not in output
    code, output = _cli(str(tmp_path / "missing.onnx"), "--version", "v")
    assert code == 2 and "does not exist" in output
    code, output = _cli(str(SHIPPED))
    assert code == 2 and "--version" in output


@pytest.mark.parametrize(("scale", "extra_good", "extra_damaged"), [(1.0, 9, 11), (0.0, 0, 0)])
def test_training_chooses_thresholds_on_validation_and_the_threshold_set(
    tmp_path: Path, scale: float, extra_good: int, extra_damaged: int
) -> None:
    from edge.vision.defects.card import card_text
    from edge.vision.defects.train import TrainConfig, train

    cfg = TrainConfig(
        seed=6,
        per_class=2,
        face_per_class=1,
        holdout_per_class=1,
        holdout_face_per_class=1,
        epochs=1,
        widths=(4, 8, 8, 8),
        stem=4,
        input_width=96,
        input_height=72,
        threshold_scale=scale,
        version="threshold-train-test",
    )
    result = train(None, tmp_path / "defect", cfg)
    val_good = len(result.val.ok_scores)
    val_damaged = len(result.val.defect_scores)
    assert result.threshold_set == extra_good + extra_damaged
    assert (result.threshold_good, result.threshold_damaged) == (
        val_good + extra_good,
        val_damaged + extra_damaged,
    )
    meta = onnx_metadata(result.onnx_path)
    source = json.loads(meta["thresholds_from"])
    assert source["good_frames"] == result.threshold_good
    assert source["source"] == (
        "validation split and threshold set" if scale else "validation split"
    )
    assert float(meta["freeze_threshold"]) == pytest.approx(result.freeze_threshold, abs=1e-6)
    text = card_text(result)
    assert f"{result.threshold_good} good and {result.threshold_damaged} damaged" in text
    assert ("Threshold set: 20 more frames" in text) == bool(scale)


def test_threshold_defect_command_renders_the_mix_the_model_was_trained_on(
    tmp_path: Path,
) -> None:
    """Without --per-class / --face-per-class the threshold set follows the model's own
    ``train_config`` (here a tiny one), not the trainer's defaults."""
    from edge.vision.defects.thresholds import reseal

    meta = onnx_metadata(SHIPPED)
    trained = json.loads(meta["train_config"]) | {
        "per_class": 2,
        "face_per_class": 1,
        "ok_factor": 2,
        "holdout_per_class": 1,
        "holdout_face_per_class": 0,
    }
    model = tmp_path / "defect.onnx"
    reseal(SHIPPED, model, meta | {"train_config": json.dumps(trained)})
    code, output = _cli(str(model), "--version", "mix-test", "--no-manifest")
    assert code == 0, output
    report = json.loads(output[output.index("{") :])
    # products 2 per class + 2 more ok, faces 1 per face class + 2 more ok (face_ok_factor 3)
    assert report["threshold_set"] == {"good": 2 + 2 + 1 + 2, "damaged": 2 * 4 + 1 * 3}
    assert report["holdout"]["count"] == 5
