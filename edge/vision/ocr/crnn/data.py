"""Line crops for the CRNN: seeded synthetic lines, labelled crops, and the shared preprocessing.

Synthetic lines come from the carton generator's single-line mode
(:func:`fixtures.cartons.frame.generate_crop`): a code line of every printed form (GS1
brackets, ``LOT``/``批号``/``有效期至``/``EXP``/``PROD``/``生产日期``/``BEST BY``, dates in
every separator), dot-matrix 5x7/7x9 or thermal strokes, kraft or white label, lit, smudged,
blurred and JPEG-compressed in a full frame, cut out with up to +-3 degrees of residual skew.
:func:`augment` then adds what varies between the generator and a real reader: the margins the
line finder leaves, horizontal dot pitch (stretch), extra blur, low resolution, low contrast,
JPEG and noise, and finally the same contrast normalisation the reader applies
(:func:`edge.vision.ocr.locate.normalise`).

Domains: ``train`` (two frame sizes, wider ranges than the generator's own TRAIN preset) and
``holdout`` (the generator's HOLDOUT preset: fonts 7x9bold and Hershey plain/triplex, ink
colours and textures training never sees) for validation and the bench.

Everything the network sees goes through :func:`resize_line` and :func:`batch_input`, also at
run time (:mod:`edge.vision.ocr.crnn.runtime`), so training and inference agree by construction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.vision.ocr.crnn.charset import INDEX
from edge.vision.ocr.crnn.prep import resize_line
from edge.vision.ocr.locate import normalise as reader_normalise
from fixtures.cartons.frame import generate_crop
from fixtures.cartons.settings import HOLDOUT, TRAIN, CartonSettings

Gray = npt.NDArray[np.uint8]

RENDER_HEIGHT = 40  # stored crops are a little taller than HEIGHT, for margin jitter
BOARD_MARGIN_P = 0.3  # share of training crops given a stretch of bare board beside the print
DATA_VERSION = 1  # bump when rendering or augmentation changes (cache key)

# smudge share of the line's box, and how often training draws it
TRAIN_SMUDGE = (0.0, 0.1, 0.2, 0.3, 0.4)
TRAIN_SMUDGE_P = (0.4, 0.2, 0.2, 0.12, 0.08)
HOLDOUT_SMUDGE = (0.0, 0.1, 0.2, 0.3)


def _train_settings() -> tuple[CartonSettings, CartonSettings]:

    wide = dataclasses.replace(
        TRAIN,
        name="crnn-train",
        thermal_share=0.35,
        thermal_fonts=(0, 2, 3, 5),  # Hershey simplex, duplex, complex, complex-small
        inks=(*TRAIN.inks, (55, 55, 55), (60, 30, 15)),
        char_height_px=(12.0, 40.0),
        char_spacing=(0.05, 0.6),
        dot_radius=(0.25, 0.55),
        dot_jitter=(0.0, 0.15),
        dot_dropout=(0.0, 0.15),
        nozzle_dropout=0.2,
        ink_spread=(0.0, 1.8),
        ink_density=(0.55, 1.0),
        label_share=0.4,
        fibre_strength=(0.2, 1.2),
        decor_items=(0, 2),
        illumination=(0.0, 0.45),
        glare_share=0.3,
        motion_blur_px=(0.0, 6.0),
        defocus_px=(0.0, 1.6),
        noise_sigma=(1.0, 7.0),
        jpeg_quality=(35, 95),
    )
    small = dataclasses.replace(wide, name="crnn-train-small", frame_size=(800, 450))
    return (wide, small)


@dataclass(frozen=True)
class LineSpec:
    """One synthetic line: generator seed, smudge share and domain (``train`` | ``holdout``)."""

    seed: int
    smudge: float
    domain: str


def train_specs(count: int, seed: int) -> list[LineSpec]:
    """``count`` training lines; smudge drawn from :data:`TRAIN_SMUDGE` (seeded)."""
    rng = np.random.default_rng([seed, 11])
    smudges = rng.choice(np.asarray(TRAIN_SMUDGE), size=count, p=np.asarray(TRAIN_SMUDGE_P))
    base = 1_000_000 * (seed % 1000) + 10_000_000
    return [LineSpec(base + i, float(s), "train") for i, s in enumerate(smudges.tolist())]


def holdout_specs(
    count: int, seed: int = 0, smudges: Sequence[float] = HOLDOUT_SMUDGE
) -> list[LineSpec]:
    """``count`` held-out lines, smudge buckets in turn (generator settings training never saw)."""
    base = 3_000_000_000 + 1_000_000 * (seed % 1000)
    return [LineSpec(base + i, float(smudges[i % len(smudges)]), "holdout") for i in range(count)]


def render_line(spec: LineSpec, height: int = RENDER_HEIGHT) -> tuple[Gray, str]:
    """The grey crop of one synthetic line (``height`` tall, not yet normalised) and its text."""
    if spec.domain == "holdout":
        settings = HOLDOUT
    elif spec.domain == "train":
        settings = _train_settings()[spec.seed % 2]
    else:
        raise ValueError(f"unknown domain {spec.domain!r}")
    crop, truth = generate_crop(spec.seed, smudge=spec.smudge, settings=settings, height=height)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return np.asarray(grey, np.uint8), str(truth["text"])


@dataclass
class LineSet:
    """Grey line crops (all the same height, any width) and their texts."""

    images: list[Gray]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        widths = np.array([im.shape[1] for im in self.images], np.int64)
        heights = {im.shape[0] for im in self.images}
        if len(heights) > 1:
            raise ValueError("a LineSet file holds crops of one height")
        flat = np.concatenate(self.images, axis=1) if self.images else np.zeros((1, 0), np.uint8)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, pixels=flat, widths=widths, texts=np.array(self.texts, dtype=np.str_))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LineSet:
        with np.load(path, allow_pickle=False) as z:
            flat, widths, texts = z["pixels"], z["widths"], z["texts"]
        edges = np.concatenate([[0], np.cumsum(widths)])
        images = [np.ascontiguousarray(flat[:, a:b]) for a, b in itertools.pairwise(edges)]
        return cls(images, [str(t) for t in texts.tolist()])

    def extend(self, other: LineSet) -> None:
        self.images.extend(other.images)
        self.texts.extend(other.texts)


def _render_chunk(specs: list[LineSpec]) -> tuple[list[Gray], list[str]]:
    out = [render_line(s) for s in specs]
    return [o[0] for o in out], [o[1] for o in out]


def spec_key(specs: Sequence[LineSpec]) -> str:
    """A short digest of the specs and the data version (cache file name)."""
    h = hashlib.sha256(f"v{DATA_VERSION}".encode())
    for s in specs:
        h.update(f"{s.seed},{s.smudge},{s.domain};".encode())
    return h.hexdigest()[:16]


def build_lines(
    specs: Sequence[LineSpec],
    *,
    workers: int = 1,
    cache: Path | None = None,
    progress: Callable[[int], None] | None = None,
    shard: int = 2000,
) -> LineSet:
    """Render ``specs`` (in ``workers`` processes).

    With ``cache``, every ``shard`` consecutive specs are kept in ``cache/lines-<key>.npz``
    and reused: an interrupted run resumes where it stopped.
    """
    result = LineSet([], [])
    for i in range(0, len(specs), shard):
        part = list(specs[i : i + shard])
        path = cache / f"lines-{spec_key(part)}.npz" if cache is not None else None
        if path is not None and path.is_file():
            loaded = LineSet.load(path)
            if progress is not None:
                progress(len(loaded))
        else:
            loaded = _render(part, workers, progress)
            if path is not None:
                loaded.save(path)
        result.extend(loaded)
    return result


def _render(
    specs: list[LineSpec], workers: int, progress: Callable[[int], None] | None, chunk: int = 50
) -> LineSet:
    chunks = [specs[i : i + chunk] for i in range(0, len(specs), chunk)]
    result = LineSet([], [])
    if workers <= 1:
        done = map(_render_chunk, chunks)
        for c, (ims, txts) in zip(chunks, done, strict=True):
            result.extend(LineSet(ims, txts))
            if progress is not None:
                progress(len(c))
        return result
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for c, (ims, txts) in zip(chunks, pool.map(_render_chunk, chunks), strict=True):
            result.extend(LineSet(ims, txts))
            if progress is not None:
                progress(len(c))
    return result


def load_labelled(folder: Path, height: int = RENDER_HEIGHT) -> LineSet:
    """Labelled real crops: ``folder/labels.json`` maps an image file name to its text.

    Images are read grey and scaled to ``height``; characters outside the charset are refused
    with the file named (a label the model cannot learn is a labelling error).
    """
    labels_path = folder / "labels.json"
    if not labels_path.is_file():
        return LineSet([], [])
    labels = json.loads(labels_path.read_text(encoding="utf-8"))
    if not isinstance(labels, dict):
        raise ValueError(f"{labels_path}: expected an object mapping file name to text")
    out = LineSet([], [])
    for name, text in sorted(labels.items()):
        if not isinstance(text, str) or not text:
            raise ValueError(f"{labels_path}: {name!r} has no text")
        bad = sorted({c for c in text if c not in INDEX})
        if bad:
            raise ValueError(f"{labels_path}: {name!r} uses characters outside the charset: {bad}")
        img = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"{folder / name}: not a readable image")
        h, w = img.shape
        width = max(8, round(w * height / max(h, 1)))
        out.images.append(
            np.asarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA), np.uint8)
        )
        out.texts.append(text)
    return out


def normalise(grey: Gray) -> Gray:
    """The reader's own contrast normalisation (light paper, dark ink)."""
    return reader_normalise(grey)


