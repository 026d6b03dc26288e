"""Train the CRNN with CTC on the CPU, export it to ONNX and measure it (needs ``[train]``).

Steps: render the seeded synthetic lines (cached in shards) plus labelled crops, train with
seeded order and augmentation on one thread by default (the machine is shared), evaluate
greedy decoding on a validation split of the training domain after every epoch (or every
``eval_every`` steps) and stop early when it stops improving, keep the best weights, export
ONNX (opset 17, dynamic batch and width) with the charset in its metadata, check that
onnxruntime gives the same probabilities as PyTorch, and score the exported file through the
runtime class on the held-out lines (generator settings training never saw), next to the
production recogniser (PP-OCR, manifest ``ocr.rec``) on the very same crops.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

# OpenMP workers spin while waiting by default; on 2 shared cores that steals the partner's
# core. Must be set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn

from edge.vision.ocr.crnn.charset import CHARSET, encode, metadata_value
from edge.vision.ocr.crnn.data import (
    LineSet,
    LineSpec,
    augment,
    blank_lines,
    build_lines,
    holdout_specs,
    load_labelled,
    normalise,
    plain,
    train_specs,
)
from edge.vision.ocr.crnn.metrics import LineScore, greedy_text, score_lines
from edge.vision.ocr.crnn.net import CHANNELS, HIDDEN, CrnnNet, SoftmaxWrapper
from edge.vision.ocr.crnn.prep import HEIGHT, STRIDE, Gray, batch_input
from edge.vision.ocr.crnn.warm import load_onnx_weights
from edge.vision.session import seal_onnx
from edge.vision.warmstart import freeze_batchnorm

log = logging.getLogger(__name__)
ONNX_NAME = "crnn_codes.onnx"


class Reporter(Protocol):
    """Progress callbacks (the CLI draws them with rich)."""

    def start(self, stage: str, total: int) -> Callable[[int], None]: ...

    def note(self, text: str) -> None: ...


class LogReporter:
    """A reporter that only logs (tests, library use)."""

    def start(self, stage: str, total: int) -> Callable[[int], None]:
        log.info("%s: %d", stage, total)
        return lambda n: None

    def note(self, text: str) -> None:
        log.info(text)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained model (with the code version)."""

    seed: int = 1
    lines: int = 16_000  # synthetic training lines (before augmentation)
    val_lines: int = 600  # validation split of the training domain (early stopping)
    holdout_lines: int = 800  # held-out domain, smudge 0/10/20/30 % in turn (the card's figures)
    epochs: int = 6
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    threads: int = 1
    workers: int = 1  # rendering processes
    patience: int = 3  # evaluations without a better validation CER before stopping
    eval_every: int = 0  # steps between evaluations; 0: once per epoch
    max_minutes: float = 0.0  # wall-clock cap on the training loop; 0: none
    channels: tuple[int, ...] = CHANNELS
    hidden: int = HIDDEN
    compare_production: bool = True  # also score PP-OCR (manifest ocr.rec) on the held-out set
    version: str = ""
    # an ONNX CRNN to start from (fine-tuning, BatchNorm statistics frozen); "": random init
    init: str = ""
    blank_lines: int = 0  # crops with nothing printed (empty text) added to training


@dataclass
class TrainResult:
    """Where the model went and what it measured."""

    onnx_path: Path
    sha256: str
    size: int
    version: str
    config: TrainConfig
    params: int
    val: LineScore
    holdout: LineScore
    holdout_by_smudge: dict[str, LineScore]
    production: LineScore | None
    production_by_smudge: dict[str, LineScore]
    production_version: str
    onnx_max_diff: float
    train_count: int
    user_lines: int
    seconds: float
    cpu_seconds: float
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)


def val_specs(count: int, seed: int) -> list[LineSpec]:
    """The training domain's validation lines: seeds disjoint from :func:`train_specs`."""
    return train_specs(count, seed + 8)


