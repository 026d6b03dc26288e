"""Damaged files on the node's disk are detected, not loaded: a sample image whose bytes changed
after it was kept, a sample whose metadata is truncated, a truncated model file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel.review_store import SampleReviewQueue
from edge.vision.ocr.samples import SampleDamagedError, SampleStore
from edge.vision.session import load_session, read_manifest


def _keep(store: SampleStore, n: int) -> list[str]:
    rng = np.random.default_rng(7)
    ids = []
    for i in range(n):
        image = rng.integers(0, 255, (40, 120, 3), dtype=np.uint8)
        sid = store.keep(image, {"status": "REVIEW", "text": f"LOT {i}", "confidence": 0.4})
        assert sid is not None
        ids.append(sid)
    return ids


def test_damaged_samples_are_detected_and_never_shown(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", 10 << 20)
    good, flipped, truncated = _keep(store, 3)
    png = tmp_path / "samples" / f"{flipped}.png"
    data = bytearray(png.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit of rot in the middle of the image
    png.write_bytes(bytes(data))
    meta = tmp_path / "samples" / f"{truncated}.json"
    meta.write_bytes(meta.read_bytes()[:20])
    assert store.load(good)[1]["text"] == "LOT 0"
    for sid in (flipped, truncated):
        with pytest.raises(SampleDamagedError) as exc:
            store.load(sid)
        assert str(exc.value).startswith("SAMPLE_INVALID")
    queue = SampleReviewQueue(store)
    assert [item.id for item in queue.pending()] == [good]


def test_a_truncated_model_file_is_not_loaded(tmp_path: Path) -> None:
    entry = read_manifest()["defect"]
    copy = tmp_path / "defect.onnx"
    shutil.copyfile(entry.path, copy)
    copy.write_bytes(copy.read_bytes()[: entry.path.stat().st_size // 2])
    with pytest.raises(DockgateError) as exc:
        load_session(copy, entry.sha256, threads=1)
    assert exc.value.code is ErrorCode.MODEL_INVALID
