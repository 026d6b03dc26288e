"""``dockgate models``: generate defect data, train the defect model, show installed models."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from edge.contracts.errors import DockgateError
from edge.vision.session import MODELS_DIR, read_manifest, verify_file


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
    default=600,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Generated training frames per class (0: only DATA).",
)
@click.option(
    "--holdout-per-class",
    default=200,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Generated held-out frames per class.",
)
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(1, 500))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--version", "version", default="", help="Model version (default: a UTC timestamp).")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Manifest to record the new file's sha256 in (default: OUT/../manifest.json).",
)
@click.option("--no-manifest", is_flag=True, help="Do not touch any manifest.")
def train_defect(
    data: Path,
    out: Path,
    per_class: int,
    holdout_per_class: int,
    epochs: int,
    seed: int,
    threads: int,
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
    if per_class == 0 and not data.is_dir():
        raise click.ClickException(f"--per-class 0 needs labelled images, but {data} is missing")
    cfg = TrainConfig(
        seed=seed,
        per_class=per_class,
        holdout_per_class=holdout_per_class,
        epochs=epochs,
        threads=threads,
        version=version,
    )
    with _rich_reporter() as reporter:
        result = train(data, out, cfg, reporter)  # type: ignore[arg-type]
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
                "freeze_threshold": round(result.freeze_threshold, 6),
                "review_threshold": round(result.review_threshold, 6),
                "validation": result.val.summary(),
                "holdout": result.holdout.summary(),
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