def _seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _batches(widths: Sequence[int], batch: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of similar width (little padding): sort pools of 32 batches by width."""
    order = rng.permutation(len(widths)).tolist()
    pool = batch * 32
    out: list[list[int]] = []
    for i in range(0, len(order), pool):
        part = sorted(order[i : i + pool], key=lambda k: widths[k])
        out.extend(part[j : j + batch] for j in range(0, len(part), batch))
    rng.shuffle(out)
    return out


def _tensor(lines: Sequence[Gray]) -> torch.Tensor:
    return torch.from_numpy(batch_input(lines))


def predict_torch(net: CrnnNet, lines: Sequence[Gray], batch: int = 64) -> list[str]:
    """Greedy texts of already resized lines (eval mode, width-sorted batches)."""
    net.eval()
    order = sorted(range(len(lines)), key=lambda i: lines[i].shape[1])
    texts = [""] * len(lines)
    with torch.no_grad():
        for j in range(0, len(order), batch):
            idx = order[j : j + batch]
            probs = torch.softmax(net(_tensor([lines[i] for i in idx])), dim=2).numpy()
            for k, i in enumerate(idx):
                texts[i] = greedy_text(probs[k, : lines[i].shape[1] // STRIDE], CHARSET)
    return texts


def _fit(
    net: CrnnNet,
    train: LineSet,
    val_lines: list[Gray],
    val_texts: list[str],
    cfg: TrainConfig,
    rep: Reporter,
) -> tuple[list[dict[str, float]], str]:
    rng = np.random.default_rng([cfg.seed, 7])
    targets = [torch.tensor(encode(t), dtype=torch.long) for t in train.texts]
    widths = [im.shape[1] for im in train.images]
    loss_fn = nn.CTCLoss(blank=0, zero_infinity=True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = -(-len(train) // cfg.batch)
    steps = cfg.epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.15
    )
    eval_every = cfg.eval_every or per_epoch
    advance = rep.start("training", steps)
    history: list[dict[str, float]] = []
    best_cer, best_state, waited = float("inf"), copy.deepcopy(net.state_dict()), 0
    start = time.monotonic()
    step, loss_sum, loss_n = 0, 0.0, 0
    stopped = f"completed {cfg.epochs} epochs"

    def train_mode() -> None:
        net.train()
        if cfg.init:  # fine-tuning: BatchNorm is the folded production one, keep it fixed
            freeze_batchnorm(net)

    for epoch in range(cfg.epochs):
        train_mode()
        for idx in _batches(widths, cfg.batch, rng):
            lines = [augment(rng, train.images[i]) for i in idx]
            x = _tensor(lines)
            logp = net(x).log_softmax(2).transpose(0, 1)  # T x N x C
            in_len = torch.tensor([ln.shape[1] // STRIDE for ln in lines], dtype=torch.long)
            tgt = [targets[i] for i in idx]
            tgt_len = torch.tensor([len(t) for t in tgt], dtype=torch.long)
            loss = loss_fn(logp, torch.cat(tgt), in_len, tgt_len)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            loss_n += len(idx)
            advance(1)
            over_time = cfg.max_minutes > 0 and time.monotonic() - start > cfg.max_minutes * 60
            if step % eval_every == 0 or step == steps or over_time:
                score = score_lines(predict_torch(net, val_lines), val_texts)
                train_mode()
                history.append(
                    {
                        "step": float(step),
                        "epoch": epoch + step / per_epoch - epoch,
                        "loss": loss_sum / max(loss_n, 1),
                        "val_cer": score.cer,
                        "val_exact": score.exact_rate,
                        "minutes": (time.monotonic() - start) / 60,
                    }
                )
                rep.note(
                    f"step {step}/{steps}: loss {loss_sum / max(loss_n, 1):.4f}, validation "
                    f"CER {score.cer:.4f}, exact {score.exact_rate:.4f}"
                )
                loss_sum, loss_n = 0.0, 0
                if score.cer < best_cer - 1e-6:
                    best_cer, best_state, waited = score.cer, copy.deepcopy(net.state_dict()), 0
                else:
                    waited += 1
                if waited >= cfg.patience:
                    stopped = f"early stop at step {step}: validation CER flat for {waited} checks"
                    break
                if over_time:
                    stopped = f"time cap {cfg.max_minutes} min reached at step {step}"
                    break
        else:
            continue
        break
    net.load_state_dict(best_state)
    net.eval()
    return history, stopped


def export_onnx(net: CrnnNet, path: Path, meta: dict[str, str]) -> None:
    """ONNX opset 17, dynamic batch and width; the contract goes into the metadata.

    The export runs in a fresh Python process: after another torch.export in the same process
    (a cloud training worker running jobs one after the other, or the test suite), torch 2.13
    fails to solve the width's constraints ("cannot be solved using
    solve_univariate_inequality"), and resetting dynamo does not clear it."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        blob = Path(tmp) / "net.pt"
        torch.save({"spec": list(net.spec), "state": net.state_dict(), "meta": meta}, blob)
        code = (
            "import sys; from edge.vision.ocr.crnn.train import _export_file as e; e(*sys.argv[1:])"
        )
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-c", code, str(blob), str(path)], capture_output=True, text=True
        )
    if done.returncode != 0:
        raise RuntimeError(f"ONNX export failed: {done.stderr[-3000:]}")


