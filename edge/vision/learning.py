"""The trainers and evaluators behind one small Python API, for the cloud's training jobs.

The cloud runs retraining as queued jobs (``cloud/services/training.py``). The cloud's code
imports nothing from ``edge`` but the contracts and the code grammar (a test holds that), so a
job loads this module by name when it runs, on a worker that has the ``[train]`` extra.
:func:`train` imports torch; :func:`evaluate` needs onnxruntime only, and scores a model
through the same runtime classes the edge reads with (``CrnnRecognizer``, PP-OCR's
``Recognizer``, the defect model's ONNX file and its own freeze threshold).

Both functions speak plain values (paths, dicts of JSON numbers) so the job can store them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: job kind -> the model's name in the manifest and in the release repository
MODELS = {"codes": "ocr.crnn", "defect": "defect"}
#: (stage, done, total): called as training advances
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Candidate:
    """A trained model: its ONNX file (with ``MODEL_CARD.md`` beside it) and its figures."""

    onnx: Path
    version: str
    sha256: str
    size: int
    seconds: float
    figures: dict[str, Any]


def config_for(kind: str, params: Mapping[str, Any], version: str, threads: int) -> Any:
    """The trainer's ``TrainConfig`` from JSON params; unknown or non-scalar keys are refused."""
    cls = _config_class(kind)
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {"version": version, "threads": threads}
    for key, raw in params.items():
        field = known.get(key)
        default: Any = getattr(cls(), key, None) if field else None
        if field is None or key in ("version", "classes", "channels"):
            raise ValueError(f"unknown training parameter {key!r}")
        kind_of = type(default)
        if kind_of is bool:
            values[key] = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true")
        elif kind_of in (int, float, str):
            values[key] = kind_of(raw)
        else:
            raise ValueError(f"training parameter {key!r} cannot be set")
    return cls(**values)


def _config_class(kind: str) -> type[Any]:
    if kind == "codes":
        from edge.vision.ocr.crnn.train import TrainConfig as CodesConfig

        return CodesConfig
    if kind == "defect":
        from edge.vision.defects.train import TrainConfig as DefectConfig

        return DefectConfig
    raise ValueError(f"no trainer for kind {kind!r}")


def train(
    kind: str,
    data: Path,
    out: Path,
    *,
    version: str,
    params: Mapping[str, Any],
    progress: Progress,
    threads: int = 1,
    production: Path | None = None,
) -> Candidate:
    """Train ``kind`` on the exported dataset ``data`` (its ``train`` split plus the trainer's
    generated data), write ``out/<model>.onnx`` and its model card; returns the candidate.

    Both fine-tune the production model unless ``params`` says otherwise (see
    :func:`start_from`); ``production`` is the signed production file, when there is one."""
    params, start = start_from(kind, params, production)
    cfg = config_for(kind, params, version, threads)
    if kind == "codes":
        return _train_codes(data, out, cfg, progress, start)
    return _train_defect(data, out, cfg, progress, start)


def start_from(
    kind: str, params: Mapping[str, Any], production: Path | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model a job fine-tunes, as (params with ``init`` set to its file, what it is).

    No ``init`` param: the production model, the signed release (``production``) or else the
    manifest's shipped one: fine-tuning what the fleet runs on the new labelled data is what a
    small loop can afford (a CRNN trained from scratch for a few hundred steps reads nothing, a
    defect CNN trained from scratch for minutes does not learn damage). ``init=shipped``: the
    manifest's shipped model even when a release exists (a production model of another
    architecture cannot be fine-tuned); ``init=none``: random weights; any other value is an
    ONNX file path. The trainer refuses a file its net cannot be filled from.
    """
    out = dict(params)
    raw = str(out.get("init", "")).strip()
    if raw.lower() == "none":
        out["init"] = ""
        return out, {"source": "none"}
    if raw and raw.lower() != "shipped":
        path, source = Path(raw), "file"
    elif production is not None and not raw:
        path, source = production, "release"
    else:
        from edge.vision.session import model_entry

        path, source = model_entry(MODELS[kind]).path, "shipped"
    out["init"] = str(path)
    return out, {"source": source, "file": str(path), "version": _onnx_version(path)}


def _onnx_version(path: Path) -> str | None:
    """The ``version`` in an ONNX file's metadata (None when it has none or is unreadable: the
    trainer's own load reports a bad file with its reason)."""
    from edge.vision.session import onnx_metadata

    return onnx_metadata(path).get("version")


