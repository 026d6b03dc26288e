"""`dockgate models train-defect` end to end on a tiny generated set: reproducible, loadable."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from click.testing import CliRunner

from edge.cli import cli
from edge.vision.defects.model import DefectModel
from edge.vision.session import read_manifest, sha256_file
from fixtures.defects import TRAIN, render_sample


def _train(data: Path, out: Path) -> dict[str, object]:
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
        version="narrow-test",
    )
    result = train(None, tmp_path / "defect", cfg)
    graph = onnx.load(str(result.onnx_path))
    shapes = {tuple(t.dims) for t in graph.graph.initializer}
    assert (8, 3, 3, 3) in shapes  # first conv: 3 -> 8 channels
    assert (12, 16, 3, 3) in shapes  # last stage: 16 -> 12
    assert (5, 12, 1, 1) in shapes  # the class-map head reads the 12 channels
    meta = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(meta["train_config"])["widths"] == [8, 8, 16, 12]
    assert TrainConfig().widths == (24, 48, 96, 192)