def _export_file(blob: str, path: str) -> None:
    """The export child: rebuild the net from ``blob`` and export it to ``path``."""
    saved = torch.load(blob, weights_only=True)
    n_classes, channels, hidden = saved["spec"]
    net = CrnnNet(n_classes, tuple(channels), hidden)
    net.load_state_dict(saved["state"])
    _export_in_process(net, Path(path), saved["meta"])


def _export_in_process(net: CrnnNet, path: Path, meta: dict[str, str]) -> None:
    net.eval()
    try:  # the exporter's optimiser draws tqdm bars: no monitor thread may outlive the export
        import tqdm

        tqdm.tqdm.monitor_interval = 0
    except ImportError:
        pass
    # batch 2: torch.export would specialise a batch of 1 into the graph. The TorchScript
    # exporter (dynamo=False) was measured to disagree with PyTorch on this LSTM (|diff| 9e-3).
    dummy = torch.full((2, 1, HEIGHT, 160), 0.8)
    tmp = path.with_suffix(".export.onnx")
    batch = torch.export.Dim("batch", min=1, max=1024)
    width = torch.export.Dim("width", min=8, max=4096)
    torch.onnx.export(
        SoftmaxWrapper(net).eval(),
        (dummy,),
        str(tmp),
        input_names=["x"],
        output_names=["probs"],
        dynamic_shapes={"x": {0: batch, 3: width}},
        opset_version=17,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    seal_onnx(tmp, path, meta, "dockgate-train-codes")


def onnx_max_diff(net: CrnnNet, path: Path, lines: Sequence[Gray]) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's probabilities."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for group in (list(lines[:1]), list(lines[1:9])):
        if not group:
            continue
        x = batch_input(group)
        got = sess.run(None, {"x": x})[0]
        with torch.no_grad():
            want = torch.softmax(net(torch.from_numpy(x)), dim=2).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def score_recognizer(
    recognize: Callable[[Sequence[Gray]], list[np.ndarray]],
    charset: Sequence[str],
    crops: Sequence[Gray],
    texts: Sequence[str],
    batch: int = 16,
) -> list[str]:
    """Greedy texts of ``crops`` (normalised grey) through a recogniser's call contract."""
    out: list[str] = []
    for i in range(0, len(crops), batch):
        out.extend(greedy_text(p, charset) for p in recognize(list(crops[i : i + batch])))
    return out


def by_smudge(
    predicted: Sequence[str], truth: Sequence[str], specs: Sequence[LineSpec]
) -> dict[str, LineScore]:
    out: dict[str, LineScore] = {}
    for s in sorted({sp.smudge for sp in specs}):
        idx = [i for i, sp in enumerate(specs) if sp.smudge == s]
        out[f"{round(s * 100)}%"] = score_lines(
            [predicted[i] for i in idx], [truth[i] for i in idx]
        )
    return out


def train(
    out: Path,
    cfg: TrainConfig,
    reporter: Reporter | None = None,
    *,
    data: Path | None = None,
    cache: Path | None = None,
    models_dir: Path | None = None,
) -> TrainResult:
    """Render, train, export to ``out/crnn_codes.onnx`` and measure. See the module doc."""
    rep = reporter or LogReporter()
    t0, c0 = time.perf_counter(), time.process_time()
    _seed_everything(cfg.seed, cfg.threads)
    user = load_labelled(data) if data is not None else LineSet([], [])  # bad labels fail first
    specs = train_specs(cfg.lines, cfg.seed)
    v_specs = val_specs(cfg.val_lines, cfg.seed)
    h_specs = holdout_specs(cfg.holdout_lines)
    train_set = build_lines(
        specs, workers=cfg.workers, cache=cache, progress=rep.start("rendering train", len(specs))
    )
    val_set = build_lines(
        v_specs, workers=cfg.workers, cache=cache, progress=rep.start("rendering val", len(v_specs))
    )
    hold_set = build_lines(
        h_specs,
        workers=cfg.workers,
        cache=cache,
        progress=rep.start("rendering held-out", len(h_specs)),
    )
    if len(user):
        rep.note(f"{len(user)} labelled crops from {data}")
        train_set.extend(user)
    if cfg.blank_lines:
        train_set.extend(blank_lines(cfg.blank_lines, cfg.seed))
    net = CrnnNet(len(CHARSET), cfg.channels, cfg.hidden)
    if cfg.init:
        load_onnx_weights(net, Path(cfg.init))  # verified against onnxruntime, else raises
        rep.note(f"started from {cfg.init}")
    params = sum(p.numel() for p in net.parameters())
    val_lines = [plain(im) for im in val_set.images]
    history, stopped = _fit(net, train_set, val_lines, val_set.texts, cfg, rep)
    rep.note(stopped)
    val_score = score_lines(predict_torch(net, val_lines), val_set.texts)

    out.mkdir(parents=True, exist_ok=True)
    version = cfg.version or time.strftime("crnn-%Y.%m.%d-%H%M", time.gmtime())
    path = out / ONNX_NAME
    meta = {
        "character": metadata_value(),
        "height": str(HEIGHT),
        "stride": str(STRIDE),
        "version": version,
        "input": f"x: N x 1 x {HEIGHT} x W float32, grey/127.5 - 1, W a multiple of {STRIDE}",
        "output": f"probs: N x W/{STRIDE} x {len(CHARSET)} softmax, class 0 = CTC blank",
    }
    export_onnx(net, path, meta)
    diff = onnx_max_diff(net, path, val_lines)
    rep.note(f"onnxruntime vs torch: max |diff| {diff:.2e}")
    if diff > 1e-4:
        raise RuntimeError(f"exported ONNX disagrees with PyTorch by {diff:.2e}")

    from edge.vision.ocr.crnn.runtime import CrnnRecognizer

    crops = [normalise(im) for im in hold_set.images]
    mine = CrnnRecognizer(path=path, threads=cfg.threads)
    got = score_recognizer(mine, mine.charset, crops, hold_set.texts)
    holdout = score_lines(got, hold_set.texts)
    prod: LineScore | None = None
    prod_by: dict[str, LineScore] = {}
    prod_version = ""
    if cfg.compare_production:
        from edge.vision.ocr.recognize import Recognizer
        from edge.vision.session import MODELS_DIR

        ref = Recognizer(threads=cfg.threads, models_dir=models_dir or MODELS_DIR)
        ref_got = score_recognizer(ref, ref.charset, crops, hold_set.texts)
        prod = score_lines(ref_got, hold_set.texts)
        prod_by = by_smudge(ref_got, hold_set.texts, h_specs)
        prod_version = ref.model.version
    size = path.stat().st_size
    return TrainResult(
        onnx_path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size=size,
        version=version,
        config=cfg,
        params=params,
        val=val_score,
        holdout=holdout,
        holdout_by_smudge=by_smudge(got, hold_set.texts, h_specs),
        production=prod,
        production_by_smudge=prod_by,
        production_version=prod_version,
        onnx_max_diff=diff,
        train_count=len(train_set),
        user_lines=len(user),
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
        stopped=stopped,
        history=history,
    )
