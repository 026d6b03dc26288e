"""`dockgate models train-codes` in CI size (tiny set, 1 epoch): exports, checks, records."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.vision.ocr.crnn.charset import CHARSET
from edge.vision.ocr.crnn.runtime import CrnnRecognizer
from edge.vision.session import read_manifest, sha256_file


@pytest.mark.slow
@pytest.mark.timeout(900)  # ONNX export through torch.export takes ~20 s of CPU
def test_train_codes_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "labelled"
    data.mkdir()
    crop = np.full((40, 240), 225, np.uint8)
    cv2.putText(crop, "LOT A24B117", (8, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 30, 2)
    cv2.imwrite(str(data / "a.png"), crop)
    (data / "labels.json").write_text(json.dumps({"a.png": "LOT A24B117"}))
    out = tmp_path / "models" / "ocr" / "crnn"
    manifest = tmp_path / "models" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(
        json.dumps(
            {"schema": 1, "models": {"other": {"file": "x", "version": "1", "sha256": "0" * 64}}}
        )
    )
    args = [
        "models", "train-codes", "--data", str(data), "--out", str(out),
        "--lines", "24", "--val-lines", "8", "--holdout-lines", "8", "--epochs", "1",
        "--batch", "8", "--seed", "3", "--cache", str(tmp_path / "cache"), "--no-compare",
        "--version", "tiny-test",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{\n") :])
    onnx_path = out / "crnn_codes.onnx"
    assert report["sha256"] == sha256_file(onnx_path)
    assert report["holdout"]["lines"] == 8 and report["production_holdout"] is None
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert report["sha256"] in card and "25 line crops (1 labelled real crops)" in card
    assert (out / "training.png").stat().st_size > 1000
    entries = read_manifest(manifest.parent)
    assert set(entries) == {"other", "ocr.crnn"}
    assert (
        entries["ocr.crnn"].sha256 == report["sha256"]
        and entries["ocr.crnn"].version == "tiny-test"
    )

    # the runtime loads it through the manifest and honours the recogniser contract
    rec = CrnnRecognizer(threads=1, models_dir=manifest.parent)
    assert rec.charset == CHARSET
    probs = rec([crop, crop[:, :100]])
    assert [p.shape[0] for p in probs] == [
        rec.prepare(crop).shape[1] // 4,
        rec.prepare(crop[:, :100]).shape[1] // 4,
    ]
    assert all(np.allclose(p.sum(axis=1), 1.0, atol=1e-4) for p in probs)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_train_codes_starts_from_the_shipped_model(tmp_path: Path) -> None:
    """--init loads the exported weights: at a vanishing learning rate the new file reads a
    line exactly as the shipped one does (a random start would not). Blank lines (empty
    targets) train alongside."""
    from edge.vision.session import MODELS_DIR

    shipped = CrnnRecognizer(threads=1, models_dir=MODELS_DIR)
    out = tmp_path / "crnn"
    args = [
        "models", "train-codes", "--out", str(out), "--init", str(shipped.model.path),
        "--lr", "1e-12", "--lines", "16", "--blank-lines", "4", "--val-lines", "8",
        "--holdout-lines", "4",
        "--epochs", "1", "--batch", "8", "--seed", "3", "--cache", str(tmp_path / "cache"),
        "--no-compare", "--no-manifest", "--version", "tiny-init",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f'"init": "{shipped.model.path}"' in card and '"lr": 1e-12' in card
    assert f"Started from `{shipped.model.path}`" in card and '"blank_lines": 4' in card
    tuned = CrnnRecognizer(threads=1, path=out / "crnn_codes.onnx")
    crop = np.full((40, 240), 225, np.uint8)
    cv2.putText(crop, "LOT A24B117", (8, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 30, 2)
    a, b = shipped([crop])[0], tuned([crop])[0]
    assert a.shape == b.shape and float(np.abs(a - b).max()) < 1e-3


def test_train_codes_bad_arguments(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    r = CliRunner().invoke(cli, ["models", "train-codes", "--data", str(tmp_path), "--out", out])
    assert r.exit_code != 0 and "has no labels.json" in r.output
    r = CliRunner().invoke(cli, ["models", "train-codes", "--lines", "0", "--out", out])
    assert r.exit_code != 0 and "needs labelled crops" in r.output
    r = CliRunner().invoke(cli, ["models", "train-codes", "--epochs", "0"])
    assert r.exit_code != 0
    r = CliRunner().invoke(cli, ["models", "train-codes", "--lr", "0", "--out", out])
    assert r.exit_code != 0 and "--lr" in r.output
    r = CliRunner().invoke(cli, ["models", "train-codes", "--init", str(tmp_path / "no.onnx")])
    assert r.exit_code != 0 and "does not exist" in r.output
    (tmp_path / "labels.json").write_text('{"a.png": "lot a1"}')
    args = ["--lines", "0", "--val-lines", "8", "--holdout-lines", "4", "--cache", str(tmp_path)]
    r = CliRunner().invoke(
        cli, ["models", "train-codes", "--data", str(tmp_path), "--out", out, *args]
    )
    assert r.exit_code != 0 and "outside the charset" in r.output
