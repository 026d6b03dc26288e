"""What training leaves beside the ``.onnx`` file: MODEL_CARD.md, pr.png, the manifest entry."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from edge.vision.defects.evaluate import Evaluation
from edge.vision.defects.metrics import format_confusion, pr_curve
from edge.vision.defects.quantize import CALIBRATION_FRAMES
from edge.vision.defects.thresholds import Rethreshold
from edge.vision.session import onnx_metadata, sha256_file, write_manifest_entry

if TYPE_CHECKING:  # the trainer imports torch; a node re-choosing thresholds has none
    from edge.vision.defects.train import TrainConfig, TrainResult

MANIFEST_KEY = "defect"


def plot_pr(result: TrainResult, path: Path) -> None:
    """Precision-recall curves (validation and held-out) with the freeze threshold marked."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a build box
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=100)
    for name, ev, style in (("validation", result.val, "-"), ("held-out", result.holdout, "--")):
        precision, rec, scores = pr_curve(ev.ok_scores, ev.defect_scores)
        ax.plot(rec, precision, style, label=f"{name} (AP {ev.average_precision:.3f})")
        at = scores >= ev.threshold
        if at.any():
            i = int(at.nonzero()[0][-1])
            ax.plot([rec[i]], [precision[i]], "o", color=ax.lines[-1].get_color())
    ax.set_xlabel("recall (defective)")
    ax.set_ylabel("precision (defective)")
    ax.set_title(f"Defect model {result.version}: PR, dot = freeze threshold")
    ax.set_xlim(0.0, 1.01)
    ax.set_ylim(0.0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _figures(ev: Evaluation) -> str:
    s = ev.summary()
    return (
        f"| frames | {s['count']} |\n| recall of defective | {s['recall_defective']:.4f} |\n"
        f"| false-freeze rate (good items frozen) | {s['false_freeze_rate']:.4f} |\n"
        f"| 5-class accuracy (argmax) | {s['accuracy_5class']:.4f} |\n"
        f"| average precision (defective vs ok) | {s['average_precision']:.4f} |"
    )


def _start(init: str) -> str:
    """The card's line on what training started from (nothing when from random weights)."""
    if not init:
        return ""
    # moved or deleted since (no metadata): the file name is all there is to say
    version = onnx_metadata(Path(init)).get("version")
    name = f"`{version}`" if version else f"`{Path(init).name}`"
    return (
        f"\nFine-tuned from {name} (its exported weights, BatchNorm statistics kept fixed), "
        "not trained from random weights."
    )


def card_text(result: TrainResult) -> str:
    """The model card in Markdown."""
    cfg = result.config
    classes = tuple(cfg.classes)
    int8 = _int8(cfg)
    return f"""# Defect model `{result.version}`

File: `{result.onnx_path.name}`, {result.size} bytes, sha256 `{result.sha256}`.
Produced by `dockgate models train-defect` in {result.seconds:.0f} s wall,
{result.cpu_seconds:.0f} s of CPU time, on the CPU ({cfg.threads} thread(s), seed {cfg.seed},
deterministic kernels); rendering the frames is included in both.{_start(cfg.init)}

## What it does
Scores one conveyor frame for damage. Classes: {", ".join(f"`{c}`" for c in classes)}.
Outputs: `logits` (N, {len(classes)}) and `maps` (N, {len(classes)}, H/16, W/16), one class
activation map per class whose pooled value is the logit, used as the operator's heat map.
Input: RGB float32 in [0, 1], NCHW, {cfg.input_width}x{cfg.input_height}, the frame letterboxed
(aspect kept, 0.5 grey bars). The defect score is `1 - P(ok)`.{_mirror(cfg.flip_average)}{int8}

Thresholds (stored in the ONNX metadata, chosen on {_threshold_source(result)}):
freeze at score >= **{result.freeze_threshold:.4f}**, review from
**{result.review_threshold:.4f}**.

## Data
- Training, product views: {cfg.per_class} generated frames per class ({cfg.ok_factor}x for
  `ok`) from `fixtures.defects` domain `train` (kraft cartons seen three-quarters from above on
  grey/black/blue belts, slats and procedurally randomised belts of any colour with stripes,
  ridges or a mesh of random pitch and orientation, and bare metal rollers and slats; clear
  PET, amber and green glass and PET and glass of random tint; two fixed bottle shapes and
  random parametric profiles). Crush, tears and stains are drawn in more kinds than the
  held-out set's, with training's own ranges (`fixtures.defects.damage`: dents mid-panel,
  several dents, crushed edges and top flaps; punctures, slits, tears at an edge, two tears;
  several stains, drips, water wicked up from the bottom, stains at an edge or under tape or
  a label, with uneven drying and tide lines of varying width and number).
- Training, carton faces as the gate camera sees them (`fixtures.defects.face`):
  {cfg.face_per_class} frames per class `ok`, `crush`, `tear`, `wet` ({cfg.face_ok_factor}x for
  `ok`), each a `fixtures.cartons` frame (printed code, inkjet smudges, smears, dirt,
  scratches, tape, glare, flexo artwork, blur, JPEG) sliding along the belt, with damage drawn
  on the face the way `fixtures.conveyor` draws it.
- Plus {result.user_images} labelled user images; {result.train_count} frames after the
  {cfg.val_fraction:.0%} stratified validation split.
- Validation: that split ({result.val.count} frames), used only to choose
  thresholds.{_threshold_set(result)}
- Held-out: {cfg.holdout_per_class} frames per class from domain `holdout`, generator settings
  training never uses (its random belts, tints and profiles may come near some of them by
  chance): roller and green conveyors, pale and dark recycled board, near-cubic
  cartons, clear glass and blue PET, long-neck bottles and jars, darker warmer light with more
  sensor noise, longer branchier cracks, shallower dents, smaller tears, larger fainter stains;
  plus {cfg.holdout_face_per_class} carton faces per class `ok`, `crush`, `tear`, `wet` in the
  carton generator's HOLDOUT look (fonts, inks, board and label tones, flexo artwork, more
  glare, blur and noise, lower JPEG quality) on roller and green belts, with held-out damage
  ranges.

## Metrics at the freeze threshold
Validation:

| metric | value |
|---|---|
{_figures(result.val)}

Held-out (the figure that matters):

| metric | value |
|---|---|
{_figures(result.holdout)}

Held-out confusion (rows true, columns predicted by argmax):

{format_confusion(result.holdout.confusion, classes)}

Precision-recall: `pr.png`.

## Limits
All training and held-out frames are synthetic. Real cameras, glare, motion blur, stacked or
shrink-wrapped goods and damage kinds outside these five classes are not covered; figures on a
site's own labelled frames (drop them into `DATA/<class>/` and retrain) are the real test.
Frames the model is unsure about go to review, and every QA decision is kept as a labelled
sample for the next training round.

## Training configuration
```json
{json.dumps(asdict(cfg), indent=1)}
```
"""


def write_card(result: TrainResult) -> Path:
    """Write MODEL_CARD.md and pr.png beside the ONNX file; returns the card's path."""
    out = result.onnx_path.parent
    plot_pr(result, out / "pr.png")
    card = out / "MODEL_CARD.md"
    card.write_text(card_text(result), encoding="utf-8")
    return card


def update_manifest(manifest: Path, result: TrainResult) -> None:
    """Set the manifest's ``defect`` entry (other entries untouched), atomically."""
    record(
        manifest,
        result.onnx_path,
        result.version,
        result.config.input_width,
        result.config.input_height,
    )


def record(manifest: Path, onnx_path: Path, version: str, width: int, height: int) -> None:
    """The manifest's ``defect`` entry for the file at ``onnx_path`` (other entries untouched)."""
    write_manifest_entry(
        manifest,
        MANIFEST_KEY,
        onnx_path,
        version=version,
        sha256=sha256_file(onnx_path),
        size=onnx_path.stat().st_size,
        described={
            "kind": "defect-classifier",
            "input": f"1x3x{height}x{width} RGB float [0,1]",
        },
    )


def add_rethreshold(
    card: Path,
    onnx_path: Path,
    done: Rethreshold,
    holdout: Evaluation,
    frozen: dict[str, float],
) -> None:
    """Record in the model card beside ``onnx_path`` that its thresholds were chosen again:
    the title and file line name the new file; a section at the end gives the new thresholds,
    what they rest on and the held-out figures at them. The training record above stays as it
    was (its figures are at the old threshold, and the section says so)."""
    text = (
        card.read_text(encoding="utf-8") if card.exists() else f"# Defect model `{done.version}`\n"
    )
    lines = text.split("\n")
    sha, size = sha256_file(onnx_path), onnx_path.stat().st_size
    for i, line in enumerate(lines):
        if line.startswith("# Defect model "):
            lines[i] = f"# Defect model `{done.version}`"
        elif line.startswith("File: `"):
            lines[i] = f"File: `{onnx_path.name}`, {size} bytes, sha256 `{sha}`."
    th = done.thresholds
    section = f"""
## Thresholds chosen again: `{done.version}`
`dockgate models threshold-defect` gave this model's unchanged weights new thresholds, chosen on
a threshold set of {done.good_frames} good and {done.damaged_frames} damaged training-domain
frames rendered from seeds no training used (`edge.vision.defects.thresholds`; never the
held-out set): freeze **{done.previous_freeze:.4f} -> {th.freeze:.4f}**, review
{done.previous_review:.4f} -> {th.review:.4f}. On that set: recall {th.val_recall:.4f}, false
freezes {th.val_false_freeze:.4f}. The figures in the sections above are at the old threshold.

Held-out at the new freeze threshold:

| metric | value |
|---|---|
{_figures(holdout)}

Held-out share frozen per class at the new freeze threshold: {_shares(frozen)}.
"""
    card.write_text("\n".join(lines).rstrip("\n") + "\n" + section, encoding="utf-8")


def _shares(frozen: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.3f}" for name, share in frozen.items())


def _threshold_set(result: TrainResult) -> str:
    if not result.threshold_set:
        return ""
    return (
        f"\n- Threshold set: {result.threshold_set} more frames of the training mix from seeds no"
        "\n  training uses (`edge.vision.defects.thresholds`), also used only to choose thresholds."
    )


def _threshold_source(result: TrainResult) -> str:
    where = "the validation split" + (" and the threshold set" if result.threshold_set else "")
    return (
        f"{where}, {result.threshold_good} good and {result.threshold_damaged} damaged frames;"
        "\nthe freeze threshold is where about 0.5 % of the good ones score at or above it,\n"
        "or higher, midway to the damaged frames, where the two do not overlap"
    )


def _int8(cfg: TrainConfig) -> str:
    if not cfg.quantize:
        return ""
    return (
        "\nConvolutions in int8 (onnxruntime static quantisation, QDQ: per-channel int8 weights,"
        f"\nuint8 activations calibrated on {CALIBRATION_FRAMES} training frames):"
        "\n`edge.vision.defects.quantize`. Thresholds and all figures below are of the int8 file."
    )


def _mirror(flip_average: bool) -> str:
    if not flip_average:
        return ""
    return (
        "\nThe graph scores the frame and its mirror image and averages the two (the mirror's maps"
        "\nflipped back first): `edge.vision.defects.net.FlipAveraged`. All figures below are of"
        "\nthat graph."
    )
