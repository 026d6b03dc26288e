"""Training and evaluation data: generated frames plus labelled photos from ``DATA/<class>/``.

Frames are stored letterboxed to the model input as uint8 (3 x H x W), about 80 kB each, so a
few thousand fit in memory on the training box. No torch here: the bench and tests use it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.contracts.errors import DockgateError
from edge.vision.defects.image import letterbox, read_image, to_rgb8

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
Progress = Callable[[int], None]


@dataclass
class Frames:
    """A labelled set of model inputs: ``x`` (N, 3, H, W) uint8, ``y`` (N,) class indices."""

    x: npt.NDArray[np.uint8]
    y: npt.NDArray[np.int64]
    source: list[str]

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: npt.NDArray[np.int64]) -> Frames:
        return Frames(self.x[idx], self.y[idx], [self.source[int(i)] for i in idx])

    @staticmethod
    def concat(parts: list[Frames], shape: tuple[int, int, int]) -> Frames:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Frames(np.zeros((0, *shape), np.uint8), np.zeros(0, np.int64), [])
        return Frames(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            [s for p in parts for s in p.source],
        )


def to_input_u8(rgb: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """Letterbox an RGB frame to the model input, kept as uint8 (3, H, W) to save memory."""
    tensor, _ = letterbox(rgb, width, height)
    return np.asarray(np.round(tensor[0] * 255.0), dtype=np.uint8)


def list_labelled(data_dir: Path, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
    """``DATA/<class>/*.jpg|png`` files for the known classes, sorted (deterministic order)."""
    found: list[tuple[Path, int]] = []
    for idx, name in enumerate(classes):
        folder = data_dir / name
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(p, idx) for p in files]
    return found


def load_labelled(
    data_dir: Path,
    classes: tuple[str, ...],
    size: tuple[int, int],
    on_progress: Progress | None = None,
) -> Frames:
    """Load labelled photos; unreadable files are logged and skipped, not fatal."""
    width, height = size
    xs, ys, src = [], [], []
    for path, idx in list_labelled(data_dir, classes):
        try:
            xs.append(to_input_u8(to_rgb8(read_image(path)), width, height))
            ys.append(idx)
            src.append(str(path))
        except DockgateError as exc:
            log.warning("skipping %s: %s", path, exc)
        if on_progress is not None:
            on_progress(1)
    return _frames(xs, ys, src, (3, height, width))


def render_frames(
    domain_name: str,
    per_class: int,
    seed: int,
    classes: tuple[str, ...],
    size: tuple[int, int],
    on_progress: Progress | None = None,
    only: tuple[str, ...] | None = None,
) -> Frames:
    """Render ``per_class`` generated frames per class (of ``only``, if given), letterboxed."""
    width, height = size
    xs, ys, src = [], [], []
    for label, sample_seed, rgb in iter_rendered(domain_name, per_class, seed, only or classes):
        xs.append(to_input_u8(rgb, width, height))
        ys.append(classes.index(label))
        src.append(f"gen:{domain_name}:{sample_seed}:{label}")
        if on_progress is not None:
            on_progress(1)
    return _frames(xs, ys, src, (3, height, width))


def iter_rendered(
    domain_name: str, per_class: int, seed: int, classes: tuple[str, ...]
) -> Iterator[tuple[str, int, npt.NDArray[np.uint8]]]:
    """(label, sample seed, RGB frame) from the fixtures generator, classes interleaved."""
    # The generator lives in fixtures/ (shipped with the distribution, not with the runtime
    # image); importing it here keeps the inference path free of it.
    from fixtures.defects import DOMAINS, render_sample
    from fixtures.defects.dataset import sample_seeds

    domain = DOMAINS[domain_name]
    for label, sample_seed in sample_seeds(seed, per_class):
        if label in classes:
            yield label, sample_seed, render_sample(sample_seed, label, domain).image


def _frames(xs: list[np.ndarray], ys: list[int], src: list[str], shape: tuple[int, ...]) -> Frames:
    x = np.stack(xs) if xs else np.zeros((0, *shape), np.uint8)
    return Frames(x.astype(np.uint8), np.asarray(ys, np.int64), src)


def stratified_split(
    y: npt.NDArray[np.int64], fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(train, val) index arrays with ``fraction`` of every class in val (at least one each)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        k = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
