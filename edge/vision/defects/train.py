"""Train the defect CNN on the CPU, reproducibly, and export it to ONNX (needs ``[train]``).

Steps: render the training-domain frames (product views and carton faces as the gate camera sees
them, plus ``DATA/<class>/`` photos), split off a stratified validation set, train with seeded
order and deterministic kernels on one thread (default), export ONNX with its contract in the
metadata, choose thresholds through the exported file on validation and a threshold set
(:mod:`edge.vision.defects.thresholds`), then report on a held-out set (product views and
carton faces) rendered with generator settings training never saw.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# OpenMP worker threads spin while waiting by default; on 2 cores shared with other work a
# spinning thread steals the core its partner needs (measured: one step 4x slower). Must be
# set before torch starts its thread pool, i.e. before the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn

from edge.vision.defects.data import (
    HOLDOUT_FACE_PER_CLASS,
    HOLDOUT_PER_CLASS,
    TRAIN_MIX,
    Frames,
    Mix,
    load_labelled,
    render_holdout_set,
    render_mix,
    stratified_split,
)
from edge.vision.defects.evaluate import Evaluation, evaluate_frames, evaluate_probs, scores_onnx
from edge.vision.defects.image import INPUT_SIZE
from edge.vision.defects.metrics import choose_thresholds, defect_scores
from edge.vision.defects.net import STEM, WIDTHS, DefectNet, FlipAveraged
from edge.vision.defects.quantize import CALIBRATION_FRAMES, quantize_int8
from edge.vision.defects.thresholds import render_threshold_set, reseal, threshold_meta
from edge.vision.defects.warm import load_onnx_weights
from edge.vision.session import seal_onnx
from edge.vision.warmstart import freeze_batchnorm

log = logging.getLogger(__name__)
CLASSES = ("ok", "crack", "crush", "tear", "wet")
ONNX_NAME = "defect.onnx"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained model (with the code version)."""

    seed: int = 1
    per_class: int = TRAIN_MIX.per_class
    # good items are most of a real line: give "ok" more variety
    ok_factor: int = TRAIN_MIX.ok_factor
    # Carton faces as the gate camera sees them (fixtures.defects.face): ok/crush/tear/wet.
    # Smudged, taped, glared faces are what a line shows most, so "ok" faces get a factor too.
    face_per_class: int = TRAIN_MIX.face_per_class
    face_ok_factor: int = TRAIN_MIX.face_ok_factor
    holdout_per_class: int = HOLDOUT_PER_CLASS
    holdout_face_per_class: int = HOLDOUT_FACE_PER_CLASS
    val_fraction: float = 0.15
    # Frames rendered only to choose the thresholds, pooled with the validation split: this
    # many times the generated training mix, from seeds no training uses
    # (edge.vision.defects.thresholds). 0: validation alone, as up to defect-2026.12.07-s9.
    threshold_scale: float = 1.0
    epochs: int = 16
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    threads: int = 1  # a shared 2-core box: one core for training
    input_width: int = INPUT_SIZE[0]
    input_height: int = INPUT_SIZE[1]
    # Channels of the four stages (edge.vision.defects.net): 16-32-64-128 up to
    # defect-2026.12.06-s3, which underfitted (validation recall 0.635 at its freeze threshold).
    widths: tuple[int, int, int, int] = WIDTHS
    # Channels of a stride-1 conv at full resolution before the first stride-2 conv (0: none,
    # as up to defect-2026.12.06-s4, which never learned hairline cracks).
    stem: int = STEM
    # Weight of the per-cell loss on the class maps: cells over a generated frame's damage box
    # should score its class, all others "ok" (0: the frame's label only, as up to s4).
    aux_weight: float = 1.0
    # Export the net averaged with its mirror image (edge.vision.defects.net.FlipAveraged);
    # thresholds and held-out figures are measured on what is exported (False up to s6).
    flip_average: bool = True
    # Export int8 convolutions (edge.vision.defects.quantize), calibrated on training frames;
    # thresholds and figures are those of the int8 file (float32 up to s8).
    quantize: bool = True
    # An exported defect model to start from (edge.vision.defects.warm; fine-tuning keeps its
    # BatchNorm statistics frozen); "": random weights.
    init: str = ""
    version: str = ""
    classes: tuple[str, ...] = CLASSES


