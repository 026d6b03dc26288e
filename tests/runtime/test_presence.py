"""Presence segmentation: each carton once, and early hand-over of the middle frames."""

from __future__ import annotations

import numpy as np

from edge.camera.frame import Frame
from edge.runtime.presence import PresenceSegmenter, leading


def belt(passages: list[int], gap: int = 4) -> list[Frame]:
    """An empty grey belt, then cartons (a bright block) in view for the given frame counts."""
    empty = np.full((72, 128, 3), 90, np.uint8)
    frames: list[Frame] = []

    def add(img: np.ndarray) -> None:
        frames.append(Frame(img, len(frames) + 1, float(len(frames)), "t"))

    for _ in range(gap):
        add(empty)
    for n in passages:
        for i in range(n):
            img = empty.copy()
            img[10:60, 10 + i : 100 + i] = 230
            add(img)
        for _ in range(gap):
            add(empty)
    return frames


def run(seg: PresenceSegmenter, frames: list[Frame]) -> list[tuple[int, list[int], int]]:
    """(frame id at which the carton was handed over, frame ids handed over, index of the
    frame to read first)."""
    out = []
    for f in frames:
        got = seg.feed(f)
        if got:
            out.append((f.frame_id, [g.frame_id for g in got], got.prefer))
    tail = seg.flush()
    if tail:
        out.append((-1, [g.frame_id for g in tail], tail.prefer))
    return out


def test_leading_frames_end_with_the_middle_one() -> None:
    assert leading(8, 3) == [1, 2, 3]
    assert leading(8, 1) == [3]
    assert leading(12, 3) == [3, 4, 5]
    assert leading(2, 3) == [0]
    assert leading(1, 3) == [0]


def test_early_emission_hands_over_the_frames_up_to_the_middle_once() -> None:
    frames = belt([8, 8, 8, 5, 8])
    got = run(PresenceSegmenter(threshold=18.0, keep=3), frames)
    assert len(got) == 5  # every carton exactly once
    starts = [5, 17, 29, 41, 50]  # first frame id of each passage (4-frame gaps)
    # the first carton: nothing learnt yet, handed over when it has left
    at, ids, prefer = got[0]
    assert at == starts[0] + 8 and all(starts[0] <= i < starts[0] + 8 for i in ids)
    assert prefer == 1  # the middle of the three spread frames
    # the next ones: the moment the middle frame is in (no frame after it is waited for),
    # long before they leave, the middle one to be read first
    for (at, ids, prefer), s in zip(got[1:3], starts[1:3], strict=True):
        assert ids == [s + 1, s + 2, s + 3] and at == s + 3 and prefer == 2
    # a shorter carton is still found once, with frames from its own passage
    at, ids, _ = got[3]
    assert all(starts[3] <= i < starts[3] + 5 for i in ids) and len(ids) == 3
    assert all(starts[4] <= i < starts[4] + 8 for i in got[4][1])


def test_without_early_emission_cartons_are_handed_over_when_they_leave() -> None:
    frames = belt([8, 8])
    got = run(PresenceSegmenter(threshold=18.0, keep=3, early=False), frames)
    assert [at for at, _, _ in got] == [5 + 8, 17 + 8]