def _u8(x: object) -> Gray:
    return np.asarray(x, np.uint8)


def blank_lines(count: int, seed: int, height: int = RENDER_HEIGHT) -> LineSet:
    """``count`` crops with nothing printed on them, text ``""``: plain, mottled or fibrous
    board and label stock under a light gradient and sensor noise, 1 to 25 line heights wide.

    The recogniser must read nothing where nothing is printed (a band the localiser took for
    a line); trained on code lines only, it was seen to read a '(' on blank paper."""
    rng = np.random.default_rng([seed, 23])
    out = LineSet([], [])
    for _ in range(count):
        w = int(rng.integers(height, 25 * height))
        img = np.full((height, w), rng.uniform(110.0, 245.0), np.float32)
        img += np.linspace(0.0, rng.uniform(-30.0, 30.0), w, dtype=np.float32)[None, :]
        coarse = rng.normal(0.0, rng.uniform(0.0, 8.0), (max(2, height // 8), max(2, w // 8)))
        img += cv2.resize(coarse.astype(np.float32), (w, height), interpolation=cv2.INTER_CUBIC)
        k = int(rng.integers(1, 9))
        fibres = cv2.blur(rng.normal(0.0, 1.0, (height, w)).astype(np.float32), (k, 1))
        img += fibres * rng.uniform(0.0, 10.0) + rng.normal(0.0, rng.uniform(1.0, 6.0), img.shape)
        out.images.append(np.clip(img, 0, 255).astype(np.uint8))
        out.texts.append("")
    return out


def augment(rng: np.random.Generator, grey: Gray) -> Gray:
    """One random variation of a stored crop, normalised and resized to the network height."""
    h, w = grey.shape
    line_h = float(h) / 1.5  # generate_crop leaves a quarter line height above and below

    def margin(lo: float, hi: float) -> int:
        return round(float(rng.uniform(lo, hi)) * line_h)

    top, bottom = margin(-0.12, 0.15), margin(-0.12, 0.15)
    left, right = margin(-0.2, 0.35), margin(-0.2, 0.35)
    img = grey[max(0, -top) : h - max(0, -bottom), max(0, -left) : w - max(0, -right)]
    if max(top, bottom, left, right) > 0:
        pads = (max(0, top), max(0, bottom), max(0, left), max(0, right))
        img = _u8(cv2.copyMakeBorder(img, *pads, cv2.BORDER_REPLICATE))
    if rng.random() < BOARD_MARGIN_P:
        img = _board_margins(rng, img, line_h)
    ih, iw = img.shape
    stretch = float(rng.uniform(0.8, 1.25))
    img = _u8(cv2.resize(img, (max(8, round(iw * stretch)), ih), interpolation=cv2.INTER_LINEAR))
    if rng.random() < 0.25:
        img = _u8(cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.4, 1.3))))
    if rng.random() < 0.2:  # low resolution: a far or small print
        f = float(rng.uniform(0.4, 0.8))
        ih, iw = img.shape
        size = (max(4, round(iw * f)), max(4, round(ih * f)))
        small = _u8(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        img = _u8(cv2.resize(small, (iw, ih), interpolation=cv2.INTER_LINEAR))
    work = img.astype(np.float32)
    if rng.random() < 0.3:  # low contrast, shifted brightness
        mean = float(work.mean())
        work = mean + (work - mean) * float(rng.uniform(0.3, 1.0)) + float(rng.uniform(-30, 30))
    if rng.random() < 0.2:
        g = float(rng.uniform(0.6, 1.6))
        work = 255.0 * (np.clip(work, 0, 255) / 255.0) ** g
    if rng.random() < 0.15:
        work = work + rng.normal(0, float(rng.uniform(3, 12)), work.shape).astype(np.float32)
    img = np.clip(work, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 76))])
        if ok:
            img = _u8(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))
    return resize_line(normalise(img))


