"""Training and evaluation data: generated frames plus labelled photos from ``DATA/<class>/``.

Frames are stored letterboxed to the model input as uint8 (3 x H x W), about 80 kB each, so a
few thousand fit in memory on the training box. Generated frames also keep the damage's box in
model-input pixels: training uses it to tell the class maps where the damage is (a hairline crack
is a few dozen pixels of a 192x144 frame, too little for the frame's label alone to teach).
No torch here: the bench and tests use it too.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.contracts.errors import DockgateError
from edge.vision.defects.image import Letterbox, letterbox, read_image, to_rgb8

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
Progress = Callable[[int], None]
#: ``start(stage, total)``: a progress callback for a stage of ``total`` frames.
StartStage = Callable[[str, int], Progress]
Box = tuple[int, int, int, int]
#: A frame with no damage (class ``ok``): an empty box.
NO_BOX = (0.0, 0.0, 0.0, 0.0)


@dataclass
class Frames:
    """A labelled set of model inputs: ``x`` (N, 3, H, W) uint8, ``y`` (N,) class indices.

    ``boxes`` (N, 4) float32: each frame's damage box ``(x0, y0, x1, y1)`` in model-input pixels,
    all zeros for a frame without damage, NaN where the damage's place is unknown; ``None``
    means unknown for every frame.
    """

    x: npt.NDArray[np.uint8]
    y: npt.NDArray[np.int64]
    source: list[str]
    boxes: npt.NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self.y)

    def box_array(self) -> npt.NDArray[np.float32]:
        """``boxes``, with NaN rows (unknown) when the set has none."""
        if self.boxes is not None:
            return self.boxes
        return np.full((len(self), 4), np.nan, np.float32)

    def subset(self, idx: npt.NDArray[np.int64]) -> Frames:
        return Frames(
            self.x[idx], self.y[idx], [self.source[int(i)] for i in idx], self.box_array()[idx]
        )

    @staticmethod
    def concat(parts: list[Frames], shape: tuple[int, int, int]) -> Frames:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Frames(
                np.zeros((0, *shape), np.uint8),
                np.zeros(0, np.int64),
                [],
                np.zeros((0, 4), np.float32),
            )
        return Frames(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            [s for p in parts for s in p.source],
            np.concatenate([p.box_array() for p in parts]),
        )


def to_input_u8(rgb: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """Letterbox an RGB frame to the model input, kept as uint8 (3, H, W) to save memory."""
    return _to_input(rgb, width, height)[0]


def _to_input(
    rgb: npt.NDArray[np.uint8], width: int, height: int
) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    tensor, geom = letterbox(rgb, width, height)
    return np.asarray(np.round(tensor[0] * 255.0), dtype=np.uint8), geom


def input_box(box: Box | None, geom: Letterbox) -> tuple[float, float, float, float]:
    """A damage box in source-frame pixels to model-input pixels (``NO_BOX`` for none)."""
    if box is None:
        return NO_BOX
    x0, y0, x1, y1 = box
    return (
        x0 * geom.scale + geom.pad_x,
        y0 * geom.scale + geom.pad_y,
        x1 * geom.scale + geom.pad_x,
        y1 * geom.scale + geom.pad_y,
    )


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
    workers: int = 1,
) -> Frames:
    """Render ``per_class`` generated frames per class (of ``only``, if given), letterboxed."""
    from fixtures.defects.dataset import sample_seeds

    wanted = only or classes
    tasks = [
        ("gen", domain_name, label, sample_seed)
        for label, sample_seed in sample_seeds(seed, per_class)
        if label in wanted
    ]
    return _render(tasks, classes, size, on_progress, workers)


def render_face_frames(
    domain_name: str,
    per_class: int,
    seed: int,
    classes: tuple[str, ...],
    size: tuple[int, int],
    on_progress: Progress | None = None,
    only: tuple[str, ...] | None = None,
    workers: int = 1,
) -> Frames:
    """Render ``per_class`` carton-face frames (what the gate camera sees) per face class.

    Face classes are ``ok``, ``crush``, ``tear`` and ``wet`` (of ``only``, if given, and of
    ``classes``): smudged, taped, glared and printed cartons from the carton-code generator,
    with damage drawn on the same faces. See :mod:`fixtures.defects.face`.
    """
    from fixtures.defects.face import FACE_CLASSES

    wanted = [c for c in FACE_CLASSES if c in classes and (only is None or c in only)]
    tasks = [
        ("face", domain_name, label, seed * 1_000_003 + i)
        for i in range(per_class)
        for label in wanted
    ]
    return _render(tasks, classes, size, on_progress, workers)


@dataclass(frozen=True)
class Mix:
    """How many generated training-domain frames a set holds (see :func:`render_mix`)."""

    per_class: int  # product views per class
    ok_factor: int  # "ok" product views: ok_factor x per_class
    face_per_class: int  # carton faces per face class
    face_ok_factor: int  # "ok" carton faces: face_ok_factor x face_per_class

    def scaled(self, scale: float) -> Mix:
        """The same mix with ``scale`` times as many frames of each kind."""
        return Mix(
            round(self.per_class * scale),
            self.ok_factor,
            round(self.face_per_class * scale),
            self.face_ok_factor,
        )


#: The generated training mix of ``TrainConfig``'s defaults (every shipped model's).
TRAIN_MIX = Mix(per_class=500, ok_factor=3, face_per_class=250, face_ok_factor=3)
#: Held-out product views per class and carton faces per face class, by default.
HOLDOUT_PER_CLASS, HOLDOUT_FACE_PER_CLASS = 200, 100


def render_mix(
    mix: Mix,
    seed: int,
    classes: tuple[str, ...],
    size: tuple[int, int],
    start: StartStage | None = None,
    workers: int = 1,
    label: str = "",
) -> Frames:
    """Training-domain product views and carton faces in the proportions of ``mix``.

    Uses the sample seeds of ``seed``, ``seed + 20_000``, ``seed + 50_000`` and ``seed + 70_000``
    (the training set's since the first model, so a training run is reproduced exactly); a set
    that must not share frames with a training run needs a base ``seed`` away from every
    training seed by more than those offsets. ``label`` prefixes the progress stages.
    """

    def stage(name: str, total: int) -> Progress | None:
        return start(f"{label}{name}", total) if start is not None else None

    shape = (3, size[1], size[0])
    extra_ok = mix.per_class * (mix.ok_factor - 1)
    extra_ok_faces = mix.face_per_class * (mix.face_ok_factor - 1)
    parts = [
        render_frames(
            "train",
            mix.per_class,
            seed,
            classes,
            size,
            stage("rendering train", mix.per_class * len(classes)),
            workers=workers,
        ),
        render_frames(
            "train",
            extra_ok,
            seed + 50_000,
            classes,
            size,
            stage("rendering more ok", extra_ok),
            only=("ok",),
            workers=workers,
        ),
        render_face_frames(
            "train",
            mix.face_per_class,
            seed + 20_000,
            classes,
            size,
            stage("rendering carton faces", mix.face_per_class * 4),
            workers=workers,
        ),
        render_face_frames(
            "train",
            extra_ok_faces,
            seed + 70_000,
            classes,
            size,
            stage("rendering more ok faces", extra_ok_faces),
            only=("ok",),
            workers=workers,
        ),
    ]
    return Frames.concat(parts, shape)


def render_holdout_set(
    per_class: int,
    face_per_class: int,
    seed: int,
    classes: tuple[str, ...],
    size: tuple[int, int],
    start: StartStage | None = None,
    workers: int = 1,
) -> Frames:
    """The held-out set: domain ``holdout`` product views (sample seeds of ``seed + 10_000``)
    and carton faces (``seed + 30_000``), generator settings training never sees."""
    products = render_frames(
        "holdout",
        per_class,
        seed + 10_000,
        classes,
        size,
        start("rendering held-out", per_class * len(classes)) if start else None,
        workers=workers,
    )
    faces = render_face_frames(
        "holdout",
        face_per_class,
        seed + 30_000,
        classes,
        size,
        start("rendering held-out faces", face_per_class * 4) if start else None,
        workers=workers,
    )
    return Frames.concat([products, faces], (3, size[1], size[0]))


Task = tuple[str, str, str, int]  # (generator, domain, label, sample seed)


def _render_one(
    task: Task, size: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], tuple[float, float, float, float]]:
    """One generated frame letterboxed to the model input, and its damage box there (a pure
    function of its task)."""
    # The generator lives in fixtures/ (shipped with the distribution, not with the runtime
    # image); importing it here keeps the inference path free of it.
    from fixtures.defects import DOMAINS, render_sample
    from fixtures.defects.face import render_face

    kind, domain_name, label, sample_seed = task
    domain = DOMAINS[domain_name]
    box: Box | None
    if kind == "face":
        rgb, box, _ = render_face(sample_seed, label, domain)
    else:
        sample = render_sample(sample_seed, label, domain)
        rgb, box = sample.image, sample.box
    x, geom = _to_input(rgb, *size)
    return x, input_box(box, geom)


def _render(
    tasks: list[Task],
    classes: tuple[str, ...],
    size: tuple[int, int],
    on_progress: Progress | None,
    workers: int,
) -> Frames:
    """Render ``tasks`` in order, in this process or in ``workers`` child processes.

    Every frame depends only on its task, so the result is the same for any ``workers``.
    Children are spawned (not forked: the trainer's thread pools do not survive a fork).
    """
    width, height = size
    xs: list[np.ndarray] = []
    boxes: list[tuple[float, float, float, float]] = []
    if workers <= 1 or len(tasks) < 2 * workers:
        for task in tasks:
            x, box = _render_one(task, size)
            xs.append(x)
            boxes.append(box)
            if on_progress is not None:
                on_progress(1)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers) as pool:
            for x, box in pool.imap(functools.partial(_render_one, size=size), tasks, chunksize=8):
                xs.append(x)
                boxes.append(box)
                if on_progress is not None:
                    on_progress(1)
    ys = [classes.index(t[2]) for t in tasks]
    src = [f"{t[0]}:{t[1]}:{t[3]}:{t[2]}" for t in tasks]
    return _frames(xs, ys, src, (3, height, width), boxes)


def _frames(
    xs: list[np.ndarray],
    ys: list[int],
    src: list[str],
    shape: tuple[int, ...],
    boxes: list[tuple[float, float, float, float]] | None = None,
) -> Frames:
    """``boxes`` None: the damage's place is unknown (labelled photos)."""
    x = np.stack(xs) if xs else np.zeros((0, *shape), np.uint8)
    y = np.asarray(ys, np.int64)
    if boxes is None:
        box = np.full((len(ys), 4), np.nan, np.float32)
    else:
        box = np.asarray(boxes, np.float32).reshape(len(ys), 4)
    return Frames(x.astype(np.uint8), y, src, box)


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
