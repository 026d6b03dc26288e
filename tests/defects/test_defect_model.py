"""The shipped defect model: manifest and sha256, committed samples, location, latency field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.defects.model import DefectModel
from edge.vision.defects.verdict import Action, verdict_action
from edge.vision.session import MODELS_DIR, model_entry, sha256_file
from tests.defects.conftest import SAMPLES

MAX_BYTES = 10 * 1024 * 1024


def test_manifest_sha256_matches_the_file() -> None:
    entry = model_entry("defect")
    assert entry.path.is_file()
    assert sha256_file(entry.path) == entry.sha256
    assert entry.path.stat().st_size == entry.size
    assert entry.size is not None and entry.size < MAX_BYTES


def test_model_contract(shipped_model: DefectModel) -> None:
    info = shipped_model.info
    assert {"ok", "crack", "crush", "tear", "wet"} <= set(info.classes)
    assert 0.0 < info.review_threshold <= info.freeze_threshold < 1.0
    assert shipped_model.version == model_entry("defect").version


def test_tampered_model_is_not_loaded(tmp_path: Path) -> None:
    entry = model_entry("defect")
    copy = tmp_path / "defect.onnx"
    shutil.copyfile(entry.path, copy)
    with copy.open("r+b") as fh:
        fh.seek(entry.path.stat().st_size // 2)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(DockgateError) as info:
        DefectModel.load(copy, sha256=entry.sha256)
    assert info.value.code is ErrorCode.MODEL_INVALID
    with pytest.raises(DockgateError) as info:
        DefectModel.load(copy)  # by path without a hash: refused, never trusted blindly
    assert info.value.code is ErrorCode.MODEL_INVALID


def test_truncated_model_is_not_loaded(tmp_path: Path) -> None:
    entry = model_entry("defect")
    copy = tmp_path / "defect.onnx"
    copy.write_bytes(entry.path.read_bytes()[:1000])
    with pytest.raises(DockgateError) as info:
        DefectModel.load(copy, sha256=sha256_file(copy))  # hash matches, content is junk
    assert info.value.code is ErrorCode.MODEL_INVALID


def _boxes_overlap(a: tuple[int, ...], b: list[int], slack: int = 12) -> bool:
    return not (
        a[2] + slack < b[0] or b[2] + slack < a[0] or a[3] + slack < b[1] or b[3] + slack < a[1]
    )


#: Regression floor for the committed samples (15 from the training domain with an unseen seed,
#: 15 from the held-out domain). defect-2026.12.06-s4 got 24/30 right and 13/30 with swapped
#: colour channels (s3: 23 -> 9), so the floor also caught a channel swap. The shipped
#: defect-2026.12.07-s6, trained on random glass tints and belt colours, gets 26/30, but still
#: 23/30 with swapped channels: the floor no longer catches a swap, and
#: test_the_model_is_fed_rgb below checks the channel order directly. It is not
#: the quality goal: bench/defects.py and MODEL_CARD.md report that on 1,000+ held-out frames.
MIN_CORRECT = 20


def test_committed_samples_of_every_class(
    shipped_model: DefectModel, samples: dict[str, dict[str, object]]
) -> None:
    info = shipped_model.info
    seen, correct, located, frozen = set(), 0, 0, 0
    ok_scores: list[float] = []
    bad_scores: list[float] = []
    for rel, truth in sorted(samples.items()):
        label = str(truth["label"])
        image = cv2.imread(str(SAMPLES / rel))
        assert image is not None, rel
        v = shipped_model.predict(image)
        seen.add(label)
        correct += v.top_class == label
        (ok_scores if label == "ok" else bad_scores).append(v.defect_score)
        action = verdict_action(v, info.freeze_threshold, info.review_threshold)
        if action is Action.FREEZE:
            assert v.box is not None, rel  # a frozen carton always shows the operator where
        if label != "ok" and action is Action.FREEZE and v.defect_class == label:
            frozen += 1
            located += _boxes_overlap(v.box, truth["box"])  # type: ignore[arg-type]
    assert seen == set(info.classes)
    assert correct >= MIN_CORRECT, f"{correct}/{len(samples)} samples classified correctly"
    assert sum(bad_scores) / len(bad_scores) > sum(ok_scores) / len(ok_scores) + 0.2
    # Heat-map boxes come from a 16-pixel grid: 16/16 overlap the true damage box here (s6; s4:
    # 13/15; s3: 11/16, and 85% on 164 other unseen frames). The floor catches a box mapped to
    # the wrong place (e.g. letterbox offsets lost), which drops it far lower.
    assert frozen and located >= 0.6 * frozen, (located, frozen)


class _SpySession:
    """An onnxruntime session stand-in that records what the model is fed."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.fed: list[np.ndarray] = []

    def get_inputs(self) -> Any:
        return self._session.get_inputs()

    def run(self, outputs: Any, feed: dict[str, np.ndarray]) -> Any:
        self.fed += list(feed.values())
        return self._session.run(outputs, feed)