class _Steps:
    """Both trainers' reporter interface (``start(stage, total)`` and ``note``) -> ``progress``."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def start(self, stage: str, total: int) -> Callable[[int], None]:
        done = [0]
        self.progress(stage, 0, total)

        def advance(n: int) -> None:
            done[0] += n
            self.progress(stage, done[0], total)

        return advance

    def note(self, text: str) -> None:
        pass


def _train_codes(
    data: Path, out: Path, cfg: Any, progress: Progress, start: dict[str, Any]
) -> Candidate:
    from edge.vision.ocr.crnn import card
    from edge.vision.ocr.crnn import train as crnn

    split = data / "codes" / "train"
    result = crnn.train(out, cfg, _Steps(progress), data=split if split.is_dir() else None)
    card.write_card(result)
    figures = {
        "val": result.val.summary(),
        "holdout": result.holdout.summary(),
        "train_lines": result.train_count,
        "labelled_lines": result.user_lines,
        "init": start,  # the model it started from (the card's configuration names the file)
        "steps": int(result.history[-1]["step"]) if result.history else 0,
    }
    return Candidate(
        result.onnx_path, result.version, result.sha256, result.size, result.seconds, figures
    )


def _train_defect(
    data: Path, out: Path, cfg: Any, progress: Progress, start: dict[str, Any]
) -> Candidate:
    from edge.vision.defects import card
    from edge.vision.defects import train as defects

    class Steps(_Steps, defects.Reporter):  # the defect trainer types its reporter by class
        pass

    split = data / "defects" / "train"
    result = defects.train(split if split.is_dir() else None, out, cfg, Steps(progress))
    card.write_card(result)
    figures = {
        "val": result.val.summary(),
        "holdout": result.holdout.summary(),
        "train_frames": result.train_count,
        "labelled_frames": result.user_images,
        "init": start,
    }
    return Candidate(
        result.onnx_path, result.version, result.sha256, result.size, result.seconds, figures
    )


# -- evaluation --------------------------------------------------------------------------------
def evaluate(
    kind: str, model: Path | None, split: Path, *, reader: str = "crnn", threads: int = 1
) -> dict[str, Any]:
    """Figures of ``model`` (an ONNX file; None: the manifest's shipped model) on one split
    folder of an exported dataset (``codes/<split>`` or ``defects/<split>``).

    codes: ``{"count", "exact", "cer", "version"}`` (greedy line exact match and character error
    rate), through ``CrnnRecognizer``, or PP-OCR's ``Recognizer`` with ``reader="ppocr"``.
    defect: ``{"count", "recall", "false_freeze", "accuracy", "threshold", "version"}`` at the
    model's own freeze threshold (from its ONNX metadata). A metric without data is None.
    """
    if kind == "codes":
        return _evaluate_codes(model, split, reader, threads)
    if kind == "defect":
        return _evaluate_defect(model, split, threads)
    raise ValueError(f"no evaluator for kind {kind!r}")


def _evaluate_codes(model: Path | None, split: Path, reader: str, threads: int) -> dict[str, Any]:
    from edge.vision.ocr.crnn.data import load_labelled, normalise
    from edge.vision.ocr.crnn.metrics import score_lines
    from edge.vision.ocr.crnn.runtime import CrnnRecognizer
    from edge.vision.ocr.crnn.train import score_recognizer
    from edge.vision.ocr.recognize import Recognizer

    lines = load_labelled(split)  # no labels.json (no code lines in this split): empty
    rec: CrnnRecognizer | Recognizer
    if reader == "ppocr":
        rec = Recognizer(threads=threads)
    elif model is None:
        rec = CrnnRecognizer(threads=threads)
    else:
        rec = CrnnRecognizer(threads=threads, path=model)
    crops = [normalise(im) for im in lines.images]
    got = score_recognizer(rec, rec.charset, crops, lines.texts)
    score = score_lines(got, lines.texts)
    return {
        "count": score.lines,
        "exact": _num(score.exact_rate if score.lines else math.nan),
        "cer": _num(score.cer if score.chars else math.nan),
        # a file loaded by path is "candidate" to the runtime: its ONNX metadata names it
        "version": rec.session.get_modelmeta().custom_metadata_map.get(
            "version", rec.model.version
        ),
    }


def _evaluate_defect(model: Path | None, split: Path, threads: int) -> dict[str, Any]:
    from edge.vision.defects.data import load_labelled
    from edge.vision.defects.evaluate import evaluate_frames
    from edge.vision.defects.model import DefectModel
    from edge.vision.session import model_entry

    if model is None:
        loaded, path = DefectModel.load(threads=threads), model_entry("defect").path
    else:
        sha = hashlib.sha256(model.read_bytes()).hexdigest()
        loaded, path = DefectModel.load(model, sha256=sha, threads=threads), model
    info = loaded.info
    if not split.is_dir():
        return {
            "count": 0,
            "threshold": info.freeze_threshold,
            "version": info.version,
            "recall": None,
            "false_freeze": None,
            "accuracy": None,
        }
    frames = load_labelled(split, info.classes, (info.input_width, info.input_height))
    out: dict[str, Any] = {
        "count": len(frames),
        "threshold": info.freeze_threshold,
        "version": info.version,
    }
    if not len(frames):
        return out | {"recall": None, "false_freeze": None, "accuracy": None}
    ev = evaluate_frames(path, frames, info.classes, info.freeze_threshold, threads=threads)
    return out | {
        "recall": _num(ev.recall),
        "false_freeze": _num(ev.false_freeze),
        "accuracy": _num(ev.accuracy),
    }


def _num(value: float) -> float | None:
    """JSON has no NaN: a metric without data (no defective frame, say) is None."""
    return None if math.isnan(value) else round(float(value), 6)
