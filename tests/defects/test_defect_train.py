"""`dockgate models train-defect` end to end on a tiny generated set: reproducible, loadable."""

from __future__ import annotations

import dataclasses
import json
from math import nan
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.vision.defects.data import render_face_frames, render_frames
from edge.vision.defects.model import DefectModel
from edge.vision.session import read_manifest, sha256_file
from fixtures.defects import TRAIN, render_sample
from fixtures.defects.dataset import sample_seeds


def _train(data: Path, out: Path, *extra: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        [
            "models",
            "train-defect",
            "--data",
            str(data),
            "--out",
            str(out),
            "--per-class",
            "4",
            "--face-per-class",
            "2",
            "--holdout-per-class",
            "3",
            "--holdout-face-per-class",
            "2",
            "--epochs",
            "1",
            "--seed",
            "3",
            "--version",
            "tiny-test",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.output[result.output.index("{") :])
    return report


def test_generate_then_train_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    gen = CliRunner().invoke(
        cli, ["models", "generate-defects", "--out", str(data), "--per-class", "3", "--seed", "9"]
    )
    assert gen.exit_code == 0, gen.output
    # A user's own photo (JPEG, other size) and an unreadable file in the data folder.
    photo = render_sample(99, "wet", TRAIN).image
    cv2.imwrite(str(data / "wet" / "user-photo.jpg"), cv2.resize(photo, (640, 400)))
    (data / "crack" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")

    out = tmp_path / "models" / "defect"
    report = _train(data, out)
    onnx_path = out / "defect.onnx"
    assert report["sha256"] == sha256_file(onnx_path)
    assert (out / "MODEL_CARD.md").read_text().count(str(report["sha256"])) == 1
    assert (out / "pr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    entry = read_manifest(tmp_path / "models")["defect"]
    assert entry.sha256 == report["sha256"] and entry.version == "tiny-test"

    model = DefectModel.load(models_dir=tmp_path / "models")
    photo_bgr = cv2.imread(str(data / "wet" / "user-photo.jpg"))
    assert photo_bgr is not None
    v = model.predict(photo_bgr)
    assert v.model_version == "tiny-test" and 0.0 <= v.defect_score <= 1.0

    # Same seed, same data, same threads: the same bytes.
    again = _train(data, tmp_path / "again" / "defect")
    assert again["sha256"] == report["sha256"]


def test_input_size_sets_the_model_input(tmp_path: Path) -> None:
    """``--input-size`` is the size frames are letterboxed into, recorded in the file; the
    runtime reads it from there, so the model predicts on any frame at its own size."""
    out = tmp_path / "models" / "defect"
    report = _train(tmp_path / "no-data", out, "--input-size", "96x72", "--no-manifest")
    model = DefectModel.load(path=out / "defect.onnx", sha256=str(report["sha256"]))
    assert (model.info.input_width, model.info.input_height) == (96, 72)
    frame = render_sample(4, "tear", TRAIN).image
    verdict = model.predict(frame)
    assert 0.0 <= verdict.defect_score <= 1.0
    assert verdict.heatmap is not None and verdict.heatmap.shape == (5, 6)  # 72x96 / 16


@pytest.mark.parametrize("value", ["256", "256x", "axb", "16x16", "2048x192", "256x192x3"])
def test_input_size_refuses_what_is_not_a_size(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["models", "train-defect", "--data", str(tmp_path), "--input-size", value],
    )
    assert result.exit_code == 2 and "--input-size" in result.output, result.output


def test_widths_shape_the_network_and_are_recorded(tmp_path: Path) -> None:
    """``TrainConfig.widths`` sets the four stages' channels; the ONNX metadata records them."""
    import onnx

    from edge.vision.defects.train import TrainConfig, train

    cfg = TrainConfig(
        seed=5,
        per_class=2,
        face_per_class=1,
        holdout_per_class=1,
        holdout_face_per_class=1,
        epochs=1,
        widths=(8, 8, 16, 12),
        stem=6,
        version="narrow-test",
    )
    result = train(None, tmp_path / "defect", cfg)
    graph = onnx.load(str(result.onnx_path))
    shapes = {tuple(t.dims) for t in graph.graph.initializer}
    assert (6, 3, 3, 3) in shapes  # the full-resolution stem: 3 -> 6 channels
    assert (8, 6, 3, 3) in shapes  # first stage: 6 -> 8 channels (stride 2)
    assert (12, 16, 3, 3) in shapes  # last stage: 16 -> 12
    assert (5, 12, 1, 1) in shapes  # the class-map head reads the 12 channels
    meta = {p.key: p.value for p in graph.metadata_props}
    config = json.loads(meta["train_config"])
    assert config["widths"] == [8, 8, 16, 12] and config["stem"] == 6
    assert TrainConfig().widths == (24, 48, 96, 192) and TrainConfig().stem == 8

    no_stem = train(None, tmp_path / "plain", dataclasses.replace(cfg, stem=0, aux_weight=0.0))
    plain = {tuple(t.dims) for t in onnx.load(str(no_stem.onnx_path)).graph.initializer}
    assert (8, 3, 3, 3) in plain and (6, 3, 3, 3) not in plain  # s4's layout: stride 2 first


def test_generated_frames_carry_their_damage_box_in_model_pixels() -> None:
    """The per-cell loss needs to know where the damage is in the letterboxed input."""
    classes = ("ok", "crack", "crush", "tear", "wet")
    frames = render_frames("train", 1, 4, classes, (192, 144))
    boxes = frames.box_array()
    assert boxes.shape == (5, 4)
    for label, seed in sample_seeds(4, 1):
        i = classes.index(label)
        truth = render_sample(seed, label, TRAIN).box
        if truth is None:
            assert label == "ok" and list(boxes[i]) == [0, 0, 0, 0]
            continue
        # 320x240 frames fill the 192x144 input: a scale of 0.6, no bars.
        assert boxes[i] == pytest.approx([v * 0.6 for v in truth], abs=1e-3)
    faces = render_face_frames("train", 1, 4, classes, (192, 144), only=("tear",))
    x0, y0, x1, y1 = faces.box_array()[0]
    assert 0 <= x0 < x1 <= 192 and 18 <= y0 < y1 <= 126  # a 16:9 face: grey bars of 18 px


def test_cell_targets_mark_the_damage_and_leave_unknown_places_out() -> None:
    import torch

    from edge.vision.defects.train import box_masks, cell_targets

    boxes = torch.tensor([[0.0, 0.0, 0.0, 0.0], [16.0, 16.0, 48.0, 32.0], [nan, nan, nan, nan]])
    y = torch.tensor([0, 3, 1])
    masks = box_masks(boxes, 64, 64)
    assert masks.shape == (3, 1, 64, 64) and float(masks[1].sum()) == 32 * 16
    t = cell_targets(y, boxes, masks, (4, 4), ok=0)
    assert (t[0] == 0).all()  # an ok frame is ok everywhere
    assert t[1, 1, 1] == 3 and t[1, 1, 2] == 3 and int((t[1] == 3).sum()) == 2
    assert int((t[1] == 0).sum()) == 14  # the rest of the damaged frame is ok
    assert (t[2] == -100).all()  # damaged, place unknown (a user's photo): no cell target


def test_exported_model_averages_the_frame_and_its_mirror(tmp_path: Path) -> None:
    """The shipped graph scores a frame and its mirror image the same, mirrors its heat map
    with the frame, and equals the trained net's outputs averaged over the two."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from edge.vision.defects.net import DefectNet
    from edge.vision.defects.train import TrainConfig, export_onnx

    torch.manual_seed(0)
    cfg = TrainConfig(widths=(4, 8, 8, 8), stem=4)
    net = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem).eval()
    export_onnx(net, tmp_path / "flip.onnx", cfg, {"version": "t"})
    export_onnx(net, tmp_path / "plain.onnx", dataclasses.replace(cfg, flip_average=False), {})
    flip = ort.InferenceSession(str(tmp_path / "flip.onnx"), providers=["CPUExecutionProvider"])
    plain = ort.InferenceSession(str(tmp_path / "plain.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((2, 3, cfg.input_height, cfg.input_width), np.float32)
    mirror = np.ascontiguousarray(x[:, :, :, ::-1])
    logits, maps = flip.run(None, {"image": x})
    logits_m, maps_m = flip.run(None, {"image": mirror})
    assert logits.shape == (2, len(cfg.classes))
    np.testing.assert_allclose(logits_m, logits, atol=1e-5)
    np.testing.assert_allclose(maps_m, maps[:, :, :, ::-1], atol=1e-5)
    a, amaps = plain.run(None, {"image": x})
    b, bmaps = plain.run(None, {"image": mirror})
    np.testing.assert_allclose(logits, (a + b) / 2, atol=1e-5)
    np.testing.assert_allclose(maps, (amaps + bmaps[:, :, :, ::-1]) / 2, atol=1e-5)
    # one copy of the weights, not two
    import onnx

    def weights(name: str) -> int:
        graph = onnx.load(str(tmp_path / name)).graph
        return sum(int(np.prod(t.dims)) for t in graph.initializer if len(t.dims) > 1)

    assert weights("flip.onnx") == weights("plain.onnx") > 0
