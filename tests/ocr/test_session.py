"""The session loader: sha256 gate, manifest parsing, warm-up, thread settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.session import load_model, load_session, read_manifest, sha256_file


def _tiny_model(path: Path) -> None:
    """y = relu(x) with a dynamic batch and width, like the OCR models."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 8, "w"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    (tmp_path / "ocr").mkdir()
    _tiny_model(tmp_path / "ocr" / "tiny.onnx")
    f = tmp_path / "ocr" / "tiny.onnx"
    manifest = {
        "schema": 1,
        "models": {
            "t.tiny": {
                "file": "ocr/tiny.onnx",
                "version": "1",
                "sha256": sha256_file(f),
                "bytes": f.stat().st_size,
                "note": "kept",
            }
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_loads_verified_model_and_runs(models_dir: Path) -> None:
    session, entry = load_model("t.tiny", threads=1, models_dir=models_dir)
    assert entry.version == "1" and entry.extra == {"note": "kept"}
    out = session.run(None, {"x": -np.ones((2, 3, 8, 5), np.float32)})[0]
    assert out.shape == (2, 3, 8, 5) and float(out.max()) == 0.0


def test_wrong_hash_is_refused(models_dir: Path) -> None:
    with pytest.raises(DockgateError) as err:
        load_session(models_dir / "ocr" / "tiny.onnx", "0" * 64)
    assert err.value.code is ErrorCode.MODEL_INVALID


def test_truncated_file_is_refused_by_size_and_hash(models_dir: Path) -> None:
    f = models_dir / "ocr" / "tiny.onnx"
    f.write_bytes(f.read_bytes()[:20])
    with pytest.raises(DockgateError) as err:
        load_model("t.tiny", models_dir=models_dir)
    assert err.value.code is ErrorCode.MODEL_INVALID and "bytes" in err.value.message


def test_corrupt_file_with_matching_hash_is_model_invalid(tmp_path: Path) -> None:
    f = tmp_path / "junk.onnx"
    f.write_bytes(b"not a model at all")
    with pytest.raises(DockgateError) as err:
        load_session(f, sha256_file(f))
    assert err.value.code is ErrorCode.MODEL_INVALID and "does not load" in err.value.message


def test_missing_file_and_unknown_name(models_dir: Path) -> None:
    with pytest.raises(DockgateError):
        load_session(models_dir / "nope.onnx", "0" * 64)
    with pytest.raises(DockgateError):
        load_model("t.other", models_dir=models_dir)


@pytest.mark.parametrize(
    "entry",
    [
        {"file": "../outside.onnx", "version": "1", "sha256": "a" * 64},
        {"file": "/etc/passwd", "version": "1", "sha256": "a" * 64},
        {"file": "ocr/tiny.onnx", "version": "1", "sha256": "xyz"},
        {"file": "ocr/tiny.onnx", "sha256": "a" * 64},
    ],
)
def test_bad_manifest_entries_are_refused(tmp_path: Path, entry: dict[str, str]) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"m": entry}}))
    with pytest.raises(DockgateError) as err:
        read_manifest(tmp_path)
    assert err.value.code is ErrorCode.MODEL_INVALID


def test_threads_out_of_range(models_dir: Path) -> None:
    with pytest.raises(ValueError):
        load_session(models_dir / "ocr" / "tiny.onnx", "0" * 64, threads=0)
