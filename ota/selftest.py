"""Known-answer self-tests run on a freshly loaded model before it may replace the running one.

A self-test is a list of fixture inputs with their truth (the committed samples: defect frames
under ``fixtures/samples/defects/`` with ``truth.json``, carton crops under
``fixtures/samples/cartons/``) and a ``predict`` function that turns one input into a label
with the candidate model. The candidate passes when its accuracy reaches ``min_accuracy``.

Preprocessing (decoding a JPEG, letterboxing, CTC decoding) belongs to the vision code, so it is
passed in as a callback by the runtime wiring; this module needs nothing from ``edge`` but the
contracts, like the rest of ``ota``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ota.swap import SelfTestResult

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the input type of a known answer


@dataclass(frozen=True)
class KnownAnswer(Generic[I]):
    """One fixture input and the label it must get."""

    source: str
    input: I
    expected: str


class KnownAnswerTest(Generic[T, I]):
    """Callable self-test: ``test(model) -> SelfTestResult``."""

    def __init__(
        self,
        answers: Sequence[KnownAnswer[I]],
        predict: Callable[[T, I], str],
        *,
        min_accuracy: float,
    ) -> None:
        if not answers:
            raise ValueError("a self-test needs at least one known answer")
        if not 0.0 < min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must be in (0, 1], got {min_accuracy}")
        self.answers = list(answers)
        self.predict = predict
        self.min_accuracy = min_accuracy

    def __call__(self, model: T) -> SelfTestResult:
        wrong: list[str] = []
        for answer in self.answers:
            try:
                got = self.predict(model, answer.input)
            except Exception as exc:  # a model that crashes on a frame fails, it does not escape
                got = f"error {type(exc).__name__}"
            if got != answer.expected:
                wrong.append(f"{answer.source}: {got} != {answer.expected}")
        correct = len(self.answers) - len(wrong)
        passed = correct >= self.min_accuracy * len(self.answers)
        detail = "" if passed else f"(needs {self.min_accuracy:.0%}; e.g. {'; '.join(wrong[:3])})"
        return SelfTestResult(passed, correct, len(self.answers), detail)


def defect_answers(
    samples_dir: Path, prepare: Callable[[Path], np.ndarray]
) -> list[KnownAnswer[np.ndarray]]:
    """The committed defect frames and their labels (``truth.json``: ``{file: {"label": ...}}``).

    ``prepare`` turns a frame file into the model input (decode + letterbox, from the vision code).
    """
    truth: dict[str, dict[str, Any]] = json.loads((samples_dir / "truth.json").read_text())
    return [
        KnownAnswer(name, prepare(samples_dir / name), str(entry["label"]))
        for name, entry in sorted(truth.items())
    ]


def classifier_predict(
    classes: Sequence[str], input_name: str = "image", output: str = "logits"
) -> Callable[[Any, np.ndarray], str]:
    """``predict`` for an ONNX classifier session: the class with the highest logit."""

    def predict(session: Any, tensor: np.ndarray) -> str:
        logits = session.run([output], {input_name: tensor})[0]
        return classes[int(np.argmax(logits[0]))]

    return predict


def session_classes(session: Any) -> list[str]:
    """Class names from the ONNX metadata (``classes``: a JSON list), as the defect model has."""
    meta = session.get_modelmeta().custom_metadata_map
    return [str(c) for c in json.loads(meta["classes"])]


def normalise_text(text: str) -> str:
    """Compare read text the way an operator would: NFKC (full-width colon = colon), no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def crop_answers(
    samples_dir: Path, prepare: Callable[[Path], np.ndarray]
) -> list[KnownAnswer[np.ndarray]]:
    """The committed carton line crops and their text (``truth.json`` ``crops``: file -> text).

    ``prepare`` turns a crop file into the recogniser's input; the matching ``predict`` decodes
    the output (CTC) and should return :func:`normalise_text` of it.
    """
    truth: dict[str, Any] = json.loads((samples_dir / "truth.json").read_text(encoding="utf-8"))
    return [
        KnownAnswer(name, prepare(samples_dir / name), normalise_text(str(entry["text"])))
        for name, entry in sorted(truth["crops"].items())
    ]