def _board_margins(rng: np.random.Generator, img: Gray, line_h: float) -> Gray:
    """``img`` with a stretch of bare board, 1 to 10 line heights wide, on its left, right
    or both sides: the board's level and grain as measured in the crop, with a few dark
    specks of fibre or dirt. The reader's line crops reach out to specks on the board
    beside the print, and a CRNN that had only seen tight crops read such stretches as
    characters ('有效期至2030/08/31062', '(15)261215 206')."""
    h = img.shape[0]
    level = float(np.percentile(img, 80))
    paper = img[img >= np.percentile(img, 60)].astype(np.float32)
    grain = float(paper.std()) if paper.size > 1 else 3.0
    ink = float(np.percentile(img, 3))
    side = ("left", "right", "both")[int(rng.choice(3, p=(0.3, 0.5, 0.2)))]

    def board() -> Gray:
        w = max(2, round(float(rng.uniform(1.0, 10.0)) * line_h))
        out = np.full((h, w), level, np.float32)
        grain_k = int(rng.integers(1, 7))
        out += cv2.blur(rng.normal(0.0, 1.0, (h, w)).astype(np.float32), (grain_k, 1)) * grain
        out += rng.normal(0.0, grain * 0.5, out.shape).astype(np.float32)
        specks = np.zeros_like(out)
        for _ in range(int(rng.poisson(float(rng.uniform(0.0, 1.5)) * w / max(line_h, 1.0)))):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            dark = float(rng.uniform(0.2, 0.8)) * (level - ink)
            radius = max(1, round(float(rng.uniform(0.6, 2.2))))
            cv2.circle(specks, centre, radius, dark, -1, lineType=cv2.LINE_AA)
        return _u8(np.clip(out - specks, 0, 255))

    left = [board()] if side in ("left", "both") else []
    right = [board()] if side in ("right", "both") else []
    return _u8(np.concatenate([*left, img, *right], axis=1))


def plain(grey: Gray) -> Gray:
    """A stored crop as the reader would hand it over (normalised, network height), no noise."""
    return resize_line(normalise(grey))
