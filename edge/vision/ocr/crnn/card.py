"""The CRNN's model card (MODEL_CARD.md), training-curve plot and manifest entry."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from edge.vision.ocr.crnn.charset import CHARACTERS, CHARSET
from edge.vision.ocr.crnn.metrics import LineScore
from edge.vision.ocr.crnn.prep import HEIGHT, STRIDE
from edge.vision.ocr.crnn.train import TrainResult
from edge.vision.session import write_manifest_entry

MANIFEST_KEY = "ocr.crnn"


def plot_history(result: TrainResult, path: Path) -> None:
    """Training loss and validation CER per evaluation (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in result.history]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.plot(steps, [h["loss"] for h in result.history], color="tab:blue", label="CTC loss (train)")
    ax.set_xlabel("step")
    ax.set_ylabel("CTC loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["val_cer"] for h in result.history], color="tab:red", label="val CER")
    ax2.set_ylabel("validation CER", color="tab:red")
    ax2.set_ylim(0, max(0.05, max((h["val_cer"] for h in result.history), default=1.0)))
    ax.set_title(f"CRNN {result.version}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _row(name: str, s: LineScore | None) -> str:
    if s is None:
        return f"| {name} | n/a | n/a | n/a |"
    return f"| {name} | {s.lines} | {s.exact_rate:.4f} | {s.cer:.4f} |"


def _verdict(result: TrainResult) -> str:
    if result.production is None:
        return "Not compared with the production recogniser (`--no-compare`)."
    better = result.holdout.cer < result.production.cer
    return (
        f"**Against production on the same held-out crops: the CRNN is "
        f"{'better' if better else 'worse'}** (CER {result.holdout.cer:.4f} vs "
        f"{result.production.cer:.4f}, exact {result.holdout.exact_rate:.4f} vs "
        f"{result.production.exact_rate:.4f})."
        + ("" if better else " A worse candidate must not replace the production recogniser.")
    )


def card_text(result: TrainResult) -> str:
    cfg = result.config
    smudge_rows = "\n".join(
        f"| {k} | {v.lines} | {v.exact_rate:.4f} | {v.cer:.4f} | "
        + (
            f"{result.production_by_smudge[k].exact_rate:.4f} | "
            f"{result.production_by_smudge[k].cer:.4f} |"
            if k in result.production_by_smudge
            else "n/a | n/a |"
        )
        for k, v in result.holdout_by_smudge.items()
    )
    prod_name = f"PP-OCR `ocr.rec` ({result.production_version})" if result.production else "PP-OCR"
    return f"""# Model card: CRNN carton-code line recogniser `{result.version}`

- File: `{result.onnx_path.name}`, {result.size} bytes, sha256 `{result.sha256}`
- Manifest key: `{MANIFEST_KEY}`; runtime `edge.vision.ocr.crnn.runtime.CrnnRecognizer`
- Architecture: conv stack (stride-2 first conv, height pooled to 1) -> BiLSTM
  ({cfg.hidden} per direction) -> linear; {result.params} parameters; CTC loss.
- Input `x`: N x 1 x {HEIGHT} x W float32, grey / 127.5 - 1 (light paper, dark ink, as the
  reader's line finder normalises crops), W a multiple of {STRIDE}; padding value 0.8.
- Output `probs`: N x W/{STRIDE} x {len(CHARSET)} softmax; class 0 is the CTC blank, class i is
  line i of the ONNX metadata `character`.
- Charset ({len(CHARACTERS)} characters): `{CHARACTERS}`
- ONNX opset 17, dynamic batch and width; onnxruntime vs PyTorch max |diff| on validation
  lines: {result.onnx_max_diff:.2e}.

## Data
- Training: {result.train_count} line crops ({result.user_lines} labelled real crops), rendered
  by `fixtures.cartons.frame.generate_crop` (a full carton frame: kraft or white label,
  continuous-inkjet 5x7 / 5x7 bold / 7x9 dot matrix or thermal Hershey simplex / duplex /
  complex / complex-small strokes, dot dropout, dead nozzles, ink spread, smudges over 0-40 %
  of the line, lighting, glare, motion blur, defocus, sensor noise, JPEG; residual skew up to
  +-3 degrees), settings `crnn-train` / `crnn-train-small` (wider ranges than the generator's
  TRAIN preset; two frame sizes), then per sample: margin jitter, horizontal stretch
  0.8-1.25 (dot pitch), blur, low resolution, low contrast, gamma, noise, JPEG 20-75, and the
  reader's own contrast normalisation. Code lines in every printed form of issue 4 (GS1
  brackets, LOT / 批号 / 有效期至 / EXP / PROD / 生产日期 / BEST BY, dates with every separator).
- Validation (early stopping): {result.val.lines} lines of the training domain, other seeds.
- Held-out (figures below): {result.holdout.lines} lines from the generator's HOLDOUT preset,
  which training never sees: dot font 7x9 bold, thermal faces Hershey plain and triplex, other
  ink colours, board tones and textures, stronger blur, noise and JPEG; smudge 0/10/20/30 % in
  turn. Both recognisers read the very same normalised crops.

## Metrics (greedy CTC decoding, before any grammar)
| set | lines | line exact match | CER |
|---|---|---|---|
{_row("validation (train domain), CRNN", result.val)}
{_row("held-out, CRNN (ONNX, runtime class)", result.holdout)}
{_row(f"held-out, {prod_name}", result.production)}

Held-out by smudge share:

| smudge | lines | CRNN exact | CRNN CER | PP-OCR exact | PP-OCR CER |
|---|---|---|---|---|---|
{smudge_rows}

{_verdict(result)}

## Training
- {result.stopped}; {result.seconds / 60:.1f} min wall, {result.cpu_seconds / 60:.1f} min CPU
  ({cfg.threads} thread(s), shared machine), seeded (`seed={cfg.seed}`).{_start(cfg.init)}
- Curve: `training.png` (CTC loss and validation CER per evaluation).

## Limits
Trained on synthetic lines only (plus any labelled crops given with `--data`). Real photos
of dot-matrix print differ from the generator in ways no held-out preset covers; labelled
crops from the review queue are the real test. The greedy figures above are before the
grammar-constrained decoder, which rejects ungrammatical lines and check-digit failures.

## Training configuration
```json
{json.dumps(asdict(cfg), indent=1)}
```
"""


def _start(init: str) -> str:
    if not init:
        return ""
    return (
        f"\n- Started from `{init}` (its weights, BatchNorm statistics kept fixed), "
        "not from random weights."
    )


def write_card(result: TrainResult) -> Path:
    """Write MODEL_CARD.md and training.png beside the ONNX file; returns the card's path."""
    out = result.onnx_path.parent
    if result.history:
        plot_history(result, out / "training.png")
    card = out / "MODEL_CARD.md"
    card.write_text(card_text(result), encoding="utf-8")
    return card


def update_manifest(manifest: Path, result: TrainResult) -> None:
    """Set the manifest's ``ocr.crnn`` entry (other entries untouched), atomically."""
    write_manifest_entry(
        manifest,
        MANIFEST_KEY,
        result.onnx_path,
        version=result.version,
        sha256=result.sha256,
        size=result.size,
        described={
            "kind": "ocr-recognizer",
            "license": "LicenseRef-Proprietary (Dockgate; trained here on generated data)",
            "input": f"x: N x 1 x {HEIGHT} x W float32, grey/127.5 - 1, W a multiple of {STRIDE}",
            "output": f"N x W/{STRIDE} x {len(CHARSET)} softmax; class 0 = CTC blank, "
            "metadata 'character' lists the others",
        },
    )
