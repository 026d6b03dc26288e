"""The freeze and review thresholds of an exported defect model, and the frames they rest on.

Up to ``defect-2026.12.07-s9`` the thresholds came from the validation split alone: 338 good
frames, so the false-freeze bound of 0.5 % was set by the second-hardest of them, and s9's
freeze threshold (0.95) froze no good held-out frame but let 12 % of the damage through. A
quantile that far out needs more samples, so the thresholds are now chosen on the validation
split pooled with a *threshold set*: training-domain frames in the training mix's proportions
(:func:`edge.vision.defects.data.render_mix`), rendered from seeds no training run uses. Never
the held-out set: its figures must stay an honest test. No torch here, so an exported model can
be given thresholds again (``dockgate models threshold-defect``) on a node without ``[train]``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge.vision.defects.data import Frames, Mix, StartStage, render_mix
from edge.vision.defects.evaluate import scores_onnx
from edge.vision.defects.metrics import Thresholds, choose_thresholds, defect_scores
from edge.vision.session import onnx_metadata, seal_onnx

#: The threshold set of a model trained with seed ``s`` is rendered from ``s + 300_000`` (and
#: the mix's offsets above it); training uses ``s`` to ``s + 70_000``.
SEED_OFFSET = 300_000


def render_threshold_set(
    mix: Mix,
    train_seed: int,
    classes: tuple[str, ...],
    size: tuple[int, int],
    start: StartStage | None = None,
    workers: int = 1,
) -> Frames:
    """The threshold set of a model trained with ``train_seed`` (same frames for any workers)."""
    return render_mix(
        mix, train_seed + SEED_OFFSET, classes, size, start, workers, "threshold set: "
    )


def contract(meta: dict[str, str], where: Path) -> tuple[tuple[str, ...], tuple[int, int]]:
    """(classes, (input width, height)) from an exported defect model's metadata; ValueError
    when ``meta`` (read from ``where``) is not a defect model's."""
    try:
        classes = tuple(json.loads(meta["classes"]))
        return classes, (int(meta["input_width"]), int(meta["input_height"]))
    except (KeyError, ValueError, TypeError):
        raise ValueError(
            f"{where} is not an exported defect model (no contract metadata)"
        ) from None


def threshold_meta(th: Thresholds, good: int, damaged: int, source: str) -> dict[str, str]:
    """The metadata entries that record ``th`` and what it was chosen on."""
    return {
        "freeze_threshold": f"{th.freeze:.6f}",
        "review_threshold": f"{th.review:.6f}",
        "thresholds_from": json.dumps(
            {"source": source, "good_frames": good, "damaged_frames": damaged}
        ),
    }


def reseal(
    onnx_path: Path, out: Path, meta: dict[str, str], producer: str = "dockgate-train-defect"
) -> None:
    """Write ``onnx_path`` to ``out`` (may be the same file) with ``meta`` as its metadata,
    atomically (:func:`edge.vision.session.seal_onnx`)."""
    work = out.with_suffix(".export.onnx")
    shutil.copyfile(onnx_path, work)
    seal_onnx(work, out, meta, producer)


@dataclass(frozen=True)
class Rethreshold:
    """What :func:`rethreshold` chose and wrote."""

    thresholds: Thresholds
    previous_freeze: float
    previous_review: float
    good_frames: int
    damaged_frames: int
    version: str


def rethreshold(
    onnx_path: Path,
    out: Path,
    *,
    mix: Mix,
    seed: int,
    version: str,
    start: StartStage | None = None,
    workers: int = 1,
    threads: int = 1,
) -> Rethreshold:
    """Choose new thresholds for an exported model on the threshold set of training seed
    ``seed`` and write the model to ``out`` with them and ``version`` in its metadata (weights
    byte for byte the same). The training run's validation split cannot be rebuilt without its
    data, so the threshold set alone decides here."""
    meta = onnx_metadata(onnx_path)
    classes, size = contract(meta, onnx_path)
    frames = render_threshold_set(mix, seed, classes, size, start, workers)
    good, damaged = defect_scores(scores_onnx(onnx_path, frames.x, threads), frames.y, classes)
    th = choose_thresholds(good, damaged)
    source = f"threshold set of seed {seed} ({mix.per_class} per class, faces {mix.face_per_class})"
    new_meta = meta | threshold_meta(th, len(good), len(damaged), source) | {"version": version}
    reseal(onnx_path, out, new_meta, "dockgate-threshold-defect")
    return Rethreshold(
        thresholds=th,
        previous_freeze=float(meta.get("freeze_threshold", "nan")),
        previous_review=float(meta.get("review_threshold", "nan")),
        good_frames=len(good),
        damaged_frames=len(damaged),
        version=version,
    )
