"""``dockgate models``: generate defect data, train the defect model and the code-line
recogniser, show installed models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import click

from edge.contracts.errors import DockgateError
from edge.vision.defects.image import INPUT_SIZE as _DEFECT_INPUT
from edge.vision.ocr.crnn import LINE_CACHE
from edge.vision.session import MODELS_DIR, read_manifest, verify_file


def _warm_options(lr: float, model: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Both trainers' ``--lr`` and ``--init`` (start from an exported model: fine-tuning)."""

    def wrap(f: Callable[..., None]) -> Callable[..., None]:
        f = click.option(
            "--init",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help=f"Start from this exported {model} (e.g. the shipped one) instead of random "
            "weights; its BatchNorm statistics stay fixed.",
        )(f)
        return click.option(
            "--lr",
            default=lr,
            show_default=True,
            type=click.FloatRange(0, 1, min_open=True),
            help="Peak learning rate of the one-cycle schedule (lower it with --init).",
        )(f)

    return wrap


def _manifest_options(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--manifest`` (where the new file's sha256 goes; ``default`` names the default) and
    ``--no-manifest``."""

    def wrap(f: Callable[..., None]) -> Callable[..., None]:
        f = click.option("--no-manifest", is_flag=True, help="Do not touch any manifest.")(f)
        return click.option(
            "--manifest",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=f"Manifest to record the new file's sha256 in (default: {default}).",
        )(f)

    return wrap


@click.group()
def app() -> None:
    """Models on this node: the defect model's data and training, and the manifest's files."""


@app.command("generate-defects")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for DIR/<class>/*.png and DIR/truth.json.",
)
@click.option("--per-class", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--domain",
    type=click.Choice(["train", "holdout"]),
    default="train",
    show_default=True,
    help="'holdout' uses generator settings the training domain never sees.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same images.")
@click.option(
    "--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True
)
def generate_defects(out: Path, per_class: int, domain: str, seed: int, fmt: str) -> None:
    """Render seeded carton and bottle frames per class (ok, crack, crush, tear, wet)."""
    from rich.progress import Progress

    from fixtures.defects import CLASSES, DOMAINS
    from fixtures.defects.dataset import write_dataset

    with Progress(transient=True) as progress:
        task = progress.add_task(f"rendering {domain}", total=per_class * len(CLASSES))
        write_dataset(
            out, per_class, DOMAINS[domain], seed, lambda n: progress.advance(task, n), fmt
        )
    click.echo(f"wrote {per_class * len(CLASSES)} frames to {out}")


def _size(value: str) -> tuple[int, int]:
    """'256x192' -> (256, 192), each side 32 to 1024 pixels."""
    parts = value.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 256x192")
    width, height = (int(p) for p in parts)
    if not all(32 <= side <= 1024 for side in (width, height)):
        raise click.BadParameter(f"{value!r}: each side must be 32 to 1024 pixels")
    return width, height


@contextmanager
def _rich_reporter() -> Iterator[object]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from edge.vision.defects.train import Reporter

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ) as progress:

        class RichReporter(Reporter):
            def start(self, stage: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(stage, total=total)
                return lambda n: progress.advance(task, n)

            def note(self, text: str) -> None:
                progress.console.print(text)

        yield RichReporter()


@app.command("train-defect")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Labelled images DATA/<class>/*.jpg|png, added to the generated frames "
    "(a missing or empty folder means generated frames only).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=MODELS_DIR / "defect",
    show_default=True,
    help="Folder for defect.onnx, MODEL_CARD.md and pr.png.",
)
@click.option(
    "--per-class",
    default=500,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Generated product-view training frames per class (0 and --face-per-class 0: only DATA).",
)
@click.option(
    "--face-per-class",
    default=250,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Generated carton-face frames (as the gate camera sees them) per class ok, crush, "
    "tear, wet; 'ok' gets 3x this.",
)
@click.option(
    "--holdout-per-class",
    default=200,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Generated held-out frames per class.",
)
@click.option(
    "--holdout-face-per-class",
    default=100,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Generated held-out carton-face frames per class ok, crush, tear, wet.",
)
@click.option("--epochs", default=16, show_default=True, type=click.IntRange(1, 500))
@click.option(
    "--input-size",
    default=f"{_DEFECT_INPUT[0]}x{_DEFECT_INPUT[1]}",
    show_default=True,
    callback=lambda _ctx, _param, value: _size(value),
    help="The model's input, WIDTHxHEIGHT: frames are letterboxed into it (the net is fully "
    "convolutional, so a fine-tune may change it).",
)
@_warm_options(lr=3e-3, model="defect model")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--render-workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes rendering the generated frames (same frames, same model for any count).",
)
@click.option("--version", "version", default="", help="Model version (default: a UTC timestamp).")
@_manifest_options("OUT/../manifest.json")
def train_defect(
    data: Path,
    out: Path,
    per_class: int,
    face_per_class: int,
    holdout_per_class: int,
    holdout_face_per_class: int,
    epochs: int,
    input_size: tuple[int, int],
    lr: float,
    init: Path | None,
    seed: int,
    threads: int,
    render_workers: int,
    version: str,
    manifest: Path | None,
    no_manifest: bool,
) -> None:
    """Train the defect CNN on the CPU (seeded, reproducible) and export it to ONNX.

    Needs the [train] extra (PyTorch). Writes OUT/defect.onnx, OUT/MODEL_CARD.md with held-out
    metrics and OUT/pr.png, and records the file's sha256 in the models manifest.
    """
    try:
        from edge.vision.defects.card import update_manifest, write_card
        from edge.vision.defects.train import TrainConfig, train
    except ImportError as exc:
        raise click.ClickException(
            f"training needs the [train] extra (pip install 'dockgate[train]'): {exc}"
        ) from None
    if per_class == 0 and face_per_class == 0 and not data.is_dir():
        raise click.ClickException(
            f"--per-class 0 --face-per-class 0 needs labelled images, but {data} is missing"
        )
    cfg = TrainConfig(
        seed=seed,
        per_class=per_class,
        face_per_class=face_per_class,
        holdout_per_class=holdout_per_class,
        holdout_face_per_class=holdout_face_per_class,
        epochs=epochs,
        input_width=input_size[0],
        input_height=input_size[1],
        lr=lr,
        init=str(init) if init is not None else "",
        threads=threads,
        version=version,
    )
    with _rich_reporter() as reporter:
        result = train(data, out, cfg, reporter, render_workers)  # type: ignore[arg-type]
    card = write_card(result)
    if not no_manifest:
        update_manifest(manifest or out.parent / "manifest.json", result)
    click.echo(
        json.dumps(
            {
                "onnx": str(result.onnx_path),
                "sha256": result.sha256,
                "bytes": result.size,
                "version": result.version,
                "card": str(card),
                "seconds": round(result.seconds, 1),
                "cpu_seconds": round(result.cpu_seconds, 1),
                "freeze_threshold": round(result.freeze_threshold, 6),
                "review_threshold": round(result.review_threshold, 6),
                "validation": result.val.summary(),
                "holdout": result.holdout.summary(),
            },
            indent=1,
        )
    )


@app.command("threshold-defect")
@click.argument("model", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the model with its new thresholds (default: MODEL itself).",
)
@click.option("--version", "version", required=True, help="Version of the re-thresholded model.")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Training seed whose threshold set to render (default: the model's own, from its "
    "train_config metadata).",
)
@click.option(
    "--per-class",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Product views per class in the threshold set (default: as many as the model's training "
    "rendered).",
)
@click.option(
    "--face-per-class",
    type=click.IntRange(0, 100_000),
    default=None,
    help="Carton faces per face class (default: as the model's training).",
)
@click.option(
    "--holdout-per-class",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Held-out frames per class scored for the card (default: as the model's training).",
)
@click.option(
    "--holdout-face-per-class",
    type=click.IntRange(0, 100_000),
    default=None,
    help="Held-out carton faces per face class (default: as the model's training).",
)
@click.option("--render-workers", default=1, show_default=True, type=click.IntRange(1, 64))
@_manifest_options("manifest.json in the folder above the written file's")
def threshold_defect(
    model: Path,
    out: Path | None,
    version: str,
    seed: int | None,
    per_class: int | None,
    face_per_class: int | None,
    holdout_per_class: int | None,
    holdout_face_per_class: int | None,
    render_workers: int,
    manifest: Path | None,
    no_manifest: bool,
) -> None:
    """Choose an exported defect model's freeze and review thresholds again, on a threshold set.

    The threshold set is training-domain frames in the training mix's proportions (3x 'ok'),
    rendered from seeds no training uses; never the held-out set, which is then scored at the
    new thresholds for the model card. The weights are not touched. No [train] extra needed.
    """
    from edge.vision.defects.card import add_rethreshold, record
    from edge.vision.defects.data import (
        HOLDOUT_FACE_PER_CLASS,
        HOLDOUT_PER_CLASS,
        TRAIN_MIX,
        Mix,
        render_holdout_set,
    )
    from edge.vision.defects.evaluate import evaluate_probs, scores_onnx
    from edge.vision.defects.metrics import frozen_by_class
    from edge.vision.defects.thresholds import contract, rethreshold
    from edge.vision.session import onnx_metadata

    meta = onnx_metadata(model)
    try:
        classes, size = contract(meta, model)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    trained = json.loads(meta.get("train_config", "{}"))
    if seed is None:
        if "seed" not in trained:
            raise click.ClickException(f"{model} records no training seed: pass --seed")
        seed = int(trained["seed"])
    # What the model was trained on, where its metadata says; else the trainer's defaults.
    mix = Mix(**{k: int(trained.get(k, v)) for k, v in asdict(TRAIN_MIX).items()})
    mix = replace(
        mix,
        per_class=per_class or mix.per_class,
        face_per_class=mix.face_per_class if face_per_class is None else face_per_class,
    )
    target = out or model
    with _rich_reporter() as reporter:
        done = rethreshold(
            model,
            target,
            mix=mix,
            seed=seed,
            version=version,
            start=reporter.start,  # type: ignore[attr-defined]
            workers=render_workers,
        )
        holdout = render_holdout_set(
            holdout_per_class or int(trained.get("holdout_per_class", HOLDOUT_PER_CLASS)),
            holdout_face_per_class
            if holdout_face_per_class is not None
            else int(trained.get("holdout_face_per_class", HOLDOUT_FACE_PER_CLASS)),
            seed,
            classes,
            size,
            reporter.start,  # type: ignore[attr-defined]
            render_workers,
        )
    probs = scores_onnx(target, holdout.x)
    freeze = done.thresholds.freeze
    evaluation = evaluate_probs(probs, holdout.y, classes, freeze)
    frozen = frozen_by_class(probs, holdout.y, classes, freeze)
    card = target.parent / "MODEL_CARD.md"
    if not card.exists() and (model.parent / "MODEL_CARD.md").exists():
        shutil.copyfile(model.parent / "MODEL_CARD.md", card)  # the training record goes along
    add_rethreshold(card, target, done, evaluation, frozen)
    if not no_manifest:
        record(manifest or target.parent.parent / "manifest.json", target, version, *size)
    click.echo(
        json.dumps(
            {
                "onnx": str(target),
                "version": version,
                "freeze_threshold": [round(done.previous_freeze, 6), round(freeze, 6)],
                "review_threshold": [
                    round(done.previous_review, 6),
                    round(done.thresholds.review, 6),
                ],
                "threshold_set": {"good": done.good_frames, "damaged": done.damaged_frames},
                "holdout": evaluation.summary() | {"frozen_by_class": frozen},
            },
            indent=1,
        )
    )


@app.command("train-codes")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Labelled line crops: DATA/labels.json maps an image file name to its text; "
    "added to the generated lines.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=MODELS_DIR / "ocr" / "crnn",
    show_default=True,
    help="Folder for crnn_codes.onnx, MODEL_CARD.md and training.png.",
)
@click.option("--lines", default=16_000, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--val-lines", default=600, show_default=True, type=click.IntRange(8, 100_000))
@click.option("--holdout-lines", default=800, show_default=True, type=click.IntRange(4, 100_000))
@click.option("--epochs", default=6, show_default=True, type=click.IntRange(1, 500))
@click.option("--batch", default=32, show_default=True, type=click.IntRange(1, 1024))
@_warm_options(lr=2e-3, model="CRNN")
@click.option(
    "--blank-lines",
    default=0,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Crops with nothing printed (board and label stock, text '') added to training, so the "
    "recogniser learns to read nothing there.",
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Render processes."
)
@click.option(
    "--max-minutes",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Stop training after this long (0: no cap); the best weights so far are kept.",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=LINE_CACHE,
    show_default=True,
    help="Rendered lines are kept here in shards and reused.",
)
@click.option(
    "--no-compare", is_flag=True, help="Do not score PP-OCR (ocr.rec) on the held-out set."
)
@click.option("--version", "version", default="", help="Model version (default: a UTC timestamp).")
@_manifest_options("OUT/../../manifest.json")
def train_codes(
    data: Path | None,
    out: Path,
    lines: int,
    val_lines: int,
    holdout_lines: int,
    epochs: int,
    batch: int,
    lr: float,
    init: Path | None,
    blank_lines: int,
    seed: int,
    threads: int,
    workers: int,
    max_minutes: float,
    cache: Path,
    no_compare: bool,
    version: str,
    manifest: Path | None,
    no_manifest: bool,
) -> None:
    """Train the CRNN code-line recogniser (CTC) on the CPU and export it to ONNX.

    Needs the [train] extra (PyTorch). Renders seeded synthetic code lines (plus DATA's
    labelled crops), trains with early stopping, writes OUT/crnn_codes.onnx, OUT/MODEL_CARD.md
    (held-out line exact match and CER, next to PP-OCR on the same crops) and OUT/training.png,
    and records the file's sha256 in the models manifest under 'ocr.crnn'.
    """
    try:
        from edge.vision.ocr.crnn.card import update_manifest, write_card
        from edge.vision.ocr.crnn.train import TrainConfig, train
    except ImportError as exc:
        raise click.ClickException(
            f"training needs the [train] extra (pip install 'dockgate[train]'): {exc}"
        ) from None
    if data is not None and not (data / "labels.json").is_file():
        raise click.ClickException(f"--data {data} has no labels.json")
    if lines == 0 and data is None:
        raise click.ClickException("--lines 0 needs labelled crops (--data)")
    cfg = TrainConfig(
        seed=seed,
        lines=lines,
        val_lines=val_lines,
        holdout_lines=holdout_lines,
        epochs=epochs,
        batch=batch,
        lr=lr,
        init=str(init) if init is not None else "",
        blank_lines=blank_lines,
        threads=threads,
        workers=workers,
        max_minutes=max_minutes,
        compare_production=not no_compare,
        version=version,
    )
    try:
        with _rich_reporter() as reporter:
            result = train(out, cfg, reporter, data=data, cache=cache)  # type: ignore[arg-type]
    except (ValueError, DockgateError) as exc:
        raise click.ClickException(str(exc)) from None
    card = write_card(result)
    if not no_manifest:
        update_manifest(manifest or out.parent.parent / "manifest.json", result)
    click.echo(
        json.dumps(
            {
                "onnx": str(result.onnx_path),
                "sha256": result.sha256,
                "bytes": result.size,
                "version": result.version,
                "card": str(card),
                "seconds": round(result.seconds, 1),
                "stopped": result.stopped,
                "validation": result.val.summary(),
                "holdout": result.holdout.summary(),
                "production_holdout": result.production.summary() if result.production else None,
            },
            indent=1,
        )
    )


@app.command("info")
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=MODELS_DIR,
    show_default=True,
)
def info(models_dir: Path) -> None:
    """List the manifest's models, check each file's sha256, show the defect model's contract."""
    try:
        entries = read_manifest(models_dir)
    except DockgateError as exc:
        raise click.ClickException(str(exc)) from None
    bad = 0
    for name, entry in sorted(entries.items()):
        try:
            verify_file(entry.path, entry.sha256, entry.size)
            status = "ok"
        except DockgateError as exc:
            status, bad = f"INVALID ({exc.message})", bad + 1
        click.echo(
            f"{name}: {entry.path.relative_to(models_dir)} version {entry.version} "
            f"sha256 {entry.sha256[:16]}… {status}"
        )
        if name == "defect" and status == "ok":
            from edge.vision.defects.model import DefectModel

            model = DefectModel.load(models_dir=models_dir)
            i = model.info
            click.echo(
                f"  classes {', '.join(i.classes)}; input {i.input_width}x{i.input_height};"
                f" freeze >= {i.freeze_threshold:.4f}; review >= {i.review_threshold:.4f}"
            )
    if bad:
        raise click.ClickException(f"{bad} model file(s) failed verification")
