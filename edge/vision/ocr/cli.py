"""``dockgate read``: read carton codes from image files.

One result per image, one line each; ``--json`` prints exactly the keys of
:data:`edge.vision.ocr.reader.JSON_KEYS`. A file that cannot be read as an image gets status
``ERROR`` and the others are still read; the reason of every non-ACCEPTED result goes to stderr.
The exit code is non-zero only for bad arguments (a bad ``--expect`` file included).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge.contracts.errors import DockgateError
from edge.vision.image import read_image
from edge.vision.ocr.reader import ACCEPTED, ASN, CartonRead, Reader, error_read


def load_asn(path: Path) -> list[ASN]:
    """Parse an ASN file: a JSON list of ``{"gtin", "lot", "expiry"}`` objects."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--expect") from None
    if not isinstance(data, list):
        raise click.BadParameter(f"{path}: expected a JSON list", param_hint="--expect")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("gtin", "lot", "expiry")
        ):
            raise click.BadParameter(
                f"{path}: item {i} needs string keys gtin, lot, expiry", param_hint="--expect"
            )
        out.append(ASN(gtin=item["gtin"], lot=item["lot"], expiry=item["expiry"]))
    return out


def load_image(path: Path) -> tuple[np.ndarray[Any, Any] | None, str | None]:
    """The decoded image, or ``None`` and the reason (never raises). Decoding goes through the
    shared safe decoder: sizes are checked from the header before any pixel is decoded."""
    if path.is_dir():
        return None, "not a regular file"
    try:
        return read_image(path), None
    except DockgateError as exc:
        return None, exc.message


@click.command("read")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--expect",
    "expect_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="ASN.json: a list of {gtin, lot, expiry} the gate expects.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image and line.")
@click.option("--threads", type=click.IntRange(1, 16), default=2, show_default=True)
def read(images: tuple[Path, ...], expect_path: Path | None, as_json: bool, threads: int) -> None:
    """Read the carton code printed in each IMAGE (frame or tight crop, any size)."""
    from edge.vision.ocr.config import OcrConfig

    expect = load_asn(expect_path) if expect_path is not None else None
    reader = Reader(OcrConfig(threads=threads))
    for path in images:
        start = time.perf_counter()
        image, problem = load_image(path)
        if image is None:
            ms = (time.perf_counter() - start) * 1000
            result = error_read(str(path), f"IMAGE_INVALID: {problem}", ms)
        else:
            r = reader.read(image, expect, file=str(path))
            ms = (time.perf_counter() - start) * 1000
            result = _with_latency(r, ms)
        _emit(result, as_json)


def _with_latency(r: CartonRead, ms: float) -> CartonRead:
    from dataclasses import replace

    return replace(r, latency_ms=round(ms, 1))


def _emit(r: CartonRead, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(r.as_json(), ensure_ascii=False))
    else:
        fields = " ".join(
            f"{k}={v}"
            for k in ("gtin", "lot", "expiry", "prod_date", "sscc")
            if (v := getattr(r, k))
        )
        click.echo(f"{r.file}: {r.status} {r.confidence:.3f} {fields} ({r.latency_ms:.0f} ms)")
    if r.status != ACCEPTED and r.reason:
        click.echo(f"{r.file}: {r.status}: {r.reason}", err=True)
