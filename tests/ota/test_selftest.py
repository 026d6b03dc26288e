"""Self-test on the committed defect samples with the real defect model (and a broken one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.defects.image import letterbox, read_image, to_rgb8
from edge.vision.session import MODELS_DIR, load_session, model_entry, onnx_metadata
from ota.fetch import VerifiedModel
from ota.release import sha256_file
from ota.selftest import (
    KnownAnswerTest,
    classifier_predict,
    crop_answers,
    defect_answers,
    normalise_text,
    session_classes,
)
from ota.swap import SlotStore, Swapper

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "fixtures" / "samples" / "defects"
CLASSES = ["ok", "crack", "crush", "tear", "wet"]
# The shipped defect model's input (256x192 from s9, 192x144 before): the generic self-test
# feeds raw tensors, so they are letterboxed to the size the file states.
_META = onnx_metadata(model_entry("defect").path)
WIDTH, HEIGHT = int(_META["input_width"]), int(_META["input_height"])


def prepare(frame: Path) -> np.ndarray:
    tensor, _ = letterbox(to_rgb8(read_image(frame)), WIDTH, HEIGHT)
    return tensor


def loader(path: Path, sha256: str, size: int) -> ort.InferenceSession:
    return load_session(path, sha256, size=size, threads=1)


def always_ok_model(path: Path) -> Path:
    """Same inputs/outputs and class metadata as the defect model, but it calls everything ok."""
    logits = numpy_helper.from_array(np.array([[5.0, 0, 0, 0, 0]], dtype=np.float32), "L")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["L"], ["logits"])],
        "always-ok",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, HEIGHT, WIDTH])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])],
        initializer=[logits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"classes": '["ok", "crack", "crush", "tear", "wet"]'})
    onnx.save(model, str(path))
    return path


def verified(path: Path, version: str) -> VerifiedModel:
    return VerifiedModel("defect", version, path, sha256_file(path), path.stat().st_size, {})


@pytest.fixture(scope="module")
def selftest() -> KnownAnswerTest[Any, np.ndarray]:
    answers = defect_answers(SAMPLES, prepare)
    assert len(answers) == 30 and {a.expected for a in answers} == set(CLASSES)
    return KnownAnswerTest(answers, classifier_predict(CLASSES), min_accuracy=0.7)


def test_the_shipped_defect_model_passes_and_a_broken_one_never_switches(
    tmp_path: Path, selftest: KnownAnswerTest[Any, np.ndarray]
) -> None:
    entry = model_entry("defect", MODELS_DIR)
    swap = Swapper(SlotStore(tmp_path / "ota", "defect"), loader, selftest)
    active = swap.install(verified(entry.path, entry.version), move=False)
    assert session_classes(active.model) == CLASSES
    result = selftest(active.model)
    assert result.passed and result.correct >= 21, result

    broken = always_ok_model(tmp_path / "always-ok.onnx")
    with pytest.raises(DockgateError) as err:
        swap.install(verified(broken, "2.0.0-broken"))
    assert err.value.code is ErrorCode.OTA_SELFTEST_FAILED
    assert "6/30" in str(err.value)
    assert swap.holder.current().version == entry.version


def test_a_model_that_crashes_on_a_frame_fails_instead_of_raising(
    selftest: KnownAnswerTest[Any, np.ndarray],
) -> None:
    class Crashes:
        def run(self, *_args: object) -> None:
            raise RuntimeError("bad shape")

    result = selftest(Crashes())
    assert not result.passed and result.correct == 0 and "error RuntimeError" in result.detail


def test_the_shipped_ocr_recogniser_passes_its_crop_self_test() -> None:
    import cv2

    from edge.vision.ocr.ctc import greedy
    from edge.vision.ocr.recognize import Recognizer

    recognizer = Recognizer(threads=1)

    def prepare_crop(path: Path) -> np.ndarray:
        return recognizer.prepare(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))[None]

    def read(session: Any, x: np.ndarray) -> str:
        probs = session.run(None, {recognizer.input_name: x})[0][0].astype(np.float64)
        return normalise_text(greedy(probs, recognizer.charset)[0])

    answers = crop_answers(REPO / "fixtures" / "samples" / "cartons", prepare_crop)
    assert len(answers) == 6
    # Crops span 0-50 % smudge; the shipped model reads the clean half (measured 3/6).
    result = KnownAnswerTest(answers, read, min_accuracy=0.5)(recognizer.session)
    assert result.passed, result
    blank = KnownAnswerTest(answers, lambda _s, _x: "", min_accuracy=0.5)(recognizer.session)
    assert not blank.passed and blank.correct == 0