def test_the_model_is_fed_rgb(shipped_model: DefectModel) -> None:
    # The model was trained on RGB. A colour-robust model scores swapped channels nearly as well
    # (see MIN_CORRECT), so check the tensor itself: a blue BGR frame arrives as blue in RGB.
    spy = _SpySession(shipped_model._session)
    model = DefectModel(spy, shipped_model.info, shipped_model.sha256)
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[..., 0] = 255  # BGR: pure blue
    model.predict(frame)
    model.predict(frame[..., ::-1].copy(), channels="rgb")
    assert len(spy.fed) == 2
    for tensor in spy.fed:
        assert tensor.shape == (
            1,
            3,
            shipped_model.info.input_height,
            shipped_model.info.input_width,
        )
        means = tensor[0].mean(axis=(1, 2))
        assert means[2] > 0.95 and means[0] < 0.05 and means[1] < 0.05, means


def test_verdict_fields(shipped_model: DefectModel, samples: dict[str, dict[str, object]]) -> None:
    rel = next(r for r, t in sorted(samples.items()) if t["label"] == "tear")
    image = cv2.imread(str(SAMPLES / rel))
    assert image is not None
    v = shipped_model.predict(image)
    assert abs(sum(v.scores.values()) - 1.0) < 1e-5
    assert v.defect_score == pytest.approx(1.0 - v.scores["ok"])
    assert v.heatmap.ndim == 2 and float(v.heatmap.max()) == pytest.approx(1.0)
    assert v.latency_ms > 0 and v.model_version == shipped_model.version
    d = v.to_dict()
    assert d["model_version"] == shipped_model.version and d["box"] is not None


def test_models_info_command() -> None:
    result = CliRunner().invoke(cli, ["models", "info", "--models-dir", str(MODELS_DIR)])
    assert result.exit_code == 0, result.output
    assert "defect:" in result.output and "ok" in result.output
    assert "freeze >=" in result.output


def test_models_info_flags_a_bad_file(tmp_path: Path) -> None:
    shutil.copytree(MODELS_DIR, tmp_path / "models")
    entry = model_entry("defect", tmp_path / "models")
    entry.path.write_bytes(entry.path.read_bytes() + b"x")
    result = CliRunner().invoke(cli, ["models", "info", "--models-dir", str(tmp_path / "models")])
    assert result.exit_code != 0
    assert "INVALID" in result.output


#: Committed conveyor-view frames (fixtures/defects/conveyor_samples.py, fixtures.conveyor seed
#: 31: the frame the gate pipeline scores for each of 16 cartons). The good cartons carry inkjet
#: smudges, smears, dirt, scratches, tape and glare, which defect-2026.11.22-s1 froze as damage
#: (8 of 9); defect-2026.12.06-s3 froze none but caught only 5 of the 7 damaged (two wet cartons
#: passed). defect-2026.12.06-s4 (wider net) freezes 0 of 9 good and 6 of 7 damaged: the wet
#: carton conveyor-31-000 still scores 0.755, below its freeze threshold 0.880.
#: defect-2026.12.07-s6 freezes 0 of 9 good and 7 of 7 damaged (conveyor-31-000: 0.994, freeze
#: threshold 0.9937).
CONVEYOR = SAMPLES / "conveyor"
#: The goal on these 16 frames: at most one good carton frozen, at least 6 of 7 damaged frozen.
MAX_GOOD_FROZEN = 1
MIN_DAMAGED_FROZEN = 6


def test_smudged_good_cartons_on_the_conveyor_are_not_frozen(shipped_model: DefectModel) -> None:
    truth = json.loads((CONVEYOR / "truth.json").read_text())
    info = shipped_model.info
    good_frozen, damaged_frozen, goods, damaged = [], [], 0, 0
    for rel, item in sorted(truth.items()):
        image = cv2.imread(str(CONVEYOR / rel))
        assert image is not None, rel
        v = shipped_model.predict(image)
        frozen = verdict_action(v, info.freeze_threshold, info.review_threshold) is Action.FREEZE
        if item["label"] == "ok":
            goods += 1
            good_frozen += [rel] if frozen else []
        else:
            damaged += 1
            damaged_frozen += [rel] if frozen else []
    assert goods == 9 and damaged == 7
    assert len(good_frozen) <= MAX_GOOD_FROZEN, good_frozen
    assert len(damaged_frozen) >= MIN_DAMAGED_FROZEN, damaged_frozen
