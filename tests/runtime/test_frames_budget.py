"""Frames per carton against the latency target, and the reader's samples written behind the
inference thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.camera.frame import Frame
from edge.runtime.carton import CartonFrames, Trigger
from edge.runtime.sample_writer import BackgroundSampleStore
from edge.runtime.stages import Inference, _nearest
from edge.vision.ocr import samples as samples_module
from edge.vision.ocr.reader import Reader
from edge.vision.ocr.samples import SampleStore
from tests.runtime.conftest import SAMPLES


def carton(images: list[Any], t0: float) -> CartonFrames:
    frames = tuple(Frame(img, i + 1, t0, "t") for i, img in enumerate(images))
    return CartonFrames("c-1", frames, Trigger.PRESENCE, t0)


def test_frames_are_taken_nearest_the_preferred_one_first() -> None:
    assert _nearest(5, None) == [2, 1, 3, 0, 4]  # the middle one, then earlier before later
    assert _nearest(3, 2) == [2, 1, 0]
    assert _nearest(3, 7) == [2, 1, 0]  # clamped into the passage


def test_frames_fused_only_while_they_fit_the_latency_target() -> None:
    inf = Inference(reader=None, latency_target_s=0.25)
    now = 100.0
    three = carton([np.zeros((8, 16, 3), np.uint8)] * 3, now)
    assert len(inf.choose(three, now)) == 3  # nothing measured yet: read them all
    inf.frame_estimate_s = 0.2  # today's reader on a loaded box
    assert len(inf.choose(three, now)) == 1
    inf.frame_estimate_s = 0.05  # a reader at its goal
    assert len(inf.choose(three, now)) == 3
    inf.reserve_s = 0.12  # booking takes a while: one frame less fits
    assert len(inf.choose(three, now)) == 2
    assert len(inf.choose(three, now + 1.0)) == 1  # already late: still the best frame
    assert len(Inference(reader=None).choose(three, now)) == 3  # no target: all


def test_a_jittery_stage_leaves_room_for_its_tail() -> None:
    now = 100.0
    three = carton([np.zeros((8, 16, 3), np.uint8)] * 3, now)
    steady, jittery = (Inference(reader=None, latency_target_s=0.25) for _ in range(2))
    for inf in (steady, jittery):
        inf.frame_estimate_s = 0.05
    for i in range(30):
        steady.track_reserve(0.04)
        jittery.track_reserve(0.0 if i % 2 else 0.08)  # the same mean, a wide spread
    assert abs(steady.reserve_s - jittery.reserve_s) < 0.01
    assert len(steady.choose(three, now)) == 3
    assert len(jittery.choose(three, now)) == 2


def test_preferred_frame_first_and_latency_from_the_earliest_frame_read() -> None:
    # a presence passage handed over the moment its middle frame (the last one) is in
    frames = tuple(Frame(np.zeros((8, 16, 3), np.uint8), i, 10.0 + 0.04 * i, "t") for i in range(3))
    passage = CartonFrames("c-2", frames, Trigger.PRESENCE, 10.0, prefer=2)
    inf = Inference(reader=None, latency_target_s=0.25)
    inf.frame_estimate_s = 0.05
    assert [f.frame_id for f in inf.choose(passage, 10.08)] == [0, 1, 2]
    # an earlier frame costs its reading time and the time since it was captured
    inf.frame_estimate_s = 0.07
    chosen = inf.choose(passage, 10.08)
    assert [f.frame_id for f in chosen] == [1, 2]
    assert passage.since(chosen) == 10.04
    inf.frame_estimate_s = 0.2
    assert [f.frame_id for f in inf.choose(passage, 10.08)] == [2]
    assert passage.since(frames[2:]) == 10.08
    # a photo-eye carton's clock starts at the beam break, whatever frames are read
    eye = CartonFrames("c-3", frames, Trigger.PHOTO_EYE, 9.9, tracking_id=7)
    assert eye.since(frames[2:]) == 9.9


def test_a_slow_reader_reads_the_middle_frame_only() -> None:
    images = [cv2.imread(str(p)) for p in sorted((SAMPLES / "frames").iterdir())[:3]]
    inf = Inference(Reader(), latency_target_s=0.25)
    first = inf(carton(images, time.monotonic()))
    assert first.frames_read == 3 and inf.frame_estimate_s > 0
    inf.frame_estimate_s = 10.0
    second = inf(carton(images, time.monotonic()))
    assert second.frames_read == 1 and second.read.status in {"ACCEPTED", "REVIEW", "UNREADABLE"}


def test_background_sample_store_writes_and_drops_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    read = {"status": "REVIEW", "confidence": 0.3}
    # hold the writer inside its PNG encode: if keep() waited for the writer in any way, the
    # loop below would hang until the 30 s timeout instead of returning
    writing, release = threading.Event(), threading.Event()
    encode = samples_module._encode

    def held_encode(img: Any) -> bytes:
        writing.set()
        assert release.wait(30), "keep() blocked on the writer"
        return encode(img)

    monkeypatch.setattr(samples_module, "_encode", held_encode)
    store = BackgroundSampleStore(tmp_path / "s", 256 * 2**20, pending=2)
    try:
        assert store.keep(image, read) is None
        assert writing.wait(10)  # the writer holds the first sample
        for _ in range(19):
            assert store.keep(image, read) is None
        assert store.ids() == [] and store.lost == 17  # 1 being written, 2 queued, 17 dropped
        release.set()
        store.flush()
        assert len(store.ids()) == 3 and store.dropped == store.lost  # bounded and counted
        plain = SampleStore(tmp_path / "s", 256 * 2**20)  # the panel's view of the same files
        assert plain.ids() == store.ids()
        assert plain.load(store.ids()[0])[1]["status"] == "REVIEW"
    finally:
        release.set()
        store.close()
    assert not store._thread.is_alive()
