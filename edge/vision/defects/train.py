"""Train the defect CNN on the CPU, reproducibly, and export it to ONNX (needs ``[train]``).

Steps: render the training-domain frames (plus ``DATA/<class>/`` photos), split off a stratified
validation set, train with seeded order and deterministic kernels on 2 threads, export ONNX with
its contract in the metadata, choose thresholds on validation through the exported file, then
report on a held-out set rendered with generator settings training never saw.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

# OpenMP worker threads spin while waiting by default; on 2 cores shared with other work a
# spinning thread steals the core its partner needs (measured: one step 4x slower). Must be
# set before torch starts its thread pool, i.e. before the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn

from edge.vision.defects.data import Frames, load_labelled, render_frames, stratified_split
from edge.vision.defects.evaluate import Evaluation, evaluate_frames, scores_onnx
from edge.vision.defects.metrics import choose_thresholds
from edge.vision.defects.net import DefectNet

log = logging.getLogger(__name__)
CLASSES = ("ok", "crack", "crush", "tear", "wet")
ONNX_NAME = "defect.onnx"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained model (with the code version)."""

    seed: int = 1
    per_class: int = 600
    ok_factor: int = 3  # good items are most of a real line: give "ok" more variety
    holdout_per_class: int = 200
    val_fraction: float = 0.15
    epochs: int = 12
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    threads: int = 2
    input_width: int = 192
    input_height: int = 144
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
    user_images: int
    seconds: float
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


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Photometric and geometric jitter: flips, white balance/colour mix, gain, gamma, shift."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    mix = torch.eye(3) + 0.06 * torch.randn(n, 3, 3, generator=gen)
    x = torch.einsum("nij,njhw->nihw", mix, x)
    gain = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=gen)
    x = (x * gain).clamp(1e-4, 1.0)
    gamma = torch.exp(0.15 * torch.randn(n, 1, 1, 1, generator=gen))
    x = x**gamma
    x = x + 0.015 * torch.rand(n, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    dy, dx = (int(v) for v in torch.randint(-8, 9, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x.clamp(0.0, 1.0)


def _fit(
    model: DefectNet, data: Frames, cfg: TrainConfig, reporter: Reporter
) -> list[dict[str, float]]:
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(data.x)
    y_all = torch.from_numpy(data.y)
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
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(data), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(data), cfg.batch):
            idx = order[i : i + cfg.batch]
            x = _augment(x_all[idx].float() / 255.0, gen).contiguous(
                memory_format=torch.channels_last
            )
            y = y_all[idx]
            logits, _ = model(x)
            loss = loss_fn(logits, y)
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
    dummy = torch.rand(1, 3, cfg.input_height, cfg.input_width)
    tmp = path.with_suffix(".export.onnx")
    torch.onnx.export(
        model,
        (dummy,),
        str(tmp),
        input_names=["image"],
        output_names=["logits", "maps"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "maps": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    tmp.unlink()
    del proto.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "dockgate-train-defect"
    onnx.checker.check_model(proto)
    part = path.with_suffix(".onnx.part")
    onnx.save(proto, str(part))
    part.replace(path)  # readers never see a half-written model


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(
    data_dir: Path | None, out_dir: Path, cfg: TrainConfig, reporter: Reporter | None = None
) -> TrainResult:
    """Train, export to ``out_dir/defect.onnx`` and evaluate; returns the figures."""
    rep = reporter or Reporter()
    started = time.perf_counter()
    _seed_everything(cfg.seed, cfg.threads)
    size = (cfg.input_width, cfg.input_height)
    shape = (3, cfg.input_height, cfg.input_width)
    gen_frames = render_frames(
        "train",
        cfg.per_class,
        cfg.seed,
        cfg.classes,
        size,
        rep.start("rendering train", cfg.per_class * len(cfg.classes)),
    )
    user = Frames.concat([], shape)
    if data_dir is not None and data_dir.is_dir():
        user = load_labelled(data_dir, cfg.classes, size)
        rep.note(f"{len(user)} labelled images from {data_dir}")
    extra_ok = render_frames(
        "train",
        cfg.per_class * (cfg.ok_factor - 1),
        cfg.seed + 50_000,
        cfg.classes,
        size,
        rep.start("rendering more ok", cfg.per_class * (cfg.ok_factor - 1)),
        only=("ok",),
    )
    data = Frames.concat([gen_frames, extra_ok, user], shape)
    train_idx, val_idx = stratified_split(data.y, cfg.val_fraction, cfg.seed)
    train_set, val_set = data.subset(train_idx), data.subset(val_idx)
    model = DefectNet(len(cfg.classes))
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
    # Thresholds come from the exported file's own scores, so they match what the edge runs.
    val_probs = scores_onnx(onnx_path, val_set.x)
    ok = cfg.classes.index("ok")
    th = choose_thresholds(1 - val_probs[val_set.y == ok, ok], 1 - val_probs[val_set.y != ok, ok])
    meta |= {"freeze_threshold": f"{th.freeze:.6f}", "review_threshold": f"{th.review:.6f}"}
    export_onnx(model, onnx_path, cfg, meta)
    val_eval = evaluate_frames(onnx_path, val_set, cfg.classes, th.freeze)
    holdout_set = render_frames(
        "holdout",
        cfg.holdout_per_class,
        cfg.seed + 10_000,
        cfg.classes,
        size,
        rep.start("rendering held-out", cfg.holdout_per_class * len(cfg.classes)),
    )
    holdout_eval = evaluate_frames(onnx_path, holdout_set, cfg.classes, th.freeze)
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
        user_images=len(user),
        seconds=time.perf_counter() - started,
        history=history,
    )