@dataclass
class TrainResult:
    """Where the model went and what it measured."""

    onnx_path: Path
    sha256: str
    size: int
    version: str
    config: TrainConfig
    val: Evaluation
    holdout: Evaluation
    freeze_threshold: float
    review_threshold: float
    train_count: int
    # Frames the thresholds were chosen on: validation plus threshold set, good / damaged.
    threshold_good: int
    threshold_damaged: int
    threshold_set: int  # of which rendered only for the thresholds
    user_images: int
    seconds: float
    cpu_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


class Reporter:
    """Progress callbacks (the CLI draws them with rich; tests pass nothing)."""

    def start(self, stage: str, total: int) -> Callable[[int], None]:
        return lambda n: None

    def note(self, text: str) -> None:
        log.info(text)


def _seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def box_masks(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, 1, h, w) float masks, 1 inside each frame's damage box (N, 4) in input pixels.

    A NaN box (unknown) and an empty one give an empty mask; the caller tells them apart.
    """
    b = torch.nan_to_num(boxes, nan=0.0)
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    inside_x = (xs[None, :] >= b[:, 0:1]) & (xs[None, :] < b[:, 2:3])
    inside_y = (ys[None, :] >= b[:, 1:2]) & (ys[None, :] < b[:, 3:4])
    return (inside_y[:, :, None] & inside_x[:, None, :]).float()[:, None]


def cell_targets(
    y: torch.Tensor, boxes: torch.Tensor, masks: torch.Tensor, grid: tuple[int, int], ok: int
) -> torch.Tensor:
    """Per-cell class targets (N, gh, gw) for the class maps, ``-100`` where not known.

    A cell mostly (over 15 %) inside the damage box is the frame's class, a cell the box only
    grazes is left out, every other cell is ``ok``. Frames of class ``ok`` are ``ok`` all over;
    a damaged frame without a known box (a user's photo) teaches nothing here.
    """
    frac = nn.functional.adaptive_avg_pool2d(masks, grid)[:, 0]
    damaged = (y != ok)[:, None, None]
    t = torch.full_like(frac, ok, dtype=torch.long)
    t = torch.where(damaged & (frac > 0.15), y[:, None, None].expand_as(t), t)
    t = torch.where(damaged & (frac > 0) & (frac <= 0.15), torch.full_like(t, -100), t)
    unknown = damaged & torch.isnan(boxes).any(dim=1)[:, None, None]
    return torch.where(unknown, torch.full_like(t, -100), t)


def _augment(
    x: torch.Tensor, gen: torch.Generator, masks: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Photometric and geometric jitter, per sample; ``masks`` (N, 1, H, W) move with the frames.

    Geometry: flip, zoom 0.92-1.2 and shift up to 8% (the uncovered border is the letterbox
    grey), so product size and framing vary. Light and camera: colour mix (white balance,
    tint), gain, contrast, gamma, some frames grey, a few slightly blurred, sensor noise.
    Contrast and tint jitter make faint stains and unseen glass colours less of a surprise.
    Up to s4 frames were also shrunk to 0.85 and 20 % of them blurred with sigma up to 0.8 px,
    which fades a sub-pixel crack to nearly nothing while the label still says "crack". In a
    short bottle-only run of s4's net (400 frames, 20 epochs) that augmentation left even the
    training frames at chance, ok vs crack (average precision 0.53; 0.93 without augmentation).
    """
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    zoom = torch.exp(torch.empty(n).uniform_(-0.08, 0.18, generator=gen))
    shift = torch.empty(n, 2).uniform_(-0.16, 0.16, generator=gen)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / zoom
    theta[:, :, 2] = shift
    grid = nn.functional.affine_grid(theta, [n, 3, h, w], align_corners=False)
    x = nn.functional.grid_sample(x - 0.5, grid, align_corners=False, padding_mode="zeros") + 0.5
    if masks is not None:
        masks = torch.where(flip[:, None, None, None], masks.flip(3), masks)
        masks = nn.functional.grid_sample(masks, grid, align_corners=False, padding_mode="zeros")
    mix = torch.eye(3) + 0.035 * torch.randn(n, 3, 3, generator=gen)
    balance = torch.exp(0.08 * torch.randn(n, 3, 1, generator=gen))
    x = torch.einsum("nij,njhw->nihw", mix * balance, x)
    grey = (torch.rand(n, generator=gen) < 0.1)[:, None, None, None]
    x = torch.where(grey, x.mean(dim=1, keepdim=True).expand_as(x), x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.7, 1.2, generator=gen)
    x = mean + (x - mean) * contrast
    gain = 0.65 + 0.65 * torch.rand(n, 1, 1, 1, generator=gen)
    x = (x * gain).clamp(1e-4, 1.0)
    gamma = torch.exp(0.18 * torch.randn(n, 1, 1, 1, generator=gen))
    x = x**gamma
    sigma = float(torch.empty(1).uniform_(0.3, 0.55, generator=gen))
    k1 = torch.exp(-(torch.arange(-2, 3, dtype=torch.float32) ** 2) / (2 * sigma**2))
    k2 = (k1[:, None] * k1[None, :]) / k1.sum() ** 2
    blurred = nn.functional.conv2d(
        nn.functional.pad(x, (2, 2, 2, 2), mode="replicate"),
        k2.expand(3, 1, 5, 5).contiguous(),
        groups=3,
    )
    blur = (torch.rand(n, generator=gen) < 0.1)[:, None, None, None]
    x = torch.where(blur, blurred, x)
    x = x + 0.02 * torch.rand(n, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return x.clamp(0.0, 1.0), masks


def _fit(
    model: DefectNet, data: Frames, cfg: TrainConfig, reporter: Reporter
) -> list[dict[str, float]]:
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(data.x)
    y_all = torch.from_numpy(data.y)
    boxes_all = torch.from_numpy(data.box_array())
    ok = cfg.classes.index("ok")
    cell_loss = nn.CrossEntropyLoss(ignore_index=-100)
    counts = torch.bincount(y_all, minlength=len(cfg.classes)).float().clamp(min=1)
    # Half-way to balanced (inverse square root): rare user classes are not drowned, and the
    # deliberately larger "ok" set still weighs a little more, which keeps false freezes down.
    weights = counts.rsqrt() / counts.rsqrt().mean()
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(data) + cfg.batch - 1) // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1))
    advance = reporter.start("training", steps)
    history = []
    model.train()
    if cfg.init:  # fine-tuning: BatchNorm is the folded exported one, keep it fixed
        freeze_batchnorm(model)
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(data), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(data), cfg.batch):
            idx = order[i : i + cfg.batch]
            x = x_all[idx].float() / 255.0
            boxes = boxes_all[idx]
            masks = box_masks(boxes, x.shape[2], x.shape[3]) if cfg.aux_weight > 0 else None
            x, masks = _augment(x, gen, masks)
            x = x.contiguous(memory_format=torch.channels_last)
            y = y_all[idx]
            logits, maps = model(x)
            loss = loss_fn(logits, y)
            if masks is not None:
                target = cell_targets(y, boxes, masks, (maps.shape[2], maps.shape[3]), ok)
                if bool((target >= 0).any()):
                    loss = loss + cfg.aux_weight * cell_loss(maps, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            total += len(idx)
            advance(1)
        history.append({"epoch": epoch + 1, "loss": loss_sum / total, "acc": correct / total})
        reporter.note(f"epoch {epoch + 1}: loss {loss_sum / total:.4f}, acc {correct / total:.4f}")
    model.eval()
    return history


def export_onnx(model: DefectNet, path: Path, cfg: TrainConfig, meta: dict[str, str]) -> None:
    """Export with a dynamic batch axis; write the model's contract into its metadata."""
    model = model.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    # A new wrapper is in training mode, and the exporter restores the mode it found (through
    # the wrapper, onto ``model``): eval it, or the caller's net comes back training.
    exported: nn.Module = FlipAveraged(model).eval() if cfg.flip_average else model
    dummy = torch.rand(1, 3, cfg.input_height, cfg.input_width)
    tmp = path.with_suffix(".export.onnx")
    torch.onnx.export(
        exported,
        (dummy,),
        str(tmp),
        input_names=["image"],
        output_names=["logits", "maps"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "maps": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    seal_onnx(tmp, path, meta, "dockgate-train-defect")


def _calibration_frames(frames: Frames, seed: int) -> np.ndarray:
    """A seeded sample of training frames (all of them if fewer) to calibrate int8 ranges on."""
    n = min(CALIBRATION_FRAMES, len(frames))
    idx = np.sort(np.random.default_rng(seed).choice(len(frames), n, replace=False))
    return frames.x[idx]


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (render workers), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mix(cfg: TrainConfig) -> Mix:
    return Mix(cfg.per_class, cfg.ok_factor, cfg.face_per_class, cfg.face_ok_factor)


def render_holdout(
    cfg: TrainConfig, reporter: Reporter | None = None, render_workers: int = 1
) -> Frames:
    """The held-out set of ``cfg``: :func:`edge.vision.defects.data.render_holdout_set`."""
    return render_holdout_set(
        cfg.holdout_per_class,
        cfg.holdout_face_per_class,
        cfg.seed,
        cfg.classes,
        (cfg.input_width, cfg.input_height),
        (reporter or Reporter()).start,
        render_workers,
    )


def train(
    data_dir: Path | None,
    out_dir: Path,
    cfg: TrainConfig,
    reporter: Reporter | None = None,
    render_workers: int = 1,
) -> TrainResult:
    """Train, export to ``out_dir/defect.onnx`` and evaluate; returns the figures.

    ``render_workers`` child processes render the generated frames (same frames for any count:
    each depends on its seed only); training itself runs on ``cfg.threads`` threads.
    """
    rep = reporter or Reporter()
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    _seed_everything(cfg.seed, cfg.threads)
    size = (cfg.input_width, cfg.input_height)
    shape = (3, cfg.input_height, cfg.input_width)
    generated = render_mix(_mix(cfg), cfg.seed, cfg.classes, size, rep.start, render_workers)
    user = Frames.concat([], shape)
    if data_dir is not None and data_dir.is_dir():
        user = load_labelled(data_dir, cfg.classes, size)
        rep.note(f"{len(user)} labelled images from {data_dir}")
    data = Frames.concat([generated, user], shape)
    train_idx, val_idx = stratified_split(data.y, cfg.val_fraction, cfg.seed)
    train_set, val_set = data.subset(train_idx), data.subset(val_idx)
    model = DefectNet(len(cfg.classes), cfg.widths, stem=cfg.stem)
    if cfg.init:
        load_onnx_weights(model, Path(cfg.init))  # verified against onnxruntime, else raises
        rep.note(f"started from {cfg.init}")
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    history = _fit(model, train_set, cfg, rep)
    version = cfg.version or time.strftime("defect-%Y%m%d-%H%M%S", time.gmtime())
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_NAME
    meta = {
        "classes": json.dumps(list(cfg.classes)),
        "input_width": str(cfg.input_width),
        "input_height": str(cfg.input_height),
        "input": "RGB float32 [0,1], NCHW, letterboxed with 0.5 grey",
        "version": version,
        "freeze_threshold": "0.5",
        "review_threshold": "0.2",
        "train_config": json.dumps(asdict(cfg)),
    }
    export_onnx(model, onnx_path, cfg, meta)
    if cfg.quantize:
        quantize_int8(onnx_path, _calibration_frames(train_set, cfg.seed))
    # Thresholds come from the exported file's own scores, so they match what the edge runs,
    # on validation pooled with the threshold set (edge.vision.defects.thresholds).
    threshold_set = render_threshold_set(
        _mix(cfg).scaled(cfg.threshold_scale),
        cfg.seed,
        cfg.classes,
        size,
        rep.start,
        render_workers,
    )
    pooled = Frames.concat([val_set, threshold_set], shape)
    probs = scores_onnx(onnx_path, pooled.x, threads=cfg.threads)
    good, damaged = defect_scores(probs, pooled.y, cfg.classes)
    th = choose_thresholds(good, damaged)
    source = "validation split" + (" and threshold set" if len(threshold_set) else "")
    meta |= threshold_meta(th, len(good), len(damaged), source)
    reseal(onnx_path, onnx_path, meta)
    val_eval = evaluate_probs(probs[: len(val_set)], val_set.y, cfg.classes, th.freeze)
    holdout_set = render_holdout(cfg, rep, render_workers)
    holdout_eval = evaluate_frames(
        onnx_path, holdout_set, cfg.classes, th.freeze, threads=cfg.threads
    )
    return TrainResult(
        onnx_path=onnx_path,
        sha256=_sha256(onnx_path),
        size=onnx_path.stat().st_size,
        version=version,
        config=cfg,
        val=val_eval,
        holdout=holdout_eval,
        freeze_threshold=th.freeze,
        review_threshold=th.review,
        train_count=len(train_set),
        threshold_good=len(good),
        threshold_damaged=len(damaged),
        threshold_set=len(threshold_set),
        user_images=len(user),
        seconds=time.perf_counter() - started,
        cpu_seconds=_cpu_seconds() - cpu_started,
        history=history,
    )
